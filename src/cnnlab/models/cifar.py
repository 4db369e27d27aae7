"""The small CIFAR-10 nets of article 001: one conv type per net, and the module-search net.

Each stage is ``Conv1x1(width)+BN+ReLU`` (the article's "adjusting block": a depthwise layer
cannot change the channel count) followed by layers of the chosen types, each 3x3 'same' with
bias, then BN+ReLU; stages are 64, 128, 256 wide with 2x2 average pooling between them;
global average pooling and a dense classifier close the net (Keras defaults throughout).

    convtype_cifar(conv="separable")                        # 2 layers of one type per stage
    modulenet_cifar(layers=("separable", "separable", "depthwise"))   # 3 layers, any types
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..layers import AveragePooling2D
from ..layers.blocks import CONV_TYPES, ConvNormAct
from .base import ClassifierHead, CnnModel, FeatureInfo
from .registry import register_model

WIDTHS = (64, 128, 256)


class TypedConvNet(CnnModel):
    """Stages of an adjusting 1x1 conv and ``layer_types`` (one conv type per layer)."""

    def __init__(
        self, layer_types: Sequence[str], widths: Sequence[int] = WIDTHS, num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        for i, kind in enumerate(layer_types):
            if kind not in CONV_TYPES:
                raise ValueError(f"layer {i} type must be one of {sorted(CONV_TYPES)}, got {kind!r}")
        if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be positive ints, got {widths!r}")
        self.layer_types = tuple(layer_types)
        self.stem = nn.Identity()
        stages, channels, self.feature_info = [], in_channels, []
        for s, width in enumerate(widths):
            stage = nn.Sequential()
            if s:
                stage.add_module("pool", AveragePooling2D(2))
            stage.add_module("adjust", ConvNormAct(channels, width, 1, use_bias=True))
            for j, kind in enumerate(self.layer_types):
                stage.add_module(f"layer{j}", ConvNormAct(width, width, 3, conv_type=kind, use_bias=True))
            stages.append(stage)
            channels = width
            self.feature_info.append(FeatureInfo(f"stages.{s}", width, 2**s))
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(channels, num_classes)


def _check_types(name: str, value: object, length: int) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,) * length
    if not isinstance(value, (tuple, list)) or len(value) != length:
        raise ValueError(f"{name} must be one of {sorted(CONV_TYPES)} or {length} of them, got {value!r}")
    return tuple(value)


@register_model(input_size=(3, 32, 32))
def convtype_cifar(num_classes: int = 10, in_channels: int = 3, conv: str = "conv", widths: Sequence[int] = WIDTHS) -> TypedConvNet:
    """Article 001's 10-layer CIFAR net built from one conv type (conv 1,598,730 / depthwise 58,506 / separable 230,538 params)."""
    if conv not in CONV_TYPES:
        raise ValueError(f"conv must be one of {sorted(CONV_TYPES)}, got {conv!r}")
    return TypedConvNet((conv, conv), widths, num_classes, in_channels)


@register_model(input_size=(3, 32, 32))
def modulenet_cifar(
    num_classes: int = 10,
    in_channels: int = 3,
    layers: Sequence[str] = ("conv", "conv", "conv"),
    widths: Sequence[int] = WIDTHS,
) -> TypedConvNet:
    """Article 001's module-search net: each module's three layers conv/depthwise/separable (27 combinations)."""
    return TypedConvNet(_check_types("layers", layers, 3), widths, num_classes, in_channels)
