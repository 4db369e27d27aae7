"""Training: ``TrainConfig``, ``fit`` -> ``History``, checkpoints and resume, and the one
pipeline every command trains through (``run_training``); evaluation and prediction of a
finished run; the run-directory format.

Module map: ``config`` (TrainConfig), ``trainer`` (fit), ``state`` (what a checkpoint holds),
``pipeline`` (data + model + fit), ``rundir`` (run directories, checkpoints, weights files),
``evaluation``, ``prediction``, ``history``, ``progress``, ``host`` (the CPU allocator).
"""

from .config import TrainConfig
from .evaluation import evaluate, evaluate_run
from .history import EpochRecord, History
from .pipeline import TrainingRun, run_training
from .prediction import predict_images
from .rundir import LoadedRun, load_checkpoint, load_run, run_info, save_weights
from .state import TrainingState
from .trainer import TrainingDiverged, fit

__all__ = [
    "EpochRecord", "History", "LoadedRun", "TrainConfig", "TrainingDiverged", "TrainingRun", "TrainingState",
    "evaluate", "evaluate_run", "fit", "load_checkpoint", "load_run", "predict_images", "run_info", "run_training",
    "save_weights",
]
