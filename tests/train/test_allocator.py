"""Who tunes glibc's allocator (train/host.py): ``fit`` called from Python leaves it as it is
unless the caller opts in (``cnnlab.train.tune_allocator()``); cnnlab's own training commands
opt in; ``CNNLAB_MALLOC_TUNING=0`` leaves it alone either way. The run records what the
allocator was (``host_malloc``).

Each case runs in a fresh interpreter: mallopt changes the whole process for good."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from .helpers import glibc

LIBRARY = """
import json, tempfile
import numpy as np
import torch
import cnnlab
from cnnlab.data import ImageDataset, make_splits
from cnnlab.train import TrainConfig, fit, tune_allocator
from cnnlab.train.host import allocator_state

images = np.random.default_rng(0).integers(0, 255, (16, 8, 8, 3), dtype=np.uint8)
labels = (np.arange(16) % 2).astype(np.int64)
data = make_splits(ImageDataset(images, labels, ["a", "b"]), ImageDataset(images[:4], labels[:4], ["a", "b"]))
config = TrainConfig(epochs=1, batch_size=8, augment="none", precise_bn=0, device="cpu")
seen = {}
for case in ("not asked", "asked"):
    if case == "asked":
        tune_allocator()
    with tempfile.TemporaryDirectory() as out:
        torch.manual_seed(0)
        model = cnnlab.create_model("convtype_cifar", num_classes=2, widths=(4, 8))
        history = fit(model, data, config, out, quiet=True)
    seen[case] = {"state": allocator_state(), "recorded": history.info.get("host_malloc")}
print(json.dumps(seen))
"""

COMMAND = """
import json, sys
from cnnlab.cli import main
from cnnlab.train.host import allocator_state
code = main(sys.argv[1:])
print(json.dumps({"code": code, "state": allocator_state()}))
"""


def in_fresh_python(script: str, *args: str, tuning: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CNNLAB_MALLOC_TUNING"}
    if tuning is not None:
        env["CNNLAB_MALLOC_TUNING"] = tuning
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@glibc
def test_fit_from_python_leaves_the_allocator_alone_unless_asked():
    seen = in_fresh_python(LIBRARY)
    assert seen["not asked"] == {"state": "default", "recorded": "default"}
    assert seen["asked"] == {"state": "tuned", "recorded": "tuned"}


@glibc
def test_the_training_command_tunes_it_unless_the_environment_says_no(tmp_path, folder):
    args = [
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
        "16",
        "--augment",
        "none",
        "--device",
        "cpu",
        "--quiet",
    ]
    tuned = in_fresh_python(COMMAND, *args, "--out", str(tmp_path / "tuned"))
    assert tuned == {"code": 0, "state": "tuned"}
    assert json.loads((tmp_path / "tuned" / "history.json").read_text())["info"]["host_malloc"] == "tuned"
    # the environment's no wins over the command's tune_allocator()
    assert in_fresh_python(COMMAND, *args, "--out", str(tmp_path / "off"), tuning="0") == {"code": 0, "state": "off"}


def test_a_tuning_setting_that_means_nothing_is_refused(monkeypatch):
    from cnnlab.train import host

    monkeypatch.setenv("CNNLAB_MALLOC_TUNING", "maybe")
    with pytest.raises(ValueError, match=r"CNNLAB_MALLOC_TUNING must be 1 .* or 0 .*, got 'maybe'"):
        host.tune_for_training(torch.device("cpu"))  # refused before mallopt: this process stays as it was
