"""Keras/TensorFlow spatial arithmetic for 2-D convolutions, one axis at a time.

These are pure integer functions so the layers, the cost model and ``cnnlab explain``
share one definition of "output size" and "same padding".

References: TensorFlow's ``conv2d`` padding rule (``tf.nn`` docs, "same" padding) and
Keras 3 ``compute_conv_transpose_output_shape`` / the JAX-backend transpose padding, which
is what every Keras 3 backend now reproduces.
"""

from __future__ import annotations

PADDINGS = ("valid", "same")


def effective_kernel(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel: ``(k - 1) * d + 1``."""
    return (kernel - 1) * dilation + 1


def conv_output_length(length: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Output length of a (forward) convolution along one axis, Keras rules.

    ``valid``: ``floor((n - k_eff) / s) + 1``; ``same``: ``ceil(n / s)``.
    Returns a value < 1 when a ``valid`` kernel does not fit; callers raise.
    """
    if padding == "same":
        return -(-length // stride)
    return (length - effective_kernel(kernel, dilation)) // stride + 1


def same_padding(length: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zero padding of TensorFlow's ``same`` mode along one axis.

    The total is ``max((ceil(n/s) - 1) * s + k_eff - n, 0)`` and when it is odd the extra
    row/column goes *after* (bottom/right) -- unlike a symmetric PyTorch padding.
    """
    out = -(-length // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - length, 0)
    return total // 2, total - total // 2


def transpose_padding(
    kernel: int, stride: int, padding: str, output_padding: int | None, dilation: int = 1
) -> tuple[int, int]:
    """(before, after) padding of the stride-dilated input in Keras's transposed convolution.

    A transposed convolution is a ``valid`` convolution (with the spatially flipped kernel)
    over the input dilated by the stride and padded by these amounts. ``output_padding=None``
    lets Keras choose it so that ``valid`` gives ``(n-1)*s + max(k_eff, s)`` and ``same``
    gives ``n * s``.
    """
    k_eff = effective_kernel(kernel, dilation)
    if padding == "valid":
        extra = max(k_eff, stride) - k_eff if output_padding is None else output_padding
        return k_eff - 1, k_eff - 1 + extra
    if output_padding is None:
        total = stride + k_eff - 2
    else:
        total = k_eff + k_eff % 2 - 2 + output_padding
    before = min(total // 2 + total % 2, k_eff - 1)
    return before, total - before


def transpose_output_length(
    length: int, kernel: int, stride: int, padding: str, output_padding: int | None, dilation: int = 1
) -> int:
    """Output length of Keras's ``Conv2DTranspose`` along one axis."""
    before, after = transpose_padding(kernel, stride, padding, output_padding, dilation)
    return (length - 1) * stride + before + after - effective_kernel(kernel, dilation) + 2


def transpose_crop(
    kernel: int, stride: int, padding: str, output_padding: int | None, dilation: int = 1
) -> tuple[int, int]:
    """How much to cut from each end of the *full* transposed output ``(n-1)*s + k_eff``.

    A negative value means the Keras output is longer than the full one on that side: the
    extra positions receive no input and hold zeros (plus the bias).
    """
    before, after = transpose_padding(kernel, stride, padding, output_padding, dilation)
    k_eff = effective_kernel(kernel, dilation)
    return k_eff - 1 - before, k_eff - 1 - after
