"""Weights from other frameworks: Keras (model objects, ``.weights.h5`` and legacy ``.h5``
files), torchvision state dicts, and the published ImageNet weights (:mod:`.pretrained`)."""

from .keras import load_keras_weights
from .torchvision import TORCHVISION_KWARGS, load_torchvision_weights, torchvision_kwargs

__all__ = ["TORCHVISION_KWARGS", "load_keras_weights", "load_torchvision_weights", "torchvision_kwargs"]
