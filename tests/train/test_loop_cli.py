"""The training-loop flags on the command line: --early-stop, --early-stop-metric, --min-delta,
--clip-grad, --mixup, --cutmix, --accumulate, --ema, --tensorboard on train, reproduce and
finetune; recorded in the run, bad values refused naming the flag."""

from __future__ import annotations

import json
import re
import sys

import pytest

from cnnlab.cli import build_parser, main

LOOP_FLAGS = [
    "--early-stop",
    "1",
    "--early-stop-metric",
    "val_loss",
    "--min-delta",
    "0.5",
    "--clip-grad",
    "2",
    "--mixup",
    "0.2",
    "--cutmix",
    "1",
    "--accumulate",
    "2",
    "--ema",
    "0.9",
    "--tensorboard",
]


def _train(folder, out, *extra):
    return [
        "train",
        "convtype_cifar",
        "--arg",
        "conv=separable",
        "--arg",
        "widths=8,16",
        "--dataset",
        "shapes",
        "--data-dir",
        str(folder),
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--augment",
        "none",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


@pytest.mark.slow
def test_train_records_every_loop_option_and_stops_early(folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train(folder, out, *LOOP_FLAGS)) == 0
    train = json.loads((out / "config.json").read_text())["train"]
    assert {
        k: train[k]
        for k in (
            "early_stop",
            "early_stop_metric",
            "min_delta",
            "clip_grad",
            "mixup",
            "cutmix",
            "accumulate",
            "ema",
            "tensorboard",
        )
    } == {
        "early_stop": 1,
        "early_stop_metric": "val_loss",
        "min_delta": 0.5,
        "clip_grad": 2.0,
        "mixup": 0.2,
        "cutmix": 1.0,
        "accumulate": 2,
        "ema": 0.9,
        "tensorboard": True,
    }
    history = json.loads((out / "history.json").read_text())
    # val_loss can never fall by more than 0.5 below epoch 1's: patience 1 stops after epoch 2 of 4
    assert len(history["epochs"]) == 2 and history["info"]["early_stopped"]["epoch"] == 2
    assert (
        history["info"]["steps_per_epoch"] == 2 and history["info"]["global_batch"] == 32
    )  # 48 images, 2 x 16 per step
    assert "val_acc_raw" in history["epochs"][0] and any((out / "tb").iterdir())
    printed = capsys.readouterr().out
    assert "stopped early after epoch 2" in printed and "the EMA of the weights (decay 0.9)" in printed
    # --tensorboard only logs: a resume may turn it off; the patience counter says the run is over
    rest = [f for f in LOOP_FLAGS if f != "--tensorboard"]
    assert main(_train(folder, out, *rest, "--resume")) == 0
    assert len(json.loads((out / "history.json").read_text())["epochs"]) == 2


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ema", "1.5"], r"--ema must be a decay in \(0, 1\), e.g. 0.999, or 0 \(off\), got 1.5"),
        (["--ema", "nan"], "--ema must be a decay"),
        (["--accumulate", "0"], "--accumulate must be a positive number of micro-batches per step, got 0"),
        (["--early-stop", "-2"], "--early-stop must be a patience in epochs >= 0"),
        (["--clip-grad", "-1"], "--clip-grad must be a gradient norm >= 0"),
        (["--mixup", "inf"], "--mixup must be a Beta alpha >= 0"),
        (["--cutmix", "x"], "--cutmix must be a Beta alpha >= 0"),
        (["--early-stop-metric", "loss"], "invalid choice: 'loss'"),
    ],
)
def test_bad_loop_values_are_refused_naming_the_flag(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit):
        main(["train", "convtype_cifar", "--out", str(tmp_path / "r"), *flags])
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_min_delta_without_early_stop_is_refused_before_any_work(folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(_train(folder, tmp_path / "r", "--min-delta", "0.1"))
    assert exit.value.code == 2
    assert "min_delta must be 0 unless early_stop (the patience) is set, got 0.1" in capsys.readouterr().err


def test_reproduce_and_finetune_take_the_loop_flags():
    parser = build_parser()
    for command in (["reproduce", "densenet"], ["finetune", "resnet18", "--weights", "none", "--data-dir", "d"]):
        args = parser.parse_args([*command, *LOOP_FLAGS])
        assert (
            args.early_stop,
            args.min_delta,
            args.clip_grad,
            args.mixup,
            args.cutmix,
            args.accumulate,
            args.ema,
            args.tensorboard,
            args.early_stop_metric,
        ) == (1, 0.5, 2.0, 0.2, 1.0, 2, 0.9, True, "val_loss")
        assert parser.parse_args(command).ema is None  # not given: the preset or TrainConfig decides


def test_tensorboard_missing_says_what_to_install_in_one_line(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(SystemExit) as exit:
        main(_train(folder, tmp_path / "r", "--tensorboard"))
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1
    assert (
        "error: --tensorboard needs the tensorboard package, which is not installed: pip install 'cnnlab[tensorboard]'"
        in err
    )
    assert not (tmp_path / "r").exists()
