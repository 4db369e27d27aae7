"""Every `cnnlab ...` command of README.md's code blocks runs as written, smoke-sized.

The commands run in order, in one working directory, as a reader would type them: the files they
name exist there (``flowers/``, ``pets.tar``, ``photos.tar``, ``cat.jpg``, ``ship.png``; CIFAR-10
in the cache and at ``../shared/datasets``, as CIFAR-10-like 32x32 image folders), and later
commands use what earlier ones wrote (``runs/r18``, ``runs/ft``). Smoke sizing changes only how
much: the values of ``SMOKE_VALUES`` replace the README's where it gives them, and training
commands get ``SMOKE_LIMITS`` (1 epoch on 20 images) where it does not; ``--device cuda`` becomes
``--device cpu``. Where the README needs what CI cannot have, a stand-in takes its place, listed
in ``STAND_INS`` with the reason; no command is skipped.
"""

from __future__ import annotations

import re
import shlex
import tarfile
import time
from pathlib import Path

import pytest
from PIL import Image

from cnnlab.cli import main

from .fake_cifar import fake_cifar10

README = Path(__file__).resolve().parents[1] / "README.md"

# the README's value -> the smoke value, where the README gives the option
SMOKE_VALUES = {
    "--epochs": "1",
    "--warmup-epochs": "0.5",
    "--freeze-epochs": "1",
    "--image-size": "32",
    "--cache-size": "36",
    "--device": "cpu",
    "--batch-size": "10",
    "--trials": "1",
}
# appended to the commands that train, where the README leaves them out
SMOKE_LIMITS = {"--epochs": "1", "--limit-train": "20", "--limit-val": "10", "--batch-size": "10", "--device": "cpu"}
TRAINING = {"train", "finetune", "reproduce", "search"}
# what CI cannot have, and what stands in for it
STAND_INS = {
    "--weights imagenet": "no network: the published file is not downloaded; a stand-in loader checks that the model "
    "was built in the flavour of the file cnnlab chooses (interop.pretrained.choose), then "
    "leaves the random weights",
    "--device cuda": "no GPU: --device cpu",
}
# README lines that start cnnlab under torchrun: not run here, each for its reason
NOT_RUN = {
    "torchrun --standalone --nproc-per-node 2 -m cnnlab train densenet_cifar --batch-size 64 --out runs/dn-ddp": "the very command line `cnnlab train ... --nproc 2` starts, which runs here",  # noqa: E501 (a table row / command line kept whole)
    "torchrun --standalone --nproc-per-node 4 -m cnnlab reproduce densenet --preset fast --device cuda --sync-bn": "--sync-bn is CUDA's SyncBatchNorm, on 4 GPUs",  # noqa: E501 (a table row / command line kept whole)
    "torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 --rdzv-id dn1 "
    "-m cnnlab train densenet_cifar --batch-size 64 --device cuda --out /shared/runs/dn-2nodes": "two machines with 4 GPUs each (tests/train/test_distributed.py runs two agents at a c10d rendezvous on one)",  # noqa: E501 (a table row / command line kept whole)
}


def code_lines(text: str) -> list[str]:
    """The lines of the README's code blocks, ``\\`` continuations joined, comments dropped."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside and lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1].rstrip() + " " + line.strip()
        elif inside:
            lines.append(line)
    return [line.split("  #")[0].rstrip() for line in lines]


def readme_commands(text: str) -> list[str]:
    """The `cnnlab ...` lines of the README's code blocks (``$ `` prompts dropped)."""
    return [line.removeprefix("$ ") for line in code_lines(text) if re.match(r"(\$ )?cnnlab ", line)]


def smoke(command: str) -> list[str]:
    """The command's arguments (after ``cnnlab``), smoke-sized."""
    argv = shlex.split(command, comments=True)[1:]
    out = [SMOKE_VALUES[argv[i - 1]] if i and argv[i - 1] in SMOKE_VALUES else item for i, item in enumerate(argv)]
    if out[0] in TRAINING and not (len(out) > 1 and out[1] == "report"):
        out += [item for flag, value in SMOKE_LIMITS.items() if flag not in out for item in (flag, value)]
        if out[0] == "reproduce" and "--cases" not in out:
            out += ["--cases", "1"]  # the first case of the experiment: every case trains the same way
        if out[0] == "search" and "--trials" not in out:
            out += ["--trials", "1"]
    return out


def test_the_readme_lists_its_commands():
    commands = readme_commands(README.read_text())
    assert len(commands) >= 25 and all(c.startswith("cnnlab ") for c in commands)
    for needed in STAND_INS:
        assert any(needed in c for c in commands), f"STAND_INS names {needed!r}, which no README command uses any more"
    assert sorted(line for line in code_lines(README.read_text()) if "-m cnnlab" in line) == sorted(NOT_RUN)
    assert smoke("cnnlab train resnet18 --epochs 30 --warmup-epochs 1 --device cuda") == [
        "train",
        "resnet18",
        "--epochs",
        "1",
        "--warmup-epochs",
        "0.5",
        "--device",
        "cpu",
        "--limit-train",
        "20",
        "--limit-val",
        "10",
        "--batch-size",
        "10",
    ]


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """A reader's directory: the files the README's commands name, CIFAR-10 where cnnlab looks."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    fake_cifar10(tmp_path / "cache" / "cifar10")
    fake_cifar10(tmp_path / "shared" / "datasets" / "cifar10")  # ../shared/datasets, as in this project's checkout
    folder(work / "flowers", ("train", "val"))
    folder(work / "photos", ("train", "val"))
    with tarfile.open(work / "photos.tar", "w") as tar:
        tar.add(work / "photos", arcname="photos")
    pets = folder(tmp_path / "pets", (".",))
    with tarfile.open(work / "pets.tar", "w") as tar:
        tar.add(pets, arcname="pets")
    for name in ("cat.jpg", "ship.png"):
        Image.new("RGB", (40, 30), (200, 120, 40)).save(work / name)
    monkeypatch.chdir(work)
    return work


def folder(root: Path, splits: tuple[str, ...]) -> Path:
    for split in splits:
        for c, name in enumerate(("daisy", "rose", "tulip")):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(6):
                Image.new("RGB", (32, 32), (70 * c, 200 - 60 * c, 10 * i)).save(root / split / name / f"{i}.png")
    return root


@pytest.fixture()
def no_download(monkeypatch):
    """``--weights imagenet`` without network (STAND_INS): the flavour check, not the download."""
    from cnnlab.interop import pretrained

    def stand_in(model, name, model_args=None, timeout=None):
        entry = pretrained.choose(name, model_args)  # raises where the model is built in another flavour
        return f"imagenet:{entry.framework}:{entry.filename} (stand-in: not downloaded)"

    monkeypatch.setattr(pretrained, "load_pretrained", stand_in)


@pytest.mark.slow
def test_every_readme_command_runs(workdir, no_download, capsys):
    failed, times = [], {}
    for command in readme_commands(README.read_text()):
        argv = smoke(command)
        start = time.perf_counter()
        try:
            status = main(argv)
        except SystemExit as stop:  # an error: one line on stderr, exit status 2
            status = stop.code
        times[command] = time.perf_counter() - start
        output = capsys.readouterr()
        if status != 0:
            failed.append(
                f"{command}\n    ran: cnnlab {shlex.join(argv)}\n    exit {status}: {output.err.strip()[-600:]}"
            )
    assert not failed, "README commands that fail:\n" + "\n".join(failed)
    slowest = sorted(times.items(), key=lambda kv: -kv[1])[:3]
    print("slowest:", "; ".join(f"{t:.1f} s {c}" for c, t in slowest))
