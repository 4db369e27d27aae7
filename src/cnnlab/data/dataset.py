"""In-memory image datasets: uint8 NHWC arrays with labels and class names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .errors import DataError
from .frames import FramedRows
from .rowfile import LazyRows, RowFile


class MappedRows(LazyRows):
    """Rows of a decoded cache file (:class:`~.rowfile.RowFile`) chosen by index, read only when
    asked (:class:`~.rowfile.LazyRows`)."""

    def __init__(self, file: RowFile, rows: np.ndarray | None = None) -> None:
        self.file = file
        self.rows = np.arange(len(file)) if rows is None else np.asarray(rows, dtype=np.int64)

    row_shape = property(lambda self: self.file.shape[1:])
    dtype = property(lambda self: self.file.dtype)

    def read_into(self, index: np.ndarray, out: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
        """Rows ``index`` into ``out[:len(index)]`` in the order asked, read in file order through
        ``scratch`` (same shape; a new one when None): a reader that refills the same buffers allocates nothing."""
        rows = self.rows[index]
        order = np.argsort(rows, kind="stable")
        n = len(rows)
        scratch = np.empty_like(out) if scratch is None else scratch
        self.file.read(rows[order], out=scratch[:n])
        out[:n][order] = scratch[:n]
        return out[:n]

    def _on(self, rows: np.ndarray) -> MappedRows:
        return MappedRows(self.file, rows)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.file.read(self.rows) if np.all(np.diff(self.rows) > 0) else self[np.arange(len(self.rows))]
        return out if dtype is None else out.astype(dtype)


@dataclass
class ImageDataset:
    """``images``: uint8 ``(N, H, W, 3)`` -- an array in memory, or :class:`MappedRows` of a
    decoded cache on disk, read batch by batch, or :class:`~.frames.FramedRows` (images in their
    own framing, seen as their center views); ``labels``: int64 ``(N,)`` indexing ``classes``."""

    images: np.ndarray | LazyRows
    labels: np.ndarray
    classes: list[str]

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise DataError(f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise DataError(f"{len(self.images)} images but labels of shape {self.labels.shape}")
        if len(self.labels) and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < len(self.classes):
            raise DataError(
                f"labels must lie in 0..{len(self.classes) - 1}, got {self.labels.min()}..{self.labels.max()}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def digest(self) -> str:
        """A short fingerprint of the data (every label, every 97th image): equal for the same images
        wherever they were read from, different for another source, subset or size."""
        h = hashlib.sha256(repr((self.images.shape, self.classes)).encode())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.images[np.arange(0, len(self), 97)]).tobytes())
        return h.hexdigest()[:16]

    @property
    def mapped(self) -> bool:
        """The images stay on disk (the decoded cache), read batch by batch."""
        return isinstance(self.images, (MappedRows, FramedRows))

    @property
    def framed(self) -> bool:
        """The images keep their own framing (``DataConfig.cache_size``): training crops from them."""
        return isinstance(self.images, FramedRows)

    def subset(self, index: np.ndarray) -> ImageDataset:
        images = self.images.select(index) if isinstance(self.images, LazyRows) else self.images[index]
        return ImageDataset(images, self.labels[index], self.classes)

    def limit(self, n: int | None, seed: int = 0) -> ImageDataset:
        """A class-balanced random subset of ``n`` images (all of them when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise DataError(f"limit must be a positive number of images, got {n}")
        order = np.random.default_rng(seed).permutation(len(self))
        # round-robin over classes keeps the subset balanced
        ranks = np.empty(len(self), dtype=np.int64)
        for c in range(len(self.classes)):
            members = order[self.labels[order] == c]
            ranks[members] = np.arange(len(members))
        keep = np.lexsort((self.labels, ranks))[:n]
        return self.subset(np.sort(keep))


@dataclass
class DataSplits:
    """What a training run consumes. ``validation`` says where ``val`` came from: ``"test"``
    (the test set doubles as validation, as article 000 did) or ``"split 0.1 of train"``;
    ``origin``: what the data is and where from (``sources.Decoded.origin``), None when built in memory."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset | None
    validation: str
    source: str
    origin: dict | None = None

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    def digest(self) -> str:
        """Fingerprint of the training and validation data (``ImageDataset.digest``)."""
        return f"{self.train.digest()}-{self.val.digest()}"

    def record(self) -> dict | None:
        """What a run records to find its data again from any directory: ``{"name", "checksum"``
        (sha256 of the decoded dataset, every split)``, "location"`` (the source, absolute; None when
        only a decoded copy was found)``, "cache"}`` (the decoded copy, absolute; either may be
        passed as ``data_dir``). None for splits built in memory."""
        return dict(self.origin) if self.origin is not None else None


def make_splits(
    train: ImageDataset,
    test: ImageDataset | None,
    val_split: float | None = None,
    seed: int = 0,
    source: str = "",
) -> DataSplits:
    """Validation from the test set (``val_split=None``) or a seeded, stratified fraction of train."""
    if val_split is None:
        if test is None:
            raise DataError(f"{source or 'the dataset'} has no test split to validate on; pass val_split (e.g. 0.1)")
        return DataSplits(train, test, test, "test", source)
    if not 0.0 < val_split < 1.0:
        raise DataError(f"val_split must be a fraction in (0, 1), got {val_split!r}")
    rng = np.random.default_rng(seed)
    val_index = []
    for c in range(len(train.classes)):
        members = np.flatnonzero(train.labels == c)
        rng.shuffle(members)
        val_index.append(members[: max(1, round(len(members) * val_split))] if len(members) > 1 else members[:0])
    val_mask = np.zeros(len(train), dtype=bool)
    val_mask[np.concatenate(val_index)] = True
    return DataSplits(train.subset(~val_mask), train.subset(val_mask), test, f"split {val_split:g} of train", source)
