"""Run by tests/train/test_distributed.py, once alone and once under torchrun: fit a small
model without BatchNorm on fixed synthetic data into argv[1].

Options (environment): DDP_BATCH (per process), DDP_EPOCHS, DDP_KILL="rank,epoch,step" (SIGKILL
that rank at that step on torchrun's first attempt), DDP_NO_WRITES_OFF_RANK0=1 (any file that
cnnlab writes atomically from another rank than 0 fails the run).
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import torch
from torch import nn

from cnnlab.data.dataset import DataSplits, ImageDataset
from cnnlab.train import TrainConfig, fit


def data() -> DataSplits:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(256, 8, 8, 3), dtype=np.uint8)
    labels = (images[:, :4].mean(axis=(1, 2, 3)) > images[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    train = ImageDataset(images[:192], labels[:192], ["low", "high"])
    val = ImageDataset(images[192:], labels[192:], ["low", "high"])
    return DataSplits(train, val, None, "test", "synthetic")


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 2)
    )


def main() -> None:
    rank = int(os.environ.get("RANK", "0"))
    if os.environ.get("DDP_NO_WRITES_OFF_RANK0") and rank != 0:
        import cnnlab.io

        def refuse(path, *args, **kwargs):
            raise AssertionError(f"rank {rank} wrote {path}")

        cnnlab.io.atomic_write = refuse  # every file cnnlab writes goes through it
        import cnnlab.train.rundir as rundir

        rundir.atomic_write = refuse
        import cnnlab.train.trainer as trainer

        trainer.atomic_write_text = refuse
        import cnnlab.train.history as history

        for name in ("atomic_write", "atomic_write_text"):
            if hasattr(history, name):
                setattr(history, name, refuse)
    config = TrainConfig(
        epochs=int(os.environ.get("DDP_EPOCHS", "2")),
        batch_size=int(os.environ["DDP_BATCH"]),
        optimizer="sgd",
        lr=0.05,
        schedule="constant",
        augment="none",
        precise_bn=0,
        channels_last=False,
        device="cpu",
        eval_batch_size=32,
    )
    on_start = None
    kill = os.environ.get("DDP_KILL")
    if kill and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
        k_rank, k_epoch = (int(v) for v in kill.split(","))

        def on_start(epoch: int) -> None:
            if rank == k_rank and epoch == k_epoch:
                os.kill(os.getpid(), signal.SIGKILL)

    fit(model(), data(), config, sys.argv[1], quiet=True, on_epoch_start=on_start)


if __name__ == "__main__":
    main()
