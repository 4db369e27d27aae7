"""Small image folders on disk for tests that go through the data loaders and the command line."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def image_folder(root: Path, classes=("dark", "light"), per_class: int = 8, size: int = 8, splits=("train",)) -> Path:
    """``root/<split>/<class>/<i>.png``: plain images whose colour tells the class apart."""
    for split in splits:
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.new("RGB", (size, size), (30 + 180 * c + i, 40 + 9 * c, 50)).save(
                    root / split / name / f"{i}.png"
                )
    return root
