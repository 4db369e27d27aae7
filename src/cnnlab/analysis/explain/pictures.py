"""An explanation as pictures: one frame per output cell, drawn from the same float64 run that
the text prints, as a PNG (one cell) or an animated GIF (every cell in turn).

Each frame shows the input channels with their padding drawn as padding (Keras's odd row or
column of 'same' at the bottom/right, hatched), the cells the output cell reads outlined, the
output grid filling in cell by cell (the current one outlined), and the cell's sums written out.

    run = run_example(make_config("conv2d", input_size=(4, 5), strides=2, padding="same"))
    save_gif(run, "conv2d.gif")
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ...figures import new_figure
from ...io import atomic_write
from .compute import explain_cell
from .data import Explanation, LayerRun
from .text import _format_sum

READ, CURRENT, PADDING = "#d62728", "#1f77b4", "#dddddd"


def cells(run: LayerRun) -> Iterator[tuple[int, int, int]]:
    """Output cells in the order the frames show them: row by row, channels of a position together."""
    ho, wo, mo = run.output.shape
    for y in range(ho):
        for x in range(wo):
            for c in range(mo):
                yield (y, x, c)


def frame_figure(e: Explanation, done: np.ndarray | None = None) -> Any:
    """One frame: inputs (padding and read cells marked), the output so far, the sums."""
    (top, bottom), (left, right) = e.input_padding
    h, w, cin = e.input.shape
    ho, wo, _ = e.output.shape
    used = [c for c in range(cin) if e.marked_inputs[:, :, c].any()] or list(range(cin))
    shown = used[:6]
    cell_in = 0.42
    grid_w = (w + left + right) * cell_in
    width = max(9.0, len(shown) * (grid_w + 0.4) + wo * cell_in + 1.6)
    y, x, c = e.cell
    sums = []
    for title, group in e.steps:  # every step shown (separable: depthwise, then pointwise), 4 sums each at most
        sums += [_format_sum(s, "×") for s in group[:4]] + ([f"  … {len(group) - 4} more ({title})"] if len(group) > 4 else [])
    sums.append(f"output[{y}, {x}, {c}] = {e.value:.6g}" + (f" (bias {e.bias:.6g} included)" if e.bias else ""))
    lines = [part for line in sums for part in textwrap.wrap(line, int(width * 11.5), subsequent_indent="    ")]
    height = (h + top + bottom) * cell_in + 1.4 + 0.2 * len(lines)
    fig = new_figure(figsize=(width, height), dpi=80)
    n = len(shown) + 1
    axes = fig.subplots(1, n, gridspec_kw={"width_ratios": [w + left + right] * len(shown) + [wo]})
    axes = np.atleast_1d(axes)
    for ax, c in zip(axes[:-1], shown):
        _input_panel(ax, e, c)
    _output_panel(axes[-1], e, done)
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=9, family="monospace", va="bottom")
    fig.suptitle("\n".join(textwrap.wrap(f"{e.layer.keras_class}({e.layer.extra_repr()})", int(width * 10))), fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.75 / height, bottom=(0.3 + 0.2 * len(lines)) / height)
    return fig


def _grid(ax: Any, rows: int, cols: int, title: str) -> None:
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    for i in range(rows + 1):
        ax.axhline(i - 0.5, color="#999999", lw=0.5)
    for j in range(cols + 1):
        ax.axvline(j - 0.5, color="#999999", lw=0.5)


def _box(ax: Any, y: float, x: float, color: str, fill: bool = False, hatch: str | None = None) -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=fill, facecolor=color if fill else "none", clip_on=False,
                           edgecolor=color if not fill else "#bbbbbb", lw=2.2 if not fill else 0.5, hatch=hatch))


def _input_panel(ax: Any, e: Explanation, channel: int) -> None:
    (top, bottom), (left, right) = e.input_padding
    h, w, _ = e.input.shape
    rows, cols = h + top + bottom, w + left + right
    _grid(ax, rows, cols, f"input channel {channel}" + (" (padded)" if top + bottom + left + right else ""))
    for py in range(rows):
        for px in range(cols):
            y, x = py - top, px - left
            if 0 <= y < h and 0 <= x < w:
                ax.text(px, py, f"{e.input[y, x, channel]:.3g}", ha="center", va="center", fontsize=7)
                if e.marked_inputs[y, x, channel]:
                    _box(ax, py, px, READ)
            else:
                _box(ax, py, px, PADDING, fill=True, hatch="//")
                ax.text(px, py, "0", ha="center", va="center", fontsize=7, color="#777777")
    for s in (s for _, sums in e.steps for s in sums if s.channel == channel):
        for t in s.padding:  # the taps that read padding zeros
            if t.input_pos is not None:
                _box(ax, t.input_pos[0] + top, t.input_pos[1] + left, READ)


def _output_panel(ax: Any, e: Explanation, done: np.ndarray | None) -> None:
    y, x, c = e.cell
    ho, wo, _ = e.output.shape
    _grid(ax, ho, wo, f"output channel {c}")
    for oy in range(ho):
        for ox in range(wo):
            if done is None or done[oy, ox, c]:
                ax.text(ox, oy, f"{e.output[oy, ox, c]:.4g}", ha="center", va="center", fontsize=7)
    _box(ax, y, x, CURRENT)


def frames(run: LayerRun) -> Iterator[tuple[Explanation, Any]]:
    """(explanation, figure) for every output cell, the output filling in as it goes."""
    done = np.zeros(run.output.shape, dtype=bool)
    for cell in cells(run):
        e = explain_cell(run, cell)
        done[cell] = True
        yield e, frame_figure(e, done.copy())


def _png_bytes(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def save_png(e: Explanation, path: str | Path) -> Path:
    """One frame (the explanation's cell, the whole output shown) as PNG, written atomically."""
    data = _png_bytes(frame_figure(e))
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def save_gif(run: LayerRun, path: str | Path, ms_per_frame: int = 900) -> Path:
    """Every output cell in turn as an animated GIF (palette images, looping), written atomically."""
    from PIL import Image

    images = [Image.open(io.BytesIO(_png_bytes(fig))).convert("RGB") for _, fig in frames(run)]
    palette = [im.quantize(colors=64, method=Image.Quantize.MEDIANCUT) for im in images]

    def write(tmp: str) -> None:
        palette[0].save(tmp, format="GIF", save_all=True, append_images=palette[1:], duration=ms_per_frame, loop=0,
                        optimize=True)

    return atomic_write(path, write)
