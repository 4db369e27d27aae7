"""The HTML pieces cnnlab's results show themselves with in Jupyter: each result type writes its
own ``_repr_html_`` (a model summary as a table, an explanation as its worked text, a training
history as its learning curves and table) from these pieces, and this module knows none of them.

Only strings are built here (a figure's PNG inlined as base64), so nothing depends on IPython.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any


def table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; columns whose index is in ``numeric`` are right-aligned."""

    def cell(tag: str, i: int, value: object) -> str:
        style = ' style="text-align:right"' if i in numeric else ""
        return f"<{tag}{style}>{html.escape(str(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def preformatted(text: str) -> str:
    """Plain text as it prints, escaped."""
    return f"<pre>{html.escape(text)}</pre>"


def bullets(lines: Sequence[str]) -> str:
    """A bulleted list of plain-text lines, escaped."""
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def bold(text: str) -> str:
    return f"<b>{html.escape(text)}</b>"


def figure_image(figure: Any) -> str:
    """A matplotlib Figure as an inline PNG image, as wide as the page allows."""
    png = io.BytesIO()
    figure.savefig(png, format="png")
    return f'<img src="data:image/png;base64,{base64.b64encode(png.getvalue()).decode()}" style="max-width:100%"/>'
