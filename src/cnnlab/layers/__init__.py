"""Convolution layers with Keras semantics on PyTorch (NCHW) tensors."""

from .base import KerasConv2dBase, LayerCost
from .conv import Conv2D, DepthwiseConv2D, SeparableConv2D
from .transpose import Conv2DTranspose

__all__ = ["Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "KerasConv2dBase", "LayerCost", "SeparableConv2D"]
