"""The zoo at a glance: every registered model with its family, parameters, MACs and depth at
its default input (``cnnlab models``)."""

from __future__ import annotations

from ..models import get_model_entry, list_models
from .summary import human, model_summary

HEADER = ("model", "family", "params", "MACs", "depth", "input", "description")
RIGHT = {2, 3, 4}  # right-aligned columns


def zoo_rows(pattern: str | None = None) -> list[tuple[str, ...]]:
    names = list_models(pattern)
    if not names:
        raise ValueError(f"no model matches {pattern!r}; see `cnnlab models`")
    rows: list[tuple[str, ...]] = []
    for name in names:
        entry = get_model_entry(name)
        s = model_summary(name)
        size = "x".join(map(str, entry.input_size))
        rows.append((name, entry.family, f"{s.total_params:,}", human(s.macs), str(s.depth), size, entry.description))
    return rows


def zoo_table(pattern: str | None = None) -> str:
    rows = zoo_rows(pattern)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    lines = [
        "  ".join(c.rjust(w) if i in RIGHT else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in [HEADER, *rows]
    ]
    return "\n".join(lines) + f"\n\n{len(rows)} models; params in the Keras convention (BatchNorm statistics included)."
