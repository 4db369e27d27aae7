"""What the data is must match what it is called: the classes of every split, and a dataset name
that is also a place in the cache."""

from __future__ import annotations

import pytest

from cnnlab.data import DataConfig, DataError, DataProgress, load_dataset, load_splits

from .helpers import fake_official, image_folder

pytestmark = pytest.mark.usefixtures("cache")  # tests/data/conftest.py: a private cache per test, no network

CIFAR10 = "airplane automobile bird cat deer dog frog horse ship truck".split()


class Notes(DataProgress):
    """What the data layer told its caller."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_splits_with_different_classes_are_refused_naming_them(tmp_path):
    root = image_folder(tmp_path / "imgs", classes=("cat", "dog"), splits=("train",))
    image_folder(root, classes=("cat", "bird"), splits=("test",))
    with pytest.raises(DataError, match=r"only in test/: bird; only in train/: dog"):
        load_dataset("pets", root)
    trained_less = image_folder(tmp_path / "less", classes=("cat", "dog"), splits=("train",))
    image_folder(trained_less, classes=("cat", "dog", "fox"), splits=("val",))
    with pytest.raises(DataError, match=r"only in val/: fox"):
        load_dataset("pets", trained_less)


def test_validation_without_some_training_classes_is_said(tmp_path):
    root = image_folder(tmp_path / "imgs", classes=("cat", "dog", "fox"), splits=("train",))
    image_folder(root, classes=("cat", "dog"), splits=("test",))
    for _ in range(2):  # decoded, then from the cache: said both times
        told = Notes()
        splits = load_splits("pets", root, progress=told)
        assert splits.classes == ["cat", "dog", "fox"] and len(splits.val) == 6
        assert [n for n in told.notes if "test/ has no images of fox" in n], told.notes


@pytest.mark.parametrize(
    "name, classes, message",
    [
        (
            "cifar100",
            CIFAR10,
            r"cifar100 has 100 classes, but .* holds 10 \(airplane, automobile, bird, .*\).*`dataset='cifar10'`",
        ),
        ("cifar10", [f"c{i:02d}" for i in range(100)], r"cifar10 has 10 classes, but .* holds 100"),
    ],
)
def test_a_cifar_name_must_match_the_folder(tmp_path, name, classes, message):
    root = image_folder(tmp_path / "imgs", classes=classes, per_class=1)
    with pytest.raises(DataError, match=message):
        load_dataset(name, root)
    assert not list((tmp_path / "cache").rglob("*.npy"))  # said before decoding


def test_the_official_cifar10_archive_is_not_cifar100(tmp_path):
    fake_official(tmp_path / "src")
    with pytest.raises(DataError, match=r"holds the official cifar10 batches, not cifar100.*`dataset='cifar10'`"):
        load_dataset("cifar100", tmp_path / "src" / "cifar-10-batches-py")


@pytest.mark.parametrize("name", ["../../../X", "a/b", "..", ".hidden", "x\\y", "sp ace", "/abs", "a..b"])
def test_dataset_names_never_become_paths(tmp_path, name):
    root = image_folder(tmp_path / "imgs")
    with pytest.raises(DataError, match=r"dataset name .* letters, digits"):
        load_dataset(name, root)
    with pytest.raises(ValueError, match=r"dataset name .* letters, digits"):
        DataConfig(name, str(root))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]  # nothing written anywhere


def test_plain_names_are_accepted(tmp_path):
    root = image_folder(tmp_path / "imgs")
    for name in ("pets", "my-pets_v1.2", "Flowers102"):
        assert load_dataset(name, root)["train"].classes == ["cat", "dog"]
