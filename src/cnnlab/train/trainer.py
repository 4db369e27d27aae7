"""``fit``: train a model on in-memory data, with history, curves, checkpoints and resume.

The dataset lives on the device as uint8 and is augmented a whole batch at a time there
(airbench's way: no DataLoader workers, no per-image Python). Every epoch ends with an
atomic checkpoint (``last.pt``, and ``best.pt`` for the best validation accuracy) holding the
model, optimizer, schedule and every random state, so ``resume=True`` continues an
interrupted run to the same weights an uninterrupted run reaches.

This module is the outline of a run; its parts have rooms of their own: ``optim`` (the
optimizer), ``schedule`` (the learning rate), ``precision``, ``batchnorm`` (momentum, precise
BN), ``state`` (what a checkpoint holds), ``epochs`` (one epoch), ``loop`` (the epochs),
``host`` (the CPU allocator).

    history = fit(create_model("densenet_cifar"), DataConfig("cifar10").load(), get_preset("article").train, "runs/dn")
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DataSplits
from ..data.frames import EVAL_CROP, FramedRows
from ..data.memory import check_batch
from ..device import resolve_device
from ..io import atomic_write_text
from .batches import FromDisk
from .batchnorm import set_momentum
from .config import TrainConfig
from .distributed import World, join, same_everywhere, world_from_env
from .early_stop import EarlyStopping
from .epochs import Epochs
from .history import EpochRecord, History
from .host import tune_for_training
from .lock import RunLock
from .loop import run_epochs
from .optim import moments_per_weight
from .rundir import load_checkpoint, prepare_run_directory
from .state import TrainingState
from .tblog import require_tensorboard

__all__ = ["fit"]


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
    ``config.early_stop`` may end the run before ``config.epochs`` (``history.info["early_stopped"]``
    says when and why); with ``config.ema`` the checkpoints' model is the moving average of the weights.
    glibc's allocator is left as it is unless ``tune_allocator()`` asked for the tuning (``host``).
    """
    if config.tensorboard:
        require_tensorboard()  # before any work: a missing package is said at once
    world = world_from_env()
    device = join(world, resolve_device(config.device))
    host_malloc = tune_for_training(device)  # glibc on CPU, when asked: reuse freed activations (train/host.py)
    if world.restarts and not overwrite and (Path(out_dir) / "last.pt").exists():
        resume = True  # torchrun --max-restarts: the restarted workers continue from the last checkpoint
    lock = RunLock(out_dir)
    try:
        out = _open_run_directory(out_dir, resume, overwrite, lock, world)
        return _fit(
            model,
            data,
            config,
            out,
            device,
            world,
            resume=resume,
            quiet=quiet,
            info=info,
            host_malloc=host_malloc,
            on_epoch_end=on_epoch_end,
            on_epoch_start=on_epoch_start,
        )
    finally:
        lock.release()


def _open_run_directory(out_dir: str | Path, resume: bool, overwrite: bool, lock: RunLock, world: World) -> Path:
    """Rank 0 takes the directory's lock and checks it; every rank gets its verdict."""
    error: Exception | None = None
    if world.main:
        try:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            lock.acquire()
            prepare_run_directory(out_dir, resume, overwrite)  # overwrite removes tb/ too (RUN_FILES)
        except Exception as e:  # noqa: BLE001 -- told to the other ranks, then raised
            error = e
    verdict = same_everywhere(world, None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    if verdict is not None:
        raise RuntimeError(f"rank 0 refused the run directory: {verdict}")
    return Path(out_dir)


def _fit(
    model: nn.Module,
    data: DataSplits,
    config: TrainConfig,
    out: Path,
    device: torch.device,
    world: World,
    *,
    resume: bool,
    quiet: bool,
    info: dict | None,
    host_malloc: str | None,
    on_epoch_end: Callable | None,
    on_epoch_start: Callable | None,
) -> History:
    """The run in its directory: its parts built, its state new or resumed, its epochs."""
    check_batch(tuple(data.train.images.shape[1:3]), config.batch_size)  # a batch that cannot fit: said, not OOM-killed
    torch.manual_seed(config.seed)
    batchnorm = set_momentum(model.to(device), config.bn_momentum)
    # an epoch-start hook may freeze or unfreeze weights (finetune): DDP must then allow unused ones
    epochs = Epochs(model, data, config, device, out, world, changing=on_epoch_start is not None)
    history = History(
        config.to_dict(),
        info=_run_record(epochs, data, config, world, batchnorm)
        | ({"host_malloc": host_malloc} if host_malloc else {})
        | (info or {}),
    )
    state = TrainingState.start(model, config, device, history, epochs.steps)
    stopper = EarlyStopping(config.early_stop, config.early_stop_metric, config.min_delta)
    if world.main:
        _check_free_space(out, model, config)
    if resume:
        _resume(out, state, epochs, stopper)
    if world.main:
        atomic_write_text(out / "config.json", json.dumps({"train": config.to_dict(), **state.history.info}, indent=1))
    run_epochs(
        state, epochs, stopper, out, world, quiet=quiet, on_epoch_start=on_epoch_start, on_epoch_end=on_epoch_end
    )
    return state.history


def _resume(out: Path, state: TrainingState, epochs: Epochs, stopper: EarlyStopping) -> None:
    """Continue from ``out/last.pt``: the state, the moving average of the weights, the patience counter."""
    checkpoint = load_checkpoint(out / "last.pt", map_location=state.device)
    state.load_state_dict(checkpoint, where=str(out), info=state.history.info)
    epochs.restore(checkpoint)
    if "early_stop" in checkpoint:  # the patience counter: a resumed run stops where a straight one would
        stopper.load_state_dict(checkpoint["early_stop"])


def _run_record(epochs: Epochs, data: DataSplits, config: TrainConfig, world: World, batchnorm) -> dict[str, Any]:
    """What the run records about how it trained, beside its options (history and config.json)."""
    global_batch = config.batch_size * world.size * config.accumulate  # images per optimizer step
    return {
        "validation": data.validation,
        "source": data.source,
        "data_digest": data.digest(),
        "device": str(epochs.device),
        # what rebuilds a model of one's own (not in the registry: load_run(..., model=...)); run_info overrides these
        "model_class": f"{type(epochs.model).__module__}.{type(epochs.model).__qualname__}",
        "classes": list(data.classes),
        "image_size": list(data.train.images.shape[1:3]),
        "train_images": len(epochs.train_src),
        "precision": epochs.precision,
        "streamed": isinstance(epochs.train_src, FromDisk),  # read from the decoded cache batch by batch
        "batchnorm_momentum": batchnorm,  # what BatchNorm did: its moving-average momentum, Keras convention
        "world_size": world.size,
        "batch_per_rank": config.batch_size,
        "global_batch": global_batch,
        "lr_effective": config.scaled_lr(global_batch),  # --lr-base-batch: timm's scaling (accumulation included)
        # what evaluation, cnnlab evaluate and predict show the model: the central part of each image
        "eval_crop": EVAL_CROP if epochs.eval_view is not None else None,
        # images kept in their own framing (cache_size): evaluation sees each one's central 87.5%
        "eval_frame": {"short_side": data.val.images.short_side, "crop": data.val.images.crop}
        if isinstance(data.val.images, FramedRows)  # data.val.framed
        else None,
    } | epochs.describe()


def _check_free_space(out: Path, model: nn.Module, config: TrainConfig) -> None:
    """Refuse to start when the disk cannot hold the checkpoints: last.pt and best.pt with the
    optimizer's state, and the temporary copy of an atomic write."""
    tensors = [*model.state_dict().values()]
    size = sum(t.numel() * t.element_size() for t in tensors)
    needed = 3 * size * (1 + moments_per_weight(config.optimizer)) + (1 << 20)
    free = shutil.disk_usage(out).free
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"no space left on device for the checkpoints in {out}: they need about "
            f"{needed / 2**20:.1f} MiB, {free / 2**20:.1f} MiB are free",
        )
