"""Early stopping with patience (``TrainConfig.early_stop``), as Keras's ``EarlyStopping``:
after each epoch the watched metric (``val_acc``, higher is better, or ``val_loss``, lower is
better) improves when it beats the best so far by more than ``min_delta``; after ``patience``
epochs in a row without improvement training stops. The counter and the best value live in the
checkpoint (``state_dict``), so a resumed run stops where an uninterrupted one would; a run that
stopped stays stopped when resumed.

    stop = EarlyStopping(patience=3)
    for epoch ...: if stop.update(epoch, record.val_acc): break
"""

from __future__ import annotations

from typing import Any


class EarlyStopping:
    def __init__(self, patience: int = 0, metric: str = "val_acc", min_delta: float = 0.0) -> None:
        if metric not in ("val_acc", "val_loss"):
            raise ValueError(f"early_stop_metric must be val_acc or val_loss, got {metric!r}")
        self.patience, self.metric, self.min_delta = patience, metric, min_delta
        self.best: float | None = None
        self.best_epoch = self.wait = self.stopped_epoch = 0

    @property
    def stopped(self) -> bool:
        return self.stopped_epoch > 0

    def improves(self, value: float) -> bool:
        if self.best is None:
            return True
        return value - self.min_delta > self.best if self.metric == "val_acc" else value + self.min_delta < self.best

    def update(self, epoch: int, value: float) -> bool:
        """Count a finished epoch's metric; True when training must stop after it (never with patience 0)."""
        if self.patience <= 0:
            return False
        if self.stopped:  # stopped: the record of why stays as it was
            return True
        if self.improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
        return self.stopped

    def record(self) -> dict[str, Any]:
        """What the history says about the stop: when, and why."""
        better = "rise above" if self.metric == "val_acc" else "fall below"
        delta = f" by more than {self.min_delta:g}" if self.min_delta else ""
        return {
            "epoch": self.stopped_epoch,
            "metric": self.metric,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "reason": f"{self.metric} did not {better} its best ({self.best:.4g} at epoch {self.best_epoch}){delta} "
            f"for {self.wait} epoch(s) (patience {self.patience})",
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
