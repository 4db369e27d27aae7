"""An inspection as PNG files (``cnnlab inspect --png DIR``): a labelled grid of feature maps per
stage (channels ordered by mean activation, capped, the count said), Grad-CAM over the image,
and the first layer's filters as RGB tiles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ...figures import save_figure, subplots


def heat_colors(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as RGB uint8 on a blue-to-red ramp (no matplotlib needed)."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0, 1)[..., None]
    stops = np.array([[0, 0, 96], [0, 96, 255], [0, 220, 160], [255, 230, 0], [220, 20, 20]], dtype=np.float64)
    position = v[..., 0] * (len(stops) - 1)
    low = np.clip(np.floor(position).astype(int), 0, len(stops) - 2)
    t = (position - low)[..., None]
    return np.round(stops[low] * (1 - t) + stops[low + 1] * t).astype(np.uint8)


def heat_overlay(pixels: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image (HxWx3 or HxWx1 uint8) with the heat map blended over it."""
    rgb = pixels if pixels.shape[-1] == 3 else np.repeat(pixels[..., :1], 3, axis=-1)
    return np.round(rgb * (1 - alpha) + heat_colors(cam) * alpha).astype(np.uint8)


def file_part(name: str) -> str:
    """A module or image name as a safe piece of a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "x"


def mosaic(tiles: np.ndarray, gap: int = 1) -> tuple[np.ndarray, int, list[tuple[int, int]]]:
    """(N, h, w[, 3]) tiles in a near-square grid with NaN (or white) gaps: (mosaic, columns, tile corners)."""
    n, h, w = tiles.shape[:3]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    shape = (rows * (h + gap) - gap, cols * (w + gap) - gap) + tiles.shape[3:]
    out = np.full(shape, np.nan if tiles.ndim == 3 else 255, dtype=np.float64 if tiles.ndim == 3 else np.uint8)
    corners = []
    for i, tile in enumerate(tiles):
        y, x = (i // cols) * (h + gap), (i % cols) * (w + gap)
        out[y : y + h, x : x + w] = tile
        corners.append((y, x))
    return out, cols, corners


def _grid_figure(
    picture: np.ndarray,
    cols: int,
    tile_width: int,
    labels: list[str],
    corners: list[tuple[int, int]],
    title: str,
    **imshow: Any,
) -> Any:
    """One image of tiles, each labelled at its top-left corner."""
    height, width = picture.shape[:2]
    inches = min(10.0, max(3.0, 1.25 * cols))
    fig, ax = subplots(figsize=(inches, inches * height / width + 0.6), dpi=100)
    ax.imshow(picture, interpolation="nearest", **imshow)
    size = 6 if cols > 4 else 7
    for (y, x), label in zip(corners, labels):
        ax.text(x, y - 0.5, label, fontsize=size, va="bottom", ha="left", clip_on=False)
    ax.set_title(title, fontsize=8, pad=12)
    ax.axis("off")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.9)
    return fig


def stage_png(inspection: Any, stage: Any, path: Path, max_channels: int) -> Path:
    """One stage's maps as a grid, most active channel first, each labelled with its index and mean."""
    from matplotlib import colormaps

    maps = inspection.features[stage.name]
    order = inspection.channel_order(stage.name)[:max_channels]
    lo, hi = float(maps[order].min()), float(maps[order].max())
    picture, cols, corners = mosaic(maps[order], gap=max(1, maps.shape[-1] // 8))
    colours = colormaps["viridis"].with_extremes(bad="white")
    total = maps.shape[0]
    shown = f"{len(order)} of {total} channels" if len(order) < total else f"all {total} channels"
    title = f"{stage.title}\n{'x'.join(map(str, maps.shape))}: {shown}, by mean activation (range {lo:.3g}..{hi:.3g})"
    labels = [f"{c}: {maps[c].mean():.3g}" for c in order]
    fig = _grid_figure(
        picture, cols, maps.shape[-1], labels, corners, title, cmap=colours, vmin=lo, vmax=hi if hi > lo else lo + 1
    )
    return save_figure(fig, path)


def gradcam_png(inspection: Any, target: int, layer: str, path: Path) -> Path:
    cam = inspection.gradcam(target, layer)
    fig, axes = subplots(1, 2, figsize=(6, 3.3), dpi=100)
    for ax, picture, title in zip(
        axes,
        (inspection.pixels, heat_overlay(inspection.pixels, cam)),
        ("the model's input", f"Grad-CAM: {inspection.classes[target]}"),
    ):
        ax.imshow(picture.squeeze(), cmap="gray" if picture.shape[-1] == 1 else None, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    p = inspection.probabilities[target]
    fig.suptitle(f"{inspection.subject.name}\nat {layer}; p({inspection.classes[target]}) = {p:.1%}", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def filter_tiles(kernels: np.ndarray) -> np.ndarray:
    """(M, kh, kw, 3) kernels as uint8 RGB tiles: each filter scaled on its own, 0 at mid-gray."""
    peak = np.abs(kernels).reshape(len(kernels), -1).max(axis=1).reshape(-1, 1, 1, 1)
    return np.round(127.5 + 127.5 * kernels / np.where(peak > 0, peak, 1)).astype(np.uint8)


def filters_png(inspection: Any, path: Path) -> Path | None:
    kernels = inspection.first_filters()
    if kernels is None:
        return None
    kh, kw = kernels.shape[1:3]
    scale = max(1, 12 // max(kh, kw))  # tiny kernels (DenseNet's 1x1 stem) drawn as 12-px squares
    tiles = np.repeat(np.repeat(filter_tiles(kernels), scale, axis=1), scale, axis=2)
    picture, cols, corners = mosaic(tiles, gap=max(1, tiles.shape[2] // 4))
    title = f"first layer: {len(tiles)} filters {kh}x{kw}x3 as RGB (each scaled on its own, 0 = gray)"
    return save_figure(_grid_figure(picture, cols, kw, [str(i) for i in range(len(tiles))], corners, title), path)


def save_pngs(
    inspection: Any, directory: str | Path, prefix: str | None, target: int, layer: str, max_channels: int = 32
) -> list[Path]:
    """Every picture of one inspection in ``directory``: ``PREFIX-gradcam.png``, ``PREFIX-filters.png``
    and ``PREFIX-NN-STAGE.png`` per stage."""
    if isinstance(max_channels, bool) or not isinstance(max_channels, int) or max_channels < 1:
        raise ValueError(f"max_channels must be a positive int, got {max_channels!r}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    prefix = file_part(prefix or Path(inspection.image_name).stem)
    written = [gradcam_png(inspection, target, layer, out / f"{prefix}-gradcam.png")]
    filters = filters_png(inspection, out / f"{prefix}-filters.png")
    written += [filters] if filters is not None else []
    for i, stage in enumerate(inspection.stages):
        name = stage.unit.conv if stage.unit is not None else stage.name
        written.append(stage_png(inspection, stage, out / f"{prefix}-{i:02d}-{file_part(name)}.png", max_channels))
    return written
