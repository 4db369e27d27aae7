"""Memory and reading speed of training from the decoded cache (``--stream``), on synthetic
image folders of 5k, 50k and 200k 64x64 images.

    .venv/bin/python benchmarks/streaming.py [--sizes 5000,50000,200000] [--work /tmp/cnnlab-stream-bench]

For each size: a tar of JPEGs (smooth random pictures, 2 classes) is written; then the same
training run -- ``cnnlab train convtype_cifar --arg widths=8,16 --epochs 1 --batch-size 128
--stream`` over every image, validation on 1,000 -- runs twice in a fresh process, measured with
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: first decoding into an empty cache, then
from the warm cache. Then the reader alone: the images/s at which the trainer's read-ahead thread
(and, to compare, a DataLoader with 2 workers) delivers shuffled batches of 128 from the cache,
against resnet18's training rate at 64x64 on this machine (batch 64, as ``fit`` steps it).

    .venv/bin/python benchmarks/streaming.py --cache-size 72 [--sizes ...]

does the same with images kept in their own framing: the JPEGs have random sizes (64-160 px a
side), the cache keeps each at shorter side 72, and the run trains at 64x64 with ``--augment
imagenet`` (a random-resized crop of every image over its whole framing); the reader's rate
then includes those crops (read + crop + resize, as the trainer does them).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_tar(path: Path, n: int, size: int = 64, varied: bool = False) -> None:
    """``n`` smooth random JPEGs of ``size`` px, or (``varied``) of random sides in 64-160 px."""
    if path.exists():
        return
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".part")
    with tarfile.open(tmp, "w") as tar:
        for i in range(n):
            small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            h, w = (int(v) for v in rng.integers(64, 161, 2)) if varied else (size, size)
            buffer = io.BytesIO()
            Image.fromarray(small).resize((w, h), Image.BILINEAR).save(buffer, format="JPEG", quality=90)
            split = "val" if i < 1000 else "train"
            info = tarfile.TarInfo(f"synth/{split}/{'ab'[i % 2]}/{i:06d}.jpg")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    tmp.rename(path)


# A fresh wrapper per measured command: RUSAGE_CHILDREN then covers that command (and its own
# children) alone -- ru_maxrss of children is a maximum over every child ever waited for.
WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
    "print('peak_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)


def peak_rss_of(command: list[str], env: dict) -> tuple[float, float, str]:
    """(peak RSS in MiB, seconds, output) of ``command`` in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    peak = int(done.stdout.strip().splitlines()[-1].split()[1])
    return peak / 1024, seconds, done.stdout


def measure_run(tar: Path, cache: Path, out: Path, cache_size: int | None = None, repeats: int = 1) -> list[dict]:
    """Peak RSS of the run decoding into an empty cache, then ``repeats`` times from the warm cache
    (the peak varies from run to run by up to ~20% with the trainer's keep-freed-memory allocator
    setting, with how the reader thread's and the step's allocations interleave: take the median)."""
    env = {**os.environ, "CNNLAB_DATA": str(cache), "OMP_NUM_THREADS": "2"}
    command = [
        sys.executable,
        "-m",
        "cnnlab",
        "train",
        "convtype_cifar",
        "--arg",
        "widths=8,16",
        "--dataset",
        "synth",
        "--data-dir",
        str(tar),
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--stream",
        "--device",
        "cpu",
        "--quiet",
    ]
    if cache_size:
        command += ["--cache-size", str(cache_size), "--image-size", "64", "--augment", "imagenet"]
    rows = []
    shutil.rmtree(cache, ignore_errors=True)
    for label in ("cold cache (decode + train)", *["warm cache (train)"] * repeats):
        run_dir = out / label.split()[0]
        peak, seconds, _ = peak_rss_of([*command, "--out", str(run_dir), "--overwrite"], env)
        info = json.loads((run_dir / "history.json").read_text())
        rows.append(
            {
                "run": label,
                "peak_rss_mib": round(peak),
                "seconds": round(seconds, 1),
                "train_img_per_s": round(info["epochs"][0]["images_per_s"]),
                "streamed": info["info"]["streamed"],
            }
        )
    return rows


def reader_rate(cache: Path, tar: Path, batches: int = 300, cache_size: int | None = None) -> dict:
    os.environ["CNNLAB_DATA"] = str(cache)
    from cnnlab.data.augment import Augmentation
    from cnnlab.data.sources import load_dataset
    from cnnlab.train.batches import FromDisk

    train = load_dataset("synth", tar, image_size=(64, 64) if cache_size else None, cache_size=cache_size)["train"]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    indices = [order[i * 128 : (i + 1) * 128] for i in range(min(batches, len(train) // 128))]
    source = FromDisk(train, torch.device("cpu"), channels_last=True, frames=cache_size is not None)
    crop, draws = Augmentation("imagenet"), torch.Generator().manual_seed(0)
    start = time.perf_counter()
    n = sum(len(crop(x, draws) if cache_size else y) for x, y in source.batches(indices))
    thread = n / (time.perf_counter() - start)
    if cache_size:  # the crops need the training thread; a DataLoader would only add copies
        return {"thread_read_and_crop_img_per_s": round(thread)}

    class Batches(torch.utils.data.Dataset):
        def __len__(self):
            return len(indices)

        def __getitem__(self, i):
            index = indices[i].numpy()
            return torch.from_numpy(train.images[index]), torch.from_numpy(train.labels[index])

    loader = torch.utils.data.DataLoader(Batches(), batch_size=None, num_workers=2, prefetch_factor=3)
    start = time.perf_counter()
    n = sum(len(y) for _, y in loader)
    workers = n / (time.perf_counter() - start)
    return {"thread_img_per_s": round(thread), "dataloader_2_workers_img_per_s": round(workers)}


def resnet18_rate(steps: int = 6) -> float:
    from cnnlab.models import create_model

    model = create_model("resnet18", num_classes=2).train().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(64, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (64,))
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        best = min(best, time.perf_counter() - start)
    return 64 / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, help="one size, measured in this process (the driver runs one per size)")
    p.add_argument("--sizes", default="5000,50000,200000")
    p.add_argument("--work", default="/tmp/cnnlab-stream-bench")
    p.add_argument("--repeats", type=int, default=3, help="warm-cache runs per size (their median is the figure)")
    p.add_argument(
        "--cache-size", type=int, default=None, help="images of random sizes kept in their framing at this shorter side"
    )
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.size is None:  # driver: one fresh process per size, so that RUSAGE_CHILDREN is that size's alone
        print(
            f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__}"
        )
        results = []
        for n in (int(v) for v in args.sizes.split(",")):
            more = (["--cache-size", str(args.cache_size)] if args.cache_size else []) + [
                "--repeats",
                str(args.repeats),
            ]
            done = subprocess.run(
                [sys.executable, __file__, "--size", str(n), "--work", str(work), *more], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise SystemExit(done.stdout + done.stderr)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
        rate = resnet18_rate()
        print(f"resnet18 training at 64x64 (batch 64, fp32, {torch.get_num_threads()} threads): {rate:.0f} images/s")
        (work / f"results{'-framed' if args.cache_size else ''}.json").write_text(
            json.dumps({"sizes": results, "resnet18_img_per_s": rate}, indent=1)
        )
        return
    kind = "framed-" if args.cache_size else ""
    tar = work / f"synth-{kind}{args.size}.tar"
    make_tar(tar, args.size + 1000, varied=bool(args.cache_size))
    cache = work / f"cache-{kind}{args.size}"
    rows = measure_run(tar, cache, work / f"runs-{kind}{args.size}", args.cache_size, args.repeats)
    print(
        json.dumps(
            {
                "images": args.size,
                "tar_mib": round(tar.stat().st_size / 2**20),
                "runs": rows,
                **reader_rate(cache, tar, cache_size=args.cache_size),
            }
        )
    )


if __name__ == "__main__":
    main()
