"""TensorBoard event files beside the CSV/JSON history (``TrainConfig.tensorboard``): after every
epoch rank 0 writes the training and validation loss and accuracy and the learning rate into
``RUN/tb/`` with PyTorch's ``SummaryWriter`` (which needs the ``tensorboard`` package:
``pip install 'cnnlab[tensorboard]'``).

    tensorboard --logdir runs/
"""

from __future__ import annotations

from pathlib import Path

from .history import EpochRecord

TB_DIR = "tb"


class MissingPackage(RuntimeError):
    """An option needs a package that is not installed."""


def require_tensorboard():
    """PyTorch's ``SummaryWriter``; a one-line error saying what to install when ``tensorboard`` is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MissingPackage(
            "`tensorboard=True` needs the tensorboard package, which is not installed: "
            "pip install 'cnnlab[tensorboard]' (or pip install tensorboard)"
        ) from None
    return SummaryWriter


def scalars(record: EpochRecord) -> dict[str, float]:
    """The tags written for one epoch (those without a value, e.g. TTA when off, are left out)."""
    tags = {
        "loss/train": record.train_loss,
        "loss/val": record.val_loss,
        "accuracy/train": record.train_acc,
        "accuracy/val": record.val_acc,
        "lr": record.lr,
        "images_per_s": record.images_per_s,
        "accuracy/val_tta": record.val_acc_tta,
        "loss/val_raw": record.val_loss_raw,
        "accuracy/val_raw": record.val_acc_raw,  # with ema: the live weights
    }
    return {tag: float(value) for tag, value in tags.items() if value is not None}


class TensorBoard:
    """Writes each epoch's scalars at step = epoch; a resumed run first drops what a killed run
    wrote for the epochs it repeats (``purge_step``). Off (writes nothing) when ``enabled`` is False."""

    def __init__(self, run_dir: str | Path, enabled: bool, first_epoch: int = 1) -> None:
        self.writer = None
        if enabled:
            writer = require_tensorboard()
            self.writer = writer(str(Path(run_dir) / TB_DIR), purge_step=first_epoch if first_epoch > 1 else None)

    def log(self, record: EpochRecord) -> None:
        if self.writer is None:
            return
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, record.epoch)
        self.writer.flush()

    def __enter__(self) -> TensorBoard:
        return self

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.close()
