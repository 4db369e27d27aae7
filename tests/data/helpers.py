"""Small datasets on disk for the data tests (test_sources.py, test_classes.py, test_cache.py):
image folders, tar archives of them, and an archive in the official CIFAR-10 layout."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, color, size=(8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def image_folder(root: Path, classes=("cat", "dog"), per_class=3, splits=("train", "test")) -> Path:
    for split in splits:
        for c, name in enumerate(classes):
            for i in range(per_class):
                write_png(root / split / name / f"{i:03d}.png", (40 * c, 10 * i, 200))
    return root


def tar_of(folder: Path, target: Path, top: str = "data") -> Path:
    with tarfile.open(target, "w:gz") as archive:
        archive.add(folder, arcname=top)
    return target


def fake_official(root: Path, n_per_batch=4) -> tuple[Path, dict]:
    """An archive in the official cifar-10-python layout, with known pixel values."""
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {
            b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, n_per_batch)],
        }
    meta = {
        b"label_names": [c.encode() for c in ("airplane automobile bird cat deer dog frog horse ship truck".split())]
    }
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, content in {**batches, "batches.meta": meta}.items():
        (folder / name).write_bytes(pickle.dumps(content))
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return archive, batches
