"""Xception (Chollet, CVPR 2017): Inception modules pushed to the extreme -- every 3x3
convolution is a depthwise separable one, wrapped in residual modules.

``xception`` replicates keras.applications' Xception layer for layer (convs without bias,
BatchNorm eps 1e-3 -- Keras's default, the application sets none --, 'valid' stem convs,
SeparableConv2D 'same', MaxPooling2D 3x3/2 'same' with Keras's asymmetric padding, 1x1/2
'same' conv + BN shortcuts), so Keras weights load in module order and give the same outputs.

Layout (Keras names in brackets):

* ``stem``: ``conv1`` 3x3/2 'valid' 32 - ``bn1`` - ``act1`` - ``conv2`` 3x3 'valid' 64 - ``bn2``
  - ``act2`` [block1]. ``stem="cifar"``: both convs 3x3/1 'same', so 32x32 inputs keep 32x32.
* ``stages.0`` / ``stages.1``: one entry-flow module each [block2, block3];
  ``stages.2``: the last entry module ``block0`` [block4] + the middle flow ``block1..block8``
  [block5..block12], all at 1/16; ``stages.3``: the exit module ``block0`` [block13].
* A module: ``[act1] sepconv1 bn1 act2 sepconv2 bn2 [act3 sepconv3 bn3] [pool]``, plus
  ``shortcut`` (``conv`` 1x1/2 + ``bn``) when it halves the resolution, else the identity;
  the two are added. The very first module has no leading ReLU (the stem ends in one).
* ``final``: ``sepconv1`` 1536 - ``bn1`` - ``act1`` - ``sepconv2`` 2048 - ``bn2`` - ``act2`` [block14];
  then ``head`` (GAP, fc).

``feature_info``: ``stages.0..2`` (128/4, 256/8, 728/16) and ``final`` (2048/32; it widens
``stages.3``'s 1024 channels). At 299x299 the maps are 147 (stem), 74, 37, 19 and 10 -- the
'valid' stem convs shave pixels, so 299 / 19 = 15.7 and 299 / 10 = 29.9 (not exactly 16, 32).
Depth: 2 stem convs + 2 * 3 entry + 3 * 8 middle + 2 exit + 2 final separable convs + fc = 37
weight layers on the longest path (the paper's "36 convolutional layers" + the classifier).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ..layers import Conv2D, MaxPooling2D, SeparableConv2D
from ..layers.blocks import batch_norm
from .base import ClassifierHead, CnnModel, FeatureInfo, check_stem
from .registry import register_model
from .weights import keras_weights

EPS = 1e-3  # Keras BatchNormalization default; keras.applications.Xception keeps it

STEM_WIDTHS = (32, 64)  # stem conv1, conv2

# Architecture, one row per module (torchvision style).
# stage: child of ``stages``; c: SeparableConv2D widths of one module (3x3, 'same', no bias);
# n: modules; s: module stride (2: max-pool 3x3/2 'same' + 1x1/2 conv shortcut; 1: identity
# shortcut); pre-act: the module starts with a ReLU.
#   stage, c,                   n, s, pre-act
ARCH: tuple[tuple[int, tuple[int, ...], int, int, bool], ...] = (
    (0, (128, 128), 1, 2, False),  # entry flow [block2]
    (1, (256, 256), 1, 2, True),  # entry flow [block3]
    (2, (728, 728), 1, 2, True),  # entry flow [block4]
    (2, (728, 728, 728), 8, 1, True),  # middle flow [block5..block12]
    (3, (728, 1024), 1, 2, True),  # exit flow [block13]
)
FINAL_WIDTHS = (1536, 2048)  # exit flow [block14], each SeparableConv2D - BN - ReLU


def _sepconv(in_channels: int, out_channels: int) -> SeparableConv2D:
    return SeparableConv2D(in_channels, out_channels, 3, padding="same", use_bias=False)


class XceptionModule(nn.Module):
    """``[ReLU] SepConv-BN (ReLU SepConv-BN)* [MaxPool 3x3/2 'same']`` + shortcut, added."""

    def __init__(self, in_channels: int, widths: Sequence[int], strides: int, pre_act: bool) -> None:
        super().__init__()
        if strides == 1 and widths[-1] != in_channels:
            raise ValueError(f"an identity shortcut needs {in_channels} output channels, got {widths[-1]}")
        channels = in_channels
        for i, width in enumerate(widths, start=1):
            if i > 1 or pre_act:
                self.add_module(f"act{i}", nn.ReLU())
            self.add_module(f"sepconv{i}", _sepconv(channels, width))
            self.add_module(f"bn{i}", batch_norm(width, eps=EPS))
            channels = width
        if strides == 2:
            self.pool = MaxPooling2D(3, strides=2, padding="same")
            # Keras creates the shortcut's layers after the main path's: same order here.
            self.shortcut: nn.Module = nn.Sequential(
                OrderedDict(
                    conv=Conv2D(in_channels, channels, 1, strides=2, padding="same", use_bias=False),
                    bn=batch_norm(channels, eps=EPS),
                )
            )
        else:
            self.shortcut = nn.Identity()
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for name, layer in self.named_children():
            if name != "shortcut":
                y = layer(y)
        return y + self.shortcut(x)


class Xception(CnnModel):
    """``stem`` -> entry / middle / exit flow modules (``stages``) -> ``final`` -> head."""

    def __init__(self, num_classes: int, in_channels: int, stem: str) -> None:
        super().__init__()
        imagenet = check_stem(stem) == "imagenet"
        strides, padding = (2, "valid") if imagenet else (1, "same")
        c1, c2 = STEM_WIDTHS
        self.stem = nn.Sequential(
            OrderedDict(
                conv1=Conv2D(in_channels, c1, 3, strides=strides, padding=padding, use_bias=False),
                bn1=batch_norm(c1, eps=EPS),
                act1=nn.ReLU(),
                conv2=Conv2D(c1, c2, 3, padding=padding, use_bias=False),
                bn2=batch_norm(c2, eps=EPS),
                act2=nn.ReLU(),
            )
        )
        channels, reduction = c2, strides
        stages: list[nn.Sequential] = []
        self.feature_info = []
        for stage, widths, n, s, pre_act in ARCH:
            if stage == len(stages):
                stages.append(nn.Sequential())
            for _ in range(n):
                module = XceptionModule(channels, widths, s, pre_act)
                stages[stage].add_module(f"block{len(stages[stage])}", module)
                channels, reduction = module.out_channels, reduction * s
            info = FeatureInfo(f"stages.{stage}", channels, reduction)
            self.feature_info[stage:] = [info]  # the stage's last module decides
        self.stages = nn.Sequential(*stages)
        f1, f2 = FINAL_WIDTHS
        self.final = nn.Sequential(
            OrderedDict(
                sepconv1=_sepconv(channels, f1),
                bn1=batch_norm(f1, eps=EPS),
                act1=nn.ReLU(),
                sepconv2=_sepconv(f1, f2),
                bn2=batch_norm(f2, eps=EPS),
                act2=nn.ReLU(),
            )
        )
        # ``final`` widens the last stage (1024 -> 2048 channels) at the same resolution
        self.feature_info[-1] = FeatureInfo("final", f2, reduction)
        self.head = ClassifierHead(f2, num_classes)


# Published ImageNet weights: keras.applications', with the MD5 Keras publishes.
XCEPTION_WEIGHTS = (
    keras_weights("xception/xception_weights_tf_dim_ordering_tf_kernels.h5", "0a58e3b7378bc2990ea3b43d5981f1f6"),
)


@register_model(input_size=(3, 299, 299), weights=XCEPTION_WEIGHTS)
def xception(num_classes: int = 1000, in_channels: int = 3, stem: str = "imagenet") -> Xception:
    """keras.applications' Xception (Chollet, CVPR 2017; 36 separable/conv layers + fc): 22,910,480 params.

    Entry flow (two 'valid' stem convs, modules 128/256/728 with max-pool and 1x1/2 conv
    shortcuts), middle flow (8 identity-shortcut modules of 3 x ReLU-SeparableConv 728-BN), exit
    flow (module 728/1024, SeparableConv 1536 and 2048 each with BN-ReLU), GAP, fc. 299x299 input.
    ``stem="cifar"``: both stem convs 3x3/1 'same', for 32x32 inputs.
    """
    return Xception(num_classes, in_channels, stem)
