"""Datasets as uint8 arrays: CIFAR-10/100 from the official archives or image folders, any
image folder, decoded once and cached; train/validation splits.

    >>> splits = load_splits("cifar10", data_dir="path/to/cifar10", val_split=None)  # doctest: +SKIP
    >>> splits.train.images.shape, splits.validation                                 # doctest: +SKIP
    ((50000, 32, 32, 3), 'test')
"""

from __future__ import annotations

from .config import DataConfig
from .dataset import DataSplits, ImageDataset, make_splits
from .errors import DataError
from .progress import DataProgress, TerminalProgress
from .sources import cache_dir, load_dataset, locate
from .splits import load_splits

__all__ = [
    "DataConfig",
    "DataError",
    "DataProgress",
    "DataSplits",
    "ImageDataset",
    "TerminalProgress",
    "cache_dir",
    "load_dataset",
    "load_splits",
    "locate",
    "make_splits",
]
