"""Conv2DTranspose with Keras's semantics (output size, ``same``/``valid``, ``output_padding``).

Each input position scatters ``kernel * value`` into the output, ``strides`` apart -- the
gradient of a convolution, used for upsampling in decoders. Keras defines the output window
through the padding of the stride-dilated input (see :func:`padding.transpose_padding`);
PyTorch's ``conv_transpose2d`` only crops symmetrically, so we compute the full output and
crop (or zero-extend) each side to Keras's window, passing symmetric cases straight through.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import padding as P
from .base import (
    KerasConv2dBase,
    KerasWeight,
    Pair,
    _conv_kernel_mapping,
    non_negative_pair,
    positive_int,
)


class Conv2DTranspose(KerasConv2dBase):
    """Transposed convolution ("deconvolution").

    ``weight``: ``(in_channels, filters, kh, kw)`` (PyTorch's layout);
    Keras kernel ``(kh, kw, filters, in_channels)``.
    Output length per axis: ``valid``: ``(n-1)*s + max(k_eff, s)`` (or ``(n-1)*s + k_eff + op``
    with ``output_padding=op``); ``same``: ``n*s`` (or ``(n-1)*s + k_eff % 2 + op``).
    MACs per sample: every input position times the whole kernel, ``H*W*Kh*Kw*C*M``.
    """

    keras_class = "Conv2DTranspose"
    weight: nn.Parameter  # made by KerasConv2dBase from _parameter_shapes

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: int | Pair,
        strides: int | Pair = 1,
        padding: str = "valid",
        output_padding: int | Pair | None = None,
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
        if output_padding is not None:
            output_padding = non_negative_pair(
                "output_padding", output_padding, "None, a non-negative int or a pair of them"
            )
            for axis, (extra, stride) in enumerate(zip(output_padding, self.strides)):
                if extra >= stride:
                    raise ValueError(
                        f"output_padding must be smaller than strides on every axis (Keras rule), "
                        f"got output_padding={output_padding} with strides={self.strides} (axis {axis})"
                    )
        self.output_padding: Pair | None = output_padding
        crops = [
            P.transpose_crop(k, s, self.padding, None if output_padding is None else output_padding[i], d)
            for i, (k, s, d) in enumerate(zip(self.kernel_size, self.strides, self.dilation_rate))
        ]
        self._crops: tuple[Pair, Pair] = (crops[0], crops[1])  # ((top, bottom), (left, right)) cut from the full output
        self._create_parameters(device, dtype)

    def _parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.in_channels, self.filters, *self.kernel_size)}

    def output_size(self, height: int, width: int) -> Pair:
        height, width = positive_int("input height", height), positive_int("input width", width)
        op = self.output_padding or (None, None)
        return tuple(  # type: ignore[return-value]
            P.transpose_output_length(n, k, s, self.padding, o, d)
            for n, k, s, o, d in zip((height, width), self.kernel_size, self.strides, op, self.dilation_rate)
        )

    def _keras_weights(self) -> list[KerasWeight]:
        return [
            _conv_kernel_mapping("weight", (*self.kernel_size, self.filters, self.in_channels)),
            *self._bias_mapping(),
        ]

    def _macs_by_step(self, input_shape, output_shape) -> dict[str, int]:
        return {
            "transpose": self._taps(input_shape) * self.in_channels * self.filters
        }  # every input cell scatters a kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        (top, bottom), (left, right) = self._crops
        if top == bottom >= 0 and left == right >= 0:
            # Symmetric crop: PyTorch's own padding argument does it inside the kernel.
            return F.conv_transpose2d(x, self.weight, self.bias, self.strides, (top, left), 0, 1, self.dilation_rate)
        y = F.conv_transpose2d(x, self.weight, None, self.strides, 0, 0, 1, self.dilation_rate)
        if min(top, bottom, left, right) >= 0:
            # Crop with a view; the bias add (or one copy) then makes it contiguous in one pass.
            y = y[:, :, top : y.shape[2] - bottom, left : y.shape[3] - right]
        else:
            # Negative amounts: Keras's window reaches past the full output, where no input
            # lands -- F.pad crops the positive sides and adds those zero rows/columns.
            y = F.pad(y, (-left, -right, -top, -bottom))
        return y + self.bias.view(1, -1, 1, 1) if self.bias is not None else y.contiguous()

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.output_padding is None else text + f", output_padding={self.output_padding}"
