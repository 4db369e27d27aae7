"""Training images/s of 2 processes (torchrun, DistributedDataParallel, gloo on the CPU) against 1,
the same global batch, side by side in one run.

    .venv/bin/python benchmarks/distributed.py [--model convtype_cifar] [--limit-train 10000] [--rounds 2]

Each round trains one epoch of CIFAR-10 (``--limit-train`` images, from ../shared/datasets) with
``cnnlab train`` once in 1 process (batch 128) and once with ``--nproc 2`` (batch 64 per process);
the two alternate so that a machine that gets busier hurts both alike. The training rate is the
history's ``images_per_s`` (the epoch's training images over its training seconds). On a 2-core
CPU expect about 1x: two processes share the same two cores (each gets one thread); the point
is the mechanics. On a machine with N GPUs: ``--device cuda --nproc N``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def run(nproc: int, args: argparse.Namespace, out: Path) -> float:
    batch = args.global_batch // nproc
    command = [
        sys.executable,
        "-m",
        "cnnlab",
        "train",
        args.model,
        "--data-dir",
        args.data_dir,
        "--limit-train",
        str(args.limit_train),
        "--limit-val",
        "1000",
        "--epochs",
        "1",
        "--batch-size",
        str(batch),
        "--device",
        args.device,
        "--out",
        str(out),
        "--overwrite",
        "--quiet",
    ]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc))}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-3000:])
    history = json.loads((out / "history.json").read_text())
    assert history["info"]["world_size"] == nproc
    return history["epochs"][0]["images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="convtype_cifar")
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    p.add_argument("--limit-train", type=int, default=10000)
    p.add_argument("--global-batch", type=int, default=128)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.model}, {args.limit_train} images, global batch {args.global_batch}, device {args.device}"
    )
    rates: dict[int, list[float]] = {1: [], args.nproc: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for nproc in (1, args.nproc):
                rates[nproc].append(run(nproc, args, Path(tmp) / f"run{nproc}"))
                print(f"  {nproc} process(es): {rates[nproc][-1]:.0f} images/s", flush=True)
    one, many = max(rates[1]), max(rates[args.nproc])
    print(f"best: 1 process {one:.0f} images/s, {args.nproc} processes {many:.0f} images/s: ratio {many / one:.2f}x")


if __name__ == "__main__":
    main()
