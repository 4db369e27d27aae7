"""run_training: one pipeline for train, reproduce, finetune and the search worker -- the data
is loaded and checked before the model exists, the model's weights follow the seed, and the
run records what rebuilds it."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from cnnlab.data import DataConfig, DataError
from cnnlab.train import TrainConfig, load_checkpoint, load_run, run_training

MODEL_ARGS = {"conv": "conv", "widths": (4, 8)}
TRAIN = TrainConfig(epochs=1, batch_size=8, augment="none", device="cpu", precise_bn=16)


@pytest.fixture()
def data(tmp_path, monkeypatch) -> DataConfig:
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = tmp_path / "tones"
    for split, n in (("train", 12), ("test", 4)):
        for c, name in enumerate(("dark", "light", "mid")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (20 + 100 * c + i, 30 + 100 * c, 40 + 90 * c)).save(
                    root / split / name / f"{i}.png"
                )
    return DataConfig("tones", str(root))


def test_one_run_from_names(data, tmp_path):
    seen = []
    run = run_training(
        "convtype_cifar",
        MODEL_ARGS,
        data=data,
        train=TRAIN,
        out_dir=tmp_path / "a",
        quiet=True,
        init=lambda model, splits: seen.append((model.head.fc.out_features, len(splits.train))),
        info={"note": "kept"},
    )
    assert seen == [(3, 36)]  # one output per class of the data, init saw the model before training
    info = run.history.info
    assert (info["model"], info["model_args"], info["classes"], info["dataset"], info["note"]) == (
        "convtype_cifar",
        MODEL_ARGS,
        ["dark", "light", "mid"],
        "tones",
        "kept",
    )
    assert load_run(tmp_path / "a", device="cpu").model.head.fc.out_features == 3


def test_the_seed_decides_the_weights(data, tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_training(
            "convtype_cifar",
            MODEL_ARGS,
            data=data,
            train=TRAIN.with_overrides(seed=seed),
            out_dir=tmp_path / name,
            quiet=True,
        )
    a, b, c = (load_checkpoint(tmp_path / n / "last.pt")["model"] for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_bad_data_fails_before_a_model_or_a_directory_exists(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(DataError, match="does not exist"):
        run_training(
            "convtype_cifar",
            MODEL_ARGS,
            data=DataConfig("cifar10", str(tmp_path / "nowhere")),
            train=TRAIN,
            out_dir=out,
        )
    assert not out.exists()
