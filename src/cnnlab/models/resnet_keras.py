"""ResNet's Keras layer order and names, for :func:`cnnlab.interop.load_keras_weights`.

ResNet is the one family whose Keras ``model.layers`` order is not its creation order: in a
downsampling bottleneck keras.applications lists the shortcut (``_0_conv``, ``_0_bn``) after
``_2_relu`` and before ``_3_conv`` / ``_3_bn``, where our block defines it last. Files that keep
keras.applications' names (``conv3_block1_0_conv``) are put in order by name, so Keras 2 files
load whatever order they list their layers in. And a weights-only file cannot say where a
bottleneck puts its stride (the shapes are the same either way): the caller has to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Protocol, TypeVar

from torch import nn

from .resnet import STRIDE_ON, Bottleneck, ResNet

KERAS_NAME = re.compile(r"conv(?P<stage>\d+)_block(?P<block>\d+)_(?P<index>[0-3])_(?P<kind>conv|bn)")
KERAS_RANK = {"1": 0, "2": 1, "0": 2, "3": 3}  # keras.applications (Keras 3) lists the shortcut _0 after _2
# a downsampling bottleneck's weight layers in keras.applications' model.layers order
KERAS_BOTTLENECK_ORDER = ("conv1", "bn1", "conv2", "bn2", "downsample.conv", "downsample.bn", "conv3", "bn3")


class _HasName(Protocol):
    @property
    def name(self) -> str: ...


_Named = TypeVar("_Named", bound=_HasName)


def keras_name_order(model: nn.Module, layers: list[_Named]) -> list[_Named]:
    """For a ResNet ``model``: keras.applications' ResNet layers (anything with a ``name``) in
    Keras 3's ``model.layers`` order, whatever order a file lists them in (Keras 2 files may list
    a block's shortcut elsewhere): the names say it. Other models and layers without those
    names: ``layers`` as they are (keras.applications' DenseNet uses the same name pattern, in order)."""

    def key(item: tuple[int, Any]):
        position, layer = item
        if layer.name in ("conv1_conv", "conv1_bn"):
            return (0, 0, 0, 0, layer.name == "conv1_bn")
        match = KERAS_NAME.fullmatch(layer.name)
        if match is None:  # the classifier
            return (2, 0, 0, 0, position)
        return (1, int(match["stage"]), int(match["block"]), KERAS_RANK[match["index"]], match["kind"] == "bn")

    names = [layer.name for layer in layers]
    if not isinstance(model, ResNet) or "conv1_conv" not in names or not any(KERAS_NAME.fullmatch(n) for n in names):
        return layers
    return [layer for _, layer in sorted(enumerate(layers), key=key)]


def keras_module_order(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(name, module) of ``model`` in the order Keras's ``model.layers`` lists the weight layers.

    The zoo creates them in that order everywhere except in ResNet's downsampling bottlenecks:
    keras.applications lists the shortcut (``_0_conv``, ``_0_bn``) after ``_2_relu`` and
    before ``_3_conv`` / ``_3_bn``, where our block defines it last.
    """
    skip: set[str] = set()
    for name, module in model.named_modules():
        if any(name == s or name.startswith(s + ".") for s in skip):
            continue
        if isinstance(module, Bottleneck) and module.downsample is not None:
            skip.add(name)
            for child in KERAS_BOTTLENECK_ORDER:
                yield f"{name}.{child}", module.get_submodule(child)
            continue
        yield name, module


def check_keras_stride_on(model: nn.Module, stride_on: str | None, description: str) -> None:
    """For Keras weights without layer configurations (``description`` says whose): ``stride_on``
    must say where their bottlenecks put the stride, and it must be where ``model``'s do."""
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    strided = next((b for b in blocks if max(b.conv1.strides + b.conv2.strides) > 1), None)
    if strided is None:
        return
    ours = "1x1" if max(strided.conv1.strides) > 1 else "3x3"
    if stride_on is None:
        raise ValueError(
            f"{description} has no layer configurations, so it cannot say where its ResNet puts the stride of "
            f"a downsampling block; this model has it on the {ours} conv. keras.applications' ResNet50/101/152 "
            f"put it on the 1x1 conv: build the model with stride_on='1x1' and pass stride_on='1x1' here "
            f"(stride_on='3x3' for weights saved from article 004's Keras ResNet)"
        )
    if stride_on not in STRIDE_ON:
        raise ValueError(f"stride_on must be '1x1' or '3x3', got {stride_on!r}")
    if stride_on != ours:
        raise ValueError(
            f"the weights come from a ResNet with the stride on the {stride_on} conv, but this model has it on the "
            f"{ours} conv; build it with stride_on={stride_on!r}"
        )
