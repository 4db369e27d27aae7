"""A run's history: one record per epoch, saved as history.json, history.csv and curves.png."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..figures import save_figure, subplots, whole_number_axis
from ..io import atomic_write_text
from ..notebook import figure_image, table

COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s", "val_acc_tta")
# written only by the runs that have them (config "ema": the live weights beside the averaged ones)
OPTIONAL_COLUMNS = ("val_loss_raw", "val_acc_raw")


@dataclass
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    train_acc: float  # fraction
    val_loss: float
    val_acc: float  # fraction
    lr: float  # at the end of the epoch
    seconds: float  # training + validation wall time
    images_per_s: float  # training images per second
    val_acc_tta: float | None = None  # with the run's test-time augmentation (config "tta"); None without
    # config "ema": val_loss/val_acc (and val_acc_tta) are the EMA weights', the model best.pt holds;
    # these are the live (trained) weights'. None without ema
    val_loss_raw: float | None = None
    val_acc_raw: float | None = None


@dataclass
class History:
    config: dict[str, Any]
    epochs: list[EpochRecord] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # model, data source, validation split, device

    def summary(self) -> dict[str, Any]:
        if not self.epochs:
            return {}
        seconds = [e.seconds for e in self.epochs]
        best = max(self.epochs, key=lambda e: e.val_acc)
        trimmed = sorted(seconds)[1:-1] if len(seconds) > 2 else seconds
        return (
            {
                "best_val_acc": best.val_acc,
                "best_epoch": best.epoch,
                "final_val_acc": self.epochs[-1].val_acc,
                # the article's way: mean of the epochs after dropping the fastest and the slowest
                "seconds_per_epoch_article": statistics.fmean(trimmed),
                "seconds_per_epoch_median": statistics.median(seconds),
                "images_per_s_median": statistics.median(e.images_per_s for e in self.epochs),
                "epochs": len(self.epochs),
            }
            | self._tta_summary()
            | self._target_summary()
            | self._stop_summary()
        )

    def _stop_summary(self) -> dict[str, Any]:
        """When and why early stopping (config ``early_stop``) ended the run."""
        stop = self.info.get("early_stopped")
        return {"stopped_early": stop} if stop else {}

    def columns(self) -> tuple[str, ...]:
        """The per-epoch fields this history writes: ``COLUMNS``, and the optional ones some epoch has."""
        return COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if any(getattr(e, c) is not None for e in self.epochs))

    def _tta_summary(self) -> dict[str, Any]:
        scored = [(e.val_acc_tta, e) for e in self.epochs if e.val_acc_tta is not None]
        if not scored:
            return {}
        acc, best = max(scored, key=lambda pair: pair[0])
        return {"best_val_acc_tta": acc, "best_epoch_tta": best.epoch}

    def _target_summary(self) -> dict[str, Any]:
        """When the run first reached ``info["target_val_acc"]`` (e.g. the article's figure):
        epoch and wall seconds from the start, by plain accuracy and with test-time augmentation."""
        target = self.info.get("target_val_acc")
        if target is None:
            return {}
        out: dict[str, Any] = {"target_val_acc": target}
        for key, metric in (("reached_target", "val_acc"), ("reached_target_tta", "val_acc_tta")):
            elapsed, hit = 0.0, None
            for e in self.epochs:
                elapsed += e.seconds
                value = getattr(e, metric)
                if value is not None and value >= target:
                    hit = {"epoch": e.epoch, "seconds": round(elapsed, 1), "val_acc": value}
                    break
            out[key] = hit
        return out

    def to_dict(self) -> dict[str, Any]:
        columns = self.columns()
        epochs = [{k: v for k, v in asdict(e).items() if k in columns} for e in self.epochs]
        return {"config": self.config, "info": self.info, "epochs": epochs, "summary": self.summary()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(data["config"], [EpochRecord(**e) for e in data["epochs"]], data.get("info", {}))

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        columns = self.columns()
        writer.writerow(columns)
        for e in self.epochs:
            writer.writerow(["" if getattr(e, c) is None else getattr(e, c) for c in columns])
        return buffer.getvalue()

    def table(self) -> str:
        lines = ["epoch  train_loss  train_acc  val_loss  val_acc        lr  seconds  images/s"]
        for e in self.epochs:
            lines.append(
                f"{e.epoch:5d}  {e.train_loss:10.4f}  {e.train_acc:9.2%}  {e.val_loss:8.4f}  {e.val_acc:7.2%}"
                f"  {e.lr:8.2e}  {e.seconds:7.1f}  {e.images_per_s:8.0f}"
            )
        return "\n".join(lines + self._notes())

    def _notes(self) -> list[str]:
        """What the table's numbers are, where an option changed it: the EMA model, an early stop, mixing."""
        notes = []
        ema, last = self.info.get("ema"), self.epochs[-1] if self.epochs else None
        if ema and last is not None and last.val_acc_raw is not None:
            notes.append(
                f"val_loss/val_acc: the EMA of the weights (decay {ema['decay']}), which best.pt holds; "
                f"the trained weights themselves reached {last.val_acc_raw:.2%} in epoch {last.epoch}"
            )
        if self.info.get("train_acc"):
            notes.append(f"train_acc: {self.info['train_acc']}")
        stop = self.info.get("early_stopped")
        if stop:
            notes.append(f"stopped early after epoch {stop['epoch']}: {stop['reason']}")
        return notes

    def _repr_html_(self) -> str:  # Jupyter: the learning curves and the table
        header = ("epoch", "train loss", "train acc", "val loss", "val acc", "val acc TTA", "lr", "seconds")
        rows = [
            (
                e.epoch,
                f"{e.train_loss:.4f}",
                f"{e.train_acc:.2%}",
                f"{e.val_loss:.4f}",
                f"{e.val_acc:.2%}",
                "" if e.val_acc_tta is None else f"{e.val_acc_tta:.2%}",
                f"{e.lr:.2e}",
                f"{e.seconds:.1f}",
            )
            for e in self.epochs
        ]
        curves = figure_image(curves_figure(self)) if self.epochs else ""
        return curves + table(header, rows, numeric=range(len(header)))

    def save(self, directory: str | Path) -> list[Path]:
        directory = Path(directory)
        written = [
            atomic_write_text(directory / "history.json", json.dumps(self.to_dict(), indent=1)),
            atomic_write_text(directory / "history.csv", self.to_csv()),
        ]
        if self.epochs:
            written.append(save_curves(self, directory / "curves.png"))
        return written


def save_curves(history: History, path: Path) -> Path:
    """Accuracy and loss, train against validation, as in article 000's figures (PNG, atomically)."""
    return save_figure(curves_figure(history), path)


def curves_figure(history: History):
    """The learning curves as a matplotlib Figure (no pyplot)."""
    epochs = [e.epoch for e in history.epochs]
    fig, (acc, loss) = subplots(1, 2, figsize=(10, 4), dpi=110)
    acc.plot(epochs, [e.train_acc for e in history.epochs], label="train", marker=".")
    ema = " EMA" if history.info.get("ema") else ""
    acc.plot(
        epochs,
        [e.val_acc for e in history.epochs],
        label=f"validation{ema} ({history.info.get('validation', 'val')})",
        marker=".",
    )
    tta = [(e.epoch, e.val_acc_tta) for e in history.epochs if e.val_acc_tta is not None]
    if tta:
        acc.plot(*zip(*tta), label=f"validation, {history.config.get('tta', 'TTA')} TTA", marker=".", linestyle="--")
    raw = [(e.epoch, e.val_acc_raw) for e in history.epochs if e.val_acc_raw is not None]
    if raw:  # config "ema": the validation line is the EMA's, this one the trained weights'
        acc.plot(*zip(*raw), label="validation, weights without EMA", marker=".", linestyle=":")
    target = history.info.get("target_val_acc")
    if target is not None:  # e.g. the article's best accuracy
        acc.axhline(target, color="grey", linestyle=":", label=f"target {target:.2%}")
    acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    loss.plot(epochs, [e.train_loss for e in history.epochs], label="train", marker=".")
    loss.plot(epochs, [e.val_loss for e in history.epochs], label="validation", marker=".")
    loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    for ax in (acc, loss):
        ax.grid(alpha=0.3)
        ax.legend()
        whole_number_axis(ax, max(epochs))
    for ax in (acc, loss):
        _mark_phases(ax, history)
    fig.suptitle(run_title(history.info, history.config), fontsize=10)
    fig.tight_layout()
    return fig


def run_title(info: dict, config: dict | None = None) -> str:
    """What a figure shows, in one line: the model and its keywords, the case, the data, the training options."""
    args = ", ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
        for k, v in info.get("model_args", {}).items()
    )
    parts = [f"{info.get('model', 'model')}({args})" if args else info.get("model", "")]
    shown = {
        "case": "case {case}",
        "study": "search {study}, trial {trial}",
        "train_images": "{train_images:,} training images",
    }
    parts += [text.format_map(defaultdict(str, info)) for key, text in shown.items() if key in info]
    config = config or {}
    training = [
        f"{config['optimizer']} lr {config['lr']:g}" if "optimizer" in config else "",
        f"augment {config['augment']}" if "augment" in config else "",
        _precisions(info),
    ]
    parts.append(", ".join(t for t in training if t))
    return " | ".join(p for p in parts if p)


def _precisions(info: dict) -> str:
    """``bf16``, or ``fp32, bf16 from epoch 8`` when a resumed run continued in another precision."""
    text, current = info.get("precision", ""), info.get("precision")
    for resume in info.get("resumes", []):
        if resume.get("precision") and resume["precision"] != current:
            current = resume["precision"]
            text += f", {current} from epoch {resume['from_epoch']}"
    return text


def _mark_phases(ax, history: History) -> None:
    """Vertical lines where the run changed course: fine-tuning's unfreeze, an extended run."""
    freeze = history.info.get("freeze_epochs")
    if freeze and freeze < len(history.epochs):
        ax.axvline(freeze + 0.5, color="tab:red", alpha=0.5, linestyle="-.", label="whole network from here")
    for change in history.info.get("epochs_changed", []):
        ax.axvline(
            change["after_epoch"] + 0.5,
            color="tab:purple",
            alpha=0.5,
            linestyle="-.",
            label=f"extended {change['from']}→{change['to']} epochs",
        )
    if freeze or history.info.get("epochs_changed"):
        ax.legend()
