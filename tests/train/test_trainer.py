"""The trainer on small synthetic data: history files, resume equivalence, atomic
checkpoints, non-finite loss handling, and refusing to overwrite a run."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnlab.train import TrainConfig, TrainingDiverged, fit, load_checkpoint
from cnnlab.train.host import allocator_state
from cnnlab.train.state import CHECKPOINT_KEYS

from .helpers import CONFIG, tiny_data, tiny_model


def test_history_files_and_learning(tmp_path):
    history = fit(tiny_model(), tiny_data(n=192), CONFIG.with_overrides(epochs=6, lr=1e-2), tmp_path, quiet=True)
    saved = json.loads((tmp_path / "history.json").read_text())
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2, 3, 4, 5, 6]
    assert set(saved["epochs"][0]) == {
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
        "images_per_s",
        "val_acc_tta",
    }
    assert saved["config"]["batch_size"] == 32 and saved["info"]["validation"] == "test"
    assert saved["info"]["host_malloc"] == allocator_state()  # what the allocator was (tuned only when asked)
    assert saved["summary"]["best_val_acc"] == max(e["val_acc"] for e in saved["epochs"])
    assert (tmp_path / "history.csv").read_text().splitlines()[
        0
    ] == "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,images_per_s,val_acc_tta"
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "config.json").read_text())["train"]["seed"] == 3
    assert history.epochs[-1].train_acc > 0.8  # it learns the two halves
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    assert history.epochs[-1].lr < CONFIG.lr * 0.05  # one-cycle ends near zero


def test_seconds_per_epoch_the_article_way():
    from cnnlab.train.history import EpochRecord, History

    h = History({}, [EpochRecord(i, 0, 0, 0, 0, 0, s, 0) for i, s in enumerate([5.0, 1.0, 3.0, 4.0, 9.0], 1)])
    assert h.summary()["seconds_per_epoch_article"] == pytest.approx(4.0)  # mean of 3, 4, 5
    assert h.summary()["seconds_per_epoch_median"] == 4.0


def test_resume_reaches_the_same_weights(tmp_path):
    straight = tiny_model()
    fit(straight, tiny_data(), CONFIG, tmp_path / "straight", quiet=True)

    def interrupt(record):
        if record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), tiny_data(), CONFIG, tmp_path / "cut", quiet=True, on_epoch_end=interrupt)
    resumed = tiny_model(seed=99)  # fresh weights: everything must come from the checkpoint
    history = fit(resumed, tiny_data(), CONFIG, tmp_path / "cut", resume=True, quiet=True)
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    ref = json.loads((tmp_path / "straight" / "history.json").read_text())["epochs"]
    for r, e in zip(ref, history.epochs):
        assert r["train_loss"] == pytest.approx(e.train_loss, rel=1e-5) and r["val_acc"] == e.val_acc


def test_resume_needs_the_same_options_and_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        fit(tiny_model(), tiny_data(), CONFIG, tmp_path, resume=True, quiet=True)
    fit(tiny_model(), tiny_data(), CONFIG.with_overrides(epochs=1, warmup_epochs=0), tmp_path, quiet=True)
    with pytest.raises(FileExistsError, match="already holds a run"):
        fit(tiny_model(), tiny_data(), CONFIG.with_overrides(epochs=1, warmup_epochs=0), tmp_path, quiet=True)
    with pytest.raises(ValueError, match=r"other options: lr \(0.001 -> 0.1\)"):
        fit(tiny_model(), tiny_data(), CONFIG.with_overrides(lr=0.1), tmp_path, resume=True, quiet=True)


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_save = torch.save

    def dying_save(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 2's last.pt: write half a file, then die
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04 half a checkpoint")
            raise KeyboardInterrupt("killed mid-save")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), tiny_data(), CONFIG, tmp_path, quiet=True)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1  # the previous checkpoint, whole
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".last.pt")]  # no temp file left


class ExplodesAt(nn.Module):
    """Returns NaN logits from the given call on."""

    def __init__(self, at):
        super().__init__()
        self.linear, self.at, self.calls = nn.Linear(3, 2), at, 0

    def forward(self, x):
        self.calls += self.training
        y = self.linear(x.mean(dim=(2, 3)))
        return y * float("nan") if self.training and self.calls >= self.at else y


def test_non_finite_loss_stops_with_epoch_and_step(tmp_path):
    with pytest.raises(
        TrainingDiverged, match=r"became nan at epoch 2, step 2; stopped. The last good checkpoint is .*last.pt"
    ):
        fit(ExplodesAt(at=5), tiny_data(), CONFIG, tmp_path, quiet=True)  # 3 steps per epoch
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def test_checkpoints_load_with_weights_only(tmp_path):
    trained = tiny_model()
    fit(trained, tiny_data(), CONFIG.with_overrides(epochs=1, warmup_epochs=0), tmp_path, quiet=True)
    for name in ("last.pt", "best.pt"):
        state = torch.load(tmp_path / name, weights_only=True)  # tensors and plain containers only, no code
        assert set(CHECKPOINT_KEYS) <= set(state) and state["epoch"] == 1, name  # the whole run, resumable
        model = tiny_model(seed=5)
        assert not any(torch.equal(a, b) for a, b in zip(model.parameters(), trained.parameters()))
        model.load_state_dict(state["model"])  # strict: every tensor of the model, no other
        for (key, a), b in zip(trained.state_dict().items(), model.state_dict().values()):
            torch.testing.assert_close(b, a, rtol=0, atol=0, msg=f"{name}: {key}")  # the trained weights, exactly


def test_config_validation():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match=r"warmup_epochs must be 0 or in \(0, epochs=2\), got 3"):
        TrainConfig(epochs=2, warmup_epochs=3)
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"epoch": 3})


def test_progress_bar_shows_rate_and_time_left(tmp_path, capsys):
    fit(tiny_model(), tiny_data(), CONFIG.with_overrides(epochs=2), tmp_path, quiet=False)
    shown = capsys.readouterr().err
    assert "epoch 2/2" in shown and "img/s" in shown and "loss" in shown and "acc" in shown
