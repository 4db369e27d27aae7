"""Dataset sources: every kind of local copy, the cache, and every corruption case."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data import DataError, cifar, load_dataset, load_splits, make_splits, sources

from .helpers import fake_official, image_folder, tar_of, write_png

SHARED_TAR = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cifar10-jpg.tar.gz"
pytestmark = pytest.mark.usefixtures("cache")  # tests/data/conftest.py: a private cache per test, no network


def test_image_folder_directory_and_tar_give_the_same_arrays(tmp_path):
    folder = image_folder(tmp_path / "imgs")
    from_dir = load_dataset("pets", folder)
    from_tar = load_dataset("pets", tar_of(folder, tmp_path / "imgs.tar.gz"))
    assert set(from_dir) == {"train", "test"}
    for split in ("train", "test"):
        assert from_dir[split].classes == ["cat", "dog"]
        np.testing.assert_array_equal(from_dir[split].labels, [0, 0, 0, 1, 1, 1])
        np.testing.assert_array_equal(from_dir[split].images, from_tar[split].images)
    assert from_dir["train"].images.shape == (6, 8, 8, 3)
    assert tuple(from_dir["train"].images[3, 0, 0]) == (40, 0, 200)  # dog, first image


def test_folder_without_splits_resize_and_limit(tmp_path):
    root = tmp_path / "flat"
    for c, name in enumerate(("a", "b", "c")):
        for i in range(4):
            write_png(root / name / f"{i}.jpg", (50 * c, 0, 0), size=(10 + i, 12))
    with pytest.raises(DataError, match=r"is 11x12 but a/0.jpg is 10x12; pass an image size"):
        load_dataset("flat", root)
    data = load_dataset("flat", root, image_size=(6, 5), limit_per_class=2)["all"]
    assert data.images.shape == (6, 6, 5, 3) and data.classes == ["a", "b", "c"]


def test_official_archive_and_extracted_folder(tmp_path, monkeypatch):
    archive, batches = fake_official(tmp_path / "src")
    monkeypatch.setitem(cifar.ARCHIVES, "cifar10", (cifar.ARCHIVES["cifar10"][0], archive.name, cifar.md5(archive)))
    for source in (archive, tmp_path / "src", tmp_path / "src" / "cifar-10-batches-py"):
        splits = load_dataset("cifar10", source)
        assert splits["train"].images.shape == (20, 32, 32, 3) and splits["test"].images.shape == (4, 32, 32, 3)
        first = batches["data_batch_1"][b"data"][0]
        # official rows are R plane, G plane, B plane (32x32 each) -> HWC
        np.testing.assert_array_equal(splits["train"].images[0, 0, 1], first[[1, 1024 + 1, 2048 + 1]])
        assert splits["train"].classes[0] == "airplane"
        assert list(splits["test"].labels) == list(batches["test_batch"][b"labels"])


def test_wrong_checksum_of_official_archive(tmp_path):
    archive, _ = fake_official(tmp_path / "src")  # not the published bytes
    with pytest.raises(
        DataError, match=r"has MD5 .* but the published cifar10 archive has c58f3010.*delete it and download it again"
    ):
        load_dataset("cifar10", archive)


def test_truncated_archive(tmp_path):
    tar = tar_of(image_folder(tmp_path / "imgs"), tmp_path / "imgs.tar.gz")
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"is not a readable tar archive .* truncated or corrupt"):
        load_dataset("pets", tar)


@pytest.mark.parametrize("suffix, mode", [(".tar.gz", "w:gz"), (".tar", "w")])
def test_an_archive_cut_anywhere_is_refused_never_read_short(tmp_path, suffix, mode):
    """tarfile takes a cut at a member boundary for the archive's end: a cut tar used to load as a
    smaller dataset (or fail as "no train/ folder"). Every cut is refused, or holds every image
    (a plain tar cut in the zero padding after its end-of-archive block)."""
    whole = tmp_path / f"imgs{suffix}"
    with tarfile.open(whole, mode) as archive:
        archive.add(image_folder(tmp_path / "imgs"), arcname="data")
    data = whole.read_bytes()
    for k in range(1, 40):
        cut = tmp_path / f"cut{k}{suffix}"
        cut.write_bytes(data[: len(data) * k // 40])
        try:
            splits = load_dataset("pets", cut)
        except DataError as error:
            assert "is not a readable tar archive" in str(error) and "truncated" in str(error), (k, str(error))
        else:
            assert mode == "w" and (len(splits["train"]), len(splits["test"])) == (6, 6), k


def test_folder_without_classes(tmp_path):
    for i in range(3):
        write_png(tmp_path / "bad" / "train" / f"{i}.png", (0, 0, 0))
        write_png(tmp_path / "bad" / "test" / f"{i}.png", (0, 0, 0))
    with pytest.raises(DataError, match=r"test/ and train/ hold images directly, without class folders"):
        load_dataset("bad", tmp_path / "bad")
    image_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(DataError, match=r"has 1 class folder\(s\) \(\['only'\]\); .* at least 2"):
        load_dataset("one", tmp_path / "one")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no empty data|holds no images"):
        load_dataset("empty", tmp_path / "empty")


def test_unreadable_image(tmp_path):
    folder = image_folder(tmp_path / "imgs")
    (folder / "train" / "dog" / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"cannot read image train/dog/broken.png .* remove or replace that file"):
        load_dataset("pets", folder)


def test_hostile_pickle_is_refused(tmp_path, monkeypatch):
    archive, _ = fake_official(tmp_path / "src")
    folder = tmp_path / "src" / "cifar-10-batches-py"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match=r"refusing to load builtins.print"):
        load_dataset("cifar10", folder)


def test_missing_source_and_no_download(tmp_path):
    with pytest.raises(DataError, match=r"`data_dir='.*nowhere'` does not exist"):
        load_dataset("cifar10", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"no cifar10 found in .*downloading is off; pass `data_dir`"):
        load_dataset("cifar10", download=False)
    with pytest.raises(DataError, match="is not one cnnlab can fetch"):
        load_dataset("imagenet")


def test_cache_is_used_and_keyed_by_content(tmp_path, cache, monkeypatch):
    folder = image_folder(tmp_path / "imgs")
    first = load_dataset("pets", folder)
    assert len(list((cache / "decoded").iterdir())) == 1

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded again although the cache holds this source")

    monkeypatch.setattr(sources, "decode_image_folder", must_not_decode)
    again = load_dataset("pets", folder)
    np.testing.assert_array_equal(first["train"].images, again["train"].images)
    monkeypatch.undo()
    write_png(folder / "train" / "cat" / "new.png", (1, 2, 3))  # the source changed: decode again
    assert len(load_dataset("pets", folder)["train"]) == 7


def test_damaged_copy_of_the_shared_tar_is_named(tmp_path):
    fake = tmp_path / "cifar10-jpg.tar.gz"
    tar_of(image_folder(tmp_path / "imgs"), fake)
    with pytest.raises(DataError, match=r"has sha256 .* but the published copy has 45b041e8.*copy it again"):
        load_dataset("cifar10", fake)


def test_shared_cifar10_tar_a_few_hundred_images():
    # CI checks out ../shared beside the project; without it this test must fail, not vanish.
    assert SHARED_TAR.is_file(), f"{SHARED_TAR} is missing: the CIFAR-10 copy must sit in ../shared/datasets"
    splits = load_dataset("cifar10", SHARED_TAR, limit_per_class=30)
    assert splits["train"].images.shape == (300, 32, 32, 3) and splits["test"].images.shape == (300, 32, 32, 3)
    assert splits["train"].classes == "airplane automobile bird cat deer dog frog horse ship truck".split()
    assert np.bincount(splits["train"].labels).tolist() == [30] * 10
    assert 60 < np.asarray(splits["train"].images).mean() < 200  # real photographs, not blank decodes


def test_splits(tmp_path):
    data = load_dataset("pets", image_folder(tmp_path / "imgs", per_class=10))
    as_article = make_splits(data["train"], data["test"])
    assert as_article.validation == "test" and len(as_article.val) == 20
    held_out = make_splits(data["train"], data["test"], val_split=0.2, seed=1)
    assert held_out.validation == "split 0.2 of train"
    assert len(held_out.train) == 16 and np.bincount(held_out.val.labels).tolist() == [2, 2]
    again = make_splits(data["train"], data["test"], val_split=0.2, seed=1)
    np.testing.assert_array_equal(held_out.val.images, again.val.images)  # seeded
    with pytest.raises(DataError, match=r"val_split must be a fraction in \(0, 1\), got 1.5"):
        make_splits(data["train"], data["test"], val_split=1.5)
    limited = load_splits("pets", tmp_path / "imgs", limit_train=6)
    assert np.bincount(limited.train.labels).tolist() == [3, 3]


def test_official_cifar100_layout(tmp_path):
    """cifar-100-python: one train and one test batch, fine labels, 100 class names in 'meta'."""
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 6), ("test", 3)):
        content = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": [int(v) for v in rng.integers(0, 100, n)],
        }
        (folder / name).write_bytes(pickle.dumps(content))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}))
    splits = load_dataset("cifar100", folder)
    assert splits["train"].images.shape == (6, 32, 32, 3) and len(splits["test"]) == 3
    assert len(splits["train"].classes) == 100 and splits["train"].classes[7] == "c7"
