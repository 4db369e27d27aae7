"""`cnnlab train`, `evaluate` and `predict` end to end on a small image folder."""

from __future__ import annotations

import json

import pytest

from cnnlab.cli import main


@pytest.mark.slow
def test_train_evaluate_predict(folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
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
        "3",
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
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "48 training images, validation = test" in printed and "best val acc" in printed
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 3 and history["info"]["classes"] == ["dark", "light"]

    with pytest.raises(SystemExit):  # the run exists: refuse to overwrite it
        main(args)
    assert "already holds a run" in capsys.readouterr().err
    assert main(args[:-1] + ["--resume", "--quiet"]) == 0  # nothing left to do, same options

    assert main(["evaluate", str(out), "--dataset", "shapes", "--data-dir", str(folder), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "16 test images" in printed and "dark" in printed
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert sum(map(sum, json.loads((out / "confusion.json").read_text())["confusion"])) == 16

    image = folder / "test" / "light" / "0.png"
    assert main(["predict", str(out / "best.pt"), str(image), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(image) and len(lines) == 3  # two classes: top-2


def test_train_reports_bad_data_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "train",
                "convtype_cifar",
                "--dataset",
                "x",
                "--data-dir",
                str(tmp_path / "missing"),
                "--out",
                str(tmp_path / "r"),
            ]
        )
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_train_image_size_n_resizes_square(folder, tmp_path):
    """`--image-size N` means NxN (it used to reach the loader as a bare int and fail there)."""
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "convtype_cifar",
                "--arg",
                "widths=8,16",
                "--dataset",
                "shapes",
                "--data-dir",
                str(folder),
                "--image-size",
                "8",
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--augment",
                "none",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((out / "history.json").read_text())["info"]["image_size"] == [8, 8]
    with pytest.raises(SystemExit):
        main(["train", "convtype_cifar", "--data-dir", str(folder), "--image-size", "0"])


def test_evaluate_defaults_to_the_runs_own_data_and_split(tmp_path, monkeypatch, capsys):
    from ..images import image_folder

    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "pets", classes=("cat", "dog", "fox"), per_class=8)  # no test/: --val-split
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
                "--val-split",
                "0.25",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(["evaluate", str(out), "--device", "cpu"]) == 0
    )  # no --dataset, --data-dir or --val-split: the run's own
    printed = capsys.readouterr().out
    assert printed.startswith("6 validation images") and "fox" in printed
