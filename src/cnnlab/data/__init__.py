"""Datasets as uint8 arrays: CIFAR-10/100 from the official archives or image folders, any
image folder, decoded once and cached; train/validation splits.

    >>> splits = load_splits("cifar10", data_dir="../shared/datasets", val_split=None)  # doctest: +SKIP
    >>> splits.train.images.shape, splits.validation                                 # doctest: +SKIP
    ((50000, 32, 32, 3), 'test')
"""

from __future__ import annotations

from pathlib import Path

from .dataset import DataSplits, ImageDataset, make_splits
from .errors import DataError
from .sources import cache_dir, load_dataset

__all__ = ["DataError", "DataSplits", "ImageDataset", "cache_dir", "load_dataset", "load_splits", "make_splits"]


def load_splits(
    name: str,
    data_dir: str | Path | None = None,
    val_split: float | None = None,
    image_size: tuple[int, int] | None = None,
    limit_train: int | None = None,
    seed: int = 0,
    download: bool = True,
    limit_val: int | None = None,
) -> DataSplits:
    """Train / validation (/ test) for a run: validation is the test set (``val_split=None``,
    what article 000 did; an image folder's ``val/`` when it has one) or a stratified ``val_split`` fraction of train; ``limit_train``
    keeps a class-balanced subset of the training images, ``limit_val`` of the validation images."""
    splits = load_dataset(name, data_dir, image_size, download=download)
    train = splits.get("train", splits.get("all"))
    if "val" in splits and val_split is None:  # an image folder with its own val/ split
        data = DataSplits(train, splits["val"], splits.get("test"), "val", str(data_dir or name))
    else:
        data = make_splits(train, splits.get("test"), val_split, seed, source=str(data_dir or name))
    data.train = data.train.limit(limit_train, seed)
    data.val = data.val.limit(limit_val, seed)
    return data
