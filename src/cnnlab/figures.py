"""Figures for the library's PNG outputs, drawn without pyplot and saved atomically.

Why not pyplot: ``pyplot`` keeps global state (a registry of open figures that leaks unless
every figure is closed), and forcing the Agg backend from inside a library (``matplotlib.use``)
switches the backend of the caller's notebook or GUI session. A bare
:class:`matplotlib.figure.Figure` belongs to no backend and no registry: ``savefig(...,
format="png")`` renders it through the Agg canvas on the spot, whatever backend is active, and
the figure is freed like any other object when it goes out of scope -- there is nothing to close.

matplotlib is imported inside the functions so that ``import cnnlab`` stays light.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(figsize: tuple[float, float] | None = None, dpi: float | None = None, **kwargs: Any) -> Figure:
    """A standalone figure (``None`` means matplotlib's rc default), not registered with pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=dpi, **kwargs)


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    dpi: float | None = None,
    **kwargs: Any,
) -> tuple[Figure, Any]:
    """``pyplot.subplots`` without pyplot: ``(fig, axes)``, ``axes`` shaped as ``Figure.subplots`` returns it
    (one Axes for 1x1, else an array); ``kwargs`` go to ``Figure.subplots`` (``sharex``, ``squeeze``, ...)."""
    fig = new_figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` as PNG via a temporary file renamed into place, so a reader never
    sees a half-written image; the format is PNG whatever the suffix says."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def log_axis(ax: Any, which: str = "x") -> None:
    """A log axis labelled 1, 2, 5 x 10^k in short numbers (300k, 1M, 20), minor ticks unlabelled:
    matplotlib's default labels the minor ticks too, and they collide ('3x10^5 4x10^5')."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: short_number(v)))
    axis.set_minor_formatter(NullFormatter())


def short_number(value: float) -> str:
    """300000 -> '300k', 1500000 -> '1.5M', 2e9 -> '2G', 20 -> '20', 0.5 -> '0.5'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def whole_number_axis(ax: Any, last: int) -> None:
    """An x axis of whole numbers 1..``last`` (epochs, trials): ticks on integers only, even for a
    single point, where matplotlib's integer locator falls back to fractions."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(0.5, max(1, last) + 0.5)
