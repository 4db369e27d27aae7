"""The model zoo: every architecture of the articles behind one registry.

Importing this package registers every family (one module each).
"""

from . import cifar, densenet, googlenet, mobilenet, resnet, vgg, xception  # noqa: F401  (registration)
from .base import ClassifierHead, CnnModel, FeatureInfo
from .features import FeatureExtractor
from .registry import ModelEntry, create_model, get_model_entry, list_models, register_model

__all__ = [
    "ClassifierHead",
    "CnnModel",
    "FeatureExtractor",
    "FeatureInfo",
    "ModelEntry",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
]
