"""The decoded cache: it carries a checksum of what it holds, names the disk when it is full,
refuses decodes that cannot fit in memory, leaves no temporary folder, is found again without
its source, and tells its caller how a decode goes."""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data import DataError, DataProgress, cifar, load_dataset, load_splits, locate, memory, rowfile, sources

from .helpers import fake_official, image_folder

pytestmark = pytest.mark.usefixtures("cache")  # tests/data/conftest.py: a private cache per test, no network


class Recorder(DataProgress):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def begin(self, what: str, total: int) -> None:
        self.events.append(("begin", what, total))

    def advance(self, n: int = 1) -> None:
        self.events.append(("advance", n))

    def note(self, message: str) -> None:
        self.events.append(("note", message))

    @property
    def notes(self) -> list[str]:
        return [e[1] for e in self.events if e[0] == "note"]


def only_cache(cache_root: Path) -> Path:
    [decoded] = [p for p in (cache_root / "decoded").iterdir() if not p.name.startswith(".")]
    return decoded


def test_changed_labels_are_found_and_decoded_again(tmp_path, cache):
    root = image_folder(tmp_path / "imgs", per_class=4)
    first = load_dataset("pets", root)
    decoded = only_cache(cache)
    labels = np.load(decoded / "test_labels.npy")
    np.save(decoded / "test_labels.npy", labels[::-1].copy())  # valid labels, wrong images
    told = Recorder()
    again = load_dataset("pets", root, progress=told)
    np.testing.assert_array_equal(again["test"].labels, first["test"].labels)
    assert any("test_labels.npy" in n and "decoding it again" in n for n in told.notes), told.notes
    np.testing.assert_array_equal(np.load(decoded / "test_labels.npy"), labels)  # repaired
    assert len(json.loads((decoded / "meta.json").read_text())["checksum"]) == 64


def test_a_cache_another_process_just_wrote_is_kept_for_its_readers(tmp_path, cache, monkeypatch):
    """Two torchrun ranks decode the same folder at once: rank B looks (nothing there), rank A writes
    the cache and reads it, then B finishes its decode. B must keep A's copy (A's reader holds its
    files), not move it aside and put its own in its place."""
    root = image_folder(tmp_path / "imgs", per_class=4)
    load_dataset("pets", root)  # rank A: decoded and being read
    decoded = only_cache(cache)
    a_copy = os.stat(decoded / "train_images.npy").st_ino
    real_load, looks = sources.cache.load, []

    def b_looked_before_a_finished(directory, view=None):
        looks.append(directory)
        return (None, None) if len(looks) == 1 else real_load(directory, view)

    monkeypatch.setattr(sources.cache, "load", b_looked_before_a_finished)
    b = load_dataset("pets", root)  # rank B
    assert os.stat(decoded / "train_images.npy").st_ino == a_copy
    assert len(b["train"]) == 2 * 4  # B reads the copy that is there (2 classes x 4 images)


def test_changed_images_are_found(tmp_path, cache):
    root = image_folder(tmp_path / "imgs", per_class=4)
    first = np.asarray(load_dataset("pets", root)["train"].images)
    npy = only_cache(cache) / "train_images.npy"
    data = bytearray(npy.read_bytes())
    data[-5] ^= 0xFF  # one pixel of the last image
    npy.write_bytes(bytes(data))
    np.testing.assert_array_equal(np.asarray(load_dataset("pets", root)["train"].images), first)


def test_a_cache_found_without_its_source_is_checked_and_refused_when_changed(tmp_path, cache, monkeypatch):
    archive, _ = fake_official(tmp_path / "src")
    monkeypatch.setitem(cifar.ARCHIVES, "cifar10", (cifar.ARCHIVES["cifar10"][0], archive.name, cifar.md5(archive)))
    first = load_dataset("cifar10", archive)
    archive.unlink()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    # no --data-dir, no source anywhere: the decoded copy is used before any download is tried
    again = load_dataset("cifar10")
    np.testing.assert_array_equal(again["train"].labels, first["train"].labels)
    assert again.origin["checksum"] == first.origin["checksum"]
    decoded = only_cache(cache)
    np.save(decoded / "train_labels.npy", (first["train"].labels + 1) % 10)
    with pytest.raises(DataError, match=r"train_labels.npy changed since it was decoded.*`data_dir`"):
        load_dataset("cifar10")


def test_the_record_says_what_and_where_from_any_directory(tmp_path, cache, monkeypatch):
    image_folder(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    here = load_splits("pets", "imgs").record()
    assert here["name"] == "pets" and here["location"] == str(tmp_path / "imgs") and len(here["checksum"]) == 64
    assert Path(here["cache"]).is_absolute() and Path(here["cache"]).parent == cache / "decoded"
    (tmp_path / "far").mkdir()
    monkeypatch.chdir(tmp_path / "far")
    assert load_splits("pets", here["location"]).record() == here
    assert load_splits("pets", here["cache"]).record()["checksum"] == here["checksum"]  # the decoded copy itself
    assert locate(here) == here["location"]
    (tmp_path / "imgs").rename(tmp_path / "moved")
    assert locate(here) == here["cache"]  # the source is gone: its decoded copy, checked by checksum
    assert locate({**here, "cache": None}) == here["cache"]  # found in the cache by name and checksum
    assert locate({**here, "checksum": "0" * 64}) is None


def test_a_full_disk_names_the_path_and_the_free_space(tmp_path, cache, monkeypatch):
    root = image_folder(tmp_path / "imgs")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rowfile.RowWriter, "write", full)
    with pytest.raises(
        OSError, match=r"no space left on device writing the decoded cache .*decoded.* \(.* free\)"
    ) as error:
        load_dataset("pets", root)
    assert error.value.errno == errno.ENOSPC
    assert not [p for p in (cache / "decoded").iterdir()]  # no temporary folder left


def test_a_decode_larger_than_the_disk_is_refused_first(tmp_path, cache, monkeypatch):
    root = image_folder(tmp_path / "imgs")
    monkeypatch.setattr(memory, "free_disk", lambda path: 1000)
    with pytest.raises(OSError, match=r"the decoded cache of pets needs about .* on .*cache.*, 1000 B are free"):
        load_dataset("pets", root, image_size=(64, 64))
    assert not list(cache.rglob("*.npy"))


def test_a_huge_image_size_is_refused_with_the_figures(tmp_path, cache, monkeypatch):
    root = image_folder(tmp_path / "imgs")

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoding started")

    monkeypatch.setattr(sources, "decode_image_folder", must_not_decode)
    with pytest.raises(
        DataError, match=r"image_size 100000x100000.* needs about [\d.]+ GiB of memory.* [\d.]+ (GiB|MiB) are available"
    ):
        load_dataset("pets", root, image_size=(100000, 100000))
    assert not (cache / "decoded").exists() or not list((cache / "decoded").iterdir())


def test_holding_images_in_memory_is_refused_when_they_do_not_fit(tmp_path, monkeypatch):
    root = image_folder(tmp_path / "imgs", per_class=4)
    monkeypatch.setattr(memory, "available_memory", lambda: 100)
    with pytest.raises(DataError, match=r"holding the images in memory needs about .* 100 B are available.*stream"):
        load_splits("pets", root, stream=False)
    assert len(load_splits("pets", root).train) == 8  # stream=None: streamed instead


def test_temporary_folders_of_dead_decodes_are_removed(tmp_path, cache):
    root = image_folder(tmp_path / "imgs")
    load_dataset("pets", root)
    dead = cache / "decoded" / f".pets-0123.{socket.gethostname()}.{2**22 + 12345}.tmpabc"
    alive = cache / "decoded" / f".pets-0123.{socket.gethostname()}.{os.getpid()}.tmpdef"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "train_images.npy").write_bytes(b"partial")
    image_folder(root, classes=("cat", "dog", "eel"))  # another source: a new decode
    load_dataset("pets", root)
    assert not dead.exists() and alive.exists()


def test_a_decode_shows_its_progress(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=5)
    told = Recorder()
    load_dataset("pets", root, progress=told)
    begins = [e for e in told.events if e[0] == "begin"]
    assert len(begins) == 1 and begins[0][2] == 20 and "pets" in begins[0][1]
    assert sum(e[1] for e in told.events if e[0] == "advance") == 20
    told = Recorder()
    load_dataset("pets", root, progress=told)  # from the cache: nothing to show
    assert not [e for e in told.events if e[0] == "begin"]


def test_a_batch_that_cannot_fit_is_refused_with_the_figures():
    memory.check_batch((32, 32), 128)  # 3.1 MiB: fits
    with pytest.raises(
        DataError, match=r"a batch of 8 images of 100000x100000 needs about 2.0 TiB of memory; .* are available"
    ):
        memory.check_batch((100000, 100000), 8)
