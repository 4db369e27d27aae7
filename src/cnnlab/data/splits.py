"""The splits of one run: load a dataset, choose its validation images, take subsets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .dataset import DataSplits, make_splits
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
) -> DataSplits:
    """Train / validation (/ test) for a run: validation is the test set (``val_split=None``,
    what article 000 did; an image folder's ``val/`` when it has one) or a stratified ``val_split`` fraction of train; ``limit_train``
    keeps a class-balanced subset of the training images, ``limit_val`` of the validation images.
    ``stream``: leave the images in the decoded cache, read batch by batch while training
    (None: when they would take more than a quarter of this machine's memory); else in memory.
    ``cache_size``: image folders keep their own framing (:mod:`~.frames`), always read batch by batch."""
    splits = load_dataset(name, data_dir, image_size, download=download, cache_size=cache_size)
    train = splits.get("train", splits.get("all"))
    if "val" in splits and val_split is None:  # an image folder with its own val/ split
        data = DataSplits(train, splits["val"], splits.get("test"), "val", str(data_dir or name))
    else:
        data = make_splits(train, splits.get("test"), val_split, seed, source=str(data_dir or name))
    data.train = data.train.limit(limit_train, seed)
    data.val = data.val.limit(limit_val, seed)
    if stream is None:
        stream = should_stream(data)
    if not stream:
        for part in ("train", "val", "test"):
            dataset = getattr(data, part)
            if dataset is not None and dataset.mapped and not dataset.framed:
                dataset.images = np.asarray(dataset.images)  # the splits share none of their rows: read each once
    return data


def should_stream(data: DataSplits, fraction: float = 0.25) -> bool:
    """Whether the decoded images would take more than ``fraction`` of this machine's memory."""
    total = sum(d.images.nbytes for d in (data.train, data.val, data.test) if d is not None)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return False
    return total > fraction * memory
