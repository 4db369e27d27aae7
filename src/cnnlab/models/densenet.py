"""DenseNet (Huang et al., CVPR 2017): each layer concatenates ``growth_rate`` new channels
onto everything before it in its dense block; transitions compress and halve the resolution.

Three flavours, one builder:

* ``densenet121/169/201/264`` -- keras.applications' DenseNet (convs without bias, BN eps
  1.001e-5, ZeroPadding2D + 'valid' stem), so Keras weights load layer for layer. torchvision's
  densenet121/169/201 are the same network with ``bn_eps=1e-5`` (its padding is symmetric
  already: every strided step here is an explicit ZeroPadding2D + 'valid').
* ``densenet_cifar`` -- article 000's ``DenseNetSimple`` exactly: 1x1 stem to 16 channels, convs
  with bias, transitions that are a bare 1x1 conv + 2x2 average pool, no final BN (Keras BN eps 1e-3).
* ``densenet_bc`` -- the paper's CIFAR DenseNet-BC (its Torch code): 3x3 stem of 2k channels,
  three blocks of (depth - 4) / 6 bottleneck layers, BN eps 1e-5.

Layout: ``stem``; ``stages.i`` = [``transition`` (i > 0)] + ``layer0 .. layer{n-1}``, e.g.
``stages.1.transition.conv``, ``stages.0.layer0.conv1``; ``final`` = BN-ReLU where the flavour
has one; ``head``. ``feature_info[i]`` is the output of dense block i (``stages.i``, before the
next transition), which is what timm and torchvision hand to detection necks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..layers import AveragePooling2D, Conv2D, MaxPooling2D
from ..layers.blocks import batch_norm
from .base import ClassifierHead, CnnModel, FeatureInfo, check_bn_eps, check_stem
from .registry import register_model
from .weights import Published, keras_weights, torchvision_weights

# depth: n (dense layers) of blocks 1-4; every ImageNet net: stem 64, k = 32, bottleneck 4k,
# compression 0.5, reductions 4, 8, 16, 32. (The paper's "264" has 265 weight layers.)
IMAGENET_BLOCKS = {
    121: (6, 12, 24, 16),
    169: (6, 12, 32, 32),
    201: (6, 12, 48, 32),
    264: (6, 12, 64, 48),
}


@dataclass(frozen=True)
class Flavour:
    """What differs between Keras's DenseNet, article 000's DenseNetSimple and the paper's BC."""

    eps: float  # BatchNorm epsilon
    bias: bool  # conv bias
    transition_norm: bool  # BN-ReLU before the transition's 1x1 conv
    final_norm: bool  # BN-ReLU after the last block


KERAS = Flavour(eps=1.001e-5, bias=False, transition_norm=True, final_norm=True)
ARTICLE = Flavour(eps=1e-3, bias=True, transition_norm=False, final_norm=False)
PAPER_BC = Flavour(eps=1e-5, bias=False, transition_norm=True, final_norm=True)


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1(bottleneck)-BN-ReLU-Conv3x3(growth, same), concatenated onto the input."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck: int, flavour: Flavour) -> None:
        super().__init__()
        self.bn1 = batch_norm(in_channels, eps=flavour.eps)
        self.act1 = nn.ReLU(inplace=True)
        self.conv1 = Conv2D(in_channels, bottleneck, 1, use_bias=flavour.bias)
        self.bn2 = batch_norm(bottleneck, eps=flavour.eps)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = Conv2D(bottleneck, growth_rate, 3, padding="same", use_bias=flavour.bias)
        self.out_channels = in_channels + growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv2(self.act2(self.bn2(self.conv1(self.act1(self.bn1(x))))))
        return torch.cat([x, new], dim=1)  # Keras Concatenate()([x, x1]): old channels first


class Transition(nn.Sequential):
    """[BN-ReLU]-Conv1x1(int(n * compression))-AvgPool 2x2."""

    def __init__(self, in_channels: int, out_channels: int, flavour: Flavour) -> None:
        super().__init__()
        if flavour.transition_norm:
            self.add_module("bn", batch_norm(in_channels, eps=flavour.eps))
            self.add_module("act", nn.ReLU(inplace=True))
        self.add_module("conv", Conv2D(in_channels, out_channels, 1, use_bias=flavour.bias))
        self.add_module("pool", AveragePooling2D(2, strides=2))


class DenseNet(CnnModel):
    """``stem`` -> dense blocks (``stages``, transitions at their start) -> [``final``] -> head."""

    def __init__(
        self,
        stem: nn.Module,
        stem_channels: int,
        stem_reduction: int,
        blocks: Sequence[int],
        growth_rate: int,
        bottleneck: int,
        compression: float,
        flavour: Flavour,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.growth_rate, self.compression, self.blocks = growth_rate, compression, tuple(blocks)
        self.stem = stem
        channels, reduction = stem_channels, stem_reduction
        stages: list[nn.Sequential] = []
        self.feature_info = []
        for s, layers in enumerate(blocks):
            stage = nn.Sequential()
            if s:
                out = int(channels * compression)
                stage.add_module("transition", Transition(channels, out, flavour))
                channels, reduction = out, reduction * 2
            for j in range(layers):
                layer = DenseLayer(channels, growth_rate, bottleneck, flavour)
                stage.add_module(f"layer{j}", layer)
                channels = layer.out_channels
            stages.append(stage)
            self.feature_info.append(FeatureInfo(f"stages.{s}", channels, reduction))
        self.stages = nn.Sequential(*stages)
        if flavour.final_norm:
            self.final = nn.Sequential()
            self.final.add_module("bn", batch_norm(channels, eps=flavour.eps))
            self.final.add_module("act", nn.ReLU(inplace=True))
        self.head = ClassifierHead(channels, num_classes)


# --- validation --------------------------------------------------------------------------


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_compression(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError(f"compression must be a number in (0, 1] (the paper's theta; 0.5 for -BC), got {value!r}")
    return float(value)


def _check_blocks(value: object) -> tuple[int, ...]:
    if (
        not isinstance(value, (tuple, list))
        or not value
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in value)
    ):
        raise ValueError(
            f"blocks must be a non-empty sequence of positive ints (layers per dense block), got {value!r}"
        )
    return tuple(value)


def _check_transitions(channels: int, blocks: Sequence[int], growth_rate: int, compression: float) -> None:
    """Every transition must keep at least one channel."""
    for s, layers in enumerate(blocks):
        if s:
            channels = int(channels * compression)
            if channels < 1:
                raise ValueError(f"compression={compression!r} leaves transition {s} with no channels")
        channels += layers * growth_rate


# --- builders --------------------------------------------------------------------------


def _imagenet_stem(in_channels: int, stem: str, width: int, eps: float) -> tuple[nn.Sequential, int]:
    """Keras: ZeroPadding2D(3), Conv 7x7/2 'valid', BN, ReLU, ZeroPadding2D(1), MaxPool 3/2 'valid'.
    ``stem="cifar"``: Conv 3x3/1 'same', BN, ReLU (no pooling)."""
    layers = nn.Sequential()
    if check_stem(stem) == "imagenet":
        layers.add_module("pad", nn.ZeroPad2d(3))
        layers.add_module("conv", Conv2D(in_channels, width, 7, strides=2, use_bias=False))
    else:
        layers.add_module("conv", Conv2D(in_channels, width, 3, padding="same", use_bias=False))
    layers.add_module("bn", batch_norm(width, eps=eps))
    layers.add_module("act", nn.ReLU(inplace=True))
    if stem == "imagenet":
        layers.add_module("pool_pad", nn.ZeroPad2d(1))
        layers.add_module("pool", MaxPooling2D(3, strides=2))
    return layers, (4 if stem == "imagenet" else 1)


def _densenet_imagenet(
    depth: int,
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
    growth_rate: int = 32,
    compression: float = 0.5,
    bn_eps: float | None = None,
) -> DenseNet:
    """Every ImageNet depth's builder: its keywords are what each ``densenet<depth>`` factory accepts."""
    growth_rate = _check_positive_int("growth_rate", growth_rate)
    compression = _check_compression(compression)
    flavour = replace(KERAS, eps=check_bn_eps(bn_eps, KERAS.eps))
    blocks, width = IMAGENET_BLOCKS[depth], 64
    _check_transitions(width, blocks, growth_rate, compression)
    stem_module, reduction = _imagenet_stem(in_channels, stem, width, flavour.eps)
    return DenseNet(
        stem_module, width, reduction, blocks, growth_rate, 4 * growth_rate, compression, flavour, num_classes
    )


# Published ImageNet weights: keras.applications' DenseNet121/169/201 (with the MD5 Keras
# publishes) and torchvision's, the same networks with BatchNorm eps 1e-5.
def _weights(depth: int, keras_md5: str, torchvision_file: str) -> tuple[Published, ...]:
    return (
        keras_weights(f"densenet/densenet{depth}_weights_tf_dim_ordering_tf_kernels.h5", keras_md5),
        torchvision_weights(torchvision_file, bn_eps=1e-5),
    )


DENSENET121_WEIGHTS = _weights(121, "9d60b8095a5708f2dcce2bca79d332c7", "densenet121-a639ec97.pth")
DENSENET169_WEIGHTS = _weights(169, "d699b8f76981ab1b30698df4c175e90b", "densenet169-b2777c0a.pth")
DENSENET201_WEIGHTS = _weights(201, "1ceb130c1ea1b78c3bf6114dbdfd8807", "densenet201-c1103571.pth")


@register_model(builder=_densenet_imagenet, weights=DENSENET121_WEIGHTS)
def densenet121(**kwargs) -> DenseNet:
    """keras.applications' DenseNet121 (Huang et al. 2017; blocks 6-12-24-16, k=32): 8,062,504 params."""
    return _densenet_imagenet(121, **kwargs)


@register_model(builder=_densenet_imagenet, weights=DENSENET169_WEIGHTS)
def densenet169(**kwargs) -> DenseNet:
    """keras.applications' DenseNet169 (Huang et al. 2017; blocks 6-12-32-32, k=32): 14,307,880 params."""
    return _densenet_imagenet(169, **kwargs)


@register_model(builder=_densenet_imagenet, weights=DENSENET201_WEIGHTS)
def densenet201(**kwargs) -> DenseNet:
    """keras.applications' DenseNet201 (Huang et al. 2017; blocks 6-12-48-32, k=32): 20,242,984 params."""
    return _densenet_imagenet(201, **kwargs)


@register_model(builder=_densenet_imagenet)
def densenet264(**kwargs) -> DenseNet:
    """DenseNet-264 of the paper (Huang et al. 2017; blocks 6-12-64-48, k=32), built the keras.applications way."""
    return _densenet_imagenet(264, **kwargs)


@register_model(input_size=(3, 32, 32))
def densenet_cifar(
    num_classes: int = 10,
    in_channels: int = 3,
    growth_rate: int = 16,
    blocks: Sequence[int] = (1, 2, 4, 3),
    compression: float = 0.5,
    bottleneck_width: int = 128,
) -> DenseNet:
    """Article 000's DenseNetSimple for CIFAR-10 (Keras; k=16 blocks (1,2,4,3): 255,046 params, depth 25).

    1x1 conv stem to 16 channels (bias), no pooling; dense layers BN-ReLU-Conv1x1(bottleneck_width)-
    BN-ReLU-Conv3x3(growth_rate, same), convs with bias; transitions Conv1x1(int(n * compression))
    + AvgPool 2x2 without BN/ReLU; no final BN; GAP; dense classifier. Depth = 2 * sum(blocks) +
    len(blocks) + 1 weight layers.
    """
    growth_rate = _check_positive_int("growth_rate", growth_rate)
    bottleneck_width = _check_positive_int("bottleneck_width", bottleneck_width)
    blocks = _check_blocks(blocks)
    compression = _check_compression(compression)
    width = 16  # the article: "16 filters so that nothing is left over"
    _check_transitions(width, blocks, growth_rate, compression)
    stem = nn.Sequential()
    stem.add_module("conv", Conv2D(in_channels, width, 1, use_bias=True))
    return DenseNet(stem, width, 1, blocks, growth_rate, bottleneck_width, compression, ARTICLE, num_classes)


@register_model(input_size=(3, 32, 32))
def densenet_bc(
    num_classes: int = 10, in_channels: int = 3, depth: int = 100, growth_rate: int = 12, compression: float = 0.5
) -> DenseNet:
    """The DenseNet paper's CIFAR DenseNet-BC (Huang et al. 2017, Torch code; L=100 k=12: 0.8M params).

    3x3 conv stem of 2 * growth_rate channels, three dense blocks of (depth - 4) / 6 bottleneck
    layers BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k), transitions BN-ReLU-Conv1x1(int(n * compression))
    -AvgPool 2x2, final BN-ReLU, GAP, fc; convs without bias, BN eps 1e-5. ``compression=1`` is DenseNet-B.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(
            f"depth must be an int >= 10 with (depth - 4) % 6 == 0 for DenseNet-BC (40, 100, 250, ...), got {depth!r}"
        )
    growth_rate = _check_positive_int("growth_rate", growth_rate)
    compression = _check_compression(compression)
    width, blocks = 2 * growth_rate, ((depth - 4) // 6,) * 3
    _check_transitions(width, blocks, growth_rate, compression)
    stem = nn.Sequential()
    stem.add_module("conv", Conv2D(in_channels, width, 3, padding="same", use_bias=False))
    return DenseNet(stem, width, 1, blocks, growth_rate, 4 * growth_rate, compression, PAPER_BC, num_classes)
