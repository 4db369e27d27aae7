"""Training throughput on this machine: cnnlab's trainer next to a plain PyTorch loop, the
augmentation's own throughput, and the GFLOP/s achieved against a large matmul -- all in one run.

    .venv/bin/python benchmarks/training.py [--images 2560] [--threads 2]

- cnnlab: ``cnnlab.train.fit`` (uint8 data on the device, batch augmentation), one epoch.
- plain: the loop tutorials write -- a ``Dataset`` doing per-image pad-4/crop/flip in NumPy
  (what torchvision's RandomCrop + RandomHorizontalFlip + ToTensor do), a ``DataLoader`` with
  2 workers, NCHW float batches, the same model, Adam and cross-entropy.
- augmentation: images/s of ``Augmentation("keras")`` and ``("standard")`` on batches of 128.
- GFLOP/s: 3 x 2 x MACs (forward + backward) x images/s, against a 2048^3 float32 matmul.
- compiled (``--compile``): the same ``fit`` with ``compile=True`` (torch.compile), images/s
  of the second epoch (the first one pays for compilation).
- Keras (``--keras-python PY``): article 000's own Keras code (``keras_tf_peer.py``) run by
  another interpreter that has TensorFlow, in the same run, against cnnlab with the same
  ``keras`` augmentation.
Both PyTorch trainers run the `standard` augmentation so the comparison is like for like.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import date

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import cnnlab
from cnnlab.analysis.summary import model_summary
from cnnlab.data import ImageDataset, make_splits
from cnnlab.data.augment import Augmentation
from cnnlab.train import TrainConfig, fit

MODELS = [("densenet_cifar", {}), ("resnet18", {"stem": "cifar", "conv_bias": False})]


class PerImage(Dataset):
    def __init__(self, images, labels, seed=0):
        self.images, self.labels, self.rng = images, labels, np.random.default_rng(seed)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = np.pad(self.images[i], ((4, 4), (4, 4), (0, 0)))
        y, x = self.rng.integers(0, 9, 2)
        img = img[y : y + 32, x : x + 32]
        if self.rng.random() < 0.5:
            img = img[:, ::-1]
        return torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 255.0), int(self.labels[i])


def plain_loop(model, images, labels, batch_size) -> float:
    loader = DataLoader(PerImage(images, labels), batch_size=batch_size, shuffle=True, num_workers=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return len(images) / (time.perf_counter() - start)


def matmul_gflops(n=2048, repeat=5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2 * n**3 * repeat / (time.perf_counter() - start) / 1e9


def augmentation_rate(policy: str, batches=20) -> float:
    x = torch.randint(0, 256, (128, 3, 32, 32), dtype=torch.uint8)
    aug, g = Augmentation(policy), torch.Generator().manual_seed(0)
    aug(x, g)
    start = time.perf_counter()
    for _ in range(batches):
        aug(x, g)
    return 128 * batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="add a torch.compile column (2 epochs each)")
    parser.add_argument("--keras-python", default=None, help="a Python with TensorFlow + Keras 3 for the article-code peer")
    parser.add_argument("--models", default="densenet_cifar,resnet18", help="comma-separated subset of the two models")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images).astype(np.int64)
    classes = [str(i) for i in range(10)]
    data = make_splits(ImageDataset(images, labels, classes), ImageDataset(images[:256], labels[:256], classes))
    peak = matmul_gflops()
    aug = {p: augmentation_rate(p) for p in ("keras", "standard")}
    print(f"# {date.today()}  {platform.machine()}  torch {torch.__version__}  threads {args.threads}; "
          f"{args.images} images/epoch, batch {args.batch_size}, fp32, CPU")
    print(f"# matmul 2048^3: {peak:.1f} GFLOP/s; augmentation: keras {aug['keras']:.0f} img/s, standard {aug['standard']:.0f} img/s")
    compiled_head = " cnnlab compiled | compiled / plain |" if args.compile else ""
    print("| model | cnnlab img/s (channels_last, default) | cnnlab NCHW | plain PyTorch img/s | cnnlab / plain | "
          f"cnnlab GFLOP/s (% of matmul) | augmentation keras / training |{compiled_head}")
    print("|---|---|---|---|---|---|---|" + ("---|---|" if args.compile else ""))
    wanted = set(args.models.split(","))
    for name, kwargs in MODELS:
        if name not in wanted:
            continue
        macs = model_summary(name, (3, 32, 32), **kwargs).macs
        rates = {}
        for channels_last in (True, False):
            torch.manual_seed(0)
            with tempfile.TemporaryDirectory() as out:
                config = TrainConfig(epochs=1, batch_size=args.batch_size, augment="standard", device="cpu", channels_last=channels_last)
                model = cnnlab.create_model(name, num_classes=10, **kwargs)
                rates[channels_last] = fit(model, data, config, out, quiet=True).epochs[0].images_per_s
        ours = rates[True]
        torch.manual_seed(0)
        plain = plain_loop(cnnlab.create_model(name, num_classes=10, **kwargs), images, labels, args.batch_size)
        gflops = 3 * 2 * macs * ours / 1e9
        compiled = ""
        if args.compile:
            rate = cnnlab_rate(name, kwargs, data, args.batch_size, augment="standard", compile=True)
            compiled = f" {rate:.0f} | {rate / plain:.2f} |"
        print(f"| {name} {kwargs or ''} | {ours:.0f} | {rates[False]:.0f} | {plain:.0f} | {ours / plain:.2f} | "
              f"{gflops:.1f} ({gflops / peak:.0%}) | {aug['keras'] / ours:.0f}x |{compiled}", flush=True)
    if args.keras_python and "densenet_cifar" in wanted:
        keras_peer(args, data)


def cnnlab_rate(name, kwargs, data, batch_size, augment, compile=False) -> float:
    """images/s of cnnlab's fit: the second epoch (the first pays for compilation or warm-up)."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(epochs=2, batch_size=batch_size, augment=augment, device="cpu", compile=compile)
        model = cnnlab.create_model(name, num_classes=10, **kwargs)
        return fit(model, data, config, out, quiet=True).epochs[1].images_per_s


def keras_peer(args, data) -> None:
    """Article 000's Keras code on TensorFlow (other interpreter) next to cnnlab, both with the
    article's ImageDataGenerator-style augmentation, one after the other in this run."""
    peer = subprocess.run(
        [args.keras_python, str(Path(__file__).with_name("keras_tf_peer.py")), "--images", str(args.images)],
        capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "tensorflow"}, check=True,
    )
    line = peer.stdout.strip().splitlines()[-1]
    keras_rate = float(re.search(r"ImageDataGenerator\) (\d+) img/s", line).group(1))
    ours = cnnlab_rate("densenet_cifar", {}, data, args.batch_size, augment="keras")
    print(f"\n# {line}")
    print("| densenet_cifar, `keras` augmentation | img/s | vs Keras |\n|---|---|---|")
    print(f"| Keras + TensorFlow (article code) | {keras_rate:.0f} | 1.00 |")
    print(f"| cnnlab eager (channels_last) | {ours:.0f} | {ours / keras_rate:.2f} |")
    if args.compile:
        comp = cnnlab_rate("densenet_cifar", {}, data, args.batch_size, augment="keras", compile=True)
        print(f"| cnnlab compiled | {comp:.0f} | {comp / keras_rate:.2f} |")


if __name__ == "__main__":
    main()
