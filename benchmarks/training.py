"""Training throughput on this machine: cnnlab's trainer next to a plain PyTorch loop and
article 000's Keras code, the augmentation's own throughput, and the GFLOP/s achieved against
a large matmul -- all in one run.

    .venv/bin/python benchmarks/training.py [--images 2560] [--threads 2] [--compile] [--keras-python PY]

Every training figure is measured in a fresh Python process of its own (``--measure``), so no
trainer inherits another's allocator state, thread pools or warm caches, and every figure is
images/s of the *second* epoch (the first pays for warm-up: oneDNN primitive creation, first
page touches, torch.compile, TensorFlow's tracing).

- cnnlab: ``cnnlab.train.fit`` (uint8 data on the device, batch augmentation), channels_last
  (the default) and NCHW, and once more with ``CNNLAB_MALLOC_TUNING=0`` (glibc's allocator as
  it comes, see ``cnnlab/train/host.py``) to show what that setting is worth.
- plain: the loop tutorials write -- a ``Dataset`` doing per-image pad-4/crop/flip in NumPy
  (what torchvision's RandomCrop + RandomHorizontalFlip + ToTensor do), a ``DataLoader`` with
  2 workers, NCHW float batches, the same model, Adam and cross-entropy.
- augmentation: images/s of ``Augmentation("keras")`` and ``("standard")`` on batches of 128.
- GFLOP/s: 3 x 2 x MACs (forward + backward) x images/s, against a 2048^3 float32 matmul and
  against the *peak*: the faster of that matmul and a large 3x3 convolution (oneDNN), both
  timed in this run. The *ceiling* is the images/s a model would reach if every one of its
  FLOPs ran at the peak.
- convolutions-only bound: every conv layer of the model timed alone, forward + backward at
  its real input shape; the images/s the model could not beat even if BatchNorm, activations,
  concatenations, pooling and the optimizer cost nothing.
- compiled (``--compile``): the same ``fit`` with ``compile=True`` (torch.compile).
- Keras (``--keras-python PY``): article 000's own Keras code (``keras_tf_peer.py``) run by
  another interpreter that has TensorFlow, against cnnlab with the same ``keras`` augmentation.
Both PyTorch trainers run the `standard` augmentation so that comparison is like for like.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import cnnlab
from cnnlab.analysis.summary import model_summary
from cnnlab.data import ImageDataset, make_splits
from cnnlab.data.augment import Augmentation
from cnnlab.train import TrainConfig, fit, tune_allocator

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
    """images/s of the second epoch of the tutorial loop."""
    loader = DataLoader(PerImage(images, labels), batch_size=batch_size, shuffle=True, num_workers=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(2):
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


def conv_gflops(repeat=5) -> float:
    """The fastest fp32 kernel we know on this CPU: a 3x3 convolution, 256 -> 256 channels, 8x8,
    batch 128, channels_last (oneDNN). On AMD CPUs it beats the matmul, which goes through MKL."""
    x = torch.randn(128, 256, 8, 8).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).contiguous(memory_format=torch.channels_last)
    F.conv2d(x, w, padding=1)
    start = time.perf_counter()
    for _ in range(repeat):
        F.conv2d(x, w, padding=1)
    return 2 * 128 * 64 * 256 * 256 * 9 * repeat / (time.perf_counter() - start) / 1e9


def conv_bound(name: str, kwargs: dict, batch_size: int, repeat: int = 5) -> float:
    """images/s the model could not beat even if everything but its convolutions were free:
    each conv layer timed alone (forward + backward, channels_last, batch ``batch_size``, the
    input shapes the model gives it), summed over the model's layers."""
    from cnnlab.layers.conv import Conv2D
    from cnnlab.train.host import keep_freed_memory

    keep_freed_memory()  # as the CPU training runs do (this is the parent process: the figures above ran in their own)
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=10, **kwargs).to(memory_format=torch.channels_last)
    shapes = []
    hooks = [
        m.register_forward_pre_hook(lambda m, a: shapes.append((m, a[0].shape)))
        for m in model.modules()
        if isinstance(m, Conv2D)
    ]
    model(torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last))
    for h in hooks:
        h.remove()
    total = 0.0
    for i, (conv, shape) in enumerate(shapes):
        x = torch.randn(batch_size, *shape[1:]).contiguous(memory_format=torch.channels_last).requires_grad_(i > 0)
        grad = torch.randn_like(conv(x))

        def step(conv=conv, x=x, grad=grad):
            conv.zero_grad(set_to_none=True)
            conv(x).backward(grad)

        step()
        start = time.perf_counter()
        for _ in range(repeat):
            step()
        total += (time.perf_counter() - start) / repeat
    return batch_size / total


def augmentation_rate(policy: str, batches=20) -> float:
    x = torch.randint(0, 256, (128, 3, 32, 32), dtype=torch.uint8)
    aug, g = Augmentation(policy), torch.Generator().manual_seed(0)
    aug(x, g)
    start = time.perf_counter()
    for _ in range(batches):
        aug(x, g)
    return 128 * batches / (time.perf_counter() - start)


def synthetic(n: int):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    classes = [str(i) for i in range(10)]
    return (
        images,
        labels,
        make_splits(ImageDataset(images, labels, classes), ImageDataset(images[:256], labels[:256], classes)),
    )


def measure(kind: str, name: str, args) -> float:
    """One figure, in this (fresh) process: images/s of the second epoch."""
    kwargs = dict(MODELS)[name]
    images, labels, data = synthetic(args.images)
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=10, **kwargs)
    if kind == "plain":
        return plain_loop(model, images, labels, args.batch_size)
    augment = "keras" if kind.endswith("-keras") else "standard"
    config = TrainConfig(
        epochs=2,
        batch_size=args.batch_size,
        augment=augment,
        device="cpu",
        channels_last=kind != "nchw",
        compile=kind.startswith("compiled"),
    )
    tune_allocator()  # as the cnnlab command does (the untuned column's CNNLAB_MALLOC_TUNING=0 says no)
    with tempfile.TemporaryDirectory() as out:
        return fit(model, data, config, out, quiet=True).epochs[1].images_per_s


def in_fresh_process(kind: str, name: str, args) -> float:
    env = {**os.environ}
    if kind == "untuned":
        env["CNNLAB_MALLOC_TUNING"] = "0"
    cmd = [
        sys.executable,
        __file__,
        "--measure",
        kind,
        "--models",
        name,
        "--images",
        str(args.images),
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{kind} {name} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="add a torch.compile column")
    parser.add_argument(
        "--keras-python", default=None, help="a Python with TensorFlow + Keras 3 for the article-code peer"
    )
    parser.add_argument("--models", default="densenet_cifar,resnet18", help="comma-separated subset of the two models")
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # internal: one figure in this process
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.measure:
        print(f"{measure(args.measure, args.models, args):.3f}")
        return
    matmul = matmul_gflops()
    peak = max(matmul, conv_gflops())
    aug = {p: augmentation_rate(p) for p in ("keras", "standard")}
    print(
        f"# {date.today()}  {platform.machine()}  torch {torch.__version__}  threads {args.threads}; "
        f"{args.images} images/epoch, batch {args.batch_size}, fp32, CPU; "
        "images/s of the second epoch, one fresh process each"
    )
    print(
        f"# matmul 2048^3: {matmul:.1f} GFLOP/s; peak (max of matmul and a 3x3 conv): {peak:.1f} GFLOP/s; augmentation: keras {aug['keras']:.0f} img/s, standard {aug['standard']:.0f} img/s"  # noqa: E501 (a table row / command line kept whole)
    )
    compiled_head = " cnnlab compiled | compiled / plain |" if args.compile else ""
    print(
        "| model | cnnlab img/s (channels_last, default) | cnnlab NCHW | cnnlab, glibc malloc untuned "
        "| plain PyTorch img/s | "
        f"cnnlab / plain | cnnlab GFLOP/s (% of matmul, % of peak) | ceiling img/s | convolutions-only bound img/s | augmentation keras / training |{compiled_head}"  # noqa: E501 (a table row / command line kept whole)
    )
    print("|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if args.compile else ""))
    wanted = args.models.split(",")
    bounds = {}
    for name, kwargs in MODELS:
        if name not in wanted:
            continue
        macs = model_summary(name, (3, 32, 32), **kwargs).macs
        ours, nchw, untuned, plain = (in_fresh_process(k, name, args) for k in ("cnnlab", "nchw", "untuned", "plain"))
        gflops = 3 * 2 * macs * ours / 1e9
        ceiling = peak * 1e9 / (3 * 2 * macs)
        bound = bounds[name] = conv_bound(name, kwargs, args.batch_size)
        compiled = ""
        if args.compile:
            rate = in_fresh_process("compiled", name, args)
            compiled = f" {rate:.0f} | {rate / plain:.2f} |"
        print(
            f"| {name} {kwargs or ''} | {ours:.0f} | {nchw:.0f} | {untuned:.0f} | {plain:.0f} | {ours / plain:.2f} | "
            f"{gflops:.1f} ({gflops / matmul:.0%}, {gflops / peak:.0%}) | {ceiling:.0f} | {bound:.0f} | {aug['keras'] / ours:.0f}x |{compiled}",  # noqa: E501 (a table row / command line kept whole)
            flush=True,
        )
    if args.keras_python and "densenet_cifar" in wanted:
        keras_peer(args, peak, bounds["densenet_cifar"])


def keras_peer(args, peak: float, bound: float) -> None:
    """Article 000's Keras code on TensorFlow (other interpreter) next to cnnlab, both with the
    article's ImageDataGenerator-style augmentation, one after the other in this run."""
    peer = subprocess.run(
        [args.keras_python, str(Path(__file__).with_name("keras_tf_peer.py")), "--images", str(args.images)],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        check=True,
    )
    line = peer.stdout.strip().splitlines()[-1]
    keras_rate = float(re.search(r"ImageDataGenerator\) (\d+) img/s", line).group(1))
    ours = in_fresh_process("cnnlab-keras", "densenet_cifar", args)
    ceiling = peak * 1e9 / (3 * 2 * model_summary("densenet_cifar", (3, 32, 32)).macs)
    print(f"\n# {line}")
    print(
        f"# ceiling (every FLOP at the peak rate): {ceiling:.0f} img/s = {ceiling / keras_rate:.2f}x Keras; "
        f"convolutions-only bound: {bound:.0f} img/s = {bound / keras_rate:.2f}x Keras"
    )
    print("| densenet_cifar, `keras` augmentation | img/s | vs Keras | % of ceiling |\n|---|---|---|---|")
    print(f"| Keras + TensorFlow (article code) | {keras_rate:.0f} | 1.00 | {keras_rate / ceiling:.0%} |")
    print(f"| cnnlab eager (channels_last) | {ours:.0f} | {ours / keras_rate:.2f} | {ours / ceiling:.0%} |")
    if args.compile:
        comp = in_fresh_process("compiled-keras", "densenet_cifar", args)
        print(f"| cnnlab compiled | {comp:.0f} | {comp / keras_rate:.2f} | {comp / ceiling:.0%} |")


if __name__ == "__main__":
    main()
