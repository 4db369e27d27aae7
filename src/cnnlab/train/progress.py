"""The progress bar of a training run (rich): epoch, step, images/s, time left, running loss
and accuracy; one plain line per epoch with ``quiet=True`` (for logs)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from .history import EpochRecord


class Progress:
    def __init__(self, epochs: int, steps: int, quiet: bool = False, silent: bool = False) -> None:
        """``quiet``: one line per epoch, no bar; ``silent``: nothing (the other ranks of a distributed run)."""
        self.epochs, self.steps, self.quiet, self.silent = epochs, steps, quiet or silent, silent
        quiet = quiet or silent
        self.console = Console(file=sys.stderr if not quiet else sys.stdout, soft_wrap=True)
        self.bar = None
        if not quiet:
            self.bar = RichProgress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>6.0f} img/s"),
                TimeRemainingColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.2%}"),
                console=self.console,
                transient=False,
            )
            self.task = self.bar.add_task("train", total=steps, epoch=0, epochs=epochs, rate=0.0, loss=0.0, acc=0.0)

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def epoch_start(self, epoch: int) -> None:
        if self.bar is not None:
            self.bar.reset(self.task, total=self.steps, epoch=epoch, epochs=self.epochs, rate=0.0, loss=0.0, acc=0.0)

    def step(self, step: int, seen: int, loss: float, acc: float, seconds: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, rate=seen / max(seconds, 1e-9), loss=loss, acc=acc)

    def epoch_done(self, r: EpochRecord) -> None:
        line = (
            f"epoch {r.epoch}/{self.epochs}: train loss {r.train_loss:.4f} acc {r.train_acc:.2%} | "
            f"val loss {r.val_loss:.4f} acc {r.val_acc:.2%}"
            + (f" (flip TTA {r.val_acc_tta:.2%})" if r.val_acc_tta is not None else "")
            + f" | {r.seconds:.1f} s, {r.images_per_s:.0f} img/s"
        )
        if self.silent:
            return
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            self.console.print(line, highlight=False)
