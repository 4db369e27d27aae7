"""A model summary as one self-contained web page (``cnnlab summary MODEL --html FILE``): the
ledger as a sortable table (click a column's header) and the cost of each stage as bars.

A *stage* is a group of rows sharing a name prefix: a top-level module, split into its children
while it holds more than 60% of the multiply-adds (``stages.2``, ``features.denseblock3``), so
the bars tell where the cost lies. Everything is inline; the page opens offline from ``file://``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import atomic_write_text
from .pages import embedded_data, fill_template
from .summary import ModelSummary

MAX_STAGE_DEPTH = 3
_DATA_ID = "cnnlab-summary"


@dataclass(frozen=True)
class Stage:
    name: str
    params: int
    macs: int
    rows: int


def stage_costs(s: ModelSummary, depth: int | None = None) -> list[Stage]:
    """Parameters and multiply-adds per stage, in model order.

    With ``depth``, a stage is a name prefix of ``depth`` parts. Without, the top-level modules
    are the stages, and any that holds more than 60% of the multiply-adds is split into its
    children (up to :data:`MAX_STAGE_DEPTH` parts deep): ``stem``, ``stages.0`` ... ``head``.
    """
    prefixes = [_prefix(r.name, depth or 1) for r in s.rows]
    if depth is None:
        for level in range(2, MAX_STAGE_DEPTH + 1):
            totals: dict[str, int] = {}
            for prefix, r in zip(prefixes, s.rows):
                totals[prefix] = totals.get(prefix, 0) + r.macs
            heavy = {p for p, macs in totals.items() if macs > 0.6 * s.macs}
            if not heavy:
                break
            prefixes = [_prefix(r.name, level) if p in heavy else p for p, r in zip(prefixes, s.rows)]
    groups: dict[str, list[int]] = {}
    for prefix, r in zip(prefixes, s.rows):
        g = groups.setdefault(prefix, [0, 0, 0])
        g[0] += r.params
        g[1] += r.macs
        g[2] += 1
    return [Stage(name, *g) for name, g in groups.items()]


def _prefix(name: str, parts: int) -> str:
    return ".".join(name.split(".")[:parts])


def page_data(s: ModelSummary) -> dict[str, Any]:
    return {
        "model": s.model,
        "input_size": list(s.input_size),
        "totals": s.totals_lines(),
        "total_params": s.total_params,
        "macs": s.macs,
        "rows": [
            {
                "name": r.name,
                "type": r.type,
                "output_shape": list(r.output_shape),
                "params": r.params,
                "trainable": r.trainable,
                "macs": r.macs,
                "depth": r.depth,
                "inputs": r.inputs,
            }
            for r in s.rows
        ],
        "stages": [vars(st) for st in stage_costs(s)],
    }


def render_page(s: ModelSummary) -> str:
    return fill_template(__package__, "summary.html", f"cnnlab summary: {s.model}", page_data(s))


def save_html(s: ModelSummary, path: str | Path) -> Path:
    """The summary's page, written atomically."""
    return atomic_write_text(path, render_page(s))


def read_page_data(text: str) -> dict[str, Any]:
    """The JSON a summary page embeds."""
    return embedded_data(text, _DATA_ID)
