"""The epoch loop of ``fit``: each epoch trained and validated (``epochs.Epochs``), checked for
non-finite weights, recorded, checkpointed and logged, until ``epochs`` or early stopping.

Rank 0 alone writes (the weights are the same on every rank); ``best.pt`` is written before
``last.pt``, so a kill between the two leaves ``last.pt`` behind and the resumed run rewrites
``best.pt``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .distributed import World, barrier
from .early_stop import EarlyStopping
from .epochs import Epochs, TrainingDiverged
from .history import EpochRecord
from .rundir import save_checkpoint
from .state import TrainingState
from .tblog import TensorBoard


def run_epochs(
    state: TrainingState,
    epochs: Epochs,
    stopper: EarlyStopping,
    out: Path,
    world: World,
    *,
    quiet: bool = False,
    on_epoch_start: Callable[[int], None] | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
) -> None:
    """Train from the epoch after ``state.epoch`` to ``config.epochs`` (or an early stop);
    ``state.history`` grows by one record an epoch."""
    from .progress import Progress

    config = state.config
    with (
        Progress(config.epochs, epochs.batches, quiet=quiet, silent=not world.main) as progress,
        TensorBoard(out, config.tensorboard and world.main, first_epoch=state.epoch + 1) as tensorboard,
    ):
        for epoch in range(state.epoch + 1, config.epochs + 1):
            if stopper.stopped:  # a resumed run that had stopped early: nothing left to do
                break
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            record = epochs.train(state, epoch, progress)
            _check_healthy(epochs.model, record, out, state.epoch)
            improved = state.record(record)
            if stopper.update(epoch, getattr(record, config.early_stop_metric)):
                state.history.info["early_stopped"] = stopper.record()
            if world.main:  # rank 0 alone writes; the weights are the same on every rank
                _save(state, epochs, stopper, out, improved)
                tensorboard.log(record)
                progress.epoch_done(record)
                if on_epoch_end is not None:
                    on_epoch_end(record)
            barrier(world)


def _save(state: TrainingState, epochs: Epochs, stopper: EarlyStopping, out: Path, improved: bool) -> None:
    """The epoch's checkpoints (``best.pt`` when it improved, then ``last.pt``) and history files."""
    checkpoint = epochs.checkpoint(state) | ({"early_stop": stopper.state_dict()} if state.config.early_stop else {})
    if improved:  # best.pt first: a kill between the two leaves last.pt behind, and the resumed run rewrites best.pt
        save_checkpoint(out / "best.pt", checkpoint)
    save_checkpoint(out / "last.pt", checkpoint)
    state.history.save(out)


def _check_healthy(model: nn.Module, record: EpochRecord, out: Path, done: int) -> None:
    """Refuse to save an epoch whose weights, BatchNorm statistics or validation loss are not finite."""
    bad = [
        name
        for name, t in (*model.named_parameters(), *model.named_buffers())
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad or not math.isfinite(record.val_loss):
        what = (
            f"{len(bad)} weight tensors ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})"
            if bad
            else "the validation loss"
        )
        kept = f"the last good checkpoint is {out / 'last.pt'} (epoch {done})" if done else "no checkpoint was written"
        raise TrainingDiverged(
            f"{what} became NaN or infinite in epoch {record.epoch}; stopped without saving it: {kept}. "
            "Try a lower learning rate or fp32"
        )
