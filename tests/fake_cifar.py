"""A CIFAR-10 look-alike small enough for the command-line tests: an image-folder tree with
CIFAR-10's ten class names (train/ and test/), 32x32 PNGs whose colour tells the class apart."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def fake_cifar10(root: Path, train: int = 4, test: int = 2, size: int = 32) -> Path:
    """``root/train/<class>/<i>.png`` and ``root/test/<class>/<i>.png``; returns ``root``."""
    for split, n in (("train", train), ("test", test)):
        for c, name in enumerate(CIFAR10_CLASSES):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                colour = (25 * c, 255 - 25 * c, (60 * c + 7 * i) % 256)
                Image.new("RGB", (size, size), colour).save(root / split / name / f"{i}.png")
    return root
