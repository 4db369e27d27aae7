"""Small learnable data for search tests: four classes told apart by which quadrant is bright.

``folder`` writes it as an image-folder tree (train/, test/) for the worker processes the
multi-worker tests start through the CLI; ``splits`` is the same data in memory."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import ImageDataset, make_splits

CLASSES = ["top_left", "top_right", "bottom_left", "bottom_right"]


def quadrant_images(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    images = rng.integers(0, 70, (n, size, size, 3)).astype(np.uint8)
    h = size // 2
    for i, c in enumerate(labels):
        y, x = divmod(int(c), 2)
        images[i, y * h : (y + 1) * h, x * h : (x + 1) * h] += 150
    return images, labels.astype(np.int64)


@pytest.fixture(scope="session")
def splits():
    train = ImageDataset(*quadrant_images(160, seed=1), CLASSES)
    test = ImageDataset(*quadrant_images(64, seed=2), CLASSES)
    return make_splits(train, test, source="quadrants")


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("quadrants")
    for split, n, seed in (("train", 160, 1), ("test", 64, 2)):
        images, labels = quadrant_images(n, seed=seed)
        for c in CLASSES:
            (root / split / c).mkdir(parents=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(image).save(root / split / CLASSES[label] / f"{i}.png")
    return root


@pytest.fixture()
def data_cache(tmp_path, monkeypatch):
    """A private decode cache for the CLI and its worker processes (they inherit the environment)."""
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"
