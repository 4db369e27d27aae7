"""What an explanation holds: plain data that every renderer (text, JSON, pictures) reads as is.

:class:`LayerRun` is one example layer filled with its numbers and run in float64 -- weights,
input, output, padding -- and :class:`ExplanationData` adds one output cell written out as sums
of products (:class:`Sum` of :class:`Term`), grouped in the :class:`Step` s the layer takes.
All the arithmetic is done by :mod:`.compute`; nothing here needs more than reading, and
nothing here renders: :class:`~.explanation.Explanation` is this data showing itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ...layers.base import KerasConv2dBase, LayerCost
from .examples import ExampleConfig

Pads = tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))


@dataclass
class Term:
    """One product ``value × weight`` of a written-out sum.

    ``padding`` terms are kernel taps that fall on a zero of the padded input: their
    ``input_pos`` lies outside the input (negative, or past its last row/column) and their
    ``value`` is 0. They live in :attr:`Sum.padding`, never in :attr:`Sum.terms`.
    """

    value: float
    weight: float
    input_pos: tuple[int, int] | None = None  # (y, x) of the input cell, when there is one
    kernel_pos: tuple[int, int] | None = None  # (i, j) inside the kernel
    padding: bool = False

    @property
    def product(self) -> float:
        return self.value * self.weight


@dataclass
class Sum:
    """``label: a×b + c×d + … = result``; the ``padding`` taps read zeros and are left out of ``terms``.

    ``channel`` is the input channel the sum reads (None for separable's pointwise mix, whose
    terms are the depthwise results); ``multiplier`` the depthwise multiplier index, if any.
    """

    label: str
    terms: list[Term]
    result: float
    padding: list[Term] = field(default_factory=list)
    channel: int | None = None
    multiplier: int | None = None

    @property
    def padded(self) -> int:
        """How many products read padding zeros."""
        return len(self.padding)

    @property
    def window(self) -> list[Term]:
        """Every kernel tap of the sum, padding included, in kernel (row-major) order."""
        taps = [*self.terms, *self.padding]
        placed = [(t.kernel_pos, t) for t in taps if t.kernel_pos is not None]
        if len(placed) == len(taps):  # every tap knows its kernel position
            return [t for _, t in sorted(placed, key=lambda pair: pair[0])]
        return taps


class Step(NamedTuple):
    """A titled group of sums, in order of computation (separable has two)."""

    title: str
    sums: list[Sum]


@dataclass(frozen=True)
class ArticleCheck:
    """The article's printed outputs next to the layer's (both flattened HWC)."""

    printed: list[float]
    computed: list[float]
    same: bool  # equal to 1e-6
    largest_difference: float


@dataclass
class LayerRun:
    """One example layer, filled with its numbers and run in float64: all that no cell changes."""

    config: ExampleConfig
    layer: KerasConv2dBase
    cost: LayerCost
    weights: dict[str, np.ndarray]  # Keras names and layouts
    input: np.ndarray  # (H, W, C)
    output: np.ndarray  # (Ho, Wo, M), as the layer computed it
    values_note: str  # how the numbers were made
    # Zero rows/columns around the input of a forward convolution: Keras's 'same' puts the odd
    # one at the bottom/right. All zero for 'valid' and for transpose.
    input_padding: Pads
    # Transpose only (zero otherwise): rows/columns cut from the full scatter output (the one
    # input (iy, ix) and kernel tap (i, j) land on at (iy*s + i*d, ix*s + j*d)); may be negative.
    output_crop: Pads
    article: ArticleCheck | None  # for the article's own example


@dataclass
class Scatter:
    """What one input position of a transposed convolution adds to the output, in float64.

    The *canvas* is the full scatter (``(n-1)*s + (k-1)*d + 1`` per side) widened where Keras's
    output reaches past it (output_padding); canvas row ``r`` is full-scatter row ``r - offset[0]``.
    """

    input_pos: tuple[int, int]  # (iy, ix)
    values: np.ndarray  # (C,) the input's values there
    taps: list[tuple[int, int, int, int]]  # (i, j, canvas row, canvas column) of each kernel tap
    contribution: np.ndarray  # (kh, kw, M): sum over c of values[c] * kernel[i, j, m, c]
    canvas: np.ndarray  # (R, W, M) the running sum after this position (no bias)


@dataclass
class ScatterRun:
    """A transposed convolution written out input position by input position."""

    run: LayerRun
    steps: list[Scatter]
    offset: tuple[int, int]  # canvas index of the full scatter's (0, 0)
    output_window: tuple[tuple[int, int], tuple[int, int]]  # canvas (start, stop) rows and columns of the output
    full: tuple[int, int]  # rows and columns of the full scatter (canvas rows/columns past it: output_padding's)


@dataclass
class ExplanationData(LayerRun):
    """A :class:`LayerRun` with output ``cell`` = (y, x, channel) written out term by term."""

    cell: tuple[int, int, int]
    steps: list[Step]
    total_parts: list[float]  # what the final line adds up (before the bias)
    bias: float | None
    value: float  # the written-out sum
    marked_inputs: np.ndarray = field(repr=False)  # (H, W, C) cells the cell reads

    @property
    def layer_output(self) -> float:
        y, x, c = self.cell
        return float(self.output[y, x, c])

    @property
    def matches(self) -> bool:
        """The written-out sum equals what the layer produced (to 1e-9, relative)."""
        return abs(self.value - self.layer_output) < 1e-9 * max(1, abs(self.value))
