"""The small CIFAR-10 nets of article 001: one conv type per net, and the module-search net.

Each stage is ``Conv1x1(width)+BN+ReLU`` (the article's "adjusting block": a depthwise layer
cannot change the channel count) followed by layers of the chosen types, each 3x3 'same' with
bias, then BN+ReLU; stages are 64, 128, 256 wide with 2x2 average pooling between them;
global average pooling and a dense classifier close the net (Keras defaults throughout).

    convtype_cifar(conv="separable")                        # 2 layers of one type per stage
    modulenet_cifar(layers=("separable", "separable", "depthwise"))   # 3 layers, any types
    modulenet_cifar(layers=(("conv",) * 3, ("separable",) * 3, ("depthwise",) * 3),
                    kernel_size=5, width_multiplier=0.5)    # the free search: types per stage
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from torch import nn

from ..layers import AveragePooling2D
from ..layers.blocks import CONV_TYPES, ConvNormAct
from .base import ClassifierHead, CnnModel, FeatureInfo
from .registry import register_model

WIDTHS = (64, 128, 256)


class TypedConvNet(CnnModel):
    """Stages of an adjusting 1x1 conv and layers of the given conv types.

    ``layer_types`` is one sequence of types used in every stage, or one sequence per stage
    (as many as ``widths``); ``kernel_size`` is the side of every typed layer.
    """

    def __init__(
        self,
        layer_types: Sequence[str] | Sequence[Sequence[str]],
        widths: Sequence[int] = WIDTHS,
        num_classes: int = 10,
        in_channels: int = 3,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be positive ints, got {widths!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size must be a positive int, got {kernel_size!r}")
        per_stage = [tuple(t) for t in layer_types] if layer_types and not isinstance(layer_types[0], str) else None
        if per_stage is not None and len(per_stage) != len(widths):
            raise ValueError(
                f"one layer list per stage: {len(widths)} stages (widths {tuple(widths)}), got {len(per_stage)} lists"
            )
        # not per stage: layer_types is one Sequence[str] (its first item is a str), which mypy cannot narrow to
        stage_types = per_stage or [tuple(cast(Sequence[str], layer_types))] * len(widths)
        for s, types in enumerate(stage_types):
            for i, kind in enumerate(types):
                if kind not in CONV_TYPES:
                    where = f"stage {s} layer {i}" if per_stage is not None else f"layer {i}"
                    raise ValueError(f"{where} type must be one of {sorted(CONV_TYPES)}, got {kind!r}")
        self.layer_types = tuple(stage_types) if per_stage is not None else tuple(layer_types)
        self.stem = nn.Identity()
        stages, channels, self.feature_info = [], in_channels, []
        for s, (width, types) in enumerate(zip(widths, stage_types)):
            stage = nn.Sequential()
            if s:
                stage.add_module("pool", AveragePooling2D(2))
            stage.add_module("adjust", ConvNormAct(channels, width, 1, use_bias=True))
            for j, kind in enumerate(types):
                stage.add_module(f"layer{j}", ConvNormAct(width, width, kernel_size, conv_type=kind, use_bias=True))
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
def convtype_cifar(
    num_classes: int = 10, in_channels: int = 3, conv: str = "conv", widths: Sequence[int] = WIDTHS
) -> TypedConvNet:
    """Article 001's 10-layer CIFAR net built from one conv type (conv 1,598,730 / depthwise 58,506 /
    separable 230,538 params)."""
    if conv not in CONV_TYPES:
        raise ValueError(f"conv must be one of {sorted(CONV_TYPES)}, got {conv!r}")
    return TypedConvNet((conv, conv), widths, num_classes, in_channels)


@register_model(input_size=(3, 32, 32))
def modulenet_cifar(
    num_classes: int = 10,
    in_channels: int = 3,
    layers: Sequence[str] | Sequence[Sequence[str]] = ("conv", "conv", "conv"),
    widths: Sequence[int] = WIDTHS,
    kernel_size: int = 3,
    width_multiplier: float = 1.0,
) -> TypedConvNet:
    """Article 001's module-search net: each module's three layers conv/depthwise/separable (27 combinations).

    ``layers`` is three types shared by every stage (the article's space), or one triple per
    stage (the free space, 27 ** stages combinations). ``width_multiplier`` scales every
    width (rounded, at least 1); ``kernel_size`` is the typed layers' side (the article: 3).
    """
    if isinstance(layers, (tuple, list)) and layers and not isinstance(layers[0], str):
        if len(layers) != len(widths):
            raise ValueError(f"layers: one triple per stage ({len(widths)} stages), got {len(layers)}: {layers!r}")
        layers = tuple(_check_types(f"layers[{s}]", stage, 3) for s, stage in enumerate(layers))
    else:
        layers = _check_types("layers", layers, 3)
    if isinstance(width_multiplier, bool) or not isinstance(width_multiplier, (int, float)) or width_multiplier <= 0:
        raise ValueError(f"width_multiplier must be a positive number, got {width_multiplier!r}")
    if width_multiplier != 1.0:
        widths = tuple(max(1, round(w * width_multiplier)) for w in widths)
    return TypedConvNet(layers, tuple(widths), num_classes, in_channels, kernel_size)
