"""``fit``: train a model on in-memory data, with history, curves, checkpoints and resume.

The dataset lives on the device as uint8 and is augmented a whole batch at a time there
(airbench's recipe: no DataLoader workers, no per-image Python). Every epoch ends with an
atomic checkpoint (``last.pt``, and ``best.pt`` for the best validation accuracy) holding the
model, optimizer, schedule and every random state, so ``resume=True`` continues an
interrupted run to the same weights an uninterrupted run reaches.

    history = fit(create_model("densenet_cifar"), load_splits("cifar10"), preset("article"), "runs/dn")
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DataSplits
from ..data.augment import Augmentation
from ..io import atomic_write, atomic_write_text
from .config import TrainConfig
from .history import EpochRecord, History
from .host import keep_freed_memory

CHECK_EVERY = 20  # steps between progress updates (and the host syncs they cost)
# What a run started before an option existed did, so that it can still be resumed.
OPTIONS_BEFORE_THEY_EXISTED = {"precise_bn": 0, "tta": "none"}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but PyTorch sees no CUDA device; use --device cpu")
    return device


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Every parameter, frozen ones too: a parameter with requires_grad=False gets no gradient and
    # the optimizer skips it, and unfreezing it mid-run (cnnlab finetune's switch from head-only
    # to whole-network training) then needs no new optimizer, so checkpoints and resume still work.
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # Keras's Adam: epsilon 1e-7 (PyTorch's default is 1e-8)
    return cls(params, lr=config.lr, betas=(0.9, 0.999), eps=1e-7, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at optimizer step ``t`` (0-based)."""
    total = config.epochs * steps_per_epoch
    warmup = int(config.warmup_epochs * steps_per_epoch)

    def factor(t: int) -> float:
        if config.schedule == "constant":
            return 1.0
        if t < warmup:
            return (t + 1) / warmup
        progress = min(1.0, (t - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _to_device(images, labels, device, channels_last: bool):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(device), torch.from_numpy(labels).to(device)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512, autocast=nullcontext, tta: str = "none"
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on uint8 images ``x`` (rescaled by 1/255).

    ``tta="flip"`` averages the softmax of each image and of its horizontal mirror.
    """
    model.eval()
    loss = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size].float() / 255.0, y[start : start + batch_size]
        with autocast():
            logits = model(xb).float()
            if tta == "flip":
                probs = 0.5 * (logits.softmax(dim=1) + model(xb.flip(3)).float().softmax(dim=1))
                logits = probs.clamp_min(1e-12).log()
        loss += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(dim=1) == yb).sum()
    return loss.item() / len(x), correct.item() / len(x)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 where the device computes it natively (CUDA with bf16, or a CPU with
    AVX-512 BF16 / AMX), else fp32 (emulated bf16 is slower than fp32 on an AVX2 CPU)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"


@torch.no_grad()
def precise_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int, autocast=nullcontext) -> int:
    """Set every BatchNorm layer that trains (frozen ones stay as they are) to the exact mean and
    variance of its inputs over ``images`` (uint8 NCHW), the other layers in eval mode (no
    dropout). Returns the number of layers recomputed."""
    model.train()
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]
    model.eval()
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch weighs the same
        m.train()
    for start in range(0, len(images), batch_size):
        with autocast():
            model(images[start : start + batch_size].float() / 255.0)
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    model.eval()
    return len(layers)


def _checkpoint(path: Path, state: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A cnnlab checkpoint, loaded without unpickling code (``weights_only=True``)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def fit(
    model: nn.Module,
    data: DataSplits,
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    quiet: bool = False,
    info: dict | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
) -> History:
    """Train ``model`` on ``data`` following ``config``; write everything into ``out_dir``.

    ``resume=True`` continues from ``out_dir/last.pt`` (the config must be the same); without
    it an ``out_dir`` that already holds a run is refused rather than overwritten.
    ``on_epoch_end`` is called after each epoch's checkpoint is written; ``on_epoch_start(epoch)``
    before each epoch's training, also the first one after a resume (e.g. to freeze or unfreeze layers).
    """
    out = Path(out_dir)
    last = out / "last.pt"
    if last.exists() and not resume:
        raise FileExistsError(f"{out} already holds a run (last.pt); pass resume=True (--resume) or choose another output directory")
    if resume and not last.exists():
        raise FileNotFoundError(f"nothing to resume: {last} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    # glibc on CPU: reuse freed activations instead of an mmap/munmap per buffer per step (train/host.py)
    host_malloc = keep_freed_memory() if device.type == "cpu" else None
    torch.manual_seed(config.seed)
    model.to(device)
    if config.bn_momentum is not None:  # Keras keeps `momentum` of the old average; PyTorch takes `momentum` of the new batch
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = 1.0 - config.bn_momentum
    batchnorm = {1.0 - m.momentum for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.momentum is not None}
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    train_x, train_y = _to_device(data.train.images, data.train.labels, device, config.channels_last)
    val_x, val_y = _to_device(data.val.images, data.val.labels, device, config.channels_last)
    steps = math.ceil(len(train_x) / config.batch_size)
    optimizer = build_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps))
    precision = resolve_precision(config.precision, device)
    use_scaler = precision == "fp16" and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext
    augment = Augmentation(config.augment, cutout=config.cutout)
    generator = torch.Generator().manual_seed(config.seed)  # shuffling and augmentation
    runner = torch.compile(model) if config.compile else model
    history = History(
        config.to_dict(),
        info={"validation": data.validation, "source": data.source, "device": str(device), "train_images": len(train_x),
              "precision": precision,
              # what BatchNorm did: its moving-average momentum in the Keras convention
              "batchnorm_momentum": sorted(round(m, 6) for m in batchnorm) if batchnorm else None}
        | ({"host_malloc": host_malloc} if host_malloc else {}) | (info or {}),
    )
    best_acc, start_epoch = -1.0, 1
    if resume:
        state = load_checkpoint(last, map_location=device)
        saved = {**OPTIONS_BEFORE_THEY_EXISTED, **state["config"]}
        if saved != config.to_dict():
            changed = sorted(k for k in saved if saved[k] != config.to_dict().get(k))
            raise ValueError(f"cannot resume {out}: the run was started with other options ({', '.join(changed)})")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        generator.set_state(state["rng"]["data"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        history = History.from_dict(state["history"])
        best_acc, start_epoch = state["best_val_acc"], state["epoch"] + 1
    atomic_write_text(out / "config.json", json.dumps({"train": config.to_dict(), **history.info}, indent=1))

    from .progress import Progress

    with Progress(config.epochs, steps, quiet=quiet) as progress:
        for epoch in range(start_epoch, config.epochs + 1):
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            record = _train_epoch(
                runner, model, epoch, train_x, train_y, val_x, val_y, config, optimizer, scheduler, scaler,
                autocast, augment, generator, progress, out,
            )
            history.epochs.append(record)
            state = {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": {"data": generator.get_state(), "torch": torch.get_rng_state()}
                | ({"cuda": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                "history": history.to_dict(),
                "config": config.to_dict(),
                "best_val_acc": max(best_acc, record.val_acc),
            }
            _checkpoint(last, state)
            if record.val_acc > best_acc:
                best_acc = record.val_acc
                _checkpoint(out / "best.pt", state)
            history.save(out)
            progress.epoch_done(record)
            if on_epoch_end is not None:
                on_epoch_end(record)
    return history


def _train_epoch(runner, model, epoch, train_x, train_y, val_x, val_y, config, optimizer, scheduler, scaler, autocast, augment, generator, progress, out) -> EpochRecord:
    device = train_x.device
    model.train()
    start = time.perf_counter()
    n = len(train_x)
    order = torch.randperm(n, generator=generator).to(device)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    first_bad = torch.full((), -1, device=device, dtype=torch.int64)
    steps = math.ceil(n / config.batch_size)
    progress.epoch_start(epoch)
    for step in range(steps):
        index = order[step * config.batch_size : (step + 1) * config.batch_size]
        x, y = augment(train_x[index], generator), train_y[index]
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = runner(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        loss = loss.detach()
        # no host sync per step: remember the first non-finite step on the device
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
        loss_sum += loss.double() * len(y)
        correct += (logits.argmax(dim=1) == y).sum()
        if (step + 1) % CHECK_EVERY == 0 or step + 1 == steps:
            bad = int(first_bad.item())
            if bad >= 0:
                raise TrainingDiverged(
                    f"the training loss became {loss.item()} at epoch {epoch}, step {bad + 1}; stopped. "
                    f"The last good checkpoint is {out / 'last.pt'}" + ("" if epoch > 1 else " (none yet: this was the first epoch)")
                    + "; try a lower learning rate or fp32"
                )
            seen = min(n, (step + 1) * config.batch_size)
            progress.step(step + 1, seen, loss_sum.item() / seen, correct.item() / seen, time.perf_counter() - start)
    train_seconds = time.perf_counter() - start
    if config.precise_bn:
        # the same images every epoch: the first ones of a fixed permutation (no generator draw, so
        # shuffling and augmentation do not depend on this option)
        subset = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))[: config.precise_bn].to(device)
        precise_batchnorm(model, train_x[subset], config.batch_size, autocast)
    val_loss, val_acc = evaluate(runner, val_x, val_y, config.eval_batch_size, autocast)
    val_acc_tta = None
    if config.tta != "none":
        val_acc_tta = evaluate(runner, val_x, val_y, config.eval_batch_size, autocast, tta=config.tta)[1]
    return EpochRecord(
        epoch=epoch,
        train_loss=loss_sum.item() / n,
        train_acc=correct.item() / n,
        val_loss=val_loss,
        val_acc=val_acc,
        lr=optimizer.param_groups[0]["lr"],
        seconds=time.perf_counter() - start,
        images_per_s=n / train_seconds,
        val_acc_tta=val_acc_tta,
    )
