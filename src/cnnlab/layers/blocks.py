"""Building blocks shared by the model families: Keras-default BatchNorm, a conv factory that
takes the conv *type* (so a search can swap Conv2D for SeparableConv2D without ``if`` chains),
and the ubiquitous conv -> norm -> activation unit."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .base import KerasConv2dBase, Pair
from .conv import Conv2D, DepthwiseConv2D, SeparableConv2D

CONV_TYPES: dict[str, type[Conv2D] | type[DepthwiseConv2D] | type[SeparableConv2D]] = {
    "conv": Conv2D,
    "depthwise": DepthwiseConv2D,
    "separable": SeparableConv2D,
}
ConvType = str | type


def batch_norm(channels: int, eps: float = 1e-3, momentum: float = 0.99) -> nn.BatchNorm2d:
    """``nn.BatchNorm2d`` with Keras's defaults and Keras's meaning of ``momentum``.

    Keras keeps ``moving = momentum * moving + (1 - momentum) * batch``; PyTorch's momentum is
    the weight of the *new* value, so Keras 0.99 is PyTorch 0.01. Keras applications choose
    ``eps`` per family (1e-3 MobileNet/Xception, 1.001e-5 ResNet/DenseNet).
    """
    return nn.BatchNorm2d(channels, eps=eps, momentum=1.0 - momentum)


def conv_layer(
    kind: ConvType,
    in_channels: int,
    out_channels: int,
    kernel_size: int | Pair,
    strides: int | Pair = 1,
    padding: str = "same",
    use_bias: bool = True,
    dilation_rate: int | Pair = 1,
) -> KerasConv2dBase:
    """A convolution of type ``kind`` ("conv", "depthwise", "separable" or one of the classes).

    A depthwise convolution cannot change the channel count except by an integer multiple
    (``depth_multiplier = out / in``); anything else is a ValueError.
    """
    cls = CONV_TYPES.get(kind) if isinstance(kind, str) else next((c for c in CONV_TYPES.values() if c is kind), None)
    if cls is None:
        raise ValueError(f"conv type must be one of {sorted(CONV_TYPES)}, got {kind!r}")
    if issubclass(cls, DepthwiseConv2D):  # (not `is`: issubclass narrows cls's type for the call below)
        if out_channels % in_channels:
            raise ValueError(
                f"a depthwise convolution maps {in_channels} channels to a multiple of {in_channels}, "
                f"got out_channels={out_channels}"
            )
        return DepthwiseConv2D(
            in_channels,
            kernel_size,
            depth_multiplier=out_channels // in_channels,
            strides=strides,
            padding=padding,
            dilation_rate=dilation_rate,
            use_bias=use_bias,
        )
    return cls(
        in_channels,
        out_channels,
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
        use_bias=use_bias,
    )


class ConvNormAct(nn.Sequential):
    """conv -> BatchNorm -> activation, with children named ``conv``, ``bn``, ``act``.

    ``norm_layer=None`` or ``act_layer=None`` leaves that step out (its name then does not
    appear), so state dicts stay readable: ``stem.conv.weight``, ``stem.bn.running_mean``.
    """

    conv: KerasConv2dBase  # the child "conv" (added with add_module)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair = 3,
        strides: int | Pair = 1,
        padding: str = "same",
        conv_type: ConvType = "conv",
        use_bias: bool = False,
        norm_layer: Callable[[int], nn.Module] | None = batch_norm,
        act_layer: Callable[[], nn.Module] | None = nn.ReLU,
        dilation_rate: int | Pair = 1,
    ) -> None:
        super().__init__()
        self.add_module(
            "conv",
            conv_layer(conv_type, in_channels, out_channels, kernel_size, strides, padding, use_bias, dilation_rate),
        )
        if norm_layer is not None:
            self.add_module("bn", norm_layer(out_channels))
        if act_layer is not None:
            act = act_layer()
            if type(act) is nn.ReLU or type(act) is nn.ReLU6:
                # Its input (the BN's or conv's output) is used by nothing else, and neither
                # backward needs it: overwriting it saves one activation-sized buffer per layer.
                act.inplace = True
            self.add_module("act", act)
        self.out_channels = out_channels
