"""Small image folders cut from the shared CIFAR-10 copy (../shared/datasets/cifar10-jpg.tar.gz)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def cut_folder(root: Path, classes: dict[str, str], train: int, val: int) -> Path:
    """``root/train/<name>/`` and ``root/val/<name>/`` with the first ``train`` / ``val`` images of
    each CIFAR-10 class (``classes``: CIFAR class -> folder name)."""
    if not SHARED.is_file():
        pytest.fail(f"the shared CIFAR-10 copy is missing: {SHARED}")
    wanted = {("train", c): train for c in classes} | {("test", c): val for c in classes}
    taken = {key: 0 for key in wanted}
    with tarfile.open(SHARED, "r:gz") as archive:
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3:
                continue
            key = (parts[-3], parts[-2])
            if key in taken and taken[key] < wanted[key]:
                split = "train" if key[0] == "train" else "val"
                target = root / split / classes[key[1]] / parts[-1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
                taken[key] += 1
                if taken == wanted:
                    break
    assert taken == wanted, taken
    return root


@pytest.fixture(scope="session")
def folders(tmp_path_factory) -> dict[str, Path]:
    """'pretrain': 2 classes (ship, horse); 'target': 3 other classes (airplane, frog, truck)."""
    root = tmp_path_factory.mktemp("cifar-folders")
    return {
        "pretrain": cut_folder(root / "pretrain", {"ship": "ship", "horse": "horse"}, 120, 30),
        "target": cut_folder(root / "target", {"airplane": "airplane", "frog": "frog", "truck": "truck"}, 100, 50),
    }
