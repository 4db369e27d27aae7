"""GoogLeNet / Inception v1 (Szegedy et al., CVPR 2015): nine inception modules, each four
parallel branches (1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5; 3x3 max-pool -> 1x1 projection)
concatenated on channels; global average pooling, dropout, one dense classifier.

Two flavours, one builder:

* ``googlenet()`` -- article 004's Keras code exactly: convs with bias and ReLU, no BatchNorm,
  no auxiliary heads, dropout 0.4, Conv 7x7/2 'same', MaxPool 3/2 'same', the second stem pool
  3/2 'valid' (56 -> 27), later pools 3/2 'same'. The article (like most Keras ports) leaves out
  the paper's LocalResponseNorm layers, so there is none here. 6,998,552 parameters.
* ``googlenet(batch_norm=True)`` -- torchvision's ``googlenet``: conv (no bias) -> BN (eps 1e-3)
  -> ReLU everywhere, a 3x3 kernel in the "5x5" branch (torchvision's known quirk), stem conv
  padded 3 on every side ('valid' after ZeroPad2d(3)), pools whose ``ceil_mode=True`` is Keras's
  'same' here (56 -> 28), a 2x2 last pool, dropout 0.2, no auxiliary heads (its eval mode).
  6,624,904 trainable parameters. (BN momentum follows cnnlab's Keras convention, 0.99.)

Layout: ``stem`` = [``pad``] ``conv1`` ``pool1``; ``stages.0`` = ``conv2`` (1x1) ``conv3`` (3x3);
``stages.1..3`` = ``pool{s+1}`` + ``inception3a..5b``; inside a module ``branch1``,
``branch2.{0,1}``, ``branch3.{0,1}``, ``branch4.{0: pool, 1}``, each conv a ConvNormAct
(``conv``, [``bn``], ``act``) -- torchvision's names behind the stage prefix. Depth: 3 stem convs
+ 2 per module on the longest branch x 9 + the classifier = 22 weight layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..layers import MaxPooling2D
from ..layers.blocks import ConvNormAct
from ..layers.blocks import batch_norm as norm_layer
from .base import ClassifierHead, CnnModel, FeatureInfo, check_stem
from .registry import register_model
from .weights import torchvision_weights

# Inception modules per stage, each: name, (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
# Stage s > 0 opens with a 3x3/2 max-pool (stage 3's is 2x2/2 in torchvision); stage 0 holds the
# 1x1 (64) and 3x3 (192) stem convs at 1/4 resolution.
INCEPTIONS = (
    (),
    (("3a", (64, 96, 128, 16, 32, 32)), ("3b", (128, 128, 192, 32, 96, 64))),
    (
        ("4a", (192, 96, 208, 16, 48, 64)),
        ("4b", (160, 112, 224, 24, 64, 64)),
        ("4c", (128, 128, 256, 24, 64, 64)),
        ("4d", (112, 144, 288, 32, 64, 64)),
        ("4e", (256, 160, 320, 32, 128, 128)),
    ),
    (("5a", (256, 160, 320, 32, 128, 128)), ("5b", (384, 192, 384, 48, 128, 128))),
)
STEM_WIDTH, CONV2_WIDTH, CONV3_WIDTH = 64, 64, 192


@dataclass(frozen=True)
class Flavour:
    """What differs between article 004's Keras GoogLeNet and torchvision's."""

    bn_eps: float | None  # BatchNorm after every conv (None: none, convs with bias)
    kernel5: int  # kernel of the "5x5" branch
    stem_pad: bool  # ZeroPad2d(3) + 'valid' 7x7/2 (torchvision) instead of 'same' (Keras)
    pool2_padding: str  # second stem pool: 'valid' 56 -> 27 (article), 'same' 56 -> 28 (torchvision)
    pool4_size: int  # last pool: 3x3/2 (article), 2x2/2 (torchvision)
    dropout: float  # before the classifier


ARTICLE = Flavour(bn_eps=None, kernel5=5, stem_pad=False, pool2_padding="valid", pool4_size=3, dropout=0.4)
TORCHVISION = Flavour(bn_eps=1e-3, kernel5=3, stem_pad=True, pool2_padding="same", pool4_size=2, dropout=0.2)


def _conv(flavour: Flavour, cin: int, cout: int, kernel: int, strides: int = 1, padding: str = "same") -> ConvNormAct:
    norm = None if flavour.bn_eps is None else partial(norm_layer, eps=flavour.bn_eps)
    return ConvNormAct(cin, cout, kernel, strides, padding, use_bias=norm is None, norm_layer=norm)


class Inception(nn.Module):
    """Four branches concatenated in order 1x1, 3x3, 5x5, pool (Keras ``concatenate([t1..t4])``)."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], flavour: Flavour) -> None:
        super().__init__()
        c1, c3r, c3, c5r, c5, proj = widths
        self.branch1 = _conv(flavour, in_channels, c1, 1)
        self.branch2 = nn.Sequential(_conv(flavour, in_channels, c3r, 1), _conv(flavour, c3r, c3, 3))
        self.branch3 = nn.Sequential(_conv(flavour, in_channels, c5r, 1), _conv(flavour, c5r, c5, flavour.kernel5))
        self.branch4 = nn.Sequential(MaxPooling2D(3, strides=1, padding="same"), _conv(flavour, in_channels, proj, 1))
        self.out_channels = c1 + c3 + c5 + proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class GoogLeNet(CnnModel):
    """``stem`` (7x7/2 conv, pool) -> 1x1 + 3x3 convs -> three inception stages -> GAP, dropout, fc."""

    def __init__(self, flavour: Flavour, num_classes: int, in_channels: int, stem: str, dropout: float) -> None:
        super().__init__()
        self.flavour = flavour
        imagenet = check_stem(stem) == "imagenet"
        self.stem = nn.Sequential()
        if imagenet:
            if flavour.stem_pad:
                self.stem.add_module("pad", nn.ZeroPad2d(3))
            padding = "valid" if flavour.stem_pad else "same"
            self.stem.add_module("conv1", _conv(flavour, in_channels, STEM_WIDTH, 7, strides=2, padding=padding))
            self.stem.add_module("pool1", MaxPooling2D(3, strides=2, padding="same"))
        else:  # cifar: 3x3/1 conv of the paper's stem width, no pooling
            self.stem.add_module("conv1", _conv(flavour, in_channels, STEM_WIDTH, 3))
        reduction = 4 if imagenet else 1
        stage0 = nn.Sequential()
        stage0.add_module("conv2", _conv(flavour, STEM_WIDTH, CONV2_WIDTH, 1))
        stage0.add_module("conv3", _conv(flavour, CONV2_WIDTH, CONV3_WIDTH, 3))
        stages, channels = [stage0], CONV3_WIDTH
        self.feature_info = [FeatureInfo("stages.0", channels, reduction)]
        pools = (
            None,
            MaxPooling2D(3, strides=2, padding=flavour.pool2_padding),
            MaxPooling2D(3, strides=2, padding="same"),
            MaxPooling2D(flavour.pool4_size, strides=2, padding="same"),
        )
        for s in range(1, len(INCEPTIONS)):
            stage = nn.Sequential()
            stage.add_module(f"pool{s + 1}", pools[s])
            reduction *= 2
            for name, widths in INCEPTIONS[s]:
                module = Inception(channels, widths, flavour)
                stage.add_module(f"inception{name}", module)
                channels = module.out_channels
            stages.append(stage)
            self.feature_info.append(FeatureInfo(f"stages.{s}", channels, reduction))
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(channels, num_classes, drop_rate=dropout)


# Published ImageNet weights: torchvision's (its flavour; they expect its transform_input=True).
GOOGLENET_WEIGHTS = (torchvision_weights("googlenet-1378be20.pth", batch_norm=True),)


@register_model(weights=GOOGLENET_WEIGHTS)
def googlenet(
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
    batch_norm: bool = False,
    dropout: float | None = None,
) -> GoogLeNet:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015) as article 004 builds it in Keras: 6,998,552 params.

    ``batch_norm=True``: torchvision's googlenet instead (conv-BN-ReLU, "5x5" branch 3x3, no aux
    heads; 6,624,904 trainable params). ``dropout`` before the classifier: None takes the
    flavour's (0.4 article, 0.2 torchvision).
    """
    if not isinstance(batch_norm, bool):
        raise ValueError(
            "batch_norm must be True (torchvision's conv-BN-ReLU GoogLeNet) or False (article 004's), "
            f"got {batch_norm!r}"
        )
    flavour = TORCHVISION if batch_norm else ARTICLE
    if dropout is None:
        dropout = flavour.dropout
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"dropout must be None (the flavour's: 0.4 article, 0.2 torchvision) or a number in [0, 1), got {dropout!r}"
        )
    return GoogLeNet(flavour, num_classes, in_channels, stem, float(dropout))
