"""ResNet (He et al., CVPR 2016): stacks of residual blocks, ``relu(F(x) + shortcut(x))``.

One builder, two blocks, five depths:

* ``resnet18`` / ``resnet34``: basic blocks (3x3 - 3x3), the paper's Table 1 (torchvision's
  counts with ``conv_bias=False``; keras.applications has no basic-block ResNet).
* ``resnet50`` / ``resnet101`` / ``resnet152``: bottleneck blocks (1x1 - 3x3 - 1x1, 4x wider
  output). ``resnet50()`` is article 004's ResNet-50 (convs with bias, stride on the 3x3 conv:
  25,636,712 params); ``resnet50(stride_on="1x1")`` is keras.applications' ResNet50 layer for
  layer; ``conv_bias=False`` gives torchvision's counts (``stride_on="3x3"`` is its v1.5).

Keras structure throughout: BatchNorm eps 1.001e-5 (keras.applications' ResNet); 3x3 convs
'same' (with Keras's asymmetric padding at stride 2, so the 3x3/2 conv sees the input one pixel
off torchvision's); shortcut = 1x1/s conv + BN in the first block of each stage (where the
shape changes), the identity elsewhere; the ImageNet stem is keras.applications'
ZeroPadding2D(3) + 7x7/2 'valid' conv + BN + ReLU + ZeroPadding2D(1) + 3x3/2 'valid' max-pool
(the article writes the same 112 -> 56 maps as 'same' conv and pool). ``stem="cifar"``: one
3x3/1 conv 64 + BN + ReLU, no max-pool.

Layout: ``stem`` (``pad``, ``conv``, ``bn``, ``act``, ``pool_pad``, ``pool``); ``stages.0..3``
= conv2_x..conv5_x; ``stages.i.block{j}`` holds ``conv1 bn1 act1 conv2 bn2 act2 [conv3 bn3
act3]`` in Keras's order (conv-bn-relu, conv-bn-relu, conv-bn, add, relu: the last ``act``
follows the add) and ``downsample`` (``conv``, ``bn``) or nothing. Keras names map one to one:
``conv{i+2}_block{j+1}_{1,2,3}_{conv,bn}`` -> ``stages.i.block{j}.{conv,bn}{1,2,3}`` and
``_0_{conv,bn}`` -> ``.downsample.{conv,bn}`` (keras.applications creates ``_0`` first;
:mod:`.resnet_keras` holds Keras's layer order and names for loading its weights).

Padding: ``padding="keras"`` (default) is TensorFlow's 'same' -- for the stride-2 3x3 conv the
extra row and column of zeros go at the bottom/right only, so its windows start at pixel 0;
``padding="symmetric"`` is PyTorch's ``padding=1`` on every side (windows start at pixel -1),
as torchvision builds it (a ``pad`` module before that conv, which is then 'valid'). The two
give different numbers from the same weights. ``bn_eps``: BatchNorm epsilon, None for Keras's
1.001e-5 (torchvision: 1e-5). torchvision's ResNets are ``conv_bias=False, padding="symmetric",
bn_eps=1e-5`` (``cnnlab.interop.torchvision_kwargs``).

Initialisation: article 004 (and the paper) initialise the weights as He et al. propose for
ReLU nets, a normal distribution with mean 0 and std sqrt(2 / n), n = inputs of a unit
(kh * kw * C_in). ``kernel_init="he_normal"`` (default) draws every conv kernel from exactly
that; ``"glorot_uniform"`` keeps Keras's default (what the article's code and
keras.applications actually run, as neither passes a kernel_initializer). Biases, BatchNorm and
the classifier keep the Keras defaults.

Depth (weight layers on the longest path): stem conv + 2 or 3 per block + fc = 18/34/50/101/152.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..layers import Conv2D, MaxPooling2D
from ..layers.blocks import batch_norm
from .base import ClassifierHead, CnnModel, FeatureInfo, check_bn_eps, check_stem
from .registry import register_model
from .weights import Published, keras_weights, torchvision_weights

EPS = 1.001e-5  # keras.applications' ResNet BatchNormalization epsilon
STEM_WIDTH = 64

# Architecture (paper Table 1), one row per stage.
# c: block width (a bottleneck outputs 4c), s: stride of the stage's first block;
# n: blocks per stage, per depth (the columns of DEPTHS).
#         c,   s
STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # conv2_x .. conv5_x
#       depth: (block,        n of conv2_x, conv3_x, conv4_x, conv5_x)
DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
STRIDE_ON = ("3x3", "1x1")
PADDINGS = ("keras", "symmetric")
KERNEL_INITS = ("he_normal", "glorot_uniform")


def _check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    if isinstance(value, bool) != isinstance(allowed[0], bool) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _conv(
    in_channels: int, out_channels: int, kernel_size: int, strides: int, use_bias: bool, padding: str = "same"
) -> Conv2D:
    return Conv2D(in_channels, out_channels, kernel_size, strides=strides, padding=padding, use_bias=use_bias)


def _downsample(
    in_channels: int, out_channels: int, strides: int, use_bias: bool, eps: float = EPS
) -> nn.Sequential | None:
    """1x1/s conv + BN where the shape changes (Keras's ``_0_conv``/``_0_bn``), else None (identity)."""
    if strides == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        OrderedDict(conv=_conv(in_channels, out_channels, 1, strides, use_bias), bn=batch_norm(out_channels, eps=eps))
    )


def _add_unit(
    block: nn.Module,
    index: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    strides: int,
    conv_bias: bool,
    padding: str,
    eps: float,
) -> None:
    """``conv{index}``, ``bn{index}``, ``act{index}`` (torchvision's names); a strided 3x3 conv with
    ``padding="symmetric"`` gets torchvision's symmetric zero padding as ``pad`` before it."""
    symmetric = padding == "symmetric" and kernel_size == 3 and strides > 1
    if symmetric:
        block.pad = nn.ZeroPad2d(1)
    setattr(
        block,
        f"conv{index}",
        _conv(in_channels, out_channels, kernel_size, strides, conv_bias, "valid" if symmetric else "same"),
    )
    setattr(block, f"bn{index}", batch_norm(out_channels, eps=eps))
    setattr(block, f"act{index}", nn.ReLU(inplace=True))


def _pad(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The symmetric padding before a strided 3x3 conv, where the block has one."""
    pad = getattr(module, "pad", None)
    return x if pad is None else pad(x)


class BasicBlock(nn.Module):
    """conv3x3/s-bn-relu, conv3x3-bn, add shortcut, relu (``act2``)."""

    expansion = 1
    # set by _add_unit (named as Keras's and torchvision's weights name them)
    conv1: Conv2D
    bn1: nn.BatchNorm2d
    act1: nn.ReLU
    conv2: Conv2D
    bn2: nn.BatchNorm2d
    act2: nn.ReLU

    def __init__(
        self,
        in_channels: int,
        width: int,
        strides: int,
        conv_bias: bool,
        stride_on: str = "3x3",
        padding: str = "keras",
        eps: float = EPS,
    ) -> None:
        super().__init__()
        _add_unit(self, 1, in_channels, width, 3, strides, conv_bias, padding, eps)
        _add_unit(self, 2, width, width, 3, 1, conv_bias, padding, eps)
        self.downsample = _downsample(in_channels, width, strides, conv_bias, eps)
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(_pad(self, x))))))
        return self.act2(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """conv1x1-bn-relu, conv3x3-bn-relu, conv1x1 (4x)-bn, add shortcut, relu (``act3``).

    The block's stride sits on ``conv2`` (3x3; article, torchvision v1.5) or on ``conv1``
    (1x1; keras.applications, the original paper's implementation) per ``stride_on``.
    """

    expansion = 4
    # set by _add_unit (named as Keras's and torchvision's weights name them)
    conv1: Conv2D
    bn1: nn.BatchNorm2d
    act1: nn.ReLU
    conv2: Conv2D
    bn2: nn.BatchNorm2d
    act2: nn.ReLU
    conv3: Conv2D
    bn3: nn.BatchNorm2d
    act3: nn.ReLU

    def __init__(
        self,
        in_channels: int,
        width: int,
        strides: int,
        conv_bias: bool,
        stride_on: str = "3x3",
        padding: str = "keras",
        eps: float = EPS,
    ) -> None:
        super().__init__()
        out_channels = width * self.expansion
        s1, s2 = (strides, 1) if stride_on == "1x1" else (1, strides)
        _add_unit(self, 1, in_channels, width, 1, s1, conv_bias, padding, eps)
        _add_unit(self, 2, width, width, 3, s2, conv_bias, padding, eps)
        _add_unit(self, 3, width, out_channels, 1, 1, conv_bias, padding, eps)
        self.downsample = _downsample(in_channels, out_channels, strides, conv_bias, eps)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(self.act2(self.bn2(self.conv2(_pad(self, y))))))
        return self.act3(y + (x if self.downsample is None else self.downsample(x)))


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def _stem(in_channels: int, stem: str, use_bias: bool, eps: float = EPS) -> tuple[nn.Sequential, int]:
    """The stem and its reduction."""
    if stem == "cifar":
        layers: OrderedDict[str, nn.Module] = OrderedDict(conv=_conv(in_channels, STEM_WIDTH, 3, 1, use_bias))
        layers.update(bn=batch_norm(STEM_WIDTH, eps=eps), act=nn.ReLU(inplace=True))
        return nn.Sequential(layers), 1
    layers = OrderedDict(
        pad=nn.ZeroPad2d(3),  # conv1_pad
        conv=Conv2D(in_channels, STEM_WIDTH, 7, strides=2, padding="valid", use_bias=use_bias),  # conv1_conv
        bn=batch_norm(STEM_WIDTH, eps=eps),  # conv1_bn
        act=nn.ReLU(inplace=True),  # conv1_relu
        pool_pad=nn.ZeroPad2d(1),  # pool1_pad (zeros are harmless after a ReLU)
        pool=MaxPooling2D(3, strides=2, padding="valid"),  # pool1_pool
    )
    return nn.Sequential(layers), 4


class ResNet(CnnModel):
    """``stem`` -> four stages of residual blocks (``stages``) -> head (GAP, fc)."""

    def __init__(
        self,
        depth: int,
        num_classes: int,
        in_channels: int,
        stem: str,
        conv_bias: bool,
        stride_on: str,
        kernel_init: str,
        padding: str = "keras",
        bn_eps: float | None = None,
    ) -> None:
        super().__init__()
        _check_choice("conv_bias", conv_bias, (True, False))
        _check_choice("stride_on", stride_on, STRIDE_ON)
        _check_choice("kernel_init", kernel_init, KERNEL_INITS)
        _check_choice("padding", padding, PADDINGS)
        eps = check_bn_eps(bn_eps, EPS)
        block_name, counts = DEPTHS[depth]
        block = BLOCKS[block_name]
        self.stem, reduction = _stem(in_channels, check_stem(stem), conv_bias, eps)
        channels = STEM_WIDTH
        stages = []
        self.feature_info = []
        for i, ((width, strides), n) in enumerate(zip(STAGES, counts)):
            stage = nn.Sequential()
            for j in range(n):
                unit = block(channels, width, strides if j == 0 else 1, conv_bias, stride_on, padding, eps)
                stage.add_module(f"block{j}", unit)
                channels = unit.out_channels
            reduction *= strides
            stages.append(stage)
            self.feature_info.append(FeatureInfo(f"stages.{i}", channels, reduction))
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(channels, num_classes)
        if kernel_init == "he_normal":
            for module in self.modules():
                if isinstance(module, Conv2D):
                    fan_in = math.prod(module.weight.shape[1:])  # kh * kw * C_in
                    nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_in))


def _resnet(
    depth: int,
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
    conv_bias: bool = True,
    stride_on: str = "3x3",
    kernel_init: str = "he_normal",
    padding: str = "keras",
    bn_eps: float | None = None,
) -> ResNet:
    """Every depth's builder: its keywords are what each ``resnet*`` factory accepts."""
    return ResNet(depth, num_classes, in_channels, stem, conv_bias, stride_on, kernel_init, padding, bn_eps)


# Published ImageNet weights: torchvision's five depths, in its flavour, and keras.applications'
# ResNet50/101/152 (stride on the 1x1 conv), with the MD5 Keras publishes.
TORCHVISION_FLAVOUR: dict[str, Any] = {"conv_bias": False, "padding": "symmetric", "bn_eps": 1e-5}


def _weights(depth: int, torchvision_file: str, keras_md5: str | None = None) -> tuple[Published, ...]:
    files = [torchvision_weights(torchvision_file, **TORCHVISION_FLAVOUR)]
    if keras_md5 is not None:
        path = f"resnet/resnet{depth}_weights_tf_dim_ordering_tf_kernels.h5"
        files.append(keras_weights(path, keras_md5, stride_on="1x1"))
    return tuple(files)


RESNET18_WEIGHTS = _weights(18, "resnet18-f37072fd.pth")
RESNET34_WEIGHTS = _weights(34, "resnet34-b627a593.pth")
RESNET50_WEIGHTS = _weights(50, "resnet50-0676ba61.pth", "2cb95161c43110f7111970584f804107")
RESNET101_WEIGHTS = _weights(101, "resnet101-63fe2227.pth", "f1aeb4b969a6efcfb50fad2f0c20cfc5")
RESNET152_WEIGHTS = _weights(152, "resnet152-394f9c45.pth", "100835be76be38e30d865e96f2aaae62")


@register_model(builder=_resnet, weights=RESNET18_WEIGHTS)
def resnet18(**kwargs) -> ResNet:
    """ResNet-18 (He et al., CVPR 2016), basic blocks 2-2-2-2; conv_bias=False: torchvision's
    (11,689,512 PyTorch params).

    ``conv_bias``: convs with bias (article 004, keras.applications) or without (torchvision).
    ``stride_on`` is accepted for a uniform signature; basic blocks put the stride on their first 3x3.
    ``kernel_init``: "he_normal" (article, paper) or Keras's "glorot_uniform".
    ``padding``: "keras" ('same', extra zeros bottom/right at stride 2) or "symmetric" (torchvision's);
    ``bn_eps``: None (Keras's 1.001e-5) or e.g. torchvision's 1e-5.
    """
    return _resnet(18, **kwargs)


@register_model(builder=_resnet, weights=RESNET34_WEIGHTS)
def resnet34(**kwargs) -> ResNet:
    """ResNet-34 (He et al., CVPR 2016), basic blocks 3-4-6-3; conv_bias=False: torchvision's
    (21,797,672 PyTorch params).

    Keywords as :func:`resnet18`.
    """
    return _resnet(34, **kwargs)


@register_model(builder=_resnet, weights=RESNET50_WEIGHTS)
def resnet50(**kwargs) -> ResNet:
    """ResNet-50 (He et al., CVPR 2016), bottlenecks 3-4-6-3, as article 004 builds it;
    stride_on="1x1": keras.applications.ResNet50.

    Defaults are article 004's ResNet-50 (convs with bias, stride on the 3x3 conv, He init).
    ``stride_on="1x1"``: keras.applications' ResNet50 layer for layer (stride on the first 1x1).
    ``conv_bias=False``: torchvision's resnet50 (25,557,032 PyTorch params; v1.5 = ``stride_on="3x3"``).
    ``kernel_init``: "he_normal" (article, paper) or Keras's "glorot_uniform".
    """
    return _resnet(50, **kwargs)


@register_model(builder=_resnet, weights=RESNET101_WEIGHTS)
def resnet101(**kwargs) -> ResNet:
    """ResNet-101 (He et al., CVPR 2016), bottlenecks 3-4-23-3; stride_on="1x1": keras.applications.ResNet101.

    Keywords as :func:`resnet50`; ``conv_bias=False`` is torchvision's (44,549,160 PyTorch params).
    """
    return _resnet(101, **kwargs)


@register_model(builder=_resnet, weights=RESNET152_WEIGHTS)
def resnet152(**kwargs) -> ResNet:
    """ResNet-152 (He et al., CVPR 2016), bottlenecks 3-8-36-3; stride_on="1x1": keras.applications.ResNet152.

    Keywords as :func:`resnet50`; ``conv_bias=False`` is torchvision's (60,192,808 PyTorch params).
    """
    return _resnet(152, **kwargs)
