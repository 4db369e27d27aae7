"""Argument types and the options several commands share. Choices come from the library's own
tables (models, presets, optimizers, ...); every default is ``None`` so that the library, not
argparse, decides what an unset option means."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from ..data.augment import POLICIES
from ..presets import PRESETS
from ..train.config import EARLY_STOP_METRICS, OPTIMIZERS, PRECISIONS, SCHEDULES, TTAS, TrainConfig


def int_tuple(text: str, lengths: tuple[int, ...], what: str) -> tuple[int, ...]:
    """``"3"``, ``"3,5"`` or ``"3x5"`` -> a tuple of ints whose length is one of ``lengths``."""
    expected = f"{what} must be {' or '.join(map(str, lengths))} comma-separated ints, got {text!r}"
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if len(values) not in lengths:
        raise argparse.ArgumentTypeError(expected)
    return values


def pair(text: str) -> tuple[int, int]:
    """``N`` or ``H,W`` -> always ``(H, W)`` (``N`` -> ``(N, N)``)."""
    values = int_tuple(text, (1, 2), "a size")
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def image_size(text: str) -> tuple[int, int]:
    """``--image-size``: N (square) or H,W, positive, always as (H, W)."""
    try:
        h, w = pair(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"--image-size must be N or H,W positive ints, got {text!r}") from None
    if min(h, w) < 1:
        raise argparse.ArgumentTypeError(f"--image-size must be N or H,W positive ints, got {text!r}")
    return (h, w)


def cell(text: str) -> tuple[int, int, int]:
    y, x, c = int_tuple(text, (3,), "--cell (y,x,channel)")
    return (y, x, c)


def input_size(text: str) -> tuple[int, int, int]:
    from ..analysis.summary import parse_input_size

    try:
        return parse_input_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_model_args(p: argparse.ArgumentParser, help: str = "model argument, e.g. growth_rate=32") -> None:
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help=help)


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="auto (default: CUDA when present), cpu, cuda, cuda:N")


def at_least(flag: str, minimum: int, expected: str):
    """An argument type: an int of at least ``minimum``; the error names ``flag`` and ``expected``."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = minimum - 1
        if n < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be {expected}, got {text}")
        return n

    return parse


def images(flag: str):
    """An argument type: a positive number of images (named by ``flag`` in the error)."""
    return at_least(flag, 1, "a positive number of images")


def add_limits(p: argparse.ArgumentParser) -> None:
    """``--limit-train`` / ``--limit-val``, the same for every command that trains."""
    p.add_argument(
        "--limit-train",
        type=images("--limit-train"),
        default=None,
        metavar="N",
        help="class-balanced subset of N training images",
    )
    p.add_argument(
        "--limit-val",
        type=images("--limit-val"),
        default=None,
        metavar="N",
        help="class-balanced subset of N validation images",
    )


def add_data(p: argparse.ArgumentParser, *, dataset: bool = True, val_split: bool = True, size: bool = False) -> None:
    """Where the data comes from (``DataConfig``'s fields)."""
    if dataset:
        p.add_argument(
            "--dataset", default=None, help="cifar10 (default), cifar100, or a name for --data-dir's image folder"
        )
    p.add_argument(
        "--data-dir", default=None, help="local copy: official archive, its folder, an image-folder tree or tar"
    )
    add_limits(p)
    if val_split:
        p.add_argument(
            "--val-split", type=float, default=None, help="validate on this fraction of train (default: the test set)"
        )
    if size:
        add_image_options(p)


def add_image_options(p: argparse.ArgumentParser) -> None:
    """How image-folder images are decoded and kept: ``--image-size``, ``--cache-size``, ``--stream``."""
    p.add_argument(
        "--image-size", type=image_size, default=None, metavar="N|H,W", help="resize image-folder images (e.g. 224)"
    )
    p.add_argument(
        "--cache-size",
        default=None,
        metavar="PX",
        type=at_least("--cache-size", 8, "the cached images' shorter side in pixels (8 or more, e.g. 256)"),
        help="image folders: cache every image with its shorter side at PX pixels, its framing kept, so "
        "that --augment imagenet (finetune's default from 128 px) crops from the whole photo and "
        "evaluation sees its central 87.5%%; --image-size is then the model's input (default "
        "0.875 x PX: 224 for 256)",
    )
    p.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read the decoded images from the on-disk cache batch by batch instead of holding them in "
        "memory (default: when they would fill more than a quarter of the memory)",
    )


def data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The DataConfig fields given on the command line (None for those not given)."""
    return {
        "dataset": getattr(args, "dataset", None),
        "data_dir": args.data_dir,
        "val_split": getattr(args, "val_split", None),
        "image_size": getattr(args, "image_size", None),
        "limit_train": args.limit_train,
        "limit_val": args.limit_val,
        "stream": getattr(args, "stream", None),
        "cache_size": getattr(args, "cache_size", None),
    }


def add_preset(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--preset", default=None, choices=list(PRESETS), help=help)


TRAIN_OPTIONS: dict[str, tuple[Callable[[str], Any] | tuple[str, ...], str]] = {
    # option: (type or choices, help); the default shown is TrainConfig's (a preset may set another)
    "epochs": (int, "passes over the training set"),
    "batch_size": (int, "images per optimizer step"),
    "optimizer": (OPTIMIZERS, "adam (Keras's defaults), adamw, or sgd with Nesterov momentum 0.9"),
    "lr": (float, "peak learning rate"),
    "lr_base_batch": (
        int,
        "timm's scaling: --lr is for this global batch; the run scales it to batch-size x processes "
        "(linear for sgd, square root for adam/adamw)",
    ),
    "weight_decay": (float, "L2 penalty (adam, sgd) or decoupled decay (adamw)"),
    "schedule": (SCHEDULES, "learning-rate schedule: constant, cosine to 0, or onecycle (linear warm-up, cosine down)"),
    "warmup_epochs": (float, "linear warm-up length in epochs (cosine, onecycle); shorter than --epochs"),
    "label_smoothing": (float, "cross-entropy label smoothing in [0, 1)"),
    "augment": (
        (*POLICIES, "auto"),
        "standard: pad 4, crop, flip; keras: article 000's ImageDataGenerator; "
        "imagenet: random-resized crop + flip, evaluation on the central 87.5%%; "
        "auto: imagenet from 128 px, else standard; none",
    ),
    "cutout": (int, "standard augmentation: side of a cut-out square, 0 = off"),
    "bn_momentum": (
        float,
        "BatchNorm momentum, Keras convention (PyTorch's 0.1 is Keras's 0.9; the article preset: Keras's 0.99)",
    ),
    "precision": (PRECISIONS, "auto: bf16 where the device computes it natively"),
    "tta": (TTAS, "also measure flip test-time augmentation each epoch"),
    "seed": (int, "weights, shuffling and augmentation all follow it"),
}


def real(flag: str, ok, expected: str):
    """An argument type: a finite float for which ``ok(value)`` holds; the error names ``flag`` and ``expected``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"{flag} must be {expected}, got {text}")
        return value

    return parse


def _non_negative(flag: str, what: str):
    return real(flag, lambda v: v >= 0, f"{what} >= 0 (0 = off)")


# The training loop's options every training command has (train, reproduce, finetune), as Keras,
# timm and Lightning users expect them: option: (type or choices, metavar, help).
LOOP_OPTIONS = {
    "early_stop": (
        at_least("--early-stop", 0, "a patience in epochs >= 0 (0 = off)"),
        "PATIENCE",
        "stop after PATIENCE epochs without improvement of --early-stop-metric (Keras's "
        "EarlyStopping; the history says when and why); 0 = off",
    ),
    "early_stop_metric": (
        EARLY_STOP_METRICS,
        None,
        "what --early-stop watches: val_acc (higher is better) or val_loss",
    ),
    "min_delta": (
        real("--min-delta", lambda v: v >= 0, "a change >= 0"),
        "DELTA",
        "--early-stop: a change of at most DELTA is no improvement",
    ),
    "clip_grad": (
        _non_negative("--clip-grad", "a gradient norm"),
        "NORM",
        "clip the gradients' global L2 norm to NORM before each optimizer step (fp16: unscaled first); 0 = off",
    ),
    "mixup": (
        _non_negative("--mixup", "a Beta alpha"),
        "ALPHA",
        "timm's mixup: blend each batch with its reverse by a Beta(ALPHA, ALPHA) share, with "
        "mixed (and smoothed) targets; training accuracy counts the dominant label; 0 = off",
    ),
    "cutmix": (
        _non_negative("--cutmix", "a Beta alpha"),
        "ALPHA",
        "timm's CutMix: paste a Beta(ALPHA, ALPHA)-sized box from the reverse batch; with "
        "--mixup, one or the other per batch (p 0.5); 0 = off",
    ),
    "accumulate": (
        at_least("--accumulate", 1, "a positive number of micro-batches per step"),
        "N",
        "gradient accumulation: N micro-batches of --batch-size per optimizer step (loss / N; "
        "the schedule counts optimizer steps)",
    ),
    "ema": (
        real("--ema", lambda v: v == 0 or 0 < v < 1, "a decay in (0, 1), e.g. 0.999, or 0 (off)"),
        "DECAY",
        "keep an exponential moving average of the weights (e.g. 0.999, warmed up as "
        "min(DECAY, (1+t)/(10+t))); it is evaluated each epoch and is the model best.pt, last.pt "
        "and evaluate use; the history keeps the raw weights' val_acc_raw; 0 = off",
    ),
    "tensorboard": (
        bool,
        None,
        "also write TensorBoard event files (loss, accuracy, learning rate per epoch) "
        "into RUN/tb/; needs the tensorboard package (pip install 'cnnlab[tensorboard]')",
    ),
}


def add_train(
    p: argparse.ArgumentParser, names: tuple[str, ...] = tuple(TRAIN_OPTIONS), defaults: TrainConfig | None = None
) -> None:
    """``TrainConfig`` fields as ``--option`` (defaults None: the preset or TrainConfig decides;
    the help says TrainConfig's default), and the training loop's options (``LOOP_OPTIONS``)."""
    preset = "" if defaults is not None else ", or the preset's"  # ``defaults``: the command's own (finetune's preset)
    defaults = defaults or TrainConfig()
    for name in names:
        kind, help = TRAIN_OPTIONS[name]
        flag = "--" + name.replace("_", "-")
        help = f"{help} (default {getattr(defaults, name)}{preset})"
        if isinstance(kind, tuple):
            p.add_argument(flag, choices=list(kind), default=None, help=help)
        else:
            p.add_argument(flag, type=kind, default=None, help=help)
    group = p.add_argument_group(
        "training loop (early stopping, clipping, mixup/CutMix, accumulation, EMA, TensorBoard)"
    )
    for name, (kind, metavar, help) in LOOP_OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        help = f"{help} (default {getattr(defaults, name)})"
        if kind is bool:
            group.add_argument(flag, action="store_true", default=None, help=help)
        elif isinstance(kind, tuple):
            group.add_argument(flag, choices=list(kind), default=None, help=help)
        else:
            group.add_argument(flag, type=kind, default=None, metavar=metavar, help=help)


def train_overrides(args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """The TrainConfig fields given on the command line (None for those not given)."""
    return {name: getattr(args, name, None) for name in (*TRAIN_OPTIONS, *LOOP_OPTIONS, "device", *extra)}


def add_run_output(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--out", default=None, help=f"run directory (default {default})")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="DIR",
        help="continue the run in DIR (or --out): its model, data and options come from DIR/config.json, "
        "options given beside it must match them; a larger --epochs extends a finished run",
    )
    p.add_argument("--overwrite", action="store_true", help="start afresh in --out, removing the run already there")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")


def given(**kwargs: Any) -> dict[str, Any]:
    """Only the options given on the command line: the library's defaults decide the rest."""
    return {k: v for k, v in kwargs.items() if v is not None}


def add_launch(p: argparse.ArgumentParser) -> None:
    """``--nproc N`` (start the command in N processes under torchrun) and ``--sync-bn``."""
    p.add_argument(
        "--nproc",
        type=positive_int_arg,
        default=None,
        metavar="N",
        help="train in N processes on this machine with DistributedDataParallel: the same as "
        "`torchrun --standalone --nproc-per-node N -m cnnlab ...` (--batch-size is per process)",
    )
    p.add_argument(
        "--sync-bn",
        action="store_true",
        default=None,
        help="with several CUDA processes: BatchNorm statistics over the global batch (SyncBatchNorm)",
    )


def positive_int_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {value}")
    return value


def launch(args: argparse.Namespace, argv: list[str]) -> int:
    """``--nproc N``: run the same command line, less ``--nproc``, under torchrun in N processes."""
    import subprocess

    from ..train.distributed import world_from_env

    if world_from_env().distributed:
        raise ValueError("--nproc starts torchrun itself; under torchrun leave it out")
    rest, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    return subprocess.call(torchrun_command(args.nproc, rest))


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node N -m cnnlab ARGV``: what
    ``cnnlab train --nproc N`` starts (torchrun's own module, so the same Python and venv)."""
    import sys

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return [*torchrun, "-m", "cnnlab", *argv]


def main_process() -> bool:
    """False in the other ranks of a torchrun launch (rank 0 prints the reports)."""
    from ..train.distributed import world_from_env

    return world_from_env().main
