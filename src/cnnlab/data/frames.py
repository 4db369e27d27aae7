"""Images kept in their own framing (``DataConfig.cache_size``): every image of a folder is cached
with its shorter side at ``cache_size`` pixels and its aspect ratio kept (torchvision's
``Resize(cache_size)``), so that training crops from the whole photo -- the random-resized
crop of ImageNet training -- instead of from a fixed resize, and evaluation sees the central
87.5% at the model's input size (``Resize(256)`` then ``CenterCrop(224)`` for ``cache_size=256``
and a 224-pixel input: then the view is a plain crop, no second resampling).

On disk, a split is ``<split>_pixels.bin`` (the images back to back, HWC uint8, appended as they
are decoded) and ``<split>_frames.npy`` (one ``offset, height, width`` row per image). The
trainer reads a batch's images with ``pread`` into one flat buffer (:class:`Frames` once on the
device), and crops each on the device; anything else sees :class:`FramedRows` as an ordinary
uint8 ``(N, H, W, 3)`` array of center views.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .rowfile import FileReader, LazyRows

EVAL_CROP = 0.875  # evaluation's center crop, as a fraction of the shorter side (timm's crop_pct)


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """(height, width) with the shorter side at ``short`` and the longer one scaled to keep the
    aspect ratio, rounded down (torchvision's ``Resize(short)``)."""
    if height <= width:
        return short, int(short * width / height)
    return int(short * height / width), short


def resize_short_side(image, short: int):
    """A PIL image with its shorter side at ``short`` (bilinear, antialiased as PIL resizes)."""
    from PIL import Image

    h, w = short_side_size(image.height, image.width, short)
    return image if (h, w) == (image.height, image.width) else image.resize((w, h), Image.Resampling.BILINEAR)


def default_input_size(cache_size: int) -> int:
    """The model input that a cache of shorter side ``cache_size`` is made for: 224 for 256."""
    return math.floor(cache_size * EVAL_CROP)


def center_box(height: int, width: int, size: tuple[int, int], crop: float = EVAL_CROP) -> tuple[int, int, int, int]:
    """(top, left, h, w) of the center view of a ``height x width`` image for an input of ``size``:
    the largest box of the input's aspect ratio, scaled by ``crop``, centered as torchvision's
    ``CenterCrop`` centers (``round((height - h) / 2)``)."""
    scale = crop * min(height / size[0], width / size[1])
    h, w = min(height, max(1, round(size[0] * scale))), min(width, max(1, round(size[1] * scale)))
    return int(round((height - h) / 2)), int(round((width - w) / 2)), h, w


@dataclass
class Frames:
    """A batch of images of different sizes: ``pixels`` holds them back to back (HWC uint8, on any
    device); ``table`` (CPU, int64) one ``offset, height, width`` row per image; ``size`` is the
    model's input (H, W) that crops are resized to."""

    pixels: torch.Tensor
    table: np.ndarray
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.table)

    @property
    def heights(self) -> list[int]:
        return self.table[:, 1].tolist()

    @property
    def widths(self) -> list[int]:
        return self.table[:, 2].tolist()

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as a uint8 (3, h, w) view of ``pixels``."""
        offset, h, w = (int(v) for v in self.table[i])
        return self.pixels[offset : offset + h * w * 3].view(h, w, 3).permute(2, 0, 1)

    def crops(self, boxes) -> torch.Tensor:
        """Each image's box (top, left, h, w) resized to ``size``: float (n, 3, H, W) on the
        pixels' device, 0-255 (bilinear, antialiased when shrinking, as torchvision's ``resized_crop``)."""
        out = torch.empty((len(self), 3, *self.size), dtype=torch.float32, device=self.pixels.device)
        for i, (top, left, h, w) in enumerate(np.asarray(boxes).tolist()):
            crop = self.image(i)[:, top : top + h, left : left + w].float()[None]
            out[i] = (
                crop[0]
                if (h, w) == tuple(self.size)
                else F.interpolate(crop, size=self.size, mode="bilinear", align_corners=False, antialias=True)[0]
            )
        return out

    def center_boxes(self, crop: float = EVAL_CROP) -> np.ndarray:
        return np.array(
            [center_box(h, w, self.size, crop) for h, w in zip(self.heights, self.widths)], dtype=np.int64
        ).reshape(-1, 4)

    def center(self, crop: float = EVAL_CROP) -> torch.Tensor:
        """Every image's center view at ``size``: float (n, 3, H, W), 0-255."""
        return self.crops(self.center_boxes(crop))


def center_views(images: list[np.ndarray], size: tuple[int, int], crop: float = EVAL_CROP) -> torch.Tensor:
    """The center views of HWC uint8 images of any sizes: uint8 (n, H, W, 3), as evaluation sees them."""
    table, offset = [], 0
    for image in images:
        table.append((offset, image.shape[0], image.shape[1]))
        offset += image.size
    pixels = torch.from_numpy(
        np.concatenate([np.ascontiguousarray(i).reshape(-1) for i in images]) if images else np.zeros(0, np.uint8)
    )
    return _uint8(Frames(pixels, np.array(table, dtype=np.int64).reshape(-1, 3), (size[0], size[1])).center(crop))


def _uint8(views: torch.Tensor) -> torch.Tensor:
    """Float NCHW 0-255 views as uint8 NHWC, rounded."""
    return views.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class FrameWriter:
    """A new split of variable-size images: ``write(row, image)`` appends the pixels (in decode
    order) and notes where row ``row`` lies; ``close`` writes the table. One image in memory at a time."""

    def __init__(self, directory: str | Path, split: str, rows: int) -> None:
        self.pixels_path = Path(directory) / f"{split}_pixels.bin"
        self.table_path = Path(directory) / f"{split}_frames.npy"
        self.table = np.full((rows, 3), -1, dtype=np.int64)
        self.file = open(self.pixels_path, "wb")
        self.offset = 0

    def write(self, row: int, image: np.ndarray) -> None:
        data = np.ascontiguousarray(image, dtype=np.uint8)
        if data.ndim != 3 or data.shape[2] != 3:
            raise ValueError(f"row {row}: expected an (H, W, 3) image, got {data.shape}")
        self.file.write(data.tobytes())
        self.table[row] = (self.offset, data.shape[0], data.shape[1])
        self.offset += data.nbytes

    def close(self) -> None:
        if self.file.closed:
            return
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        if (self.table[:, 0] >= 0).all():  # else the decode failed part way: no table, so no cache
            np.save(self.table_path, self.table)


class FrameFile(FileReader):
    """A cached split of variable-size images, read image by image with ``pread`` (thread-safe)."""

    def __init__(self, directory: str | Path, split: str) -> None:
        super().__init__(Path(directory) / f"{split}_pixels.bin")
        self.table = np.load(Path(directory) / f"{split}_frames.npy")
        if self.table.dtype != np.int64 or self.table.ndim != 2 or self.table.shape[1] != 3:
            raise ValueError(
                f"{split}_frames.npy: expected an (N, 3) int64 table, got {self.table.dtype} {self.table.shape}"
            )
        ends = self.table[:, 0] + self.table[:, 1] * self.table[:, 2] * 3
        size = self.path.stat().st_size
        if len(ends) and (int(ends.max()) > size or int(self.table.min()) < 0):
            raise ValueError(f"{self.path} is truncated: {size:,} bytes, the table needs {int(ends.max()):,}")

    def __len__(self) -> int:
        return len(self.table)

    def read(self, rows: np.ndarray, buffer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The images ``rows`` back to back: (pixels, table of ``offset, height, width`` within
        them, the buffer used -- ``buffer`` itself when it was large enough, else a larger one)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self.table)):
            raise IndexError(f"rows outside 0..{len(self.table) - 1}")
        found = self.table[rows]
        sizes = found[:, 1] * found[:, 2] * 3
        total = int(sizes.sum())
        if buffer is None or len(buffer) < total:
            buffer = np.empty(max(total, int(1.25 * len(buffer))) if buffer is not None else total, dtype=np.uint8)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(rows) else np.zeros(0, np.int64)
        view = buffer.data
        self.read_spans(
            [(view[a : a + n], offset) for a, n, offset in zip(starts.tolist(), sizes.tolist(), found[:, 0].tolist())]
        )
        table = np.stack([starts, found[:, 1], found[:, 2]], axis=1) if len(rows) else np.zeros((0, 3), np.int64)
        return buffer[:total], table, buffer


class FramedRows(LazyRows):
    """Images of a :class:`FrameFile` chosen by index, read only when asked
    (:class:`~.rowfile.LazyRows`). To everything that treats it as an array it is uint8
    ``(N, H, W, 3)`` of center views at the input ``size`` (evaluation's view); :meth:`frames`
    gives the trainer the images in their own framing."""

    def __init__(
        self, file: FrameFile, size: tuple[int, int], rows: np.ndarray | None = None, crop: float = EVAL_CROP
    ) -> None:
        height, width = size
        self.file, self.size, self.crop = file, (height, width), crop
        self.rows = np.arange(len(file)) if rows is None else np.asarray(rows, dtype=np.int64)
        self._local = threading.local()  # each thread's reusable read buffer

    row_shape = property(lambda self: (*self.size, 3))

    @property
    def short_side(self) -> int:
        """The images' shorter side in the cache (the ``cache_size`` they were decoded at)."""
        return int(np.minimum(self.file.table[:, 1], self.file.table[:, 2]).max()) if len(self.file) else 0

    def frames(self, index, buffer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The images at ``index`` in their own framing: (pixels, table, buffer) as :meth:`FrameFile.read`."""
        return self.file.read(self.rows[np.asarray(index, dtype=np.int64)], buffer)

    def read_into(self, index, out: np.ndarray, scratch=None) -> np.ndarray:
        """The center views of the images at ``index`` into ``out[:len(index)]`` (uint8)."""
        pixels, table, self._local.buffer = self.frames(index, getattr(self._local, "buffer", None))
        views = _uint8(Frames(torch.from_numpy(pixels), table, self.size).center(self.crop))
        n = len(table)
        out[:n] = views.numpy()
        return out[:n]

    def _on(self, rows: np.ndarray) -> FramedRows:
        return FramedRows(self.file, self.size, rows, self.crop)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.uint8)
        for start in range(0, len(self.rows), 256):
            index = np.arange(start, min(start + 256, len(self.rows)))
            self.read_into(index, out[start : start + len(index)])
        return out if dtype is None else out.astype(dtype)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_local")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
