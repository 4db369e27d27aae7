"""The examples :func:`~cnnlab.analysis.explain.explain` works on: article 001's four, and the
options that change them.

An :class:`ExampleConfig` is everything that defines one example -- the layer's arguments,
the input size and how the numbers are filled in. :func:`make_config` starts from the
article's values and checks every option it changes, with errors naming the bad value;
:func:`check_cell` does the same for the output cell to write out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...layers import padding as P
from ...layers.base import non_negative_pair, positive_int, positive_pair

KINDS = ("conv2d", "depthwise", "separable", "transpose")
FILLS = ("arange", "random")
# An example is written out number by number (the text prints every input, weight and output);
# beyond this many numbers it is no longer something to read, and printing it takes minutes and GiBs.
MAX_NUMBERS = 1_000_000
BYTES_PER_NUMBER = 48  # measured: the float64 value plus its formatted text while the matrices are printed

# The article's four examples (SPEC.md, "Convolution arithmetic"): shapes, and the outputs
# article 001 prints for them (flattened HWC).
ARTICLE_EXAMPLES: dict[str, dict[str, Any]] = {
    "conv2d": {"input_size": (3, 3), "in_channels": 2, "filters": 3, "kernel_size": (3, 3)},
    "depthwise": {"input_size": (3, 3), "in_channels": 2, "filters": None, "kernel_size": (3, 3)},
    "separable": {"input_size": (3, 3), "in_channels": 1, "filters": 2, "kernel_size": (3, 3)},
    "transpose": {"input_size": (2, 2), "in_channels": 3, "filters": 2, "kernel_size": (3, 3)},
}
ARTICLE_OUTPUTS: dict[str, list[float]] = {
    "conv2d": [598.5, 615.6, 632.7],
    "depthwise": [96.9, 114.0],
    "separable": [57.0, 85.5],
    # HWC order of the 4x4x2 output (first channel 1.4, 8.2, ... second 3.2, 14.5, ...)
    "transpose": [
        v
        for pair in zip(
            [1.4, 8.2, 20.8, 21.2, 17.2, 72.2, 119.0, 94.6, 71.2, 212.6, 259.4, 181.0, 91.4, 231.4, 265.6, 165.2],
            [3.2, 14.5, 27.1, 25.7, 26.2, 95.6, 142.4, 109.0, 80.2, 236.0, 282.8, 195.4, 98.6, 248.5, 282.7, 175.1],
        )
        for v in pair
    ],
}


@dataclass(frozen=True)
class ExampleConfig:
    """Everything that defines an example: the layer's arguments, the input size, the values."""

    kind: str
    input_size: tuple[int, int]
    in_channels: int
    filters: int | None  # None for depthwise (its output channels are C * depth_multiplier)
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    dilation_rate: tuple[int, int] = (1, 1)
    depth_multiplier: int = 1
    output_padding: tuple[int, int] | None = None
    use_bias: bool = False
    fill: str = "arange"  # arange: the article's 1, 2, 3, ... ; random: small readable numbers
    seed: int = 0

    @property
    def is_article(self) -> bool:
        """True when this is exactly the article's example for the layer."""
        return self == make_config(self.kind)

    def layer_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "in_channels": self.in_channels,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
            "use_bias": self.use_bias,
        }
        if self.kind != "depthwise":
            kwargs["filters"] = self.filters
        if self.kind in ("depthwise", "separable"):
            kwargs["depth_multiplier"] = self.depth_multiplier
        if self.kind == "transpose":
            kwargs["output_padding"] = self.output_padding
        return kwargs

    def keras_weight_names(self) -> list[str]:
        """The names of the layer's Keras weights, in ``get_weights()`` order."""
        names = {"separable": ["depthwise_kernel", "pointwise_kernel"], "depthwise": ["depthwise_kernel"]}.get(
            self.kind, ["kernel"]
        )
        return names + (["bias"] if self.use_bias else [])


def make_config(kind: str, **options: Any) -> ExampleConfig:
    """The article's example for ``kind``, with any of ``options`` changed.

    Options left at ``None`` keep the article's value. Sizes may be ints or pairs.
    """
    if kind not in KINDS:
        raise ValueError(f"layer must be one of {KINDS}, got {kind!r}")
    values = {k: v for k, v in options.items() if v is not None}
    unknown = set(values) - set(ExampleConfig.__dataclass_fields__) - {"kind"}
    if unknown:
        accepted = sorted(ExampleConfig.__dataclass_fields__)
        raise ValueError(f"unknown explain option(s) {sorted(unknown)}; accepted: {accepted}")
    if "seed" in values and "fill" not in values:  # a seed only means something for random numbers
        values["fill"] = "random"
    merged = {**ARTICLE_EXAMPLES[kind], **values}
    if kind == "depthwise":
        if merged.get("filters") is not None:
            raise ValueError("filters does not apply to depthwise (its outputs are in_channels * depth_multiplier)")
    else:
        merged["filters"] = positive_int("filters", merged["filters"])
    for name in ("input_size", "kernel_size", "strides", "dilation_rate"):
        if name in merged:
            merged[name] = positive_pair(name, merged[name])
    if merged.get("output_padding") is not None:
        if kind != "transpose":
            raise ValueError("output_padding applies to transpose only")
        merged["output_padding"] = non_negative_pair("output_padding", merged["output_padding"])
    if merged.get("fill", "arange") not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {merged['fill']!r}")
    if merged.get("depth_multiplier", 1) != 1 and kind not in ("depthwise", "separable"):
        raise ValueError("depth_multiplier applies to depthwise and separable only")
    seed = merged.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in 0..{2**32 - 1}, got {seed!r}")
    return ExampleConfig(kind=kind, **merged)


def output_shape(config: ExampleConfig) -> tuple[int, int, int]:
    """The example's output (H, W, C) by Keras's rules, computed without building the layer."""
    (h, w), (kh, kw), (sh, sw), (dh, dw) = config.input_size, config.kernel_size, config.strides, config.dilation_rate
    if config.kind == "transpose":
        op = config.output_padding or (None, None)
        ho = P.transpose_output_length(h, kh, sh, config.padding, op[0], dh)
        wo = P.transpose_output_length(w, kw, sw, config.padding, op[1], dw)
    else:
        ho, wo = (
            P.conv_output_length(h, kh, sh, config.padding, dh),
            P.conv_output_length(w, kw, sw, config.padding, dw),
        )
    if config.kind == "depthwise":
        return ho, wo, config.in_channels * config.depth_multiplier
    if config.filters is None:
        raise ValueError(f"filters must be set for a {config.kind} example (only depthwise takes None)")
    return ho, wo, config.filters


def count_numbers(config: ExampleConfig) -> dict[str, int]:
    """How many numbers the example holds: its input, weights and output."""
    (kh, kw), c, dm = config.kernel_size, config.in_channels, config.depth_multiplier
    ho, wo, m = output_shape(config)
    weights = {
        "conv2d": kh * kw * c * m,
        "transpose": kh * kw * c * m,
        "depthwise": kh * kw * c * dm,
        "separable": kh * kw * c * dm + c * dm * m,
    }[config.kind] + (m if config.use_bias else 0)
    return {
        "input": config.input_size[0] * config.input_size[1] * c,
        "weights": weights,
        "output": max(ho, 0) * max(wo, 0) * m,
    }


def check_size(config: ExampleConfig) -> None:
    """Refuse, before anything is computed, an example too large to write out (``MAX_NUMBERS``)."""
    counts = count_numbers(config)
    total = sum(counts.values())
    if total > MAX_NUMBERS:
        h, w = config.input_size
        ho, wo, m = output_shape(config)
        raise ValueError(
            f"this example is too large to write out: input {h}x{w}x{config.in_channels}, output {ho}x{wo}x{m} and "
            f"{counts['weights']:,} weights are {total:,} numbers (about {_size(total * BYTES_PER_NUMBER)} of memory "
            f"to print), more than explain's {MAX_NUMBERS:,}; choose a smaller `input_size`, `in_channels` "
            f"or `filters`"
        )


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def check_cell(cell: tuple[int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``cell`` = (y, x, channel) as ints, or a ValueError naming the coordinate out of ``shape`` (HWC)."""
    if len(cell) != 3 or not all(isinstance(v, (int, np.integer)) for v in cell):
        raise ValueError(f"cell must be three ints (y, x, channel), got {cell!r}")
    for name, v, n in zip(("y", "x", "channel"), cell, shape):
        if not 0 <= v < n:
            raise ValueError(f"cell {name} must be in 0..{n - 1} for an output of shape {tuple(shape)} (HWC), got {v}")
    return tuple(int(v) for v in cell)  # type: ignore[return-value]
