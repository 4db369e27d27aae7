"""Training: ``TrainConfig`` (and presets), ``fit`` -> ``History``, checkpoints and resume."""

from .config import PRESETS, TrainConfig, preset
from .history import EpochRecord, History
from .trainer import TrainingDiverged, evaluate, fit, load_checkpoint

__all__ = ["EpochRecord", "History", "PRESETS", "TrainConfig", "TrainingDiverged", "evaluate", "fit", "load_checkpoint", "preset"]
