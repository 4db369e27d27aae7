"""What the four Keras-semantics convolutions share: argument checking, Keras weight layout,
Keras initialisation, input validation and the cost report."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from . import padding as P

Pair = tuple[int, int]


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _int_pair(name: str, value: object, minimum: int, wanted: str) -> Pair:
    def is_int(v: object) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    items = (value, value) if is_int(value) else value
    if not (isinstance(items, (tuple, list)) and len(items) == 2 and all(is_int(v) and v >= minimum for v in items)):
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(items[0]), int(items[1])


def positive_pair(name: str, value: object) -> Pair:
    """An int or a pair of ints, each >= 1, as a pair ``(height, width)``."""
    return _int_pair(name, value, 1, "a positive int or a pair of positive ints")


def non_negative_pair(name: str, value: object, wanted: str = "a non-negative int or a pair of them") -> Pair:
    """An int or a pair of ints, each >= 0, as a pair ``(height, width)``."""
    return _int_pair(name, value, 0, wanted)


def padding_mode(value: object) -> str:
    """``"valid"`` or ``"same"`` (case-insensitive, as Keras accepts)."""
    mode = value.lower() if isinstance(value, str) else value
    if mode not in P.PADDINGS:
        raise ValueError(f"padding must be one of {P.PADDINGS}, got {value!r}")
    return mode


def glorot_uniform_(tensor: torch.Tensor, keras_shape: Sequence[int]) -> None:
    """Keras's default kernel initialiser, with fans computed from the *Keras* kernel shape.

    Keras takes ``fan_in = shape[-2] * prod(shape[:-2])`` and ``fan_out = shape[-1] *
    prod(shape[:-2])``; for a depthwise kernel ``(kh, kw, C, multiplier)`` that gives fans
    unlike PyTorch's, which is why this cannot be ``nn.init.xavier_uniform_``.
    """
    receptive = math.prod(keras_shape[:-2])
    fan_in, fan_out = keras_shape[-2] * receptive, keras_shape[-1] * receptive
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        tensor.uniform_(-limit, limit)


@dataclass(frozen=True)
class LayerCost:
    """Parameters and multiply-adds of one layer for one input sample.

    ``macs`` counts multiply-accumulates of the weights only (no bias adds), using the
    formulas of article 003: standard ``Ho*Wo*Kh*Kw*C*M``, depthwise ``Ho*Wo*C*Kh*Kw*dm``,
    pointwise ``Ho*Wo*C*M``; a transposed convolution counts every input position it
    scatters from, ``H*W*Kh*Kw*C*M``. ``macs_by_step`` splits composite layers.
    """

    layer: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    output_shape: tuple[int, int, int]  # (M, Ho, Wo)
    params: int
    macs: int
    macs_by_step: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class KerasWeight:
    """One entry of Keras's ``get_weights()`` list and how it maps to a torch parameter.

    ``to_keras``/``from_keras`` convert between the torch layout of ``attr`` and
    ``keras_shape`` (plain permutes and reshapes, so they are exact).
    """

    attr: str
    keras_shape: tuple[int, ...]
    to_keras: Callable[[torch.Tensor], torch.Tensor]
    from_keras: Callable[[torch.Tensor], torch.Tensor]


def _conv_kernel_mapping(attr: str, keras_shape: tuple[int, ...]) -> KerasWeight:
    """torch ``(A, B, kh, kw)`` <-> Keras ``(kh, kw, B, A)``: Conv2D (A=out, B=in) and
    Conv2DTranspose (A=in, B=out) share it."""
    return KerasWeight(attr, keras_shape, lambda w: w.permute(2, 3, 1, 0), lambda k: k.permute(3, 2, 0, 1))


def _depthwise_kernel_mapping(attr: str, channels: int, multiplier: int, kernel: Pair) -> KerasWeight:
    """torch ``(C*dm, 1, kh, kw)`` (grouped conv, output ``c*dm + m``) <-> Keras ``(kh, kw, C, dm)``."""
    kh, kw = kernel
    return KerasWeight(
        attr,
        (kh, kw, channels, multiplier),
        lambda w: w.reshape(channels, multiplier, kh, kw).permute(2, 3, 0, 1),
        lambda k: k.permute(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw),
    )


class KerasConv2dBase(nn.Module):
    """Common face of :class:`Conv2D`, :class:`DepthwiseConv2D`, :class:`SeparableConv2D` and
    :class:`Conv2DTranspose`: NCHW tensors in, NCHW tensors out, Keras's arithmetic inside.

    Parameters live in PyTorch layout (``weight``: ``(out, in/groups, kh, kw)``) so state
    dicts look familiar; :meth:`get_keras_weights` / :meth:`set_keras_weights` speak Keras.
    """

    keras_class: ClassVar[str]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        strides: int | Pair,
        padding: str,
        dilation_rate: int | Pair,
        use_bias: bool,
    ) -> None:
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = out_channels
        self.kernel_size = positive_pair("kernel_size", kernel_size)
        self.strides = positive_pair("strides", strides)
        self.padding = padding_mode(padding)
        self.dilation_rate = positive_pair("dilation_rate", dilation_rate)
        if not isinstance(use_bias, bool):
            raise ValueError(f"use_bias must be True or False, got {use_bias!r}")
        self.use_bias = use_bias
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            # TensorFlow refuses this combination for every convolution; Keras checks it in
            # Conv2D/Conv2DTranspose. We refuse it everywhere so all backends agree.
            raise ValueError(
                f"strides > 1 cannot be combined with dilation_rate > 1 (Keras/TensorFlow rule), "
                f"got strides={self.strides}, dilation_rate={self.dilation_rate}"
            )

    # ----------------------------------------------------------------- shapes and cost
    def output_size(self, height: int, width: int) -> Pair:
        """Spatial output size for an ``height x width`` input (ValueError if it cannot fit)."""
        height, width = positive_int("input height", height), positive_int("input width", width)
        size = (
            P.conv_output_length(height, self.kernel_size[0], self.strides[0], self.padding, self.dilation_rate[0]),
            P.conv_output_length(width, self.kernel_size[1], self.strides[1], self.padding, self.dilation_rate[1]),
        )
        if min(size) < 1:
            k_eff = tuple(P.effective_kernel(k, d) for k, d in zip(self.kernel_size, self.dilation_rate))
            raise ValueError(
                f"{self.keras_class}: input of size {height}x{width} is smaller than the "
                f"{'dilated ' if max(self.dilation_rate) > 1 else ''}kernel "
                f"{k_eff[0]}x{k_eff[1]} with padding='valid'; use padding='same' or a larger input"
            )
        return size

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """``(C, H, W)`` (or ``(H, W)``) in, ``(M, Ho, Wo)`` out."""
        channels, height, width = self._chw(input_shape)
        return (self.out_channels, *self.output_size(height, width))

    def count_params(self) -> int:
        """Number of weights, as Keras's ``count_params()`` reports for the same layer."""
        return sum(p.numel() for p in self.parameters())

    def cost(self, input_size: Sequence[int]) -> LayerCost:
        """Parameters and MACs for one sample of spatial size ``(H, W)`` or shape ``(C, H, W)``."""
        shape = self._chw(input_size)
        out = self.output_shape(shape)
        steps = self._macs_by_step(shape, out)
        return LayerCost(self.keras_class, shape, out, self.count_params(), sum(steps.values()), steps)

    def _macs_by_step(self, input_shape: tuple[int, int, int], output_shape: tuple[int, int, int]) -> dict[str, int]:
        raise NotImplementedError

    def _chw(self, shape: Sequence[int]) -> tuple[int, int, int]:
        shape = tuple(shape)
        if len(shape) == 2:
            shape = (self.in_channels, *shape)
        if len(shape) != 3:
            raise ValueError(f"input size must be (H, W) or (C, H, W), got {shape!r}")
        if shape[0] != self.in_channels:
            raise ValueError(f"{self.keras_class} expects {self.in_channels} input channels, got input size {shape}")
        return (
            positive_int("input channels", shape[0]),
            positive_int("input height", shape[1]),
            positive_int("input width", shape[2]),
        )

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"{self.keras_class} expects a 4-D NCHW tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.keras_class} expects {self.in_channels} input channels (NCHW dim 1), got shape {tuple(x.shape)}"
            )

    # ----------------------------------------------------------------- Keras weights
    def _keras_weights(self) -> list[KerasWeight]:
        raise NotImplementedError

    def _taps(self, shape: tuple[int, int, int]) -> int:
        """Kernel taps over every spatial position of a CHW ``shape``: ``H*W*Kh*Kw``."""
        return shape[1] * shape[2] * self.kernel_size[0] * self.kernel_size[1]

    def _bias_mapping(self) -> list[KerasWeight]:
        if not self.use_bias:
            return []
        same = lambda t: t  # noqa: E731 -- bias has the same layout in both frameworks
        return [KerasWeight("bias", (self.out_channels,), same, same)]

    def get_keras_weights(self) -> list[np.ndarray]:
        """The weights as Keras's ``layer.get_weights()`` returns them (same order and shapes)."""
        return [spec.to_keras(getattr(self, spec.attr).detach()).cpu().numpy().copy() for spec in self._keras_weights()]

    def set_keras_weights(self, weights: Sequence[object]) -> None:
        """Load weights given in Keras's ``get_weights()`` order and shapes."""
        specs = self._keras_weights()
        if len(weights) != len(specs):
            raise ValueError(
                f"{self.keras_class} takes {len(specs)} Keras weight arrays "
                f"({', '.join(s.attr for s in specs)} with shapes {[s.keras_shape for s in specs]}), "
                f"got {len(weights)}"
            )
        converted = []
        for index, (spec, value) in enumerate(zip(specs, weights)):
            array = np.asarray(value)
            if tuple(array.shape) != spec.keras_shape:
                raise ValueError(
                    f"{self.keras_class} Keras weight {index} ({spec.attr}) must have shape "
                    f"{spec.keras_shape}, got {tuple(array.shape)}"
                )
            param = getattr(self, spec.attr)
            converted.append((param, spec.from_keras(torch.as_tensor(array, dtype=param.dtype))))
        with torch.no_grad():  # all shapes checked first: a bad list changes nothing
            for param, value in converted:
                param.copy_(value)

    def _parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """PyTorch shapes of the kernel parameters, by attribute name (the bias is added by the base)."""
        raise NotImplementedError

    def _create_parameters(self, device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        """Create the kernels (``_parameter_shapes``) and the bias, then Keras's initialisation."""
        for name, shape in self._parameter_shapes().items():
            setattr(self, name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.bias = nn.Parameter(torch.empty(self.out_channels, device=device, dtype=dtype)) if self.use_bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras defaults: ``glorot_uniform`` kernels (fans from the Keras shape), zero bias."""
        for spec in self._keras_weights():
            param = getattr(self, spec.attr)
            if spec.attr == "bias":
                nn.init.zeros_(param)
            else:
                glorot_uniform_(param, spec.keras_shape)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"strides={self.strides}, padding={self.padding!r}"
        )
        if max(self.dilation_rate) > 1:
            text += f", dilation_rate={self.dilation_rate}"
        return text + ("" if self.use_bias else ", use_bias=False")


def pad_same(module: KerasConv2dBase, x: torch.Tensor) -> tuple[torch.Tensor, Pair]:
    """Apply Keras padding to an NCHW input of a forward convolution.

    Returns the (possibly padded) input and the symmetric padding to hand to ``F.conv2d``:
    symmetric cases pass straight through to the kernel, only the asymmetric ``same``
    split (odd total: extra row/column at the bottom/right) pays for an explicit ``F.pad``.
    """
    # int(): under tracing (torch.jit, fvcore, ONNX export) sizes arrive as 0-dim tensors
    height, width = int(x.shape[-2]), int(x.shape[-1])
    module.output_size(height, width)  # raises if a 'valid' kernel does not fit
    if module.padding == "valid":
        return x, (0, 0)
    top, bottom = P.same_padding(height, module.kernel_size[0], module.strides[0], module.dilation_rate[0])
    left, right = P.same_padding(width, module.kernel_size[1], module.strides[1], module.dilation_rate[1])
    if top == bottom and left == right:
        return x, (top, left)
    return nn.functional.pad(x, (left, right, top, bottom)), (0, 0)
