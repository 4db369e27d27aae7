"""Files cnnlab writes get the user's usual permissions (not mkstemp's 0600), and
``$CNNLAB_DATA`` may name the archive itself."""

from __future__ import annotations

import os
import stat
import tarfile

from PIL import Image

from cnnlab.data import load_dataset
from cnnlab.io import atomic_write_text


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_results_and_cache_follow_the_umask(tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        assert mode(atomic_write_text(tmp_path / "r.json", "{}")) == 0o644
        monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
        root = tmp_path / "imgs"
        for c, name in enumerate(("a", "b")):
            (root / "train" / name).mkdir(parents=True)
            Image.new("RGB", (4, 4), (90 * c, 0, 0)).save(root / "train" / name / "0.png")
        load_dataset("pets", root)
        [cached] = (tmp_path / "cache" / "decoded").iterdir()
        assert mode(cached) == 0o755 and all(mode(f) == 0o644 for f in cached.iterdir())
        os.umask(0o077)
        assert mode(atomic_write_text(tmp_path / "private.json", "{}")) == 0o600
    finally:
        os.umask(old)


def test_cnnlab_data_may_name_the_archive_file(tmp_path, monkeypatch):
    root = tmp_path / "imgs" / "data"
    for split in ("train", "test"):
        for c, name in enumerate("abcdefghij"):  # ten classes: a copy of cifar10 (any other count is refused)
            (root / split / name).mkdir(parents=True)
            Image.new("RGB", (4, 4), (25 * c, 0, 0)).save(root / split / name / "0.png")
    archive = tmp_path / "my-cifar10.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="data")
    monkeypatch.setenv("CNNLAB_DATA", str(archive))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)  # no ../shared/datasets to fall back on
    splits = load_dataset("cifar10", download=False)
    assert len(splits["train"]) == 10 and (tmp_path / "xdg" / "cnnlab" / "decoded").is_dir()
