"""Every failure through the command line is one line on stderr and exit status 2 (Ctrl-C: 130
and how to continue); ``--debug`` shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.train import fit
from cnnlab.train.rundir import save_checkpoint

from .helpers import fails
from .images import image_folder
from .train.helpers import CONFIG, tiny_data, tiny_model


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    out = tmp_path / "run"
    fit(tiny_model(), tiny_data(), CONFIG.with_overrides(epochs=1, warmup_epochs=0), out, quiet=True)
    return out


@pytest.fixture()
def image(tmp_path) -> Path:
    path = tmp_path / "img.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(path)
    return path


def test_truncated_checkpoint_says_damaged_and_what_is_intact(run_dir, image, capsys):
    best = run_dir / "best.pt"
    best.write_bytes(best.read_bytes()[:1000])
    line = fails(capsys, ["predict", str(best), str(image), "--device", "cpu"])
    assert "best.pt is damaged" in line and "last.pt beside it is intact (epoch 1)" in line
    assert "weights_only=False" not in line  # torch's unsafe advice is not passed on


def test_empty_and_hostile_checkpoints(tmp_path, image, capsys):
    empty = tmp_path / "empty.pt"
    empty.touch()
    assert "empty.pt is empty" in fails(capsys, ["predict", str(empty), str(image)])

    class Hostile:
        def __reduce__(self):
            return (os.system, ("echo this must never run",))

    hostile = tmp_path / "hostile.pt"
    torch.save({"model": Hostile()}, hostile)
    line = fails(capsys, ["predict", str(hostile), str(image)])
    assert line.startswith("cnnlab predict: error: refused") and "never unpickles code" in line


def test_diverged_training_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "shapes")
    line = fails(
        capsys,
        [
            "train",
            "convtype_cifar",
            "--arg",
            "widths=4,8",
            "--dataset",
            "shapes",
            "--data-dir",
            str(root),
            "--val-split",
            "0.25",
            "--optimizer",
            "sgd",
            "--lr",
            "100",
            "--epochs",
            "4",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
    )
    assert "NaN or infinite" in line or "became nan" in line
    assert "last good checkpoint" in line


def test_unreadable_image_names_the_file_and_a_bomb_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "pics", classes=("a", "b"), per_class=3, size=16)
    args = [
        "train",
        "convtype_cifar",
        "--dataset",
        "pics",
        "--data-dir",
        str(root),
        "--val-split",
        "0.3",
        "--out",
        str(tmp_path / "run"),
    ]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 16x16 = 256 pixels: over twice the limit
    line = fails(capsys, args)
    assert "refused image" in line and "decompression bomb" in line.lower()
    monkeypatch.undo()
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache2"))
    (root / "train" / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    line = fails(capsys, args)
    assert "broken.png" in line and "BytesIO" not in line


def test_ctrl_c_says_how_to_continue(tmp_path, capsys, monkeypatch):
    from cnnlab.train import pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "fit", interrupted)
    monkeypatch.setattr(pipeline.DataConfig, "load", lambda self, seed=0, download=True: tiny_data())
    assert main(["train", "convtype_cifar", "--out", str(tmp_path / "run"), "--device", "cpu"]) == 130
    err = capsys.readouterr().err  # no epoch finished: no --resume to suggest (tests/test_cli_resume.py: after one)
    assert "interrupted" in err and "rerun the same command" in err and "--resume" not in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path, image):
    empty = tmp_path / "empty.pt"
    empty.touch()
    plain = subprocess.run(
        [sys.executable, "-m", "cnnlab", "predict", str(empty), str(image)], capture_output=True, text=True
    )
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and len(plain.stderr.strip().splitlines()) == 1
    debug = subprocess.run(
        [sys.executable, "-m", "cnnlab", "--debug", "predict", str(empty), str(image)], capture_output=True, text=True
    )
    assert debug.returncode == 2 and "Traceback" in debug.stderr and "CheckpointError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()  # the same line after the traceback


@pytest.fixture()
def small_tmpfs(mount_tmpfs):
    """A 2 MiB tmpfs: a real disk, remounted read-only below (tests/conftest.py: mount_tmpfs)."""
    return mount_tmpfs("2m")


@pytest.fixture()
def small_disk(make_small_disk):
    """A 2 MiB disk that fills up: simulated, and a real tmpfs where root (tests/conftest.py: make_small_disk)."""
    return make_small_disk("2m")


def test_full_disk_is_named_before_and_during_training(small_disk, capsys, monkeypatch):
    # before the first epoch: the checkpoints cannot fit
    monkeypatch.setattr("cnnlab.data.DataConfig.load", lambda self, seed=0, download=True: tiny_data(size=32))
    line = fails(capsys, ["train", "densenet_cifar", "--out", str(small_disk / "run"), "--device", "cpu", "--quiet"])
    assert "no space left on device for the checkpoints" in line and "MiB are free" in line
    # during a write: the file that filled the disk is named, and nothing half-written is left
    (small_disk / "filler").write_bytes(b"\0" * (2 * 2**20 - 64 * 1024))
    with pytest.raises(OSError, match="no space left on device writing .*last.pt"):
        save_checkpoint(small_disk / "last.pt", {"w": torch.zeros(100_000)})
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "run"]  # no last.pt, no temporary file


def test_read_only_output_directory(small_tmpfs, capsys, monkeypatch):
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    monkeypatch.setattr("cnnlab.data.DataConfig.load", lambda self, seed=0, download=True: tiny_data())
    line = fails(capsys, ["train", "convtype_cifar", "--out", str(small_tmpfs / "run"), "--device", "cpu", "--quiet"])
    assert "Read-only file system" in line and str(small_tmpfs / "run") in line


def test_num_classes_is_accepted_when_it_matches_the_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cnnlab.data.DataConfig.load", lambda self, seed=0, download=True: tiny_data())
    base = ["train", "convtype_cifar", "--arg", "widths=4,8", "--epochs", "1", "--device", "cpu", "--quiet"]
    line = fails(capsys, base + ["--arg", "num_classes=4", "--out", str(tmp_path / "a")])
    assert "num_classes=4 does not match the data's 2 classes (top, bottom)" in line
    assert main(base + ["--arg", "num_classes=2", "--out", str(tmp_path / "b")]) == 0


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "passes over the training set (default 10, or the preset's)" in text
    assert "(default standard, or the preset's)" in text


def test_every_argument_has_help():
    import argparse

    from cnnlab.cli import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix} {name}")
            elif action.help is None and action.dest != "help":
                missing.append(f"{prefix} {action.option_strings or action.dest}")

    walk(build_parser(), "cnnlab")
    assert not missing, missing


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "convtype_cifar", "--lr", "1e300"],
            "lr must be in (0, 100] (SGD's usual peak is 0.1, Adam's 1e-3), got 1e+300",
        ),
        (["train", "convtype_cifar", "--lr", "-1e-3"], "lr must be in (0, 100]"),
        (["train", "convtype_cifar", "--seed", "-1"], "seed must be an int in 0..4294967295, got -1"),
        (
            ["explain", "conv2d", "--cell", "-1,0,0"],
            "cell y must be in 0..0 for an output of shape (1, 1, 3) (HWC), got -1",
        ),
        (["explain", "conv2d", "--seed", "-1"], "seed must be an int in 0..4294967295, got -1"),
        (
            ["explain", "conv2d", "--input-size", "5000"],
            "input 5000x5000x2, output 4998x4998x3 and 54 weights are 124,940,066 "
            "numbers (about 5.6 GiB of memory to print), more than explain's 1,000,000",
        ),
    ],
)
def test_bad_numbers_are_refused_before_any_work(tmp_path, capsys, monkeypatch, argv, message):
    def no_data(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr("cnnlab.data.DataConfig.load", no_data)
    line = fails(capsys, [*argv, *(["--out", str(tmp_path / "run")] if argv[0] == "train" else [])])
    assert message in line
    assert not (tmp_path / "run").exists()


def test_a_shortened_preset_scales_its_warmup_and_a_batch_larger_than_the_data_is_said(tmp_path, capsys, monkeypatch):
    import json

    from cnnlab.presets import get_preset

    assert get_preset("fast").train_config(epochs=1).warmup_epochs == round(2 / 30, 4)
    assert get_preset("fast").train_config(epochs=15).warmup_epochs == 1.0
    assert get_preset("fast").train_config(epochs=60).warmup_epochs == 2  # a longer run keeps the preset's
    assert get_preset("fast").train_config(epochs=1, warmup_epochs=0.5).warmup_epochs == 0.5  # given: as given
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "shapes", splits=("train", "test"))
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "convtype_cifar",
                "--arg",
                "widths=4,8",
                "--preset",
                "fast",
                "--epochs",
                "1",
                "--dataset",
                "shapes",
                "--data-dir",
                str(root),
                "--precision",
                "fp32",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((out / "config.json").read_text())["train"]["warmup_epochs"] == round(2 / 30, 4)
    out = capsys.readouterr().out
    assert "warning: --batch-size 128 is larger than the 16 training images: each epoch is one step of 16 images" in out


def test_library_warnings_stay_out_of_the_output(tmp_path, capsys, monkeypatch):
    import warnings

    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "pets", classes=("猫", "犬"), splits=("train", "test"))
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "convtype_cifar",
                "--arg",
                "widths=4,8",
                "--dataset",
                "pets",
                "--data-dir",
                str(root),
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    state = torch.load(out / "best.pt", weights_only=True)
    torch.save(state, out / "p3.pt", pickle_protocol=3)  # what other tools write (torch warns, then reads it)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["evaluate", str(out), "--device", "cpu"]) == 0  # class names the font has no glyph for
        assert main(["predict", str(out / "p3.pt"), str(root / "test" / "猫" / "0.png"), "--device", "cpu"]) == 0
    assert [str(w.message) for w in caught] == []
