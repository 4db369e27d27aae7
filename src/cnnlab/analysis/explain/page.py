"""An explanation as one self-contained web page (``cnnlab explain ... --html FILE``).

The page steps through the output cells (buttons, arrow keys, or a click on an output cell),
highlights the window each one reads, shows the kernels it uses and its sums of products, and
switches among the examples it holds: the one asked for, then article 001's four. Everything it
shows comes from :func:`page_data` -- the float64 layer's own input, weights and output and every
cell written out by :func:`~.compute.explain_cell` -- embedded in the page as JSON. The script
and the styles are inline (``page.html``), so the file opens offline, from ``file://``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...io import atomic_write_text
from ..pages import embedded_data, fill_template
from .compute import explain_cell, run_example
from .data import LayerRun, Sum
from .examples import KINDS, ExampleConfig, make_config
from .explanation import Explanation
from .pictures import cells

MAX_CELLS = 4096  # output cells one example may hold: every cell is written out in the page
_DATA_ID = "cnnlab-data"


def example_name(config: ExampleConfig) -> str:
    return f"{config.kind}: the article 001 example" if config.is_article else f"{config.kind}: custom"


def page_data(run: LayerRun) -> dict[str, Any]:
    """One example as the page reads it: the layer's numbers and every output cell written out."""
    cfg = run.config
    if run.output.size > MAX_CELLS:
        raise ValueError(
            f"the page writes out every output cell; this example has {run.output.size:,} "
            f"(output {'x'.join(map(str, run.output.shape))}), more than {MAX_CELLS:,}: choose a smaller "
            f"`input_size` or fewer `filters`"
        )
    written = [explain_cell(run, cell) for cell in cells(run)]
    return {
        "name": example_name(cfg),
        "kind": cfg.kind,
        "layer": run.layer.keras_class,
        "repr": f"{run.layer.keras_class}({run.layer.extra_repr()})",
        "config": {
            "input_size": list(cfg.input_size),
            "in_channels": cfg.in_channels,
            "filters": cfg.filters,
            "kernel_size": list(cfg.kernel_size),
            "strides": list(cfg.strides),
            "padding": cfg.padding,
            "dilation_rate": list(cfg.dilation_rate),
            "depth_multiplier": cfg.depth_multiplier,
            "output_padding": list(cfg.output_padding) if cfg.output_padding else None,
            "use_bias": cfg.use_bias,
        },
        "values": run.values_note,
        "params": run.cost.params,
        "macs": run.cost.macs,
        "input": run.input.tolist(),  # HWC
        "output": run.output.tolist(),  # HWC, as the layer computed it
        "input_padding": [list(p) for p in run.input_padding],
        "output_crop": [list(p) for p in run.output_crop],
        "weights": {name: array.tolist() for name, array in run.weights.items()},
        "article": run.article.printed if run.article else None,
        "cells": [_cell(e) for e in written],
    }


def _cell(e: Explanation) -> dict[str, Any]:
    return {
        "cell": list(e.cell),
        "steps": [{"title": title, "sums": [_sum(s) for s in sums]} for title, sums in e.steps],
        "parts": e.total_parts,
        "bias": e.bias,
        "value": e.value,
    }


def _sum(s: Sum) -> dict[str, Any]:
    def term(t: Any) -> list[Any]:
        return [t.value, t.weight, *(t.input_pos or (None, None)), *(t.kernel_pos or (None, None))]

    return {
        "label": s.label,
        "channel": s.channel,
        "multiplier": s.multiplier,
        "terms": [term(t) for t in s.terms],  # [value, weight, iy, ix, i, j]
        "padding": [term(t) for t in s.padding],  # taps on padding zeros (iy/ix outside the input)
        "result": s.result,
    }


def page_examples(run: LayerRun) -> list[LayerRun]:
    """``run`` first, then those of article 001's four examples that are not ``run``."""
    return [run] + [run_example(make_config(kind)) for kind in KINDS if make_config(kind) != run.config]


def render_page(runs: list[LayerRun], title: str = "cnnlab explain", start: int = 0) -> str:
    """The page's HTML: the template with the examples' data embedded (``<``, ``>``, ``&`` escaped); it opens
    on the first example's output cell number ``start`` (in :func:`~.pictures.cells` order)."""
    return fill_template(__package__, "page.html", title, {"examples": [page_data(r) for r in runs], "start": start})


def save_html(run: LayerRun, path: str | Path) -> Path:
    """``run`` and article 001's four examples as one offline page, written atomically; an
    :class:`~.explanation.Explanation` opens the page on its own cell."""
    start = list(cells(run)).index(run.cell) if isinstance(run, Explanation) else 0
    html_text = render_page(page_examples(run), title=f"cnnlab explain: {example_name(run.config)}", start=start)
    return atomic_write_text(path, html_text)


def read_page_data(text: str) -> dict[str, Any]:
    """The JSON a page embeds (what :func:`render_page` put in), for checking a written page."""
    return embedded_data(text, _DATA_ID)
