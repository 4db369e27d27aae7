"""The splits of one run: load a dataset, choose its validation images, take subsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import memory
from .dataset import DataSplits, make_splits
from .progress import DataProgress
from .sources import load_dataset


def load_splits(
    name: str,
    data_dir: str | Path | None = None,
    val_split: float | None = None,
    image_size: tuple[int, int] | None = None,
    limit_train: int | None = None,
    seed: int = 0,
    download: bool = True,
    limit_val: int | None = None,
    stream: bool | None = None,
    cache_size: int | None = None,
    progress: DataProgress | None = None,
) -> DataSplits:
    """Train / validation (/ test) for a run: validation is the test set (``val_split=None``,
    what article 000 did; an image folder's ``val/`` when it has one) or a stratified ``val_split``
    fraction of train; ``limit_train``
    keeps a class-balanced subset of the training images, ``limit_val`` of the validation images.
    ``stream``: leave the images in the decoded cache, read batch by batch while training
    (None: when they would take more than a quarter of this machine's memory); else in memory.
    ``cache_size``: image folders keep their own framing (:mod:`~.frames`), always read batch by batch.
    ``progress``: told of a decode's progress and of notices (default: a bar on a terminal)."""
    splits = load_dataset(name, data_dir, image_size, download=download, cache_size=cache_size, progress=progress)
    train = splits["train"] if "train" in splits else splits["all"]
    if "val" in splits and val_split is None:  # an image folder with its own val/ split
        data = DataSplits(train, splits["val"], splits.get("test"), "val", str(data_dir or name))
    else:
        data = make_splits(train, splits.get("test"), val_split, seed, source=str(data_dir or name))
    data.origin = splits.origin
    data.train = data.train.limit(limit_train, seed)
    data.val = data.val.limit(limit_val, seed)
    if stream is None:
        stream = should_stream(data)
    if not stream:
        memory.check_memory(_in_memory(data), "holding the images in memory", "leave them on disk: `stream=True`")
        for part in ("train", "val", "test"):
            dataset = getattr(data, part)
            if dataset is not None and dataset.mapped and not dataset.framed:
                dataset.images = np.asarray(dataset.images)  # the splits share none of their rows: read each once
    return data


def _in_memory(data: DataSplits) -> int:
    """Bytes the images of ``data`` take once read into memory (framed ones stay on disk)."""
    return sum(d.images.nbytes for d in (data.train, data.val, data.test) if d is not None and not d.framed)


def should_stream(data: DataSplits, fraction: float = 0.25) -> bool:
    """Whether the decoded images would take more than ``fraction`` of this machine's memory,
    or more than the memory available now."""
    total = _in_memory(data)
    available, physical = memory.available_memory(), memory.total_memory()
    return (physical is not None and total > fraction * physical) or (available is not None and total > available)
