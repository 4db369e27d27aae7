"""Training: ``TrainConfig``, ``fit`` -> ``History``, checkpoints and resume, and the one
pipeline every command trains through (``run_training``); evaluation and prediction of a
finished run; the run-directory format.

Module map: ``config`` (TrainConfig), ``trainer`` (fit: the outline of a run), ``optim`` (the
optimizer), ``schedule`` (the learning rate), ``precision`` (fp32/bf16/fp16, autocast),
``batchnorm`` (momentum, precise BN), ``state`` (what a checkpoint holds), ``epochs`` (one
epoch), ``loop`` (the epochs), ``pipeline`` (data + model + fit), ``rundir`` (run directories,
checkpoints, weights files), ``evaluation``, ``prediction``, ``history``, ``progress``,
``host`` (the CPU allocator: ``tune_allocator``).
"""

from .config import TrainConfig
from .epochs import TrainingDiverged
from .evaluation import evaluate, evaluate_run
from .history import EpochRecord, History
from .host import tune_allocator
from .pipeline import TrainingRun, run_training
from .prediction import predict_images
from .rundir import LoadedRun, load_checkpoint, load_run, run_info, save_weights
from .state import TrainingState
from .trainer import fit

__all__ = [
    "EpochRecord",
    "History",
    "LoadedRun",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingRun",
    "TrainingState",
    "evaluate",
    "evaluate_run",
    "fit",
    "load_checkpoint",
    "load_run",
    "predict_images",
    "run_info",
    "run_training",
    "save_weights",
    "tune_allocator",
]
