"""A reproduction's results: the article's table with our figures beside its own, as Markdown,
CSV and JSON, plus the comparison figures (validation accuracy of every case; accuracy
against parameters and against seconds per epoch)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..figures import log_axis, save_figure, subplots, whole_number_axis
from ..io import atomic_write_text
from ..presets import Preset
from ..train import TrainConfig
from .experiments import Case, Experiment


@dataclass
class Row:
    case: Case
    augmentation: str
    epochs: int  # trained so far
    planned_epochs: int
    params: int  # Keras convention
    depth: int
    macs: int
    best_val_acc: float
    best_epoch: int
    seconds_per_epoch: float  # the article's way
    images_per_s: float  # median over epochs
    device: str
    reached_article_at: int | None  # first epoch whose val acc >= the article's best
    val_acc_curve: list[float] = field(default_factory=list)
    best_val_acc_tta: float | None = None  # with the preset's test-time augmentation (None: not measured)
    reached_article_seconds: float | None = None  # wall time from the start of training to that epoch's end
    seconds: float = 0.0  # wall time of all epochs trained so far

    @property
    def finished(self) -> bool:
        return self.epochs >= self.planned_epochs

    @property
    def difference(self) -> float:
        return self.best_val_acc - self.case.article.best_acc

    def record(self) -> dict[str, Any]:
        a = self.case.article
        return {
            "no": self.case.number,
            **self.case.columns,
            "model": self.case.model,
            "model_args": {k: list(v) if isinstance(v, tuple) else v for k, v in self.case.model_args.items()},
            "augmentation": self.augmentation,
            "epochs": self.epochs,
            "planned_epochs": self.planned_epochs,
            "params": self.params,
            "depth": self.depth,
            "best_val_acc": round(self.best_val_acc, 6),
            "best_epoch": self.best_epoch,
            "seconds_per_epoch": round(self.seconds_per_epoch, 3),
            "macs": self.macs,
            "images_per_s": round(self.images_per_s, 1),
            "device": self.device,
            "article_params": a.params,
            "article_depth": a.depth,
            "article_best_acc": a.best_acc,
            "article_seconds_per_epoch": a.seconds_per_epoch,
            "acc_difference": round(self.difference, 6),
            "reached_article_acc_at_epoch": self.reached_article_at,
            "reached_article_acc_at_seconds": self.reached_article_seconds,
            "best_val_acc_tta": None if self.best_val_acc_tta is None else round(self.best_val_acc_tta, 6),
            "seconds": round(self.seconds, 1),
        }


@dataclass
class Reproduction:
    experiment: Experiment
    preset: Preset
    config: TrainConfig
    rows: list[Row]
    train_images: int
    val_images: int
    validation: str
    date: str
    comparable: bool = True  # trained and validated on all the images, as the article was: figures set side by side

    def table(self) -> str:
        """The article's columns, then ours, as a Markdown table."""
        s = self.experiment
        head = [
            "No",
            *s.columns,
            "augmentation",
            "epochs",
            "params",
            "depth",
            "best val acc",
            "s/epoch",
            "MACs",
            "img/s",
            "device",
            "article acc",
            "diff",
            "article s/epoch",
            "reached article acc",
            "minutes",
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            a = r.case.article
            epochs = f"{r.epochs}" if r.finished else f"{r.epochs}/{r.planned_epochs} (running)"
            reached = f"epoch {r.reached_article_at}" if r.reached_article_at else "no"
            if r.reached_article_seconds is not None:
                reached += f", {r.reached_article_seconds / 60:.1f} min"
            best = f"{r.best_val_acc:.2%}" + ("" if r.best_val_acc_tta is None else f" (flip {r.best_val_acc_tta:.2%})")
            cells = [
                str(r.case.number),
                *(r.case.columns[c] for c in s.columns),
                r.augmentation,
                epochs,
                f"{r.params:,}" + ("" if r.params == a.params else f" (article {a.params:,})"),
                str(r.depth),
                best,
                f"{r.seconds_per_epoch:.1f}",
                f"{r.macs / 1e6:.1f}M",
                f"{r.images_per_s:.0f}",
                r.device,
                f"{a.best_acc:.2%}",
                f"{r.difference * 100:+.2f} pt",
                "-" if a.seconds_per_epoch is None else f"{a.seconds_per_epoch:.1f}",
                reached,
                f"{r.seconds / 60:.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def markdown(self) -> str:
        parts = [
            f"# {self.experiment.title}",
            "",
            f"- preset `{self.preset.name}`: {self.preset.description}",
            f"- data: {self.train_images:,} training images, {self.val_images:,} validation images "
            f"(validation = {self.validation}); {self.date}",
            f"- the article: {self.experiment.article}; {self.experiment.article_setup}",
        ]
        if not self.comparable:
            parts.append(
                f"- **these numbers are not comparable to the article's**: trained on a subset of the images "
                f"({self.train_images:,} training, {self.val_images:,} validation)."
            )
        parts += [f"- {note}" for note in self.experiment.notes]
        parts += [
            "",
            self.table(),
            "",
            "`s/epoch` is the article's way (mean after dropping the fastest and the slowest epoch); params in "
            "the Keras convention; `diff` = our best val acc - the article's; `reached article acc` = first "
            "epoch at or above the article's best, and the wall time to the end of it; `(flip ...)`: with "
            "horizontal-flip test-time augmentation; `minutes`: wall time of the epochs trained.",
            "",
        ]
        return "\n".join(parts)

    def records(self) -> list[dict[str, Any]]:
        return [r.record() for r in self.rows]

    def to_csv(self) -> str:
        records = self.records()
        buffer = io.StringIO()
        if records:
            fields = [k for k in records[0] if k != "model_args"]
            writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)
        return buffer.getvalue()

    def to_json(self) -> str:
        return json.dumps(
            {
                "experiment": self.experiment.name,
                "preset": self.preset.name,
                "train": self.config.to_dict(),
                "date": self.date,
                "train_images": self.train_images,
                "val_images": self.val_images,
                "validation": self.validation,
                "rows": self.records(),
            },
            indent=1,
        )


def write_reports(result: Reproduction, out: Path) -> list[Path]:
    written = [
        atomic_write_text(out / "results.md", result.markdown()),
        atomic_write_text(out / "results.csv", result.to_csv()),
        atomic_write_text(out / "results.json", result.to_json()),
    ]
    if result.rows:
        written += [_comparison_png(result, out / "comparison.png"), _cost_png(result, out / "accuracy_vs_cost.png")]
    return written


def _name(row: Row) -> str:
    return (
        f"{row.case.number}: "
        + ", ".join(f"{k}={v}" for k, v in row.case.columns.items())
        + ("" if row.case.augment else ", no aug")
    )


def _comparison_png(result: Reproduction, path: Path) -> Path:
    fig, ax = subplots(figsize=(8, 5), dpi=110)
    for row in result.rows:
        (line,) = ax.plot(
            range(1, len(row.val_acc_curve) + 1),
            row.val_acc_curve,
            marker="o" if len(row.val_acc_curve) < 15 else None,
            ms=3,
            label=_name(row),
        )
        ax.axhline(row.case.article.best_acc, color=line.get_color(), ls=":", lw=1)
    ax.set(
        xlabel="epoch",
        ylabel="validation accuracy",
        title=f"{result.experiment.title}\npreset {result.preset.name} (dotted: the article's best of each case)",
    )
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    whole_number_axis(ax, max([len(r.val_acc_curve) for r in result.rows] + [1]))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _cost_png(result: Reproduction, path: Path) -> Path:
    fig, axes = subplots(1, 2, figsize=(11, 4.5), dpi=110)
    for ax, key, label in (
        (axes[0], "params", "parameters (Keras convention)"),
        (axes[1], "seconds_per_epoch", "seconds per epoch"),
    ):
        for row in result.rows:
            x = getattr(row, key)
            ax.scatter([x], [row.best_val_acc], s=40, zorder=3)
            ax.annotate(
                str(row.case.number), (x, row.best_val_acc), textcoords="offset points", xytext=(5, 4), fontsize=8
            )
            ax_value = row.case.article.params if key == "params" else row.case.article.seconds_per_epoch
            if ax_value is not None:
                ax.scatter(
                    [ax_value], [row.case.article.best_acc], s=40, facecolors="none", edgecolors="gray", zorder=2
                )
                ax.annotate(
                    str(row.case.number),
                    (ax_value, row.case.article.best_acc),
                    textcoords="offset points",
                    xytext=(-9, 4),
                    fontsize=8,
                    color="gray",
                )
        ax.set(xlabel=label, ylabel="best validation accuracy")
        log_axis(ax)
        ax.grid(alpha=0.3)
    axes[0].set_title("accuracy vs parameters (filled: cnnlab, hollow grey: the article; numbers: cases)", fontsize=9)
    axes[1].set_title(f"accuracy vs seconds/epoch ({result.rows[0].device} vs the article's GPU)", fontsize=9)
    fig.suptitle(f"{result.experiment.title} -- preset {result.preset.name}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
