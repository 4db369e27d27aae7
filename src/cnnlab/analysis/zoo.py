"""The zoo at a glance: every registered model with its family, parameters, MACs and depth at
its default input (``cnnlab models``)."""

from __future__ import annotations

from ..models import get_model_entry, list_models
from .summary import human, model_summary

HEADER = ("model", "family", "params", "MACs", "depth", "input", "description")
RIGHT = {2, 3, 4}  # right-aligned columns


def zoo_rows(pattern: str | None = None, pretrained: bool = False) -> list[tuple[str, ...]]:
    """One row per registered model matching ``pattern``; ``pretrained``: only the models with
    published weights, and a last column naming them (``create_model(name, pretrained=TAG)``)."""
    names = list_models(pattern, pretrained=pretrained)
    if not names:
        which = "model with published weights" if pretrained else "model"
        raise ValueError(f"no {which} matches {pattern!r}; see `cnnlab models`")
    rows: list[tuple[str, ...]] = []
    for name in names:
        entry = get_model_entry(name)
        s = model_summary(name)
        size = "x".join(map(str, entry.input_size))
        row = (name, entry.family, f"{s.total_params:,}", human(s.macs), str(s.depth), size, entry.description)
        rows.append(row + ((", ".join(w.tag for w in entry.weights),) if pretrained else ()))
    return rows


def zoo_table(pattern: str | None = None, pretrained: bool = False) -> str:
    rows = zoo_rows(pattern, pretrained)
    header = HEADER + (("weights",) if pretrained else ())
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [
        "  ".join(c.rjust(w) if i in RIGHT else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in [header, *rows]
    ]
    what = "models with published weights" if pretrained else "models"
    return "\n".join(lines) + f"\n\n{len(rows)} {what}; params in the Keras convention (BatchNorm statistics included)."
