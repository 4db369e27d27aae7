"""Training throughput on this machine: cnnlab's trainer next to a plain PyTorch loop, the
augmentation's own throughput, and the GFLOP/s achieved against a large matmul -- all in one run.

    .venv/bin/python benchmarks/training.py [--images 2560] [--threads 2]

- cnnlab: ``cnnlab.train.fit`` (uint8 data on the device, batch augmentation), one epoch.
- plain: the loop tutorials write -- a ``Dataset`` doing per-image pad-4/crop/flip in NumPy
  (what torchvision's RandomCrop + RandomHorizontalFlip + ToTensor do), a ``DataLoader`` with
  2 workers, NCHW float batches, the same model, Adam and cross-entropy.
- augmentation: images/s of ``Augmentation("keras")`` and ``("standard")`` on batches of 128.
- GFLOP/s: 3 x 2 x MACs (forward + backward) x images/s, against a 2048^3 float32 matmul.
Both trainers run the `standard` augmentation so the comparison is like for like.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import date

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
    print("| model | cnnlab img/s (channels_last, default) | cnnlab NCHW | plain PyTorch img/s | cnnlab / plain | cnnlab GFLOP/s (% of matmul) | augmentation keras / training |")
    print("|---|---|---|---|---|---|---|")
    for name, kwargs in MODELS:
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
        print(f"| {name} {kwargs or ''} | {ours:.0f} | {rates[False]:.0f} | {plain:.0f} | {ours / plain:.2f} | {gflops:.1f} ({gflops / peak:.0%}) | {aug['keras'] / ours:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
