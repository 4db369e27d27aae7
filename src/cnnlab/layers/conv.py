"""Conv2D, DepthwiseConv2D and SeparableConv2D: PyTorch modules with Keras's semantics.

Each computes exactly what the Keras layer of the same name computes (``padding="same"``
included, with TensorFlow's asymmetric split), on NCHW tensors. Article 001 works through
each of them on small numbers; ``cnnlab explain`` replays those examples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import (
    KerasConv2dBase,
    KerasWeight,
    Pair,
    _conv_kernel_mapping,
    _depthwise_kernel_mapping,
    pad_same,
    positive_int,
)


class Conv2D(KerasConv2dBase):
    """Standard convolution: every output channel sees every input channel.

    ``weight``: ``(filters, in_channels, kh, kw)``; Keras kernel ``(kh, kw, in_channels, filters)``.
    MACs per sample: ``Ho*Wo*Kh*Kw*C*M``.
    """

    keras_class = "Conv2D"
    weight: nn.Parameter  # made by KerasConv2dBase from _parameter_shapes

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: int | Pair,
        strides: int | Pair = 1,
        padding: str = "valid",
        dilation_rate: int | Pair = 1,
        use_bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels, positive_int("filters", filters), kernel_size, strides, padding, dilation_rate, use_bias
        )
        self.filters = self.out_channels
        self._create_parameters(device, dtype)

    def _parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.filters, self.in_channels, *self.kernel_size)}

    def _keras_weights(self) -> list[KerasWeight]:
        return [
            _conv_kernel_mapping("weight", (*self.kernel_size, self.in_channels, self.filters)),
            *self._bias_mapping(),
        ]

    def _macs_by_step(self, input_shape, output_shape) -> dict[str, int]:
        return {"conv": self._taps(output_shape) * self.in_channels * self.filters}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x, pad = pad_same(self, x)
        return F.conv2d(x, self.weight, self.bias, self.strides, pad, self.dilation_rate)


class DepthwiseConv2D(KerasConv2dBase):
    """Depthwise convolution: each input channel is filtered on its own, ``depth_multiplier``
    times; output channel ``c * depth_multiplier + m`` comes from input channel ``c``.

    ``weight``: ``(C*dm, 1, kh, kw)``; Keras kernel ``(kh, kw, C, dm)``.
    MACs per sample: ``Ho*Wo*C*Kh*Kw*dm``.
    """

    keras_class = "DepthwiseConv2D"
    weight: nn.Parameter  # made by KerasConv2dBase from _parameter_shapes

    def __init__(
        self,
        in_channels: int,
        kernel_size: int | Pair,
        strides: int | Pair = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        dilation_rate: int | Pair = 1,
        use_bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        channels = positive_int("in_channels", in_channels)
        multiplier = positive_int("depth_multiplier", depth_multiplier)
        super().__init__(channels, channels * multiplier, kernel_size, strides, padding, dilation_rate, use_bias)
        self.depth_multiplier = multiplier
        self._create_parameters(device, dtype)

    def _parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.out_channels, 1, *self.kernel_size)}

    def _keras_weights(self) -> list[KerasWeight]:
        return [
            _depthwise_kernel_mapping("weight", self.in_channels, self.depth_multiplier, self.kernel_size),
            *self._bias_mapping(),
        ]

    def _macs_by_step(self, input_shape, output_shape) -> dict[str, int]:
        return {"depthwise": self._taps(output_shape) * self.in_channels * self.depth_multiplier}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x, pad = pad_same(self, x)
        return F.conv2d(x, self.weight, self.bias, self.strides, pad, self.dilation_rate, groups=self.in_channels)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", depth_multiplier={self.depth_multiplier}"


class SeparableConv2D(KerasConv2dBase):
    """Depthwise convolution followed by a 1x1 (pointwise) convolution, one bias at the end.

    ``depthwise_weight``: ``(C*dm, 1, kh, kw)`` (Keras ``(kh, kw, C, dm)``);
    ``pointwise_weight``: ``(filters, C*dm, 1, 1)`` (Keras ``(1, 1, C*dm, filters)``).
    MACs per sample: depthwise ``Ho*Wo*C*Kh*Kw*dm`` + pointwise ``Ho*Wo*C*dm*M``.
    """

    keras_class = "SeparableConv2D"
    depthwise_weight: nn.Parameter  # made by KerasConv2dBase from _parameter_shapes
    pointwise_weight: nn.Parameter

    # Keras's order: dilation_rate before depth_multiplier here, after it in DepthwiseConv2D
    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: int | Pair,
        strides: int | Pair = 1,
        padding: str = "valid",
        dilation_rate: int | Pair = 1,
        depth_multiplier: int = 1,
        use_bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels, positive_int("filters", filters), kernel_size, strides, padding, dilation_rate, use_bias
        )
        self.filters = self.out_channels
        self.depth_multiplier = positive_int("depth_multiplier", depth_multiplier)
        self._create_parameters(device, dtype)

    def _parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        mid = self.in_channels * self.depth_multiplier
        return {"depthwise_weight": (mid, 1, *self.kernel_size), "pointwise_weight": (self.filters, mid, 1, 1)}

    def _keras_weights(self) -> list[KerasWeight]:
        mid = self.in_channels * self.depth_multiplier
        return [
            _depthwise_kernel_mapping("depthwise_weight", self.in_channels, self.depth_multiplier, self.kernel_size),
            _conv_kernel_mapping("pointwise_weight", (1, 1, mid, self.filters)),
            *self._bias_mapping(),
        ]

    def _macs_by_step(self, input_shape, output_shape) -> dict[str, int]:
        mid = self.in_channels * self.depth_multiplier
        return {
            "depthwise": self._taps(output_shape) * mid,
            "pointwise": output_shape[1] * output_shape[2] * mid * self.filters,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x, pad = pad_same(self, x)
        x = F.conv2d(x, self.depthwise_weight, None, self.strides, pad, self.dilation_rate, groups=self.in_channels)
        return F.conv2d(x, self.pointwise_weight, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", depth_multiplier={self.depth_multiplier}"
