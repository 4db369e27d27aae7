"""The model zoo: every architecture of the articles behind one registry.

Importing this package registers every family (one module each).
"""

from . import cifar, densenet, googlenet, mobilenet, resnet, vgg, xception  # noqa: F401  (registration)
from .base import ClassifierHead, CnnModel, FeatureInfo
from .features import FeatureExtractor
from .preprocessing import Preprocessing, normalize_input
from .registry import ModelEntry, create_model, get_model_entry, list_models, published, register_model
from .weights import Published

__all__ = [
    "ClassifierHead",
    "CnnModel",
    "FeatureExtractor",
    "FeatureInfo",
    "ModelEntry",
    "Preprocessing",
    "Published",
    "create_model",
    "get_model_entry",
    "list_models",
    "normalize_input",
    "published",
    "register_model",
]
