"""The training-loop options users of Keras, timm and Lightning look for first: early stopping
with patience, gradient clipping, mixup/CutMix, gradient accumulation, an EMA of the weights
and TensorBoard event files -- each changes what it should, is recorded, survives a resume and
refuses bad values."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.train import TrainConfig, fit, load_checkpoint, load_run
from cnnlab.train.early_stop import EarlyStopping
from cnnlab.train.ema import ModelEma
from cnnlab.train.epochs import Epochs
from cnnlab.train.evaluation import evaluate
from cnnlab.train.mixing import Mixing, cutmix_box, soft_targets
from cnnlab.train.tblog import MissingPackage

from .helpers import CONFIG, tiny_data, tiny_model

PLAIN = TrainConfig(
    epochs=2,
    batch_size=32,
    optimizer="sgd",
    lr=0.1,
    schedule="cosine",
    augment="none",
    precise_bn=0,
    channels_last=False,
    device="cpu",
    seed=1,
)


def no_batchnorm(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 2)
    )


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------------------- early stopping
def test_early_stopping_counts_patience_as_keras_does():
    stop = EarlyStopping(patience=2)
    acc = [0.5, 0.6, 0.6, 0.55, 0.7]  # epoch 3 ties (no improvement), epoch 4 is worse: stop after 4
    assert [stop.update(e, v) for e, v in enumerate(acc, 1)][:4] == [False, False, False, True]
    assert (stop.stopped_epoch, stop.best, stop.best_epoch) == (4, 0.6, 2)
    loss = EarlyStopping(patience=1, metric="val_loss", min_delta=0.05)
    assert [loss.update(e, v) for e, v in enumerate([1.0, 0.9, 0.87], 1)] == [False, False, True]  # 0.03 < min_delta
    assert (
        "val_loss did not fall below its best (0.9 at epoch 2) by more than 0.05 for 1 epoch(s)"
        in loss.record()["reason"]
    )
    assert not any(EarlyStopping(0).update(e, 0.0) for e in range(1, 10))  # patience 0: off


def _scripted_accuracy(monkeypatch, accuracies):
    """Validation accuracy follows ``accuracies``, one per epoch, from the ``start``-th on."""
    script = {"next": 0}

    def fake(self, tta, model=None):
        value = accuracies[script["next"]]
        script["next"] += 1
        return 1.0 - value, value

    monkeypatch.setattr(Epochs, "_evaluate", fake)
    return script


def test_early_stop_ends_the_run_says_why_and_resumes_with_its_counter(tmp_path, monkeypatch):
    accuracies = [0.5, 0.6, 0.6, 0.55, 0.9, 0.9, 0.9, 0.9]
    config = PLAIN.with_overrides(epochs=8, early_stop=2)
    _scripted_accuracy(monkeypatch, accuracies)
    history = fit(no_batchnorm(), tiny_data(), config, tmp_path / "straight", quiet=True)
    assert [e.epoch for e in history.epochs] == [1, 2, 3, 4]  # never reaches the 0.9 of epoch 5
    stopped = json.loads((tmp_path / "straight" / "history.json").read_text())["info"]["early_stopped"]
    assert (stopped["epoch"], stopped["best_epoch"], stopped["best"], stopped["metric"]) == (4, 2, 0.6, "val_acc")
    assert "did not rise above its best (0.6 at epoch 2) for 2 epoch(s) (patience 2)" in stopped["reason"]
    assert history.summary()["stopped_early"]["epoch"] == 4 and "stopped early after epoch 4" in history.table()
    assert load_checkpoint(tmp_path / "straight" / "best.pt")["epoch"] == 2

    def interrupt(record):
        if record.epoch == 3:
            raise KeyboardInterrupt

    _scripted_accuracy(monkeypatch, accuracies)
    with pytest.raises(KeyboardInterrupt):
        fit(no_batchnorm(), tiny_data(), config, tmp_path / "cut", quiet=True, on_epoch_end=interrupt)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["early_stop"]["wait"] == 1
    _scripted_accuracy(monkeypatch, accuracies[3:])  # the resumed run sees epochs 4, 5, ...
    resumed = fit(no_batchnorm(), tiny_data(), config, tmp_path / "cut", resume=True, quiet=True)
    assert [e.epoch for e in resumed.epochs] == [1, 2, 3, 4]  # without the saved counter it would go on to 5
    assert resumed.info["early_stopped"]["epoch"] == 4
    again = fit(no_batchnorm(), tiny_data(), config, tmp_path / "cut", resume=True, quiet=True)
    assert len(again.epochs) == 4  # a run that stopped stays stopped


# ---------------------------------------------------------------------------- gradient clipping
def test_clip_grad_caps_the_global_norm_of_each_step(tmp_path):
    config = PLAIN.with_overrides(epochs=1, lr=1.0, momentum=0.0, nesterov=False, schedule="constant")
    data = tiny_data(n=32)  # one step: the weights move by lr x the (clipped) gradient
    moved = {}
    for clip in (0.0, 1e-3):
        model = no_batchnorm()
        before = weights(model)
        fit(model, data, config.with_overrides(clip_grad=clip), tmp_path / f"clip{clip}", quiet=True)
        moved[clip] = torch.cat([(a - b).flatten() for a, b in zip(weights(model), before)]).norm().item()
    assert moved[1e-3] == pytest.approx(1e-3, rel=1e-4)  # capped at lr x 1e-3
    assert moved[0.0] > 20 * moved[1e-3]  # without clipping the step is far larger


# ---------------------------------------------------------------------------- mixup / cutmix
def test_mixup_targets_sum_to_one_with_label_smoothing_as_timm():
    y = torch.tensor([0, 1, 2, 2])
    t = soft_targets(y, 3, lam=0.7, smoothing=0.1)
    torch.testing.assert_close(t.sum(1), torch.ones(4))
    off, on = 0.1 / 3, 1 - 0.1 + 0.1 / 3  # timm's mixup_target
    assert t[0].tolist() == pytest.approx([0.7 * on + 0.3 * off, 0.7 * off + 0.3 * off, 0.7 * off + 0.3 * on])
    logits = torch.randn(4, 3)
    mixing = Mixing(mixup=0.2, smoothing=0.1)
    # the soft-target loss is the lam-weighted loss of the two label sets, each smoothed
    expected = 0.7 * F.cross_entropy(logits, y, label_smoothing=0.1) + 0.3 * F.cross_entropy(
        logits, y.flip(0), label_smoothing=0.1
    )
    torch.testing.assert_close(mixing.loss(logits, y, 0.7), expected)
    assert Mixing.dominant(y, 0.7).tolist() == y.tolist() and Mixing.dominant(y, 0.3).tolist() == y.flip(0).tolist()


def test_mixup_blends_each_image_with_its_mirror_in_the_batch():
    x = torch.rand(6, 3, 8, 8)
    mixed, lam = Mixing(mixup=0.4)(x.clone(), torch.Generator().manual_seed(0))
    assert 0 < lam < 1
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x.flip(0))
    again, lam2 = Mixing(mixup=0.4)(x.clone(), torch.Generator().manual_seed(0))
    assert lam2 == lam and torch.equal(again, mixed)  # the run's generator decides: a resume mixes alike


def test_cutmix_pastes_a_box_and_lam_is_the_uncovered_share():
    x = torch.rand(4, 3, 16, 16)
    mixed, lam = Mixing(cutmix=1.0)(x.clone(), torch.Generator().manual_seed(3))
    pasted = (mixed != x).any(dim=1)[0]  # image 0 now shows image 3 inside the box
    assert 0 < pasted.sum() < 256
    assert lam == pytest.approx(1 - pasted.sum().item() / 256)
    rows, cols = pasted.nonzero(as_tuple=True)
    assert pasted[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # one rectangle
    top, bottom, left, right = cutmix_box(np.random.default_rng(0), 32, 32, lam=0.75)
    assert (
        (bottom - top, right - left) == (16, 16) or min(top, left) == 0 or max(bottom, right) == 32
    )  # sqrt(1-lam) sides, clipped


def test_with_both_mixup_and_cutmix_each_batch_uses_one_of_them():
    x = torch.rand(4, 3, 8, 8)
    generator, kinds = torch.Generator().manual_seed(0), []
    for _ in range(200):
        mixed, lam = Mixing(mixup=0.5, cutmix=1.0)(x.clone(), generator)
        kinds.append("mixup" if torch.allclose(mixed, lam * x + (1 - lam) * x.flip(0), atol=1e-6) else "cutmix")
    assert 60 < kinds.count("cutmix") < 140  # switch probability 0.5


def test_mixup_run_trains_and_says_how_train_acc_is_counted(tmp_path):
    history = fit(
        tiny_model(),
        tiny_data(),
        CONFIG.with_overrides(epochs=1, warmup_epochs=0, mixup=0.2, cutmix=1.0, label_smoothing=0.1),
        tmp_path,
        quiet=True,
    )
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (saved["train"]["mixup"], saved["train"]["cutmix"]) == (0.2, 1.0)
    assert "larger share" in saved["train_acc"] and "train_acc: counted against the label" in history.table()
    assert 0 <= history.epochs[0].train_acc <= 1


# ---------------------------------------------------------------------------- gradient accumulation
@pytest.mark.parametrize("n", [128, 100])  # 100: the last step of each epoch holds 36 images (32 + 4)
def test_accumulating_two_batches_of_32_trains_as_one_batch_of_64(tmp_path, n):
    data = tiny_data(n=n)
    big, small = no_batchnorm(), no_batchnorm()
    one = fit(big, data, PLAIN.with_overrides(batch_size=64), tmp_path / "64", quiet=True)
    two = fit(small, data, PLAIN.with_overrides(batch_size=32, accumulate=2), tmp_path / "2x32", quiet=True)
    for (name, a), b in zip(big.state_dict().items(), small.state_dict().values()):  # 4 SGD steps, cosine schedule
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5, msg=name)
    assert two.info["steps_per_epoch"] == one.info["steps_per_epoch"] == 2  # the schedule counts optimizer steps
    assert two.info["global_batch"] == 64 and two.config["accumulate"] == 2
    assert two.epochs[-1].lr == pytest.approx(one.epochs[-1].lr)
    assert two.epochs[-1].train_loss == pytest.approx(one.epochs[-1].train_loss, rel=1e-5)


# ---------------------------------------------------------------------------- EMA of the weights
def test_ema_is_the_hand_computed_average_after_three_steps():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEma(model, decay=0.999)
    average = weights(model)
    for t in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model[1].running_mean.add_(1.0)
        decay = min(0.999, (1 + t) / (10 + t))  # warm-up: 0.1, 2/11, 3/12
        average = [decay * a + (1 - decay) * p for a, p in zip(average, weights(model))]
        ema.update()
    for a, e in zip(average, ema.module.parameters()):
        torch.testing.assert_close(e, a)
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)  # buffers copied, not averaged
    assert ema.updates == 3 and not any(p.requires_grad for p in ema.module.parameters())


def test_ema_run_evaluates_and_exports_the_average_and_resumes_it(tmp_path):
    config = CONFIG.with_overrides(epochs=3, ema=0.9)
    data = tiny_data()
    rebuild = {
        "model": "convtype_cifar",
        "model_args": {"conv": "separable", "widths": [8, 16]},
        "classes": ["top", "bottom"],
        "image_size": [16, 16],
    }  # what load_run rebuilds tiny_model() from
    straight = fit(tiny_model(), data, config, tmp_path / "straight", quiet=True, info=rebuild)
    last = load_checkpoint(tmp_path / "straight" / "last.pt")
    assert last["ema"] == {"decay": 0.9, "updates": 9}  # 3 epochs x 3 optimizer steps
    assert any(not torch.equal(last["model"][k], last["train_model"][k]) for k in last["model"])
    for e in straight.epochs:  # both accuracies recorded; the run's (val_acc) is the EMA's
        assert e.val_acc_raw is not None and e.val_loss_raw is not None
    assert straight.summary()["best_val_acc"] == max(e.val_acc for e in straight.epochs)
    info = straight.info["ema"]
    assert info["decay"] == 0.9 and "EMA" in info["evaluated"] and "copied" in info["buffers"]
    best = load_checkpoint(tmp_path / "straight" / "best.pt")
    run = load_run(tmp_path / "straight", device="cpu")  # best.pt's model: the EMA weights
    x = torch.from_numpy(np.asarray(data.val.images)).permute(0, 3, 1, 2).contiguous()
    loss, acc = evaluate(run.model, x, torch.from_numpy(data.val.labels))
    assert acc == straight.epochs[best["epoch"] - 1].val_acc
    assert "val_acc_raw" in (tmp_path / "straight" / "history.csv").read_text().splitlines()[0]

    def interrupt(record):
        if record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), data, config, tmp_path / "cut", quiet=True, on_epoch_end=interrupt)
    fit(tiny_model(seed=7), data, config, tmp_path / "cut", resume=True, quiet=True)
    resumed = load_checkpoint(tmp_path / "cut" / "last.pt")
    for key in ("model", "train_model"):  # the average and the trained weights both continue exactly
        for name, value in last[key].items():
            torch.testing.assert_close(resumed[key][name], value, msg=f"{key}.{name}")
    with pytest.raises(ValueError, match=r"other options: ema \(0.9 -> 0.99\)"):
        fit(tiny_model(), data, config.with_overrides(epochs=4, ema=0.99), tmp_path / "cut", resume=True, quiet=True)


# ---------------------------------------------------------------------------- TensorBoard
def test_tensorboard_event_files_hold_the_history(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = fit(
        tiny_model(),
        tiny_data(),
        CONFIG.with_overrides(epochs=2, warmup_epochs=0, tensorboard=True),
        tmp_path,
        quiet=True,
    )
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    expected = {
        "loss/train": "train_loss",
        "loss/val": "val_loss",
        "accuracy/train": "train_acc",
        "accuracy/val": "val_acc",
        "lr": "lr",
    }
    assert set(expected) <= set(events.Tags()["scalars"])
    for tag, field in expected.items():
        logged = [(s.step, s.value) for s in events.Scalars(tag)]
        assert logged == [(e.epoch, pytest.approx(getattr(e, field), rel=1e-6)) for e in history.epochs], tag
    fit(
        tiny_model(),
        tiny_data(),
        CONFIG.with_overrides(epochs=1, warmup_epochs=0),
        tmp_path,
        overwrite=True,
        quiet=True,
    )
    assert not (tmp_path / "tb").exists()  # --overwrite removes the old run's event files with its other files


def test_tensorboard_missing_is_one_clear_error_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were not installed
    with pytest.raises(MissingPackage, match=r"needs the tensorboard package, which is not installed: pip install"):
        fit(tiny_model(), tiny_data(), CONFIG.with_overrides(tensorboard=True), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "option, value, message",
    [
        ("early_stop", -1, "early_stop must be a patience in epochs >= 0"),
        ("early_stop", True, "early_stop must be a patience"),
        ("early_stop_metric", "acc", "early_stop_metric must be one of"),
        ("min_delta", 0.01, "min_delta must be 0 unless early_stop"),
        ("clip_grad", -1.0, "clip_grad must be a gradient norm >= 0"),
        ("clip_grad", float("nan"), "clip_grad must be a finite number"),
        ("mixup", -0.2, "mixup must be a Beta alpha >= 0"),
        ("cutmix", -1.0, "cutmix must be a Beta alpha >= 0"),
        ("accumulate", 0, "accumulate must be a positive number of micro-batches"),
        ("ema", 1.0, r"ema must be a decay in \(0, 1\)"),
        ("ema", -0.5, r"ema must be a decay in \(0, 1\)"),
        ("tensorboard", "yes", "tensorboard must be True or False"),
    ],
)
def test_bad_values_are_refused_naming_the_option(option, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{option: value})


@pytest.mark.distributed
def test_accumulation_under_ddp_skips_the_exchange_on_all_but_the_last_micro_batch(tmp_path):
    """2 processes x 16 images x 2 micro-batches per step train as one process with batches of 64."""
    import os
    import subprocess
    from pathlib import Path

    worker = Path(__file__).with_name("ddp_accumulate_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    runs = {
        "one": ([], "64", "1"),
        "two": (["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"], "16", "2"),
    }
    for name, (launcher, batch, accumulate) in runs.items():
        done = subprocess.run(
            [sys.executable, *launcher, str(worker), str(tmp_path / name), str(tmp_path / f"{name}.json")],
            env={**env, "DDP_BATCH": batch, "DDP_ACCUMULATE": accumulate},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    one, two = (load_checkpoint(tmp_path / name / "last.pt")["model"] for name in ("one", "two"))
    for name in one:  # 2 epochs x 3 steps of SGD (192 images, 64 per step), cosine schedule
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-5, msg=name)
    # 6 steps x 2 micro-batches: the first of each step skips DDP's gradient exchange
    assert json.loads((tmp_path / "two.json").read_text()) == {"no_sync": 6}
    assert json.loads((tmp_path / "two" / "history.json").read_text())["info"]["global_batch"] == 64
