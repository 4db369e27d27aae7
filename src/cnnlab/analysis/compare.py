"""Compare models side by side: a table of parameters, MACs and depth, and a MACs-vs-parameters
picture (PNG) saved next to the same data as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..figures import log_axis, save_figure, subplots
from ..io import atomic_write_text
from ..models.arguments import parse_model_spec
from .summary import ModelSummary, human, model_summary


@dataclass
class Comparison:
    labels: list[str]
    summaries: list[ModelSummary]

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "model": label,
                "input": "x".join(map(str, s.input_size)),
                "total_params": s.total_params,
                "trainable_params": s.trainable_params,
                "macs": s.macs,
                "depth": s.depth,
                "activation_bytes": s.activation_bytes,
            }
            for label, s in zip(self.labels, self.summaries)
        ]

    def table(self) -> str:
        header = ["model", "input", "params", "trainable", "MACs", "depth"]
        body = [
            [
                r["model"],
                r["input"],
                f"{r['total_params']:,}",
                f"{r['trainable_params']:,}",
                human(r["macs"]),
                str(r["depth"]),
            ]
            for r in self.records()
        ]
        widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
        lines = ["  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
        lines += [
            "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in body
        ]
        return "\n".join(lines)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.records()[0]))
        writer.writeheader()
        writer.writerows(self.records())
        return buffer.getvalue()

    def save(self, png: str | Path) -> list[Path]:
        """Write ``png`` (MACs against parameters, labelled) and the same data as .csv and .json."""
        png = Path(png)
        if png.suffix.lower() != ".png":
            raise ValueError(f"`png` must name a .png file, got {str(png)!r}")
        records = self.records()
        fig, ax = subplots(figsize=(7, 5), dpi=120)
        xs = [r["total_params"] for r in records]
        ys = [r["macs"] for r in records]
        ax.scatter(xs, ys, s=[20 + 4 * r["depth"] ** 0.8 for r in records], alpha=0.7)
        for r, x, y in zip(records, xs, ys):
            ax.annotate(r["model"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.margins(x=0.35, y=0.25)  # room for the labels on log axes
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.set_xlabel("parameters (Keras convention)")
        ax.set_ylabel("multiply-adds per image")
        ax.set_title("Cost of the models (marker size grows with depth)")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        written = [save_figure(fig, png)]
        written.append(atomic_write_text(png.with_suffix(".csv"), self.to_csv()))
        written.append(atomic_write_text(png.with_suffix(".json"), json.dumps(records, indent=1)))
        return written


def compare(specs: Sequence[str], input_size: Sequence[int] | None = None, common: dict | None = None) -> Comparison:
    """Summaries of ``specs`` ("name" or "name:key=value:...") at ``input_size`` (default: each
    model's own); ``common`` keywords go to every model (a spec's own keywords win)."""
    if not specs:
        raise ValueError("compare needs at least one model")
    summaries = []
    for spec in specs:
        name, kwargs = parse_model_spec(spec)
        summaries.append(model_summary(name, input_size, **{**(common or {}), **kwargs}))
    return Comparison(list(specs), summaries)
