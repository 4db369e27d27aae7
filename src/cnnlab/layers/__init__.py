"""Convolution layers with Keras semantics on PyTorch (NCHW) tensors."""

from .base import KerasConv2dBase, LayerCost
from .conv import Conv2D, DepthwiseConv2D, SeparableConv2D
from .pooling import AveragePooling2D, MaxPooling2D
from .transpose import Conv2DTranspose

__all__ = [
    "AveragePooling2D",
    "MaxPooling2D",
    "Conv2D",
    "Conv2DTranspose",
    "DepthwiseConv2D",
    "KerasConv2dBase",
    "LayerCost",
    "SeparableConv2D",
]
