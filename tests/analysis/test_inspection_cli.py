"""`cnnlab inspect MODEL IMAGE...`: the text, `--json`, `--png`, `--html`, runs read with their own
evaluation view (as `cnnlab predict` reads them), and one line for every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.analysis.inspection.page import read_page_data
from cnnlab.cli import main
from cnnlab.train.prediction import predict_images

from ..helpers import fails

WEIGHTS = "docs/weights/densenet-case3.pt"  # densenet_cifar, CIFAR-10's classes, 32x32


@pytest.fixture()
def cat(tmp_path, photo):
    path = tmp_path / "cat.png"
    Image.fromarray(photo(40, 48, seed=3)).save(path)
    return path


def test_text_and_json(cat, capsys):
    assert main(["inspect", WEIGHTS, str(cat), "--top-k", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"densenet_cifar ({WEIGHTS}) on {cat}: input (1, 3, 32, 32)")
    assert out.count("%") == 3 and "Grad-CAM layer: stages.3 (4x4 map, shown at 32x32)" in out
    assert "note: " in out and "48x40 (WxH) differs from the model's 32x32 input: resized to 32x32" in out

    assert main(["inspect", WEIGHTS, str(cat), "--json", "--class", "ship", "--layer", "stages.2"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert len(report["top"]) == 5 and sum(report["probabilities"].values()) == pytest.approx(1.0)
    assert report["gradcam"]["class"] == "ship" and report["gradcam"]["layer"] == "stages.2"
    assert np.asarray(report["gradcam"]["map"]).shape == (32, 32) and report["gradcam"]["layer_shape"] == [172, 8, 8]
    concat = next(s for s in report["stages"] if s["name"] == "stages.1.layer1")
    assert [c["from"] for c in concat["concatenates"]] == [
        "stages.1.transition.pool",
        "stages.1.layer0.conv2",
        "stages.1.layer1.conv2",
    ]
    assert report["first_filters"] == [16, 1, 1, 3]


def test_pictures_and_pages(cat, tmp_path, capsys, photo):
    other = tmp_path / "ship.png"
    Image.fromarray(photo(32, 32, seed=8)).save(other)
    assert (
        main(
            [
                "inspect",
                WEIGHTS,
                str(cat),
                str(other),
                "--png",
                str(tmp_path / "png"),
                "--html",
                str(tmp_path / "page.html"),
                "--class",
                "8",
                "--channels",
                "4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert {
        "cat-gradcam.png",
        "cat-filters.png",
        "cat-00-stem.conv.png",
        "cat-01-stages.0.layer0.conv1.png",
        "ship-gradcam.png",
    } <= set(names) and len(names) == 2 * (2 + 37)
    for image in ("cat", "ship"):
        page = tmp_path / f"page-{image}.html"
        assert f"wrote {page}" in out
        data = read_page_data(page.read_text())
        assert data["cam"]["classes"][0] == 8 and all(len(s["channels"]) <= 4 for s in data["stages"])
    with Image.open(tmp_path / "png" / "cat-gradcam.png") as picture:
        assert picture.size[0] > 300


def _photos(root, sizes) -> None:
    for c, name in enumerate(("a", "b")):
        for split in ("train", "val"):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i, (h, w) in enumerate(sizes):
                picture = np.zeros((h, w, 3), np.uint8)
                picture[:, :, c] = 60 + 25 * i
                picture[h // 3 : h // 2, w // 4 : w // 2] = 200
                Image.fromarray(picture).save(root / split / name / f"{i}.png")


@pytest.mark.parametrize("view", ["--cache-size", "imagenet crop"])
def test_a_run_is_read_with_its_evaluation_view(tmp_path, monkeypatch, capsys, view):
    """A run on images kept in their own framing (--cache-size), or trained with the imagenet
    policy (its evaluation sees the central 87.5%): inspect gives predict's probabilities."""
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    _photos(tmp_path / "photos", [(50 + 7 * i, 70 - 5 * i) for i in range(4)])
    extra = ["--cache-size", "40"] if view == "--cache-size" else []
    assert (
        main(
            [
                "train",
                "convtype_cifar",
                "--arg",
                "widths=4,8",
                "--dataset",
                "photos",
                "--data-dir",
                str(tmp_path / "photos"),
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--augment",
                "imagenet",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "run"),
                "--quiet",
                *extra,
            ]
        )
        == 0
    )
    capsys.readouterr()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["eval_frame"] is not None) == (view == "--cache-size")
    assert (config["eval_crop"] is not None) == (view != "--cache-size")
    image = tmp_path / "photos" / "val" / "b" / "2.png"
    assert main(["inspect", str(tmp_path / "run" / "last.pt"), str(image), "--json", "--top-k", "2"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    (predicted,) = predict_images(tmp_path / "run" / "last.pt", [image], device="cpu", top=2)
    assert [t["class"] for t in report["top"]] == [name for name, _ in predicted["top"]]
    for ours, (_, theirs) in zip(report["top"], predicted["top"]):
        assert ours["probability"] == pytest.approx(theirs, abs=1e-6)
    said = "framed as the run's evaluation does" if view == "--cache-size" else "the central 0.875 resized back"
    assert any(said in text for text in [report["preprocessing"], *report["notes"]]), report


def test_bad_input_is_one_line(cat, tmp_path, capsys, photo):
    line = fails(capsys, ["inspect", WEIGHTS, str(cat), "--layer", "stages.2.layer9"])
    assert line.startswith("cnnlab inspect: error: unknown layer 'stages.2.layer9' in DenseNet; nearest module names: ")
    assert "stages.2.layer0" in line
    line = fails(capsys, ["inspect", WEIGHTS, str(cat), "--class", "zebra"])
    assert "class 'zebra' is not one of the model's classes (airplane, automobile," in line
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    assert "cannot read image" in fails(capsys, ["inspect", WEIGHTS, str(cat), str(tmp_path / "bad.jpg")])
    assert not (tmp_path / "page.html").exists()
    assert "no such image file" in fails(capsys, ["inspect", WEIGHTS, str(tmp_path / "none.png")])
    assert "no such run directory, checkpoint or weights file: runs/nothing" in fails(
        capsys, ["inspect", "runs/nothing", str(cat)]
    )
    assert "neither a run directory" in fails(capsys, ["inspect", "densenet_cifer", str(cat)])

    gray = tmp_path / "gray.png"
    Image.fromarray(photo(32, 32)[:, :, 0]).save(gray)
    assert main(["inspect", WEIGHTS, str(gray)]) == 0
    assert "grayscale image converted to RGB" in capsys.readouterr().out
    assert main(["inspect", "densenet_cifar", str(gray)]) == 0
    assert "densenet_cifar has random weights" in capsys.readouterr().out
