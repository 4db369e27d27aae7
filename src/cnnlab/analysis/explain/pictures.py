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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...figures import new_figure
from ...io import atomic_write
from .compute import explain_cell, scatter
from .data import LayerRun, ScatterRun, Sum
from .explanation import Explanation
from .text import _format_sum

DPI = 100  # 7-point numbers are 10 pixels tall: legible at 100%
READ, CURRENT, PADDING, KERNEL, CROP = "#d62728", "#1f77b4", "#dddddd", "#2ca02c", "#f1e4c8"


def cells(run: LayerRun) -> Iterator[tuple[int, int, int]]:
    """Output cells in the order the frames show them: row by row, channels of a position together."""
    ho, wo, mo = run.output.shape
    for y in range(ho):
        for x in range(wo):
            for c in range(mo):
                yield (y, x, c)


def kernel_of(e: Explanation, s: Sum) -> np.ndarray:
    """The 2-D kernel a window sum multiplies by (Keras layouts)."""
    w, out = e.weights, e.cell[2]
    if e.config.kind == "conv2d":
        return w["kernel"][:, :, s.channel, out]
    if e.config.kind == "transpose":
        return w["kernel"][:, :, out, s.channel]
    return w["depthwise_kernel"][:, :, s.channel, s.multiplier or 0]


def _kernels(e: Explanation, channels: list[int], most: int = 4) -> list[tuple[str, np.ndarray, set]]:
    """(title, matrix, used taps) of the kernels the cell multiplies by, pointwise last."""
    out = []
    for _, sums in e.steps:
        for s in sums:
            if s.channel is None:  # separable's pointwise mix: one weight per depthwise output
                column = np.array([[t.weight] for t in s.terms])
                out.append((f"pointwise → out {e.cell[2]}", column, {(i, 0) for i in range(len(s.terms))}))
            elif s.channel in channels:
                to = f" → out {e.cell[2]}" if e.config.kind in ("conv2d", "transpose") else ""
                used = {t.kernel_pos for t in [*s.terms, *s.padding] if t.kernel_pos is not None}
                out.append((f"kernel: {s.label.split(' = ')[-1]}{to}", kernel_of(e, s), used))
    pointwise = [k for k in out if k[0].startswith("pointwise")]
    return [k for k in out if not k[0].startswith("pointwise")][: most - len(pointwise)] + pointwise


def frame_figure(e: Explanation, done: np.ndarray | None = None) -> Any:
    """One frame: inputs (padding and read cells marked), the kernels used, the output so far, the sums."""
    (top, bottom), (left, right) = e.input_padding
    h, w, cin = e.input.shape
    ho, wo, _ = e.output.shape
    used = [c for c in range(cin) if e.marked_inputs[:, :, c].any()] or list(range(cin))
    shown = used[:4]
    kernels = _kernels(e, shown)
    cell_in = 0.42
    widths = [w + left + right] * len(shown) + [k.shape[1] for _, k, _ in kernels] + [wo]
    width = max(9.0, sum(widths) * cell_in + 0.5 * len(widths) + 1.0)
    y, x, c = e.cell
    sums = []
    for title, group in e.steps:  # every step shown (separable: depthwise, then pointwise), 4 sums each at most
        sums += [_format_sum(s, "×") for s in group[:4]] + (
            [f"  … {len(group) - 4} more ({title})"] if len(group) > 4 else []
        )
    sums.append(f"output[{y}, {x}, {c}] = {e.value:.6g}" + (f" (bias {e.bias:.6g} included)" if e.bias else ""))
    lines = [part for line in sums for part in textwrap.wrap(line, int(width * 11.5), subsequent_indent="    ")]
    rows = max(h + top + bottom, ho, *(k.shape[0] for _, k, _ in kernels))
    height = rows * cell_in + 1.4 + 0.2 * len(lines)
    fig = new_figure(figsize=(width, height), dpi=DPI)
    axes = np.atleast_1d(fig.subplots(1, len(widths), gridspec_kw={"width_ratios": widths}))
    for ax, ch in zip(axes, shown):
        _input_panel(ax, e, ch)
    for ax, (title, k, taps) in zip(axes[len(shown) :], kernels):
        _kernel_panel(ax, title, k, taps)
    _output_panel(axes[-1], e, done)
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=9, family="monospace", va="bottom")
    fig.suptitle(
        "\n".join(textwrap.wrap(f"{e.layer.keras_class}({e.layer.extra_repr()})", int(width * 10))), fontsize=9
    )
    fig.subplots_adjust(
        left=0.02, right=0.98, top=1 - 0.75 / height, bottom=(0.3 + 0.2 * len(lines)) / height, wspace=0.25
    )
    return fig


def _kernel_panel(ax: Any, title: str, k: np.ndarray, used: set) -> None:
    _grid(ax, k.shape[0], k.shape[1], title)
    for i in range(k.shape[0]):
        for j in range(k.shape[1]):
            ax.text(j, i, f"{k[i, j]:.3g}", ha="center", va="center", fontsize=7, color=KERNEL)
            if (i, j) in used:
                _box(ax, i, j, KERNEL, fill=True, alpha=0.12)


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


def _box(
    ax: Any, y: float, x: float, color: str, fill: bool = False, hatch: str | None = None, alpha: float = 1.0
) -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle(
            (x - 0.5, y - 0.5),
            1,
            1,
            fill=fill,
            facecolor=color if fill else "none",
            clip_on=False,
            edgecolor=color if not fill else "#bbbbbb",
            lw=2.2 if not fill else 0.5,
            hatch=hatch,
            alpha=alpha,
        )
    )


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


def _scatter_caption(sr: ScatterRun, index: int) -> list[str]:
    """What one frame of ``scatter_figure`` says: where the input scatters, what it adds, and at the end the crop."""
    run, step = sr.run, sr.steps[index]
    cin = run.input.shape[2]
    rows, cols, mo = step.canvas.shape
    shown_out = list(range(min(mo, 2)))
    iy, ix = step.input_pos
    values = " + ".join(f"{v:.3g}×kernel[:, :, m, {c}]" for c, v in enumerate(step.values[:4]))
    (r0, r1), (c0, c1) = sr.output_window
    oy, ox = sr.offset
    rs, cs = [r for _, _, r, _ in step.taps], [c for _, _, _, c in step.taps]
    lines = [
        f"input ({iy}, {ix}) scatters value × kernel onto rows {min(rs) - oy}..{max(rs) - oy}, "
        f"columns {min(cs) - ox}..{max(cs) - ox} of the full scatter: out m += {values}" + (" + …" if cin > 4 else "")
    ]
    for m in shown_out:
        block = "; ".join(" ".join(f"{v:.4g}" for v in row) for row in step.contribution[:, :, m])
        lines.append(f"out {m} += [{block}]")
    crop = (r0, rows - r1, c0, cols - c1)
    if index == len(sr.steps) - 1:
        lines.append(
            "done: the output is the framed part of the sums"
            + (" plus the bias" if run.config.use_bias else "")
            + (f"; 'same' cropped (top, bottom, left, right) = {crop}" if any(crop) else "")
            + (
                "; 'op': a row/column output_padding adds, which no input reaches"
                if run.config.output_padding and any(n > f for n, f in zip((rows, cols), sr.full))
                else ""
            )
            + " -- equal to the layer's output"
        )
    return lines


def scatter_figure(sr: ScatterRun, index: int) -> Any:
    """One frame of a transposed convolution: input position ``index`` adds value × kernel into
    the output window it lands on; the canvas (the full scatter) fills in, what 'same' crops
    hatched, the layer's output framed in blue."""
    run, step = sr.run, sr.steps[index]
    h, w, cin = run.input.shape
    rows, cols, mo = step.canvas.shape
    kh, kw = run.config.kernel_size
    shown_in, shown_out = list(range(min(cin, 3))), list(range(min(mo, 2)))
    widths = [w] * len(shown_in) + [kw] * len(shown_out) + [cols] * len(shown_out)
    cell_in = 0.42
    width = max(9.0, sum(widths) * cell_in + 0.5 * len(widths) + 1.0)
    iy, ix = step.input_pos
    lines = _scatter_caption(sr, index)
    lines = [part for line in lines for part in textwrap.wrap(line, int(width * 11.5), subsequent_indent="    ")]
    height = max(h, rows, kh) * cell_in + 1.4 + 0.2 * len(lines)
    fig = new_figure(figsize=(width, height), dpi=DPI)
    axes = np.atleast_1d(fig.subplots(1, len(widths), gridspec_kw={"width_ratios": widths}))
    for ax, c in zip(axes, shown_in):
        _grid(ax, h, w, f"input channel {c}")
        for y in range(h):
            for x in range(w):
                ax.text(x, y, f"{run.input[y, x, c]:.3g}", ha="center", va="center", fontsize=7)
                if y * w + x < index:
                    _box(ax, y, x, READ, fill=True, alpha=0.12)
        _box(ax, iy, ix, READ)
    for ax, m in zip(axes[len(shown_in) :], shown_out):
        _grid(ax, kh, kw, f"adds to out {m}")
        for i in range(kh):
            for j in range(kw):
                ax.text(j, i, f"{step.contribution[i, j, m]:.4g}", ha="center", va="center", fontsize=7, color=KERNEL)
    for ax, m in zip(axes[len(shown_in) + len(shown_out) :], shown_out):
        _canvas_panel(ax, sr, index, m)
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=9, family="monospace", va="bottom")
    title = f"{run.layer.keras_class}({run.layer.extra_repr()}) -- each input position scatters, one at a time"
    fig.suptitle("\n".join(textwrap.wrap(title, int(width * 10))), fontsize=9)
    fig.subplots_adjust(
        left=0.02, right=0.98, top=1 - 0.75 / height, bottom=(0.3 + 0.2 * len(lines)) / height, wspace=0.25
    )
    return fig


def _canvas_panel(ax: Any, sr: ScatterRun, index: int, m: int) -> None:
    """Output channel ``m``'s full scatter after input position ``index``: the sums so far, the
    window this position lands on (red), what 'same' crops (hatched), the output (blue frame)."""
    from matplotlib.patches import Rectangle

    step = sr.steps[index]
    rows, cols, _ = step.canvas.shape
    (r0, r1), (c0, c1) = sr.output_window
    touched = np.zeros((rows, cols), dtype=bool)
    for earlier in sr.steps[: index + 1]:
        for _, _, r, c in earlier.taps:
            touched[r, c] = True
    (oy, ox), cropped = sr.offset, (r0, rows - r1, c0, cols - c1)
    _grid(ax, rows, cols, f"output channel {m}" + (" (full scatter)" if any(cropped) else ""))
    for r in range(rows):
        for c in range(cols):
            if not (r0 <= r < r1 and c0 <= c < c1):
                _box(ax, r, c, CROP, fill=True, hatch="\\\\")
            elif not (oy <= r < oy + sr.full[0] and ox <= c < ox + sr.full[1]):  # past the full scatter
                _box(ax, r, c, PADDING, fill=True, hatch="..")
                ax.text(c, r, "op", ha="center", va="center", fontsize=6, color="#777777")
            if touched[r, c]:
                ax.text(c, r, f"{step.canvas[r, c, m]:.4g}", ha="center", va="center", fontsize=7)
    for _, _, r, c in step.taps:
        _box(ax, r, c, READ)
    ax.add_patch(
        Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, edgecolor=CURRENT, lw=2.5, clip_on=False)
    )


def scatter_frames(run: LayerRun) -> Iterator[tuple[tuple[int, int], Any]]:
    """(input position, figure) for every input position of a transposed convolution."""
    sr = scatter(run)
    for index, step in enumerate(sr.steps):
        yield step.input_pos, scatter_figure(sr, index)


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


# A GIF holds every frame: beyond this it is no picture to look at, and drawing it takes many
# minutes (about a second a frame on a laptop CPU) and its frames' memory.
MAX_GIF_BYTES = 10 * 2**20
LATER_FRAME_SHARE = (
    0.4  # measured: a later frame, stored as its difference from the one before, takes ~0.37 of the first
)
SMALLEST_FRAME_BYTES = 6_000  # a later frame of the smallest figure (9 inches wide): the floor of the estimate


@dataclass(frozen=True)
class GifEstimate:
    frames: int
    bytes: int  # the GIF's estimated size
    seconds: float | None  # estimated drawing time (None: not measured)

    def describe(self) -> str:
        took = f", about {self.seconds / 60:.0f} min to draw" if self.seconds and self.seconds >= 60 else ""
        about = "about" if self.seconds is not None else "at least"  # not drawn: the smallest frames' size
        return f"{self.frames:,} frames, {about} {self.bytes / 2**20:.1f} MiB{took}"


def gif_frame_count(run: LayerRun) -> int:
    """Frames of ``save_gif``'s animation: every output cell (every input position for a transpose)."""
    return run.input.shape[0] * run.input.shape[1] if run.config.kind == "transpose" else run.output.size


def estimate_gif(run: LayerRun) -> GifEstimate:
    """The GIF's size, from its first frame drawn and encoded (later frames are stored as differences)."""
    from PIL import Image

    frames = gif_frame_count(run)
    if frames * SMALLEST_FRAME_BYTES > MAX_GIF_BYTES:  # too large whatever the frames hold: not drawn
        return GifEstimate(frames, frames * SMALLEST_FRAME_BYTES, None)
    start = time.perf_counter()
    figure = (
        next(scatter_frames(run))[1] if run.config.kind == "transpose" else frame_figure(explain_cell(run, (0, 0, 0)))
    )
    image = _palette(Image.open(io.BytesIO(_png_bytes(figure))))
    seconds = time.perf_counter() - start
    buffer = io.BytesIO()
    image.save(buffer, format="GIF")
    first = len(buffer.getvalue())
    return GifEstimate(frames, int(first + (frames - 1) * first * LATER_FRAME_SHARE), seconds * frames)


def _palette(image: Any) -> Any:
    from PIL import Image

    return image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)


def save_gif(
    run: LayerRun, path: str | Path, ms_per_frame: int = 900, progress: Callable[[int, int], None] | None = None
) -> Path:
    """Every output cell in turn -- every input position for a transposed convolution, which
    scatters -- as an animated GIF (palette images, looping), written atomically. An animation
    estimated over ``MAX_GIF_BYTES`` is refused before it is drawn, with its estimate;
    ``progress(done, total)`` is called after each frame is drawn."""
    from PIL import Image

    estimate = estimate_gif(run)
    if estimate.bytes > MAX_GIF_BYTES:
        raise ValueError(
            f"the GIF would be too large: {estimate.describe()} (one frame per "
            f"{'input position' if run.config.kind == 'transpose' else 'output cell'}), more than "
            f"{MAX_GIF_BYTES / 2**20:.0f} MiB; choose a smaller example (`input_size`, `filters`), "
            "or `save_png` for one cell"
        )
    figures = scatter_frames(run) if run.config.kind == "transpose" else frames(run)
    palette = []
    for done, (_, fig) in enumerate(figures, 1):
        palette.append(_palette(Image.open(io.BytesIO(_png_bytes(fig)))))  # 1 byte a pixel held, not 3
        if progress is not None:
            progress(done, estimate.frames)

    def write(tmp: str) -> None:
        palette[0].save(
            tmp, format="GIF", save_all=True, append_images=palette[1:], duration=ms_per_frame, loop=0, optimize=True
        )

    return atomic_write(path, write)
