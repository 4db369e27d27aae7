"""Plain-text building blocks for cnnlab's reports: numbers, small matrices, blocks side by side."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def fmt_number(value: float, digits: int = 6) -> str:
    """A number as a person would write it: ``598.5``, ``324``, ``0.1``, ``-2``.

    Integral values lose their ``.0``; others keep ``digits`` significant digits, which
    also hides float noise such as ``0.30000000000000004``.
    """
    value = float(value)
    if value == 0:
        return "0"  # also turns -0.0 into 0
    if abs(value - round(value)) < 1e-9 * max(1.0, abs(value)) and abs(value) < 1e15:
        return str(int(round(value)))
    return f"{value:.{digits}g}"


def matrix_lines(matrix: np.ndarray, marked: np.ndarray | None = None) -> list[str]:
    """Rows of a 2-D array, right-aligned; cells where ``marked`` is true are shown ``[x]``."""
    matrix = np.asarray(matrix)
    cells = [[fmt_number(v) for v in row] for row in matrix]
    width = max((len(c) for row in cells for c in row), default=1)
    lines = []
    for r, row in enumerate(cells):
        parts = []
        for c, text in enumerate(row):
            text = text.rjust(width)
            parts.append(f"[{text}]" if marked is not None and marked[r, c] else f" {text} ")
        lines.append("".join(parts))
    return lines


def hstack_blocks(blocks: Sequence[Sequence[str]], width: int = 100, gap: int = 4) -> list[str]:
    """Lay text blocks (lists of lines, first line a title) side by side, wrapping at ``width``."""
    lines: list[str] = []
    row: list[Sequence[str]] = []
    row_width = 0
    for block in blocks:
        block_width = max((len(line) for line in block), default=0)
        if row and row_width + gap + block_width > width:
            lines.extend(_join_row(row, gap))
            row, row_width = [], 0
        row_width += (gap if row else 0) + block_width
        row.append(block)
    if row:
        lines.extend(_join_row(row, gap))
    return lines


def _join_row(row: Iterable[Sequence[str]], gap: int) -> list[str]:
    row = list(row)
    widths = [max((len(line) for line in block), default=0) for block in row]
    height = max(len(block) for block in row)
    out = []
    for i in range(height):
        parts = [(block[i] if i < len(block) else "").ljust(w) for block, w in zip(row, widths)]
        out.append((" " * gap).join(parts).rstrip())
    out.append("")
    return out
