"""`--resume DIR` continues a run from its directory alone (train, finetune, reproduce), options
given beside it are checked against the run's, and Ctrl-C suggests --resume only where an epoch
was saved."""

from __future__ import annotations

import json
import os

import pytest
import torch

from cnnlab.cli import main

from .fake_cifar import fake_cifar10
from .images import image_folder


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    return image_folder(tmp_path / "shapes", per_class=24, size=16, splits=("train", "test"))


def train_args(folder, out, *extra):
    return [
        "train",
        "convtype_cifar",
        "--arg",
        "widths=4,8",
        "--dataset",
        "shapes",
        "--data-dir",
        str(folder),
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--optimizer",
        "sgd",
        "--augment",
        "standard",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def weights(run_dir):
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


def refused(capsys, argv) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err
    return err


def test_train_resume_dir_alone_continues_to_the_same_weights(folder, tmp_path, monkeypatch):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(train_args(folder, straight, "--epochs", "2")) == 0
    assert main(train_args(folder, resumed, "--epochs", "1")) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # nothing but the directory: model, data, options from its config.json
    assert main(["train", "--resume", str(resumed), "--epochs", "2", "--quiet"]) == 0
    history = json.loads((resumed / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2] and history["config"]["lr"] == 0.01
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_options_beside_resume_must_match_the_runs(folder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(train_args(folder, out, "--epochs", "1")) == 0
    capsys.readouterr()

    def no_data(*args, **kwargs):
        raise AssertionError("the data was read before the options were checked")

    monkeypatch.setattr("cnnlab.data.DataConfig.load", no_data)
    err = refused(
        capsys,
        ["train", "resnet18", "--resume", str(out), "--lr", "0.1", "--arg", "widths=8,16", "--limit-train", "10"],
    )
    for part in (
        "model (the run: convtype_cifar, given: resnet18)",
        "--lr (the run: 0.01, given: 0.1)",
        "--arg widths (the run: 4,8, given: 8,16)",
        "--limit-train (the run: not set, given: 10)",
    ):
        assert part in err, err
    assert json.loads((out / "history.json").read_text())["config"]["lr"] == 0.01  # nothing changed
    monkeypatch.undo()
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    # the same values are accepted, the old way (model and --out) too; --epochs may grow
    assert main(train_args(folder, out, "--epochs", "2", "--resume")) == 0
    assert main(["train", "convtype_cifar", "--resume", "--out", str(out), "--lr", "0.01", "--quiet"]) == 0
    assert len(json.loads((out / "history.json").read_text())["epochs"]) == 2


def test_resume_of_a_directory_without_a_finished_epoch(tmp_path, capsys):
    err = refused(capsys, ["train", "--resume", str(tmp_path / "missing")])
    assert "nothing to resume: " in err and "is not a directory" in err
    (tmp_path / "config.json").write_text(json.dumps({"train": {}, "model": "convtype_cifar"}))
    err = refused(capsys, ["train", "--resume", str(tmp_path)])
    assert "no epoch of it finished (no last.pt)" in err and "--overwrite" in err
    err = refused(capsys, ["train"])
    assert "which model?" in err and "--resume DIR" in err


def test_finetune_resume_dir_alone(folder, tmp_path):
    out = tmp_path / "ft"
    args = [
        "finetune",
        "convtype_cifar",
        "--arg",
        "widths=4,8",
        "--weights",
        "none",
        "--data-dir",
        str(folder),
        "--epochs",
        "1",
        "--freeze-epochs",
        "1",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    assert main(["finetune", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 2 and history["info"]["freeze_epochs"] == 1
    assert history["info"]["weights"].startswith("none")


def test_reproduce_resume_dir_alone(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    data, out = fake_cifar10(tmp_path / "cifar"), tmp_path / "rep"
    assert (
        main(
            [
                "reproduce",
                "convtypes",
                "--preset",
                "smoke",
                "--cases",
                "1",
                "--epochs",
                "1",
                "--limit-train",
                "20",
                "--limit-val",
                "10",
                "--batch-size",
                "10",
                "--data-dir",
                str(data),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((out / "plan.json").read_text())["cases"] == [1]
    err = refused(capsys, ["reproduce", "--resume", str(out), "--preset", "quick", "--cases", "2"])
    assert "--preset (the run: smoke, given: quick)" in err and "--cases (the run: 1, given: 2)" in err
    assert main(["reproduce", "--resume", str(out), "--epochs", "2", "--data-dir", str(data), "--quiet"]) == 0
    assert len(json.loads((out / "case1" / "history.json").read_text())["epochs"]) == 2
    assert not (out / "case2").exists()  # only the cases it was started with


def test_ctrl_c_before_an_epoch_is_saved_says_rerun(tmp_path, capsys, monkeypatch, folder):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"an older run's")  # not this command's: no --resume to suggest
    os.utime(out / "last.pt", (1e9, 1e9))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # during decoding

    monkeypatch.setattr("cnnlab.data.DataConfig.load", interrupted)
    assert main(train_args(folder, out, "--epochs", "1")) == 130
    err = capsys.readouterr().err
    assert "interrupted; no epoch had finished" in err and "rerun the same command" in err and "--resume" not in err


def test_ctrl_c_after_an_epoch_says_resume_dir_which_continues(tmp_path, capsys, monkeypatch, folder):
    from cnnlab.train import loop as trainer  # the epoch loop checks each epoch

    out = tmp_path / "run"
    healthy = trainer._check_healthy

    def stop_in_epoch_2(model, record, where, done):
        if record.epoch == 2:
            raise KeyboardInterrupt
        healthy(model, record, where, done)

    monkeypatch.setattr(trainer, "_check_healthy", stop_in_epoch_2)
    assert main(train_args(folder, out, "--epochs", "2")) == 130
    assert f"continue from the last finished epoch with: cnnlab train --resume {out}" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert len(json.loads((out / "history.json").read_text())["epochs"]) == 2
