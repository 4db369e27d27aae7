"""DataConfig: the data options of a run in one checked, frozen value."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.data import DataConfig


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"limit_train": 0}, "limit_train must be a positive number of images, got 0"),
        ({"limit_val": -3}, "limit_val must be a positive number of images, got -3"),
        ({"limit_train": True}, "limit_train must be a positive number of images, got True"),
        ({"val_split": 1.0}, "val_split must be a fraction in (0, 1), got 1.0"),
        ({"image_size": (32,)}, "image_size must be (height, width) positive ints, got (32,)"),
        ({"image_size": (0, 8)}, "image_size must be (height, width) positive ints, got (0, 8)"),
        ({"dataset": ""}, "dataset must be a name such as cifar10"),
    ],
)
def test_bad_options_are_refused_with_the_value_named(kwargs, message):
    with pytest.raises(ValueError) as error:
        DataConfig(**kwargs)
    assert message in str(error.value)


def test_round_trip_and_overrides():
    data = DataConfig("folder", Path("/data/pets"), image_size=[64, 48], limit_train=100)
    assert data.data_dir == "/data/pets" and data.image_size == (64, 48)  # stored as str and tuple
    assert DataConfig.from_dict(data.to_dict()) == data
    assert data.to_dict()["image_size"] == [64, 48]  # JSON-friendly
    other = data.with_overrides(limit_train=None, limit_val=20, dataset="flowers")
    assert (other.limit_train, other.limit_val, other.dataset) == (100, 20, "flowers")  # None keeps the field
    with pytest.raises(ValueError, match=r"unknown data option\(s\) \['size'\]"):
        DataConfig.from_dict({"size": 3})
