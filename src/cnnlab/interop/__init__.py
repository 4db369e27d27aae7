"""Weights from other frameworks: Keras (model objects, ``.weights.h5`` and legacy ``.h5``
files) and torchvision state dicts, plus the published ImageNet weights (``pretrained``)."""

from .keras import load_keras_weights

__all__ = ["load_keras_weights"]
