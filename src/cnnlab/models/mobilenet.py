"""MobileNet v1 (Howard et al., 2017), v2 (Sandler et al., CVPR 2018) and v3 (Howard et al.,
ICCV 2019), replicating keras.applications' MobileNet, MobileNetV2 and MobileNetV3Small/Large
layer for layer: convs without bias, BatchNorm eps 1e-3 (momentum 0.99 in v1, 0.999 in v2/v3),
stem conv 3x3/2 'same', stride-2 depthwise convs as ZeroPadding2D + 'valid', the rest 'same';
Keras's layer order, so Keras weights load in module order.

Layout: ``stem`` (``conv``, ``bn``, ``act``); ``stages.i`` holds ``block0..`` and a new stage
starts at each stride-2 block, so ``feature_info`` reductions are 2/4/8/16/32 (v3-small's first
block already has stride 2: 4/8/16/32). v1 block: ``[pad] dw pw`` (each a ConvNormAct);
v2/v3 block: ``[expand] [pad] dw [se] project`` (+ the input when stride 1 and widths agree).
``final`` (v2/v3): 1x1 conv-BN-act to 1280 (v2) or 6x the last width (v3: 576 / 960); the
last ``feature_info`` entry points at it. ``head``: GAP, dropout, fc (v1's 1x1 ``conv_preds``
on a 1x1 map is a Linear); v3 adds the 1x1 conv with bias to 1024/1280 + h-swish as
``head.pre_logits.fc1`` before dropout 0.2.

Stride-2 padding: v1 pads ((0, 1), (0, 1)) always; v2/v3 pad with Keras's ``correct_pad``,
which depends on the parity of the map (:class:`CorrectPad` decides at run time, so any
input size matches the Keras model built for that size).
``padding="symmetric"`` (v2/v3): torchvision's padding instead, ``k // 2`` zeros on every side
before each stride-2 conv (stem included), so windows start one pixel earlier than Keras's;
with ``bn_eps`` (torchvision v2: 1e-5; v3 keeps 1e-3) that is torchvision's mobilenet_v2 /
mobilenet_v3_small / _large layer for layer (``cnnlab.interop.torchvision_kwargs``).
``stem="cifar"``: the stem conv becomes 3x3/1 'same' (same width), everything else is kept, so
a 32x32 input ends at 2x2 (v1, v2, v3-large) -- the networks keep all their stride-2 blocks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import Conv2D
from ..layers.blocks import ConvNormAct, batch_norm
from .base import ClassifierHead, CnnModel, FeatureInfo, check_bn_eps, check_stem
from .registry import register_model
from .weights import keras_weights, torchvision_weights

# The architecture tables keep several rows per line (not reformatted).
# fmt: off
# v1 [keras mobilenet._depthwise_conv_block]: c pointwise filters (x alpha), n blocks, s depthwise stride
#         c, n, s
V1_ARCH = ((64, 1, 1), (128, 1, 2), (128, 1, 1), (256, 1, 2), (256, 1, 1),
           (512, 1, 2), (512, 5, 1), (1024, 1, 2), (1024, 1, 1))

# v2 [keras mobilenet_v2._inverted_res_block]: t expansion, c output (x alpha, divisible by 8),
# n blocks, s stride of the first; all 3x3 depthwise, ReLU6.
#         t, c, n, s
V2_ARCH = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

# v3 [keras mobilenet_v3 stack_fn], one row per block: k depthwise kernel, t expansion of the
# input width, c output width (x alpha), se squeeze-excite (ratio 0.25), nl ReLU / h-swish,
# s stride. minimalistic=True: every k 3, no SE, every nl ReLU.
#            k, t,       c,   se,    nl,   s
V3_SMALL = ((3, 1, 16, True, "RE", 2), (3, 72 / 16, 24, False, "RE", 2), (3, 88 / 24, 24, False, "RE", 1),
            (5, 4, 40, True, "HS", 2), (5, 6, 40, True, "HS", 1), (5, 6, 40, True, "HS", 1),
            (5, 3, 48, True, "HS", 1), (5, 3, 48, True, "HS", 1),
            (5, 6, 96, True, "HS", 2), (5, 6, 96, True, "HS", 1), (5, 6, 96, True, "HS", 1))
V3_LARGE = ((3, 1, 16, False, "RE", 1), (3, 4, 24, False, "RE", 2), (3, 3, 24, False, "RE", 1),
            (5, 3, 40, True, "RE", 2), (5, 3, 40, True, "RE", 1), (5, 3, 40, True, "RE", 1),
            (3, 6, 80, False, "HS", 2), (3, 2.5, 80, False, "HS", 1), (3, 2.3, 80, False, "HS", 1),
            (3, 2.3, 80, False, "HS", 1), (3, 6, 112, True, "HS", 1), (3, 6, 112, True, "HS", 1),
            (5, 6, 160, True, "HS", 2), (5, 6, 160, True, "HS", 1), (5, 6, 160, True, "HS", 1))
# fmt: on
V3_HEAD = {"small": 1024, "large": 1280}  # width of the 1x1 conv (with bias) after pooling

EPS = 1e-3


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Keras's ``_make_divisible`` / ``_depth``: round to a multiple of 8, never below 90%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class CorrectPad(nn.ZeroPad2d):
    """Keras's ``ZeroPadding2D(imagenet_utils.correct_pad(x, k))`` before a stride-2 'valid'
    depthwise conv: ``(k//2 - 1, k//2)`` on an even side, ``(k//2, k//2)`` on an odd one.
    ``padding`` shows the even case (224-input maps); ``forward`` reads the parity."""

    def __init__(self, kernel_size: int) -> None:
        k = kernel_size // 2
        super().__init__((k - 1, k, k - 1, k))
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, (h, w) = self.kernel_size // 2, x.shape[-2:]
        return F.pad(x, (k - 1 + w % 2, k, k - 1 + h % 2, k))


class SqueezeExcite(nn.Module):
    """Keras's ``_se_block``: GAP, 1x1 conv (bias) + ReLU, 1x1 conv (bias) + hard sigmoid, multiply."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = Conv2D(channels, reduced, 1, padding="same")
        self.act = nn.ReLU()
        self.conv_expand = Conv2D(reduced, channels, 1, padding="same")
        self.gate = nn.Hardsigmoid()  # relu6(x + 3) / 6, Keras's hard_sigmoid here

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.conv_expand(self.act(self.conv_reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """``[expand] [pad] dw [se] project`` (+ input when stride 1 and widths agree), v2/v3."""

    def __init__(
        self,
        in_ch: int,
        mid: int,
        out: int,
        kernel: int,
        stride: int,
        se: bool,
        act_layer: Callable[[], nn.Module],
        expand: bool,
        norm: Callable[[int], nn.Module],
        padding: str = "keras",
    ) -> None:
        super().__init__()
        if expand:  # Keras skips it in the first block only
            self.expand = ConvNormAct(in_ch, mid, 1, norm_layer=norm, act_layer=act_layer)
        elif mid != in_ch:
            raise ValueError(f"a block without expansion keeps its {in_ch} input channels, got {mid}")
        if stride == 2:
            self.pad = CorrectPad(kernel) if padding == "keras" else nn.ZeroPad2d(kernel // 2)
        self.dw = ConvNormAct(
            mid,
            mid,
            kernel,
            stride,
            "valid" if stride == 2 else "same",
            "depthwise",
            norm_layer=norm,
            act_layer=act_layer,
        )
        if se:
            self.se = SqueezeExcite(mid, _make_divisible(mid * 0.25))
        self.project = ConvNormAct(mid, out, 1, norm_layer=norm, act_layer=None)
        self.use_residual = stride == 1 and in_ch == out
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for layer in self.children():
            y = layer(y)
        return x + y if self.use_residual else y


class MobileNet(CnnModel):
    """``stem`` -> ``stages`` -> [``final``] -> ``head``, assembled by the builders below."""

    def __init__(
        self,
        stem: nn.Module,
        blocks: Sequence[tuple[nn.Module, int, int]],
        head: ClassifierHead,
        final: nn.Module | None = None,
        final_channels: int = 0,
        reduction0: int = 1,
    ) -> None:
        """``blocks``: (block, stride, out channels); a stage starts at each stride-2 block."""
        super().__init__()
        self.stem = stem
        stages: list[nn.Sequential] = []
        self.feature_info = []
        reduction = reduction0
        for block, stride, channels in blocks:
            if not stages or stride == 2:
                stages.append(nn.Sequential())
            stages[-1].add_module(f"block{len(stages[-1])}", block)
            reduction *= stride
            self.feature_info[len(stages) - 1 :] = [FeatureInfo(f"stages.{len(stages) - 1}", channels, reduction)]
        self.stages = nn.Sequential(*stages)
        if final is not None:
            self.final = final  # widens the last stage at the same resolution
            self.feature_info[-1] = FeatureInfo("final", final_channels, reduction)
        self.head = head


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha (width multiplier) must be a number > 0, got {alpha!r}")
    return float(alpha)


def _stem(
    in_channels: int, width: int, stem: str, norm, act_layer, use_bias: bool = False, padding: str = "same"
) -> ConvNormAct:
    strides = 2 if check_stem(stem) == "imagenet" else 1
    return ConvNormAct(in_channels, width, 3, strides, padding, use_bias=use_bias, norm_layer=norm, act_layer=act_layer)


def _v1(num_classes, in_channels, stem, alpha, depth_multiplier, dropout, conv_bias) -> MobileNet:
    alpha = _check_alpha(alpha)
    if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, int) or depth_multiplier < 1:
        raise ValueError(f"depth_multiplier must be an integer >= 1, got {depth_multiplier!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}")
    if not isinstance(conv_bias, bool):
        raise ValueError(f"conv_bias must be True or False, got {conv_bias!r}")
    norm = partial(batch_norm, eps=EPS)  # Keras default momentum 0.99
    conv = partial(ConvNormAct, use_bias=conv_bias, norm_layer=norm, act_layer=nn.ReLU6)
    channels = int(32 * alpha)
    stem_block = _stem(in_channels, channels, stem, norm, nn.ReLU6, use_bias=conv_bias)
    blocks = []
    for c, n, s in V1_ARCH:
        for i in range(n):
            stride, out = (s if i == 0 else 1), int(c * alpha)
            layers: list[tuple[str, nn.Module]] = [("pad", nn.ZeroPad2d((0, 1, 0, 1)))] if stride == 2 else []
            mid = channels * depth_multiplier
            layers += [
                ("dw", conv(channels, mid, 3, stride, "valid" if stride == 2 else "same", "depthwise")),
                ("pw", conv(mid, out, 1)),
            ]
            blocks.append((nn.Sequential(OrderedDict(layers)), stride, out))
            channels = out
    head = ClassifierHead(channels, num_classes, drop_rate=float(dropout))
    return MobileNet(stem_block, blocks, head, reduction0=stem_block.conv.strides[0])


def _check_flavour(padding: object, bn_eps: object) -> float:
    if padding not in ("keras", "symmetric"):
        raise ValueError(
            f"padding must be 'keras' (TensorFlow's 'same') or 'symmetric' (torchvision's), got {padding!r}"
        )
    return check_bn_eps(bn_eps, EPS, "torchvision v2: 1e-5")


def _symmetric_stem(block: ConvNormAct) -> nn.Sequential:
    """torchvision's stem: ``padding=1`` on every side, then the 3x3/2 conv 'valid'."""
    return nn.Sequential(OrderedDict([("pad", nn.ZeroPad2d(block.conv.kernel_size[0] // 2)), *block.named_children()]))


def _inverted(
    num_classes,
    in_channels,
    stem,
    alpha,
    version: str,
    minimalistic: bool = False,
    padding: str = "keras",
    bn_eps: float | None = None,
) -> MobileNet:
    alpha = _check_alpha(alpha)
    if not isinstance(minimalistic, bool):
        raise ValueError(f"minimalistic must be True or False, got {minimalistic!r}")
    eps = _check_flavour(padding, bn_eps)
    norm = partial(batch_norm, eps=eps, momentum=0.999)
    acts: dict[str, type[nn.Module]] = {"RE": nn.ReLU, "HS": nn.ReLU if minimalistic else nn.Hardswish}
    act: type[nn.Module]
    rows: Sequence[tuple[int, float, int, bool, str, int]]
    if version == "v2":
        channels, act = _make_divisible(32 * alpha), nn.ReLU6
        rows = [(3, t, c, False, "R6", s if i == 0 else 1) for t, c, n, s in V2_ARCH for i in range(n)]
        acts["R6"] = nn.ReLU6
    else:
        channels, act = 16, acts["HS"]  # the v3 stem is 16 wide whatever alpha
        rows = V3_SMALL if version == "small" else V3_LARGE
    stem_block = _stem(in_channels, channels, stem, norm, act)
    reduction0 = stem_block.conv.strides[0]
    stem_module: nn.Module = stem_block
    if padding == "symmetric" and reduction0 > 1:
        stem_module = _symmetric_stem(_stem(in_channels, channels, stem, norm, act, padding="valid"))
    blocks = []
    for i, (k, t, c, se, nl, s) in enumerate(rows):
        if version == "v2":
            mid, out = int(t * channels), _make_divisible(int(c * alpha))  # v2's expansions t are integers
        else:
            mid, out = _make_divisible(channels * t), _make_divisible(c * alpha)
            k, se = (3, False) if minimalistic else (k, se)
        block = InvertedResidual(channels, mid, out, k, s, se, acts[nl], expand=i > 0, norm=norm, padding=padding)
        blocks.append((block, s, out))
        channels = out
    if version == "v2":  # no alpha below 1 on the last conv, as in the paper
        last = _make_divisible(1280 * alpha) if alpha > 1 else 1280
        head = ClassifierHead(last, num_classes)
    else:
        last = _make_divisible(channels * 6)
        hidden = _make_divisible(V3_HEAD[version] * alpha) if alpha > 1 else V3_HEAD[version]
        head = ClassifierHead(last, num_classes, hidden=(hidden,), act_layer=act, drop_rate=0.2)
    final = ConvNormAct(channels, last, 1, norm_layer=norm, act_layer=act)
    return MobileNet(stem_module, blocks, head, final, last, reduction0=reduction0)


# Published ImageNet weights: keras.applications' four (Keras publishes no MD5 for v1 and v2) and
# torchvision's v2 and v3, in its flavour.
MOBILENET_WEIGHTS = (keras_weights("mobilenet/mobilenet_1_0_224_tf.h5"),)
MOBILENET_V2_WEIGHTS = (
    keras_weights("mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    torchvision_weights("mobilenet_v2-b0353104.pth", padding="symmetric", bn_eps=1e-5),
)
MOBILENET_V3_SMALL_WEIGHTS = (
    keras_weights("mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float.h5", "8768d4c2e7dee89b9d02b2d03d65d862"),
    torchvision_weights("mobilenet_v3_small-047dcff4.pth", padding="symmetric"),
)
MOBILENET_V3_LARGE_WEIGHTS = (
    keras_weights("mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float.h5", "59e551e166be033d707958cf9e29a6a7"),
    torchvision_weights("mobilenet_v3_large-8738ca79.pth", padding="symmetric"),
)


@register_model(weights=MOBILENET_WEIGHTS)
def mobilenet(
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
    alpha: float = 1.0,
    depth_multiplier: int = 1,
    dropout: float = 1e-3,
    conv_bias: bool = False,
) -> MobileNet:
    """keras.applications' MobileNet v1 (Howard et al., 2017; 28 layers): 4,253,864 params.

    Conv 3x3/2 32, 13 depthwise-separable blocks (dw 3x3-BN-ReLU6, pw 1x1-BN-ReLU6; stride-2
    ones padded ((0,1),(0,1)) then 'valid'), GAP, dropout, fc. ``alpha`` scales every width
    (``int(c * alpha)``), ``depth_multiplier`` the depthwise outputs. ``conv_bias=True``: every
    conv has a bias, as in article 004's MobileNet (4,264,808 params; the article also uses
    plain ReLU, 'same' stride-2 convs and no dropout -- pass ``dropout=0`` for the last).
    """
    return _v1(num_classes, in_channels, stem, alpha, depth_multiplier, dropout, conv_bias)


@register_model(weights=MOBILENET_V2_WEIGHTS)
def mobilenet_v2(
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
    alpha: float = 1.0,
    padding: str = "keras",
    bn_eps: float | None = None,
) -> MobileNet:
    """keras.applications' MobileNetV2 (Sandler et al., CVPR 2018; inverted residuals): 3,538,984 params.

    Conv 3x3/2 32, 17 inverted-residual blocks (expand 1x1, dw 3x3, linear project 1x1; ReLU6;
    residual when stride 1 and widths agree), 1x1 conv 1280, GAP, fc. ``alpha`` scales the
    widths (multiples of 8); the 1280 only grows (alpha > 1). ``padding="symmetric", bn_eps=1e-5``:
    torchvision's mobilenet_v2 (same weights, its padding and epsilon).
    """
    return _inverted(num_classes, in_channels, stem, alpha, "v2", padding=padding, bn_eps=bn_eps)


def _mobilenet_v3(
    version: str,
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    stem: str = "imagenet",
    alpha: float = 1.0,
    minimalistic: bool = False,
    padding: str = "keras",
    bn_eps: float | None = None,
) -> MobileNet:
    """Both v3 sizes' builder: its keywords are what ``mobilenet_v3_small`` / ``_large`` accept."""
    return _inverted(num_classes, in_channels, stem, alpha, version, minimalistic, padding, bn_eps)


@register_model(builder=_mobilenet_v3, weights=MOBILENET_V3_SMALL_WEIGHTS)
def mobilenet_v3_small(**kwargs) -> MobileNet:
    """keras.applications' MobileNetV3Small (Howard et al., ICCV 2019; SE, h-swish): 2,554,968 params.

    Conv 3x3/2 16, 11 inverted-residual blocks, 1x1 conv 576, GAP, 1x1 conv 1024 + h-swish,
    dropout 0.2, fc. ``minimalistic=True``: 3x3 kernels, ReLU, no squeeze-excite.
    """
    return _mobilenet_v3("small", **kwargs)


@register_model(builder=_mobilenet_v3, weights=MOBILENET_V3_LARGE_WEIGHTS)
def mobilenet_v3_large(**kwargs) -> MobileNet:
    """keras.applications' MobileNetV3Large (Howard et al., ICCV 2019; SE, h-swish): 5,507,432 params.

    Conv 3x3/2 16, 15 inverted-residual blocks, 1x1 conv 960, GAP, 1x1 conv 1280 + h-swish,
    dropout 0.2, fc. ``minimalistic=True``: 3x3 kernels, ReLU, no squeeze-excite.
    """
    return _mobilenet_v3("large", **kwargs)
