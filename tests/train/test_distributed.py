"""Training in several processes with torchrun (gloo on the CPU, 2 processes): the same weights
as one process with the global batch, rank 0 alone writes, a killed rank is restarted from the
last checkpoint, and a run directory in use is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.train.lock import LOCK_NAME, RunDirectoryBusy, RunLock

from ..images import image_folder

WORKER = Path(__file__).with_name("ddp_worker.py")
RUN_FILES = {"best.pt", "last.pt", "config.json", "history.json", "history.csv", "curves.png"}


def _run(out: Path, nproc: int, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    environment.pop("PYTEST_XDIST_WORKER", None)
    command = [sys.executable, str(WORKER), str(out)]
    if nproc > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            *(["--max-restarts=1"] if "DDP_KILL" in env else []),
            str(WORKER),
            str(out),
        ]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    _run(root / "one", 1, DDP_BATCH="64", DDP_EPOCHS="3")
    _run(root / "two", 2, DDP_BATCH="32", DDP_EPOCHS="3", DDP_NO_WRITES_OFF_RANK0="1")
    return root


@pytest.mark.distributed
def test_two_ranks_of_32_train_as_one_process_of_64(runs):
    one, two = _weights(runs / "one"), _weights(runs / "two")
    assert one.keys() == two.keys()
    for name in one:  # 3 epochs x 3 steps of SGD on the same global batches
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-5)
    h1, h2 = (json.loads((runs / r / "history.json").read_text()) for r in ("one", "two"))
    for e1, e2 in zip(h1["epochs"], h2["epochs"]):  # metrics gathered from both ranks: the same figures
        assert e2["train_loss"] == pytest.approx(e1["train_loss"], abs=1e-5)
        assert e2["val_acc"] == pytest.approx(e1["val_acc"], abs=1e-9)
    assert (h2["info"]["world_size"], h2["info"]["batch_per_rank"], h2["info"]["global_batch"]) == (2, 32, 64)
    assert json.loads((runs / "two" / "config.json").read_text())["world_size"] == 2


@pytest.mark.distributed
def test_only_rank_0_writes(runs):
    # the worker ran with DDP_NO_WRITES_OFF_RANK0: any atomic write from rank 1 would have failed the run
    assert {p.name for p in (runs / "two").iterdir()} == RUN_FILES  # no lock left, no temporary files
    assert len(json.loads((runs / "two" / "history.json").read_text())["epochs"]) == 3


@pytest.mark.distributed
def test_a_killed_rank_restarts_from_the_last_checkpoint(runs, tmp_path):
    out = tmp_path / "killed"
    done = _run(out, 2, DDP_BATCH="32", DDP_EPOCHS="3", DDP_KILL="1,2")  # rank 1 killed as epoch 2 starts
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert history["info"]["resumes"][0]["from_epoch"] == 2
    assert "exitcode: -9" in done.stderr  # the kill did happen, and torchrun restarted both ranks
    for name, value in _weights(runs / "two").items():  # the same weights as the run never killed
        torch.testing.assert_close(_weights(out)[name], value, rtol=0, atol=1e-6)


@pytest.mark.distributed
def test_two_nodes_by_rendezvous_train_as_two_local_ranks(runs, tmp_path):
    """README's multi-node command, both "nodes" on this machine: two torchrun agents meet at a
    c10d rendezvous endpoint (1 process each) and train exactly as --standalone's 2 processes."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "DDP_BATCH": "32", "DDP_EPOCHS": "3"}
    environment.pop("PYTEST_XDIST_WORKER", None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        "two-nodes",
        str(WORKER),
        str(tmp_path / "nodes"),
    ]
    agents = [
        subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [agent.communicate(timeout=300) for agent in agents]
    assert all(agent.returncode == 0 for agent in agents), "\n".join(out[1][-2000:] for out in outputs)
    history = json.loads((tmp_path / "nodes" / "history.json").read_text())
    assert history["info"]["world_size"] == 2 and len(history["epochs"]) == 3
    for name, value in _weights(runs / "two").items():
        torch.testing.assert_close(_weights(tmp_path / "nodes")[name], value, rtol=0, atol=1e-6)


def test_a_run_directory_in_use_is_refused_and_a_stale_lock_taken_over(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        (tmp_path / LOCK_NAME).write_text(
            json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "started": "now"})
        )
        with pytest.raises(RunDirectoryBusy, match=f"in use by process {sleeper.pid}"):
            with RunLock(tmp_path):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    with RunLock(tmp_path) as lock:  # its owner is gone: stale, taken over
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.distributed
def test_cli_nproc_starts_torchrun(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    folder = image_folder(tmp_path / "shapes", per_class=16, splits=("train", "test"))
    out = tmp_path / "run"
    argv = [
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
        str(out),
        "--quiet",
    ]
    assert main([*argv, "--nproc", "2"]) == 0
    info = json.loads((out / "history.json").read_text())["info"]
    assert (info["world_size"], info["global_batch"]) == (2, 16)
    with pytest.raises(SystemExit):  # argparse: not a positive int
        main([*argv, "--nproc", "0"])


@pytest.mark.distributed
def test_reproduce_accepts_the_same_launch(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    shared = Path(__file__).resolve().parents[3] / "shared" / "datasets"
    out = tmp_path / "repro"
    assert (
        main(
            [
                "reproduce",
                "convtypes",
                "--preset",
                "smoke",
                "--cases",
                "2",
                "--epochs",
                "1",
                "--limit-train",
                "128",
                "--limit-val",
                "64",
                "--data-dir",
                str(shared),
                "--device",
                "cpu",
                "--out",
                str(out),
                "--quiet",
                "--nproc",
                "2",
            ]
        )
        == 0
    )
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    assert row["epochs"] == 1
    info = json.loads((out / "case2" / "history.json").read_text())["info"]
    assert info["world_size"] == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "accuracy_vs_cost.png",
            "case2",
            "comparison.png",
            "curves_case2.png",
            "plan.json",
            "results.csv",
            "results.json",
            "results.md",
        ]
    )


def test_search_workers_get_one_gpu_each(monkeypatch):
    from cnnlab.device import spread_over_gpus

    assert spread_over_gpus("cpu", 3) == ["cpu"] * 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert spread_over_gpus("auto", 3) == ["cuda:0", "cuda:1", "cuda:0"]
    assert spread_over_gpus("cuda:1", 2) == ["cuda:1", "cuda:1"]  # an explicit GPU stays as asked
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert spread_over_gpus("cuda", 2) == ["cuda", "cuda"]


def test_sync_bn_on_the_cpu_is_refused_in_one_line(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    folder = image_folder(tmp_path / "shapes", per_class=8, splits=("train", "test"))
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
                str(tmp_path / "run"),
                "--quiet",
                "--nproc",
                "2",
                "--sync-bn",
            ]
        )
        != 0
    )
    assert "--sync-bn needs CUDA" in capfd.readouterr().err


def test_lr_base_batch_scales_as_timm_does(tmp_path):
    from cnnlab.train import TrainConfig, fit

    from .ddp_worker import data, model

    assert TrainConfig(optimizer="sgd", lr=0.1, lr_base_batch=256).scaled_lr(512) == pytest.approx(0.2)  # linear
    assert TrainConfig(optimizer="adam", lr=1e-3, lr_base_batch=256).scaled_lr(1024) == pytest.approx(
        2e-3
    )  # square root
    assert TrainConfig(lr=0.1).scaled_lr(4096) == 0.1  # not asked: as given
    config = TrainConfig(
        epochs=1,
        batch_size=16,
        optimizer="sgd",
        lr=0.4,
        lr_base_batch=64,
        schedule="constant",
        augment="none",
        precise_bn=0,
        device="cpu",
    )
    history = fit(model(), data(), config, tmp_path / "run", quiet=True)
    assert history.info["lr_effective"] == pytest.approx(0.1)  # 16 of 64 (one process)
    assert history.epochs[0].lr == pytest.approx(0.1)
