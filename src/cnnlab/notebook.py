"""How cnnlab's results show themselves in Jupyter (``_repr_html_``): a model summary as a table,
an explanation as its worked text, a training history as its table and learning curves.

Only strings are built here (the PNG inlined as base64), so nothing depends on IPython.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .analysis.explain import Explanation
    from .analysis.summary import ModelSummary
    from .train.history import History


def table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; columns whose index is in ``numeric`` are right-aligned."""
    def cell(tag: str, i: int, value: object) -> str:
        style = ' style="text-align:right"' if i in numeric else ""
        return f"<{tag}{style}>{html.escape(str(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_html(s: ModelSummary) -> str:
    from .analysis.summary import human

    rows = [(r.name, r.type, r.output_shape, f"{r.params:,}", human(r.macs) if r.macs else "0", ", ".join(r.inputs)) for r in s.rows]
    totals = "".join(f"<li>{html.escape(line)}</li>" for line in s.totals_lines())
    return (f"<b>{html.escape(s.model)}</b> &mdash; input {'x'.join(map(str, s.input_size))}"
            + table(("layer", "type", "output shape", "params", "MACs", "connected to"), rows, numeric=(3, 4))
            + f"<ul>{totals}</ul>")


def explanation_html(e: Explanation) -> str:
    from .analysis.explain import format_text

    return f"<pre>{html.escape(format_text(e))}</pre>"


def history_html(h: History) -> str:
    from .train.history import save_curves_to

    rows = [(e.epoch, f"{e.train_loss:.4f}", f"{e.train_acc:.2%}", f"{e.val_loss:.4f}", f"{e.val_acc:.2%}",
             "" if e.val_acc_tta is None else f"{e.val_acc_tta:.2%}", f"{e.lr:.2e}", f"{e.seconds:.1f}") for e in h.epochs]
    out = table(("epoch", "train loss", "train acc", "val loss", "val acc", "val acc TTA", "lr", "seconds"), rows,
                numeric=range(8))
    if h.epochs:
        png = io.BytesIO()
        save_curves_to(h, png)
        out = f'<img src="data:image/png;base64,{base64.b64encode(png.getvalue()).decode()}" style="max-width:100%"/>' + out
    return out
