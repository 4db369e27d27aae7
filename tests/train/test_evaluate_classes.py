"""`cnnlab evaluate` on a split without images of some class says so, never 0.00%."""

from __future__ import annotations

import json

from cnnlab.cli import main

from ..images import image_folder


def test_a_class_without_images_is_said_not_scored(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "pets", classes=("cat", "dog", "fox"), per_class=4)
    image_folder(root, classes=("cat", "dog"), per_class=4, splits=("test",))  # no fox to test on
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
    assert main(["evaluate", str(out), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines if "fox" in line] == [["fox", "no", "images"]]
    saved = json.loads((out / "confusion.json").read_text())
    assert saved["per_class_accuracy"]["fox"] is None and saved["per_class_images"] == {"cat": 4, "dog": 4, "fox": 0}
    assert main(["evaluate", str(out), "--device", "cpu", "--limit", "1"]) == 0  # one image: one class of two has none
    printed = capsys.readouterr().out
    assert printed.count("no images") == 2
