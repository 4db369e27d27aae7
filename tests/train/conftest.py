"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest
from PIL import Image


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = tmp_path / "shapes"
    for split, n in (("train", 24), ("test", 8)):
        for c, name in enumerate(("dark", "light")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (16, 16), (30 + 180 * c + i, 40 + 180 * c, 50 + 150 * c)).save(
                    root / split / name / f"{i}.png"
                )
    return root
