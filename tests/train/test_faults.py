"""Nothing silently wrong after a fault: a kill between the two checkpoint writes, weights that
stop being finite, a resume with other data, a resume that extends the run, leftovers of an
interrupted write, and a damaged decode cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.cli import main
from cnnlab.data import load_dataset
from cnnlab.train import TrainConfig, TrainingDiverged, fit, load_checkpoint
from cnnlab.train import loop as trainer_module  # the epoch loop saves the checkpoints
from cnnlab.train.schedule import lr_factor

from ..images import image_folder
from .helpers import CONFIG, tiny_data, tiny_model

LEARNS = CONFIG.with_overrides(epochs=4, lr=3e-3)  # val accuracy 41% after epoch 1, 100% after 2: best.pt rewritten


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_a_kill_between_best_and_last_leaves_no_stale_best(tmp_path, monkeypatch):
    data = tiny_data(n=192)
    fit(tiny_model(), data, LEARNS, tmp_path / "straight", quiet=True)
    real_save = trainer_module.save_checkpoint
    killed = {}

    def save_then_die(path, state):
        real_save(path, state)
        if path.name == "best.pt" and state["epoch"] >= 2 and not killed:
            killed["epoch"] = state["epoch"]
            raise KeyboardInterrupt("killed between best.pt and last.pt")

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), data, LEARNS, tmp_path / "cut", quiet=True)
    monkeypatch.undo()
    assert killed, "no epoch after the first improved: the test did not exercise the kill"
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == killed["epoch"] - 1
    fit(tiny_model(seed=7), data, LEARNS, tmp_path / "cut", resume=True, quiet=True)
    best, ref = load_checkpoint(tmp_path / "cut" / "best.pt"), load_checkpoint(tmp_path / "straight" / "best.pt")
    assert best["epoch"] == ref["epoch"]
    assert_same_tensors(best["model"], ref["model"])


class PoisonsABuffer(nn.Module):
    """Healthy loss, but from the given training call on a buffer holds NaN (as an infinite
    learning rate leaves BatchNorm statistics): only a look at the weights can tell."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.linear, self.at, self.calls = nn.Linear(3, 2), at, 0
        self.register_buffer("stat", torch.zeros(2))

    def forward(self, x):
        self.calls += self.training
        if self.training and self.calls >= self.at:
            self.stat.fill_(float("nan"))
        return self.linear(x.float().mean(dim=(2, 3)))


def test_non_finite_weights_are_never_saved(tmp_path):
    with pytest.raises(
        TrainingDiverged, match=r"1 weight tensors \(stat\) became NaN or infinite in epoch 2.*last.pt \(epoch 1\)"
    ):
        fit(PoisonsABuffer(at=5), tiny_data(), CONFIG, tmp_path, quiet=True)  # 3 steps per epoch
    for name in ("last.pt", "best.pt"):
        state = load_checkpoint(tmp_path / name)
        assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values())


def test_non_finite_options_are_refused():
    for name in ("lr", "weight_decay", "momentum", "label_smoothing"):
        with pytest.raises(ValueError, match=f"{name} must be a finite number, got inf"):
            TrainConfig(**{name: float("inf")})
    with pytest.raises(ValueError, match="warmup_epochs must be 0 or in"):
        TrainConfig(epochs=1, warmup_epochs=1)


def test_cli_lr_inf_exits_without_a_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "convtype_cifar", "--lr", "inf", "--out", str(tmp_path / "r"), "--device", "cpu"])
    assert stop.value.code == 2
    assert "lr must be a finite number, got inf" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_with_other_data_is_refused_naming_it(tmp_path):
    fit(tiny_model(), tiny_data(n=96), CONFIG.with_overrides(epochs=1, warmup_epochs=0), tmp_path, quiet=True)
    with pytest.raises(ValueError, match=r"other options: data_digest .*train_images \(96 -> 128\).*`overwrite=True`"):
        fit(
            tiny_model(),
            tiny_data(n=128),
            CONFIG.with_overrides(epochs=2, warmup_epochs=0),
            tmp_path,
            resume=True,
            quiet=True,
        )
    with pytest.raises(ValueError, match=r"other options: lr \(0.001 -> 0.1\)"):
        fit(tiny_model(), tiny_data(n=96), CONFIG.with_overrides(lr=0.1), tmp_path, resume=True, quiet=True)


def test_resume_extends_a_finished_run(tmp_path):
    data, config = tiny_data(), CONFIG.with_overrides(warmup_epochs=0)
    fit(tiny_model(), data, config.with_overrides(epochs=2), tmp_path, quiet=True)
    with pytest.raises(ValueError, match="with `epochs=1`: it has already trained 2 epochs"):
        fit(tiny_model(), data, config.with_overrides(epochs=1), tmp_path, resume=True, quiet=True)
    history = fit(tiny_model(), data, config.with_overrides(epochs=4), tmp_path, resume=True, quiet=True)
    assert [e.epoch for e in history.epochs] == [1, 2, 3, 4]
    assert history.info["epochs_changed"] == [{"after_epoch": 2, "from": 2, "to": 4, "schedule": "onecycle"}]
    assert history.config["epochs"] == 4
    # epoch 3 ran on the 4-epoch schedule: the learning rate came back up from ~0, and ends near 0 again
    # (an epoch records the rate after its last step: the factor at the steps done)
    steps = 3  # 96 images, batch 32
    factor = lr_factor(config.with_overrides(epochs=4), steps)
    assert history.epochs[1].lr < 1e-6 < history.epochs[2].lr
    assert history.epochs[2].lr == pytest.approx(CONFIG.lr * factor(3 * steps))
    assert history.epochs[3].lr == pytest.approx(CONFIG.lr * factor(4 * steps)) and history.epochs[3].lr < 1e-6
    assert load_checkpoint(tmp_path / "last.pt")["config"]["epochs"] == 4


def test_overwrite_starts_afresh_and_temp_files_are_removed(tmp_path):
    fit(tiny_model(), tiny_data(), CONFIG.with_overrides(epochs=1, warmup_epochs=0), tmp_path, quiet=True)
    orphan = tmp_path / ".last.pt.k1ll3d.pt"
    orphan.write_bytes(b"PK half a checkpoint")
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    history = fit(tiny_model(), tiny_data(), CONFIG.with_overrides(epochs=2), tmp_path, overwrite=True, quiet=True)
    assert [e.epoch for e in history.epochs] == [1, 2] and not orphan.exists() and keep.read_text() == "mine"
    orphan.write_bytes(b"PK")
    fit(tiny_model(), tiny_data(), CONFIG.with_overrides(epochs=3), tmp_path, resume=True, quiet=True)
    assert not orphan.exists()
    with pytest.raises(ValueError, match="exclude each other"):
        fit(tiny_model(), tiny_data(), CONFIG, tmp_path, resume=True, overwrite=True, quiet=True)


def test_cli_resume_with_another_limit_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "shapes", splits=("train", "test"))
    args = [
        "train",
        "convtype_cifar",
        "--arg",
        "widths=4,8",
        "--dataset",
        "shapes",
        "--data-dir",
        str(root),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
    ]
    assert main(args + ["--limit-train", "12"]) == 0
    with pytest.raises(SystemExit) as stop:
        main(args + ["--limit-train", "16", "--resume"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "--limit-train (the run: 12, given: 16)" in err  # before the data is read
    assert main(args + ["--limit-train", "16", "--overwrite"]) == 0
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved["info"]["train_images"] == 16 and saved["info"]["data"]["limit_train"] == 16


def test_a_truncated_decode_cache_is_repaired(tmp_path, monkeypatch):
    from cnnlab.data import sources

    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "imgs", classes=("cat", "dog"), per_class=4)
    first = load_dataset("pets", root)
    [cached] = (tmp_path / "cache" / "decoded").iterdir()
    npy = sorted(cached.glob("*_images.npy"))[0]
    split = npy.name.removesuffix("_images.npy")
    whole = npy.stat().st_size
    with open(npy, "r+b") as f:
        f.truncate(whole // 2)  # a kill or a full disk mid-write of an older cnnlab
    again = load_dataset("pets", root)  # decoded again, and the cache rewritten
    np.testing.assert_array_equal(first[split].images, again[split].images)
    assert npy.stat().st_size == whole

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded a third time: the damaged cache was not repaired")

    monkeypatch.setattr(sources, "decode_image_folder", must_not_decode)
    np.testing.assert_array_equal(load_dataset("pets", root)[split].images, first[split].images)
    assert not [p for p in cached.parent.iterdir() if p.name.startswith(".")]  # no leftovers
