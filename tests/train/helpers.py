"""Shared helpers of the training tests: a tiny learnable dataset, a tiny model and a short
training configuration (test_trainer.py, test_faults.py, test_loop_options.py, test_run_safety.py,
tests/test_cli_errors.py)."""

from __future__ import annotations

import platform
import sys

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.data import ImageDataset, make_splits
from cnnlab.train import TrainConfig


def tiny_data(n=96, size=16, seed=0):
    """Two classes a small net can tell apart (and a horizontal flip keeps): bright top half vs bright bottom half."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 60, (n, size, size, 3)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, (size // 2) * c : (size // 2) * (c + 1)] += 150
    train = ImageDataset(images, labels.astype(np.int64), ["top", "bottom"])
    test = ImageDataset(images[:32].copy(), labels[:32].astype(np.int64), ["top", "bottom"])
    return make_splits(train, test, source="synthetic")


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return cnnlab.create_model("convtype_cifar", num_classes=2, conv="separable", widths=(8, 16))


CONFIG = TrainConfig(
    epochs=3, batch_size=32, augment="standard", schedule="onecycle", warmup_epochs=1, device="cpu", seed=3
)

# the allocator tests: glibc's mallopt exists on Linux with glibc only
glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
)
