"""VGG (Simonyan & Zisserman, ICLR 2015): stacks of 3x3 'same' convolutions with bias and ReLU,
a 2x2 max-pool closing each of five stages, then Flatten -> 4096 -> 4096 -> classes.

Two flavours, one builder:

* ``vgg11/13/16/19`` -- keras.applications' VGG16/VGG19 (and the paper's configurations A, B,
  D, E built the same way), so Keras weights load layer for layer; article 004's VGG16 is the
  same network (138,357,544 parameters).
* ``vgg11_bn/13_bn/16_bn/19_bn`` -- torchvision's ``vgg*_bn``: a BatchNorm (eps 1e-5) after every
  conv, convs keep their bias.

VGG has no separate stem: ``stem`` is the identity and ``stages.i`` holds ``conv1 .. convN``
(each a ConvNormAct: ``conv``, [``bn``], ``act``) and ``pool``, e.g. ``stages.2.conv3.conv.weight``
is Keras's ``block3_conv3``. ``stem="cifar"`` drops ``stages.0.pool`` so that 32x32 inputs end
at 2x2 (the head's adaptive pooling then feeds the 7x7x512 Flatten the same layout).
"""

from __future__ import annotations

from functools import partial

from torch import nn

from ..layers import MaxPooling2D
from ..layers.blocks import ConvNormAct, batch_norm
from .base import ClassifierHead, CnnModel, FeatureInfo, check_stem
from .registry import register_model
from .weights import Published, keras_weights, torchvision_weights

# Convs per stage (n) for each depth; stage widths c = 64, 128, 256, 512, 512; every conv 3x3/1
# 'same'; every stage ends with MaxPooling2D 2x2/2. Depth = sum(n) + 3 dense layers.
#   depth: n per stage          paper's configuration
CONFIGS = {
    11: (1, 1, 2, 2, 2),  # A
    13: (2, 2, 2, 2, 2),  # B
    16: (2, 2, 3, 3, 3),  # D
    19: (2, 2, 4, 4, 4),  # E
}
WIDTHS = (64, 128, 256, 512, 512)
HIDDEN = (4096, 4096)
BN_EPS = 1e-5  # torchvision's nn.BatchNorm2d default


class VGG(CnnModel):
    """Identity ``stem`` -> five stages of 3x3 convs + max-pool -> Flatten-MLP ``head``."""

    def __init__(
        self,
        depth: int,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem: str = "imagenet",
        batch_norm_eps: float | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.depth = depth
        norm = None if batch_norm_eps is None else partial(batch_norm, eps=batch_norm_eps)
        cifar = check_stem(stem) == "cifar"
        self.stem = nn.Identity()
        stages, channels, reduction, self.feature_info = [], in_channels, 1, []
        for s, (n, width) in enumerate(zip(CONFIGS[depth], WIDTHS)):
            stage = nn.Sequential()
            for j in range(1, n + 1):
                conv = ConvNormAct(channels, width, 3, padding="same", use_bias=True, norm_layer=norm)
                stage.add_module(f"conv{j}", conv)
                channels = width
            if not (cifar and s == 0):
                stage.add_module("pool", MaxPooling2D(2, strides=2))
                reduction *= 2
            stages.append(stage)
            self.feature_info.append(FeatureInfo(f"stages.{s}", channels, reduction))
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(channels, num_classes, pool="flatten", hidden=HIDDEN, hidden_drop_rate=dropout)


def _check_dropout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(
            "dropout must be a number in [0, 1) (after each 4096-wide layer; Keras 0.0, torchvision 0.5), "
            f"got {value!r}"
        )
    return float(value)


def _vgg(
    depth: int, bn: bool, *, num_classes: int = 1000, in_channels: int = 3, stem: str = "imagenet", dropout: float = 0.0
) -> VGG:
    """Every VGG's builder (``bn``: torchvision's BatchNorm flavour): its keywords are what each factory accepts."""
    return VGG(depth, num_classes, in_channels, stem, BN_EPS if bn else None, _check_dropout(dropout))


# Published ImageNet weights: torchvision's eight (trained with dropout 0.5) and keras.applications'
# VGG16 and VGG19, with the MD5 Keras publishes.
def _weights(torchvision_file: str, keras_md5: str | None = None) -> tuple[Published, ...]:
    files = [torchvision_weights(torchvision_file, dropout=0.5)]
    if keras_md5 is not None:
        name = torchvision_file.split("-")[0]
        files.append(keras_weights(f"{name}/{name}_weights_tf_dim_ordering_tf_kernels.h5", keras_md5))
    return tuple(files)


VGG11_WEIGHTS = _weights("vgg11-8a719046.pth")
VGG13_WEIGHTS = _weights("vgg13-19584684.pth")
VGG16_WEIGHTS = _weights("vgg16-397923af.pth", "64373286793e3c8b2b4e3219cbf3544b")
VGG19_WEIGHTS = _weights("vgg19-dcbb9e9d.pth", "cbe5617147190e668d6c5d5026f83318")
VGG11_BN_WEIGHTS = _weights("vgg11_bn-6002323d.pth")
VGG13_BN_WEIGHTS = _weights("vgg13_bn-abd245e5.pth")
VGG16_BN_WEIGHTS = _weights("vgg16_bn-6c64b313.pth")
VGG19_BN_WEIGHTS = _weights("vgg19_bn-c79401a0.pth")


@register_model(builder=_vgg, weights=VGG11_WEIGHTS)
def vgg11(**kwargs) -> VGG:
    """VGG-11 (Simonyan & Zisserman 2015, configuration A), built the keras.applications way: 132,863,336 params."""
    return _vgg(11, False, **kwargs)


@register_model(builder=_vgg, weights=VGG13_WEIGHTS)
def vgg13(**kwargs) -> VGG:
    """VGG-13 (Simonyan & Zisserman 2015, configuration B), built the keras.applications way: 133,047,848 params."""
    return _vgg(13, False, **kwargs)


@register_model(builder=_vgg, weights=VGG16_WEIGHTS)
def vgg16(**kwargs) -> VGG:
    """keras.applications' VGG16 (Simonyan & Zisserman 2015; article 004's VGG16): 138,357,544 params."""
    return _vgg(16, False, **kwargs)


@register_model(builder=_vgg, weights=VGG19_WEIGHTS)
def vgg19(**kwargs) -> VGG:
    """keras.applications' VGG19 (Simonyan & Zisserman 2015, configuration E): 143,667,240 params."""
    return _vgg(19, False, **kwargs)


@register_model(builder=_vgg, weights=VGG11_BN_WEIGHTS)
def vgg11_bn(**kwargs) -> VGG:
    """torchvision's vgg11_bn (VGG-11 with BatchNorm eps 1e-5 after every conv): 132,868,840 trainable params."""
    return _vgg(11, True, **kwargs)


@register_model(builder=_vgg, weights=VGG13_BN_WEIGHTS)
def vgg13_bn(**kwargs) -> VGG:
    """torchvision's vgg13_bn (VGG-13 with BatchNorm eps 1e-5 after every conv): 133,053,736 trainable params."""
    return _vgg(13, True, **kwargs)


@register_model(builder=_vgg, weights=VGG16_BN_WEIGHTS)
def vgg16_bn(**kwargs) -> VGG:
    """torchvision's vgg16_bn (VGG-16 with BatchNorm eps 1e-5 after every conv): 138,365,992 trainable params."""
    return _vgg(16, True, **kwargs)


@register_model(builder=_vgg, weights=VGG19_BN_WEIGHTS)
def vgg19_bn(**kwargs) -> VGG:
    """torchvision's vgg19_bn (VGG-19 with BatchNorm eps 1e-5 after every conv): 143,678,248 trainable params."""
    return _vgg(19, True, **kwargs)
