"""Nothing lost and nothing silently wrong around a run directory: files of another run are never
replaced without --resume or --overwrite, --overwrite clears every file of the old run, export
never writes over an input, files that are not cnnlab checkpoints are named for what they are,
evaluate says what it evaluated and prints its figures even where it cannot write, and a full
disk or a directory given as an output file is named."""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.io import atomic_write, atomic_write_text
from cnnlab.train import fit, load_checkpoint, load_run
from cnnlab.train.rundir import save_checkpoint

from ..helpers import fails
from ..images import image_folder
from .helpers import CONFIG, tiny_data, tiny_model

ONE_EPOCH = CONFIG.with_overrides(epochs=1, warmup_epochs=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch run on an image folder with a test split (16 images), validated on 6 of them (--limit-val)."""
    root = tmp_path_factory.mktemp("safety")
    folder = image_folder(root / "shapes", per_class=8, size=8, splits=("train", "test"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_DATA", str(root / "cache"))
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
                    "--limit-val",
                    "6",
                    "--epochs",
                    "2",
                    "--batch-size",
                    "8",
                    "--augment",
                    "none",
                    "--device",
                    "cpu",
                    "--out",
                    str(root / "run"),
                    "--quiet",
                ]
            )
            == 0
        )
    return root


@pytest.fixture()
def run(trained, tmp_path, monkeypatch, capsys):
    """A copy of the trained run (each test may damage its own)."""
    monkeypatch.setenv("CNNLAB_DATA", str(trained / "cache"))
    capsys.readouterr()
    return shutil.copytree(trained / "run", tmp_path / "run")


def files(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# 1. a directory holding another run's files ------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["best.pt", "config.json", "history.json", "history.csv", "curves.png", "confusion.json"]
)
def test_a_directory_with_run_files_but_no_last_pt_is_refused(tmp_path, name):
    out = tmp_path / "other"
    out.mkdir()
    (out / name).write_bytes(b"another model's")
    with pytest.raises(FileExistsError, match=rf"{out} already holds files of a run \({name}\).*`overwrite=True`"):
        fit(tiny_model(), tiny_data(), ONE_EPOCH, out, quiet=True)
    assert files(out) == {name: b"another model's"}  # nothing replaced, no lock left


def test_cli_train_into_a_directory_with_a_best_pt_is_refused(trained, run, capsys):
    (run / "last.pt").unlink()
    before = files(run)
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
            str(trained / "shapes"),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--out",
            str(run),
            "--quiet",
        ],
    )
    assert "best.pt" in line and "config.json" in line and "--resume" in line and "--overwrite" in line
    assert files(run) == before


# 3. --overwrite clears the old run -----------------------------------------------------------------


def test_overwrite_removes_every_file_of_the_old_run_and_only_those(tmp_path):
    fit(tiny_model(), tiny_data(), ONE_EPOCH, tmp_path, quiet=True)
    for name in ("confusion.png", "confusion.json"):
        (tmp_path / name).write_text("the old run's evaluation")
    (tmp_path / "notes.txt").write_text("mine")
    fit(tiny_model(), tiny_data(), ONE_EPOCH, tmp_path, overwrite=True, quiet=True)
    assert sorted(files(tmp_path)) == [
        "best.pt",
        "config.json",
        "curves.png",
        "history.csv",
        "history.json",
        "last.pt",
        "notes.txt",
    ]
    assert (tmp_path / "notes.txt").read_text() == "mine"


# 2. export never writes over an input -------------------------------------------------------------


def test_export_refuses_to_write_over_an_input_or_a_run_file(run, tmp_path, capsys):
    before = files(run)
    for target in ("--weights", "--onnx"):
        for name in ("best.pt", "last.pt", "config.json", "history.json"):
            line = fails(capsys, ["export", str(run), target, str(run / name)])
            assert str(run / name) in line and "run file" in line
    line = fails(
        capsys, ["export", str(run / "best.pt"), "--weights", str(tmp_path / "." / "run" / ".." / "run" / "best.pt")]
    )
    assert "best.pt" in line and "input" in line
    assert files(run) == before
    weights = tmp_path / "w.pt"
    assert main(["export", str(run), "--weights", str(weights)]) == 0
    kept = weights.read_bytes()
    (tmp_path / "link.pt").symlink_to(weights)
    for out in (weights, tmp_path / "link.pt"):
        assert "is the input" in fails(capsys, ["export", str(weights), "--weights", str(out)])
    assert weights.read_bytes() == kept


# 4. export --which for ONNX, and the tolerance --------------------------------------------------


def onnx_logits(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x.numpy()})[0]


def test_onnx_export_follows_which(run, tmp_path, capsys):
    best = load_checkpoint(run / "best.pt")
    best["model"] = {k: v * 0.5 if v.is_floating_point() else v for k, v in best["model"].items()}
    save_checkpoint(run / "best.pt", best)  # best.pt and last.pt now hold other weights
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = {which: load_run(run, device="cpu", which=which).model(x).numpy() for which in ("best.pt", "last.pt")}
    assert np.abs(want["best.pt"] - want["last.pt"]).max() > 1e-3
    for which in ("best.pt", "last.pt"):
        assert main(["export", str(run), "--onnx", str(tmp_path / f"{which}.onnx"), "--which", which]) == 0
        assert np.abs(onnx_logits(tmp_path / f"{which}.onnx", x) - want[which]).max() < 1e-4
    assert main(["export", str(run), "--onnx", str(tmp_path / "default.onnx")]) == 0  # best.pt, as documented
    assert np.abs(onnx_logits(tmp_path / "default.onnx", x) - want["best.pt"]).max() < 1e-4
    line = fails(capsys, ["export", str(run / "best.pt"), "--onnx", str(tmp_path / "x.onnx"), "--which", "last.pt"])
    assert "which" in line and "run directory" in line


@pytest.mark.parametrize("tolerance", ["nan", "inf", "-1"])
def test_export_refuses_a_tolerance_that_is_not_a_finite_non_negative_number(run, tmp_path, capsys, tolerance):
    line = fails(capsys, ["export", str(run), "--onnx", str(tmp_path / "m.onnx"), "--tolerance", tolerance])
    assert "tolerance" in line and tolerance in line
    assert not (tmp_path / "m.onnx").exists()


# 6. files that are not cnnlab checkpoints ------------------------------------------------------


def test_files_that_are_not_cnnlab_checkpoints_are_named_for_what_they_are(tmp_path, capsys):
    model = tiny_model()
    state = model.state_dict()
    odd = {
        "state_dict.pt": (state, f"a bare state_dict of {len(state)} tensors"),
        "dict.pt": ({"weights": state, "step": 3}, "a dict with keys step, weights"),
        "tensor.pt": (torch.zeros(3, 4), "a bare tensor of shape (3, 4)"),
    }
    image = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    for name, (content, what) in odd.items():
        torch.save(content, tmp_path / name)
        path = str(tmp_path / name)
        for argv in (
            ["evaluate", path],
            ["predict", path, str(image)],
            ["export", path, "--weights", str(tmp_path / "w.pt")],
            ["export", path, "--onnx", str(tmp_path / "m.onnx")],
        ):
            line = fails(capsys, argv)
            assert f"{path} is {what}, not a cnnlab checkpoint or weights file" in line, line
            assert "run directory" in line and "cnnlab train" in line and "cnnlab export --weights" in line
        with pytest.raises(ValueError, match=re.escape(f"is {what}, not a cnnlab checkpoint")):
            load_run(path)
    assert not (tmp_path / "w.pt").exists() and not (tmp_path / "m.onnx").exists()


def test_resuming_from_a_last_pt_that_is_not_a_checkpoint_says_so(tmp_path):
    torch.save(tiny_model().state_dict(), tmp_path / "last.pt")
    with pytest.raises(ValueError, match=r"last.pt is a bare state_dict of \d+ tensors, not a training checkpoint"):
        fit(tiny_model(), tiny_data(), ONE_EPOCH, tmp_path, resume=True, quiet=True)


# 5 and 7. evaluate ---------------------------------------------------------------------------------


def test_evaluate_names_its_checkpoint_and_follows_the_runs_limit_val(run, capsys):
    assert main(["evaluate", str(run), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("6 test images (the run's limit_val; --all for all 16)")
    assert f"checkpoint {run / 'best.pt'} (epoch " in printed
    history = json.loads((run / "history.json").read_text())
    epoch = load_checkpoint(run / "best.pt")["epoch"]
    assert f"(epoch {epoch})" in printed
    accuracy = json.loads((run / "confusion.json").read_text())["accuracy"]
    assert accuracy == pytest.approx(history["epochs"][epoch - 1]["val_acc"])  # the images it validated on
    assert main(["evaluate", str(run), "--device", "cpu", "--all"]) == 0
    assert capsys.readouterr().out.startswith("16 test images: ")
    assert main(["evaluate", str(run), "--device", "cpu", "--limit", "4"]) == 0
    assert capsys.readouterr().out.startswith("4 test images: ")


def test_evaluate_refuses_a_val_split_on_a_run_validated_on_the_test_set(run, capsys):
    line = fails(capsys, ["evaluate", str(run), "--val-split", "0.5", "--device", "cpu"])
    assert "val_split" in line and "validated on the test set" in line
    assert not (run / "confusion.json").exists()


def evaluate_fails(capsys, run) -> tuple[str, str]:
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", str(run), "--device", "cpu"])
    assert stop.value.code == 2
    return capsys.readouterr()


def denied(confusion, classes, path, title=""):
    raise PermissionError(errno.EACCES, "Permission denied", str(path))


def test_evaluate_prints_its_figures_and_writes_what_it_can(run, monkeypatch, capsys):
    from cnnlab.train import evaluation

    monkeypatch.setattr(evaluation, "confusion_png", denied)
    out, err = evaluate_fails(capsys, run)
    assert "accuracy" in out and "dark" in out and f"wrote {run / 'confusion.json'}" in out
    assert (
        len(err.strip().splitlines()) == 1 and f"{run / 'confusion.png'} (Permission denied)" in err and "--plot" in err
    )
    assert json.loads((run / "confusion.json").read_text())["images"] == 6


def test_evaluate_run_keeps_its_figures_when_a_file_cannot_be_written(run, monkeypatch):
    from cnnlab.train import evaluation

    monkeypatch.setattr(evaluation, "confusion_png", denied)
    with pytest.raises(evaluation.EvaluationNotSaved, match=r"c.png \(Permission denied\)") as caught:
        evaluation.evaluate_run(run, device="cpu", out_png=run / "c.png")
    assert caught.value.result["images"] == 6 and caught.value.written == [run / "c.json"]


def test_evaluate_refuses_a_directory_or_a_run_file_as_its_plot_before_evaluating(run, monkeypatch, capsys):
    from cnnlab.train import evaluation

    monkeypatch.setattr(evaluation, "load_run", lambda *a, **k: pytest.fail("evaluated before refusing the output"))
    (run / "plots").mkdir()
    assert f"{run / 'plots'} is a directory" in fails(capsys, ["evaluate", str(run), "--plot", str(run / "plots")])
    before = files(run)
    for plot in ("curves.png", "history.png", "config.png"):  # or the JSON beside it would replace one
        assert "run file" in fails(capsys, ["evaluate", str(run), "--plot", str(run / plot)])
    assert files(run) == before


def test_evaluate_on_a_read_only_run_directory(trained, mount_tmpfs, monkeypatch, capsys):
    monkeypatch.setenv("CNNLAB_DATA", str(trained / "cache"))
    disk = mount_tmpfs("4m")  # a real tmpfs, remounted read-only (tests/conftest.py: mount_tmpfs)
    run = shutil.copytree(trained / "run", disk / "run")
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    out, err = evaluate_fails(capsys, run)
    assert out.startswith("6 test images") and "accuracy" in out
    assert len(err.strip().splitlines()) == 1 and "Read-only file system" in err and "--plot" in err
    assert "confusion.png" in err and "confusion.json" in err


# 8. a full disk, a directory as an output file ------------------------------------------------


@pytest.fixture()
def small_disk(make_small_disk):
    """A 4 MiB disk that fills up: simulated, and a real tmpfs where root (tests/conftest.py: make_small_disk)."""
    return make_small_disk("4m")


def fill(disk) -> None:
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC


def test_a_full_disk_is_named_for_every_writer(run, small_disk, capsys):
    fill(small_disk)
    line = fails(capsys, ["export", str(run), "--onnx", str(small_disk / "m.onnx")])
    assert f"no space left on device writing {small_disk / 'm.onnx'}" in line
    line = fails(capsys, ["evaluate", str(run), "--device", "cpu", "--plot", str(small_disk / "c.png")])
    assert f"no space left on device writing {small_disk / 'c.png'}" in line
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no temporary files left


def test_atomic_write_names_the_target_of_a_full_disk(tmp_path):
    def full(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=f"no space left on device writing {tmp_path / 'out.bin'}") as caught:
        atomic_write(tmp_path / "out.bin", full)
    assert caught.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []


def test_atomic_write_refuses_a_directory_as_its_target(tmp_path, run, capsys):
    (tmp_path / "adir").mkdir()
    with pytest.raises(IsADirectoryError, match=f"{tmp_path / 'adir'} is a directory"):
        atomic_write_text(tmp_path / "adir", "x")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    line = fails(capsys, ["export", str(run), "--onnx", str(tmp_path / "adir")])
    assert f"{tmp_path / 'adir'} is a directory" in line and ".adir." not in line
