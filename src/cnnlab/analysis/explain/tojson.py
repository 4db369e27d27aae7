"""An explanation (:class:`~.data.ExplanationData`) as JSON-ready data: what ``cnnlab explain --json`` prints."""

from __future__ import annotations

from typing import Any

from .data import ExplanationData, Sum, Term


def explanation_dict(e: ExplanationData) -> dict[str, Any]:
    """Everything the text shows, arrays as nested lists (HWC)."""
    cfg = e.config
    y, x, c = e.cell
    return {
        "layer": e.layer.keras_class,
        "example": "article 001" if cfg.is_article else "custom",
        "config": {
            "input_size": list(cfg.input_size),
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.layer_kwargs().items()},
            "fill": cfg.fill,
            "seed": cfg.seed if cfg.fill == "random" else None,
        },
        "values": e.values_note,
        "params": e.cost.params,
        "macs": e.cost.macs,
        "macs_by_step": e.cost.macs_by_step,
        "weights": {name: array.tolist() for name, array in e.weights.items()},
        "input": e.input.tolist(),
        "input_layout": "HWC",
        "output": e.output.tolist(),
        "output_layout": "HWC",
        "cell": {"y": y, "x": x, "c": c},
        "steps": [{"title": title, "sums": [_sum_dict(s) for s in sums]} for title, sums in e.steps],
        "total_parts": e.total_parts,
        "bias": e.bias,
        "value": e.value,
        "layer_output": e.layer_output,
        "article_output": e.article.printed if e.article else None,
    }


def _sum_dict(s: Sum) -> dict[str, Any]:
    return {"label": s.label, "terms": [_term_dict(t) for t in s.terms], "padded_terms": s.padded, "result": s.result}


def _term_dict(t: Term) -> dict[str, Any]:
    return {
        "value": t.value,
        "weight": t.weight,
        "input_pos": list(t.input_pos) if t.input_pos else None,
        "kernel_pos": list(t.kernel_pos) if t.kernel_pos else None,
    }
