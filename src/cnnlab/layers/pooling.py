"""MaxPooling2D and AveragePooling2D with Keras's semantics on NCHW tensors.

``padding="same"`` follows TensorFlow: output ``ceil(n / s)``, the odd extra row/column of
padding goes at the bottom/right, max pooling never picks a padded cell and average pooling
divides by the number of *real* cells in each window (PyTorch's ``count_include_pad=False``,
but with TensorFlow's asymmetric split, which PyTorch's own padding cannot express).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import padding as P
from .base import Pair, padding_mode, positive_pair


class _Pool2D(nn.Module):
    keras_class = "Pooling2D"

    def __init__(self, pool_size: int | Pair = 2, strides: int | Pair | None = None, padding: str = "valid") -> None:
        super().__init__()
        self.pool_size = positive_pair("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else positive_pair("strides", strides)
        self.padding = padding_mode(padding)

    def output_size(self, height: int, width: int) -> Pair:
        size = tuple(
            P.conv_output_length(n, k, s, self.padding)
            for n, k, s in zip((height, width), self.pool_size, self.strides)
        )
        if min(size) < 1:
            raise ValueError(
                f"{self.keras_class}: input of size {height}x{width} is smaller than pool_size {self.pool_size} "
                f"with padding='valid'"
            )
        return size  # type: ignore[return-value]

    def _pads(self, x: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
        if x.dim() != 4:
            raise ValueError(f"{self.keras_class} expects a 4-D NCHW tensor, got shape {tuple(x.shape)}")
        height, width = int(x.shape[-2]), int(x.shape[-1])  # plain ints, also under tracing
        self.output_size(height, width)
        if self.padding == "valid":
            return (0, 0), (0, 0)
        return (
            P.same_padding(height, self.pool_size[0], self.strides[0]),
            P.same_padding(width, self.pool_size[1], self.strides[1]),
        )

    def extra_repr(self) -> str:
        return f"pool_size={self.pool_size}, strides={self.strides}, padding={self.padding!r}"


def _symmetric(pads, pool_size) -> bool:
    """PyTorch's pooling pads symmetrically, by at most half the window."""
    return all(a == b and a <= k // 2 for (a, b), k in zip(pads, pool_size))


class MaxPooling2D(_Pool2D):
    """Keras ``MaxPooling2D``: ``strides`` defaults to ``pool_size``."""

    keras_class = "MaxPooling2D"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = pads = self._pads(x)
        if _symmetric(pads, self.pool_size):
            return F.max_pool2d(x, self.pool_size, self.strides, (top, left))
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.pool_size, self.strides)


class AveragePooling2D(_Pool2D):
    """Keras ``AveragePooling2D``: with ``same`` padding each window averages its real cells only."""

    keras_class = "AveragePooling2D"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = pads = self._pads(x)
        if _symmetric(pads, self.pool_size):
            return F.avg_pool2d(x, self.pool_size, self.strides, (top, left), count_include_pad=False)
        padded = (left, right, top, bottom)
        sums = F.avg_pool2d(F.pad(x, padded), self.pool_size, self.strides, divisor_override=1)
        ones = torch.ones((1, 1, *x.shape[-2:]), dtype=x.dtype, device=x.device)
        counts = F.avg_pool2d(F.pad(ones, padded), self.pool_size, self.strides, divisor_override=1)
        return sums / counts
