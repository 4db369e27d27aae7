"""``fit``: train a model on in-memory data, with history, curves, checkpoints and resume.

The dataset lives on the device as uint8 and is augmented a whole batch at a time there
(airbench's recipe: no DataLoader workers, no per-image Python). Every epoch ends with an
atomic checkpoint (``last.pt``, and ``best.pt`` for the best validation accuracy) holding the
model, optimizer, schedule and every random state, so ``resume=True`` continues an
interrupted run to the same weights an uninterrupted run reaches.

    history = fit(create_model("densenet_cifar"), DataConfig("cifar10").load(), get_preset("article").train, "runs/dn")
"""

from __future__ import annotations

import errno
import json
import math
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DataSplits
from ..data.augment import EVAL_CROP, Augmentation, eval_view
from ..device import resolve_device
from ..io import atomic_write_text
from .batches import FromDisk, batch_source
from .config import TrainConfig
from .distributed import World, barrier, join, max_all, same_everywhere, sum_all, world_from_env, wrap
from .evaluation import evaluate
from .history import EpochRecord, History
from .host import keep_freed_memory
from .lock import RunLock
from .rundir import load_checkpoint, save_checkpoint
from .state import TrainingState

CHECK_EVERY = 20  # steps between progress updates (and the host syncs they cost)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def build_optimizer(model: nn.Module, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """``config``'s optimizer over every parameter, at peak rate ``lr`` (default ``config.lr``)."""
    lr = config.lr if lr is None else lr
    # Every parameter, frozen ones too: a parameter with requires_grad=False gets no gradient and
    # the optimizer skips it, and unfreezing it mid-run (cnnlab finetune's switch from head-only
    # to whole-network training) then needs no new optimizer, so checkpoints and resume still work.
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # Keras's Adam: epsilon 1e-7 (PyTorch's default is 1e-8)
    return cls(params, lr=lr, betas=(0.9, 0.999), eps=1e-7, weight_decay=config.weight_decay)


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


def fit(
    model: nn.Module,
    data: DataSplits,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    info: dict | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
) -> History:
    """Train ``model`` on ``data`` following ``config``; write everything into ``out_dir``.

    ``resume=True`` continues from ``out_dir/last.pt`` (same model, data and options; ``epochs``
    may grow); without it an ``out_dir`` that already holds a run is refused, unless
    ``overwrite=True`` removes that run's files first. Weights or a validation loss that are not
    finite stop the run (``TrainingDiverged``) before anything of that epoch is saved.
    ``on_epoch_end`` is called after each epoch's checkpoint is written; ``on_epoch_start(epoch)``
    before each epoch's training, also the first one after a resume (e.g. to freeze or unfreeze layers).
    """
    world = world_from_env()
    device = join(world, resolve_device(config.device))
    if world.restarts and not overwrite and (Path(out_dir) / "last.pt").exists():
        resume = True  # torchrun --max-restarts: the restarted workers continue from the last checkpoint
    lock = RunLock(out_dir)
    try:
        out = _open_run_directory(out_dir, resume, overwrite, lock, world)
        return _fit(model, data, config, out, device, world, resume=resume, quiet=quiet, info=info,
                    on_epoch_end=on_epoch_end, on_epoch_start=on_epoch_start)
    finally:
        lock.release()


def _open_run_directory(out_dir: str | Path, resume: bool, overwrite: bool, lock: RunLock, world: World) -> Path:
    """Rank 0 takes the directory's lock and checks it; every rank gets its verdict."""
    error: Exception | None = None
    if world.main:
        try:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            lock.acquire()
            _run_directory(out_dir, resume, overwrite)
        except Exception as e:  # noqa: BLE001 -- told to the other ranks, then raised
            error = e
    verdict = same_everywhere(world, None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    if verdict is not None:
        raise RuntimeError(f"rank 0 refused the run directory: {verdict}")
    return Path(out_dir)


def _fit(model: nn.Module, data: DataSplits, config: TrainConfig, out: Path, device: torch.device, world: World, *,
         resume: bool, quiet: bool, info: dict | None, on_epoch_end: Callable | None, on_epoch_start: Callable | None) -> History:
    # glibc on CPU: reuse freed activations instead of an mmap/munmap per buffer per step (train/host.py)
    host_malloc = keep_freed_memory() if device.type == "cpu" else None
    torch.manual_seed(config.seed)
    batchnorm = _batchnorm_momentum(model.to(device), config.bn_momentum)
    # an epoch-start hook may freeze or unfreeze weights (finetune): DDP must then allow unused ones
    epochs = _Epochs(model, data, config, device, out, world, changing=on_epoch_start is not None)
    history = History(config.to_dict(), info={
        "validation": data.validation, "source": data.source, "data_digest": data.digest(), "device": str(device),
        "train_images": len(epochs.train_src), "precision": epochs.precision,
        "streamed": isinstance(epochs.train_src, FromDisk),  # read from the decoded cache batch by batch
        "batchnorm_momentum": batchnorm,  # what BatchNorm did: its moving-average momentum, Keras convention
        "world_size": world.size, "batch_per_rank": config.batch_size, "global_batch": config.batch_size * world.size,
        "lr_effective": config.scaled_lr(config.batch_size * world.size),  # --lr-base-batch: timm's scaling
        # what evaluation, cnnlab evaluate and predict show the model: the central part of each image
        "eval_crop": EVAL_CROP if epochs.eval_view is not None else None,
        # images kept in their own framing (cache_size): evaluation sees each one's central 87.5%
        "eval_frame": {"short_side": data.val.images.short_side, "crop": data.val.images.crop} if data.val.framed else None,
    } | ({"host_malloc": host_malloc} if host_malloc else {}) | (info or {}))
    state = _new_state(model, config, device, history, epochs.steps)
    if world.main:
        _check_free_space(out, model, config)
    if resume:
        state.load_state_dict(load_checkpoint(out / "last.pt", map_location=device), where=str(out), info=history.info)
    if world.main:
        atomic_write_text(out / "config.json", json.dumps({"train": config.to_dict(), **state.history.info}, indent=1))

    from .progress import Progress

    with Progress(config.epochs, epochs.steps, quiet=quiet, silent=not world.main) as progress:
        for epoch in range(state.epoch + 1, config.epochs + 1):
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            record = epochs.train(state, epoch, progress)
            _check_healthy(model, record, out, state.epoch)
            improved = state.record(record)
            if world.main:  # rank 0 alone writes; the weights are the same on every rank
                checkpoint = state.state_dict()
                if improved:  # best.pt before last.pt: a kill between the two leaves last.pt behind, and the resumed run rewrites best.pt
                    save_checkpoint(out / "best.pt", checkpoint)
                save_checkpoint(out / "last.pt", checkpoint)
                state.history.save(out)
                progress.epoch_done(record)
                if on_epoch_end is not None:
                    on_epoch_end(record)
            barrier(world)
    return state.history


RUN_FILES = ("last.pt", "best.pt", "config.json", "history.json", "history.csv", "curves.png")


def _run_directory(out_dir: str | Path, resume: bool, overwrite: bool = False) -> Path:
    out = Path(out_dir)
    last = out / "last.pt"
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: continue the run, or start afresh")
    if last.exists() and not (resume or overwrite):
        raise FileExistsError(
            f"{out} already holds a run (last.pt); pass --resume to continue it, --overwrite to start afresh, "
            "or choose another output directory"
        )
    if resume and not last.exists():
        raise FileNotFoundError(f"nothing to resume: {last} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        # temporary files of an interrupted atomic write (io.atomic_write), and with overwrite the old run
        for path in [*out.glob(f".{name}.*"), *([out / name] if overwrite else [])]:
            path.unlink(missing_ok=True)
    return out


def _check_free_space(out: Path, model: nn.Module, config: TrainConfig) -> None:
    """Refuse to start when the disk cannot hold the checkpoints: last.pt and best.pt with the
    optimizer's state (Adam: two moments per weight, SGD: one), and the temporary copy of an atomic write."""
    tensors = [*model.state_dict().values()]
    size = sum(t.numel() * t.element_size() for t in tensors)
    slots = 2 if config.optimizer in ("adam", "adamw") else 1
    needed = 3 * size * (1 + slots) + (1 << 20)
    free = shutil.disk_usage(out).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"no space left on device for the checkpoints in {out}: they need about "
                      f"{needed / 2**20:.1f} MiB, {free / 2**20:.1f} MiB are free")


def _check_healthy(model: nn.Module, record: EpochRecord, out: Path, done: int) -> None:
    """Refuse to save an epoch whose weights, BatchNorm statistics or validation loss are not finite."""
    bad = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad or not math.isfinite(record.val_loss):
        what = f"{len(bad)} weight tensors ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})" if bad else "the validation loss"
        kept = f"the last good checkpoint is {out / 'last.pt'} (epoch {done})" if done else "no checkpoint was written"
        raise TrainingDiverged(
            f"{what} became NaN or infinite in epoch {record.epoch}; stopped without saving it: {kept}. "
            "Try a lower learning rate or fp32"
        )


def _batchnorm_momentum(model: nn.Module, momentum: float | None) -> list[float] | None:
    """Apply ``momentum`` (Keras convention) to every BatchNorm layer; the momenta now in use."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if momentum is not None:  # Keras keeps `momentum` of the old average; PyTorch takes `momentum` of the new batch
        for m in norms:
            m.momentum = 1.0 - momentum
    used = {1.0 - m.momentum for m in norms if m.momentum is not None}
    return sorted(round(m, 6) for m in used) if used else None


def _new_state(model: nn.Module, config: TrainConfig, device: torch.device, history: History, steps: int) -> TrainingState:
    optimizer = build_optimizer(model, config, history.info["lr_effective"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps))
    use_scaler = resolve_precision(config.precision, device) == "fp16" and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    generator = torch.Generator().manual_seed(config.seed)
    return TrainingState(model, optimizer, scheduler, scaler, generator, history, config, device)


class _Epochs:
    """One epoch of training and validation: the data on the device, augmentation, precision."""

    def __init__(self, model: nn.Module, data: DataSplits, config: TrainConfig, device: torch.device, out: Path,
                 world: World = World(), changing: bool = False) -> None:
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model, self.config, self.out, self.world = model, config, out, world
        trainer = wrap(model, world, device, config.sync_bn, changing)
        self.runner = torch.compile(trainer) if config.compile else trainer
        # DDP's forward talks to the other ranks: evaluation (a shard per rank) runs the model itself
        self.evaluator = model if world.distributed else self.runner
        # the images on the device, or read from the decoded cache batch by batch (DataConfig.stream)
        self.train_src = batch_source(data.train, device, config.channels_last, training=True)
        self.val_src = batch_source(data.val, device, config.channels_last)
        self.device = device
        # a step takes one global batch (batch_size per rank); a last one some rank would find empty is dropped
        n, self.global_batch = len(self.train_src), config.batch_size * world.size
        self.steps = n // self.global_batch if 0 < n % self.global_batch < world.size else math.ceil(n / self.global_batch)
        self.precision = resolve_precision(config.precision, device)
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext
        self.augment = Augmentation(config.augment, cutout=config.cutout)
        # images in their own framing are evaluated on their center views already (data.frames)
        self.eval_view = None if data.val.framed else eval_view(config.augment)

    def train(self, state: TrainingState, epoch: int, progress) -> EpochRecord:
        start = time.perf_counter()
        loss, acc = self._steps(state, epoch, progress)
        train_seconds = time.perf_counter() - start
        config, n = self.config, len(self.train_src)
        if config.precise_bn:
            # the same images every epoch: the first ones of a fixed permutation (no generator draw, so
            # shuffling and augmentation do not depend on this option)
            subset = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))[: config.precise_bn]
            precise_batchnorm(self.model, self.train_src.take(subset), config.batch_size, self.autocast)
        val_loss, val_acc = self._evaluate("none")
        val_acc_tta = self._evaluate(config.tta)[1] if config.tta != "none" else None
        return EpochRecord(
            epoch=epoch, train_loss=loss, train_acc=acc, val_loss=val_loss, val_acc=val_acc,
            lr=state.optimizer.param_groups[0]["lr"], seconds=time.perf_counter() - start,
            images_per_s=n / train_seconds, val_acc_tta=val_acc_tta,
        )

    def _evaluate(self, tta: str) -> tuple[float, float]:
        """(loss, accuracy) on the validation images: each rank evaluates its part, the sums are shared."""
        loss_sum = correct = 0.0
        for x, y in self.val_src.parts(self.world.size, self.world.rank):
            if len(y):
                loss, acc = evaluate(self.evaluator, x, y, self.config.eval_batch_size, self.autocast, tta=tta,
                                     view=self.eval_view)
                loss_sum, correct = loss_sum + loss * len(y), correct + acc * len(y)
        loss_sum, correct = sum_all(torch.tensor(loss_sum), torch.tensor(correct))
        n = len(self.val_src)
        return float(loss_sum) / n, round(float(correct)) / n

    def _batch_generator(self, state: TrainingState, epoch: int) -> torch.Generator:
        """Augmentation's random draws: the run's generator in one process (so a resume is exact);
        with several, one per rank and epoch (ranks augment their own images differently, and the
        shared generator, which orders the data, stays the same on every rank)."""
        if not self.world.distributed:
            return state.generator
        return torch.Generator().manual_seed((self.config.seed * 1_000_003 + epoch) * 1_009 + self.world.rank)

    def _steps(self, state: TrainingState, epoch: int, progress) -> tuple[float, float]:
        """The epoch's optimizer steps; (mean training loss, training accuracy)."""
        config, device, n, start = self.config, self.device, len(self.train_src), time.perf_counter()
        self.model.train()
        order = torch.randperm(n, generator=state.generator)
        draws, rank, batch = self._batch_generator(state, epoch), self.world.rank, config.batch_size
        indices = []
        for step in range(self.steps):  # this rank's part of each global batch (all of it in one process)
            chunk = order[step * self.global_batch : (step + 1) * self.global_batch]
            indices.append(chunk[rank * batch : (rank + 1) * batch] if len(chunk) == self.global_batch
                           else chunk.tensor_split(self.world.size)[rank])
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        first_bad = torch.full((), -1, device=device, dtype=torch.int64)
        seen = 0
        progress.epoch_start(epoch)
        for step, (images, y) in enumerate(self.train_src.batches(indices)):
            x = self.augment(images, draws)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                logits = self.runner(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
            state.optimizer.zero_grad(set_to_none=True)
            state.scaler.scale(loss).backward()
            state.scaler.step(state.optimizer)
            state.scaler.update()
            state.scheduler.step()
            loss = loss.detach()
            # no host sync per step: remember the first non-finite step on the device
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
            loss_sum += loss.double() * len(y)
            correct += (logits.argmax(dim=1) == y).sum()
            seen += len(y)
            if (step + 1) % CHECK_EVERY == 0 or step + 1 == self.steps:
                self._check_finite(int(max_all(first_bad).item()), loss, epoch)
                progress.step(step + 1, seen * self.world.size, loss_sum.item() / seen, correct.item() / seen, time.perf_counter() - start)
        loss_sum, correct, seen = sum_all(loss_sum, correct, torch.tensor(seen))
        return loss_sum.item() / seen.item(), correct.item() / seen.item()

    def _check_finite(self, bad: int, loss: torch.Tensor, epoch: int) -> None:
        if bad >= 0:
            raise TrainingDiverged(
                f"the training loss became {loss.item()} at epoch {epoch}, step {bad + 1}; stopped. "
                + (f"The last good checkpoint is {self.out / 'last.pt'} (epoch {epoch - 1})" if epoch > 1 else "No checkpoint was written (first epoch)")
                + "; try a lower learning rate or fp32"
            )
