"""What a training checkpoint holds, as one object: the model, the optimizer, the learning-rate
schedule, the gradient scaler, every random state, the history and the best accuracy so far.

``TrainingState.state_dict()`` is exactly what ``last.pt`` / ``best.pt`` contain, and
``load_state_dict()`` restores all of it, so a resumed run continues to the same weights an
uninterrupted run reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .history import EpochRecord, History

# What a run started before an option existed did, so that it can still be resumed.
OPTIONS_BEFORE_THEY_EXISTED = {"precise_bn": 0, "tta": "none"}


@dataclass
class TrainingState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # shuffling and augmentation
    history: History
    config: TrainConfig
    device: torch.device
    epoch: int = 0  # epochs finished
    best_val_acc: float = -1.0

    def record(self, epoch: EpochRecord) -> bool:
        """Add a finished epoch; True when it is the best so far (``best.pt`` is then rewritten)."""
        self.history.epochs.append(epoch)
        self.epoch = epoch.epoch
        improved = epoch.val_acc > self.best_val_acc
        self.best_val_acc = max(self.best_val_acc, epoch.val_acc)
        return improved

    def state_dict(self) -> dict[str, Any]:
        rng = {"data": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "history": self.history.to_dict(),
            "config": self.config.to_dict(),
            "best_val_acc": self.best_val_acc,
        }

    def load_state_dict(self, state: dict[str, Any], where: str = "the run") -> None:
        """Continue from a checkpoint; it must have been written with the same training options."""
        saved = {**OPTIONS_BEFORE_THEY_EXISTED, **state["config"]}
        wanted = self.config.to_dict()
        if saved != wanted:
            changed = sorted(k for k in saved if saved[k] != wanted.get(k))
            raise ValueError(f"cannot resume {where}: the run was started with other options ({', '.join(changed)})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["rng"]["data"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.history = History.from_dict(state["history"])
        self.epoch, self.best_val_acc = state["epoch"], state["best_val_acc"]
