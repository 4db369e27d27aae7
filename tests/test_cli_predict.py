"""`cnnlab predict --top-k K --json` on files and folders, `cnnlab list` (= models), and
`finetune --help` stating finetune's own defaults."""

from __future__ import annotations

import json

import pytest

from cnnlab.cli import main
from cnnlab.presets import get_preset

from .images import image_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_DATA", str(root / "cache"))
        folder = image_folder(root / "shapes", classes=("dark", "light", "mid"), splits=("train", "test"))
        assert (
            main(
                [
                    "train",
                    "convtype_cifar",
                    "--arg",
                    "widths=4,8",
                    "--dataset",
                    "shapes",
                    "--data-dir",
                    str(folder),
                    "--epochs",
                    "1",
                    "--batch-size",
                    "8",
                    "--device",
                    "cpu",
                    "--out",
                    str(root / "run"),
                    "--quiet",
                ]
            )
            == 0
        )
    return root / "run", folder


def test_predict_a_folder_as_json_top_k(trained, capsys):
    run, folder = trained
    capsys.readouterr()
    assert (
        main(
            [
                "predict",
                str(run),
                str(folder / "test"),
                str(folder / "train" / "dark" / "0.png"),
                "--top-k",
                "2",
                "--json",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    results = json.loads(capsys.readouterr().out)
    expected = sorted((folder / "test").rglob("*.png")) + [folder / "train" / "dark" / "0.png"]
    assert [r["image"] for r in results] == [str(p) for p in expected]
    for r in results:
        assert len(r["top"]) == 2 and {t["class"] for t in r["top"]} <= {"dark", "light", "mid"}
        assert r["top"][0]["probability"] >= r["top"][1]["probability"]


def test_predict_top_k_text_and_bad_values(trained, capsys, tmp_path):
    run, folder = trained
    capsys.readouterr()
    assert main(["predict", str(run), str(folder / "test" / "mid" / "1.png"), "--top-k", "1", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith("1.png")
    for argv, message in (
        (["--top-k", "0"], "--top-k must be a positive number of classes, got 0"),
        ([str(tmp_path)], f"{tmp_path} holds no images"),
        ([str(tmp_path / "nope.png")], "no such image file or folder"),
    ):
        with pytest.raises(SystemExit):
            main(["predict", str(run), *(argv if argv[0] != "--top-k" else [str(folder / "test"), *argv])])
        assert message in capsys.readouterr().err


def test_list_is_models(capsys):
    assert main(["models", "resnet1*"]) == 0
    models = capsys.readouterr().out
    assert main(["list", "resnet1*"]) == 0
    assert capsys.readouterr().out == models and "resnet18" in models


def test_finetune_help_states_its_own_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = get_preset("finetune").train
    assert f"passes over the training set (default {defaults.epochs})" in text and defaults.epochs == 5
    assert "(default auto)" in text and "or the preset's" not in text
    assert "--weights PATH|imagenet|none required:" in text
