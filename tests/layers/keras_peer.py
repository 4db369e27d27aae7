"""Build the Keras 3 layer that matches a cnnlab layer, and run both on the same input."""

from __future__ import annotations

import os

import numpy as np
import torch

os.environ["KERAS_BACKEND"] = "torch"
import keras  # noqa: E402

from cnnlab.layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D  # noqa: E402

assert keras.backend.backend() == "torch", "tests must run Keras on its torch backend"

LAYERS = {
    "conv2d": (Conv2D, keras.layers.Conv2D),
    "depthwise": (DepthwiseConv2D, keras.layers.DepthwiseConv2D),
    "separable": (SeparableConv2D, keras.layers.SeparableConv2D),
    "transpose": (Conv2DTranspose, keras.layers.Conv2DTranspose),
}


def build_pair(kind: str, config: dict):
    """(cnnlab layer, built Keras layer) for one configuration; ``in_channels`` is cnnlab-only."""
    ours_cls, keras_cls = LAYERS[kind]
    ours = ours_cls(**config)
    keras_config = {k: v for k, v in config.items() if k != "in_channels"}
    theirs = keras_cls(**keras_config)
    return ours, theirs


def to_numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


def keras_forward(layer, x_nchw: np.ndarray) -> np.ndarray:
    """Run a Keras layer (NHWC) on an NCHW array; answer in NCHW."""
    y = layer(np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)))
    return to_numpy(y).transpose(0, 3, 1, 2)


def cnnlab_forward(layer, x_nchw: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return layer(torch.from_numpy(x_nchw)).numpy()
