"""What a training checkpoint holds, as one object: the model, the optimizer, the learning-rate
schedule, the gradient scaler, every random state, the history and the best accuracy so far.

``TrainingState.state_dict()`` is exactly what ``last.pt`` / ``best.pt`` contain, and
``load_state_dict()`` restores all of it, so a resumed run continues to the same weights an
uninterrupted run reaches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .history import EpochRecord, History
from .optim import build_optimizer
from .precision import grad_scaler
from .rundir import CheckpointError, describe
from .schedule import build_schedule

# What a training checkpoint holds (``state_dict``): a file without them cannot be resumed.
CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "scheduler", "scaler", "rng", "history", "config", "best_val_acc")

# What a run started before an option existed did, so that it can still be resumed.
OPTIONS_BEFORE_THEY_EXISTED = {
    "precise_bn": 0,
    "tta": "none",
    "sync_bn": False,
    "lr_base_batch": None,
    "early_stop": 0,
    "early_stop_metric": "val_acc",
    "min_delta": 0.0,
    "clip_grad": 0.0,
    "mixup": 0.0,
    "cutmix": 0.0,
    "accumulate": 1,
    "ema": 0.0,
}
# Options that change what is logged, not what is trained: a resume may turn them on or off.
MAY_CHANGE_ON_RESUME = ("epochs", "tensorboard")


@dataclass
class TrainingState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # shuffling and augmentation
    history: History
    config: TrainConfig
    device: torch.device
    epoch: int = 0  # epochs finished
    best_val_acc: float = -1.0

    @classmethod
    def start(
        cls, model: nn.Module, config: TrainConfig, device: torch.device, history: History, steps_per_epoch: int
    ) -> TrainingState:
        """A new run's state: ``config``'s optimizer at the run's effective peak rate
        (``history.info["lr_effective"]``), its schedule, the gradient scaler its precision needs,
        and the generator of shuffling and augmentation seeded with ``config.seed``."""
        optimizer = build_optimizer(model, config, history.info["lr_effective"])
        scheduler = build_schedule(optimizer, config, steps_per_epoch)
        generator = torch.Generator().manual_seed(config.seed)
        scaler = grad_scaler(config.precision, device)
        return cls(model, optimizer, scheduler, scaler, generator, history, config, device)

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

    def load_state_dict(
        self, state: dict[str, Any], where: str = "the run", info: dict[str, Any] | None = None
    ) -> None:
        """Continue from a checkpoint. It must have been written for the same model and data (the
        entries of ``info`` named in ``RUN_IDENTITY``) with the same training options, except
        ``epochs``, which may grow: the schedule is then laid over the new length (see ``_extend``)."""
        if not isinstance(state, dict) or any(key not in state for key in CHECKPOINT_KEYS):
            raise CheckpointError(
                f"cannot resume {where}: its last.pt is {describe(state)}, not a training checkpoint "
                "(cnnlab train writes one with the model, optimizer, schedule and history); "
                "pass `overwrite=True` to start afresh there"
            )
        done = state["epoch"]
        _check_same_run(state, self.config, info or {}, where)
        if self.config.epochs < done:
            raise ValueError(
                f"cannot resume {where} with `epochs={self.config.epochs}`: it has already trained {done} epochs"
            )
        # with ema, "model" is the average
        self.model.load_state_dict(state["train_model"] if "train_model" in state else state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["rng"]["data"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.history = History.from_dict(state["history"])
        self.epoch, self.best_val_acc = done, state["best_val_acc"]
        # A run may continue elsewhere (another CPU, "auto" resolving to another precision): say so.
        self.history.info.setdefault("resumes", []).append(
            {"from_epoch": done + 1, "device": str(self.device), "precision": (info or {}).get("precision")}
        )
        if state["config"]["epochs"] != self.config.epochs:
            self._extend(state["config"]["epochs"])

    def _extend(self, planned: int) -> None:
        """Continue to another number of epochs (as Keras's ``initial_epoch``): the schedule is
        the one a run planned with the new length from the start would follow, taken up at the step
        reached. After a finished one-cycle or cosine run the learning rate rises again to that
        curve's value and anneals to zero at the new end."""
        self.history.config["epochs"] = self.config.epochs
        for group, base, factor in zip(self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas):
            group["lr"] = base * factor(self.scheduler.last_epoch)
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]  # what get_last_lr() reports
        self.history.info.setdefault("epochs_changed", []).append(
            {"after_epoch": self.epoch, "from": planned, "to": self.config.epochs, "schedule": self.config.schedule}
        )


# What identifies a run's model and data in its info: a resume with other values would mix them.
# world_size too: the steps per epoch (so the schedule) follow the global batch.
RUN_IDENTITY = (
    "model",
    "model_args",
    "dataset",
    "data",
    "data_digest",
    "classes",
    "image_size",
    "train_images",
    "validation",
    "world_size",
)


def _plain(value: Any) -> Any:
    """Tuples as lists, as a value reads back from JSON."""
    return json.loads(json.dumps(value, default=str))


def _check_same_run(state: dict[str, Any], config: TrainConfig, info: dict[str, Any], where: str) -> None:
    saved = {**OPTIONS_BEFORE_THEY_EXISTED, **state["config"]}
    wanted = config.to_dict()
    changed = [
        f"{k} ({saved[k]!r} -> {wanted.get(k)!r})"
        for k in sorted(saved)
        if k not in MAY_CHANGE_ON_RESUME and saved[k] != wanted.get(k)
    ]
    before = state["history"].get("info", {})
    changed += [
        f"{k} ({_plain(before[k])!r} -> {_plain(info[k])!r})"
        for k in RUN_IDENTITY
        if k in before and k in info and _plain(before[k]) != _plain(info[k])
    ]
    if changed:
        raise ValueError(
            f"cannot resume {where}: it was started with other options: {'; '.join(changed)}. "
            "Resume with the run's own options, or pass `overwrite=True` to start afresh there"
        )
