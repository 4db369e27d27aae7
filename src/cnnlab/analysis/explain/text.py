"""An explanation (:class:`~.data.ExplanationData`) as terminal text, the way article 001 writes it out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..textfmt import fmt_number, hstack_blocks, matrix_lines
from .data import ExplanationData, Sum

MAX_MATRICES = 12  # per group; the rest is summarised (the JSON has everything)
_POINTWISE_TITLE = (
    "Pointwise kernel: pointwise_kernel[0, 0, d, out] (rows d = depthwise outputs, columns = output channels)"
)

Block = tuple[str, np.ndarray, np.ndarray | None]  # label, matrix, cells to mark


def format_text(e: ExplanationData, width: int = 100, times: str = "×", everything: str = "to_dict()") -> str:
    """The explanation as the article would write it: weights, inputs, outputs, then the sum. A
    group of more than ``MAX_MATRICES`` matrices is cut short, saying where all of it is: ``everything``
    (the command passes its ``--json``)."""
    cfg, (y, xx, m) = e.config, e.cell
    mo = e.output.shape[2]
    lines = _header(e)
    lines += _weight_section(e, width, everything)
    title = f"Input channels ([ ] marks the cells output[{y}, {xx}, {m}] reads)"
    inputs = [(f"in {c}", e.input[:, :, c], e.marked_inputs[:, :, c]) for c in range(cfg.in_channels)]
    lines += _matrix_section(title, inputs, width, everything)
    outputs = [(f"out {o}", e.output[:, :, o], None) for o in range(mo)]
    lines += _matrix_section("Output channels (computed by the layer)", outputs, width, everything)
    lines += _sum_lines(e, times)
    lines += _article_lines(e)
    return "\n".join(lines)


def _sum_lines(e: ExplanationData, times: str) -> list[str]:
    """The cell written out: each step's sums, the total, and the layer's own value."""
    y, xx, m = e.cell
    lines = [f"output[y={y}, x={xx}, c={m}]:"]
    for step_title, sums in e.steps:
        lines.append(f"  {step_title}")
        lines += ["    " + _format_sum(s, times) for s in sums]
    parts = [_factor(p) if i else fmt_number(p) for i, p in enumerate(e.total_parts)]
    if e.bias is not None:
        parts.append(f"bias {_factor(e.bias)}")
    if len(parts) > 1:
        lines.append(f"  total: {' + '.join(parts)} = {fmt_number(e.value)}")
    lines.append(f"  layer output: {fmt_number(e.layer_output)} ({'matches' if e.matches else 'DIFFERS from'} the sum)")
    return lines


def _header(e: ExplanationData) -> list[str]:
    cfg, cost = e.config, e.cost
    h, w = cfg.input_size
    ho, wo, mo = e.output.shape
    steps = f" ({', '.join(f'{k} {v:,}' for k, v in cost.macs_by_step.items())})" if len(cost.macs_by_step) > 1 else ""
    return [
        f"{e.layer.keras_class} -- {'the article 001 example' if cfg.is_article else 'custom example'}",
        f"  {e.layer.__class__.__name__}({e.layer.extra_repr()})",
        f"  input {h}x{w}x{cfg.in_channels} (HxWxC) -> output {ho}x{wo}x{mo}; "
        f"{cost.params:,} parameters, {cost.macs:,} multiply-adds" + steps,
        f"  values: {e.values_note}",
        "",
    ]


def _article_lines(e: ExplanationData) -> list[str]:
    """The article's printed outputs against cnnlab's, for the article's own example."""
    check = e.article
    if check is None:
        return []
    verdict = "same" if check.same else "DIFFERENT"
    if len(check.printed) <= 4:
        return [
            f"  article 001 prints: {', '.join(fmt_number(v) for v in check.printed)}",
            f"  cnnlab computes:    {', '.join(fmt_number(v) for v in check.computed)} ({verdict})",
        ]
    return [
        f"  article 001 prints all {len(check.printed)} outputs; cnnlab's are the {verdict} "
        f"(largest difference {fmt_number(check.largest_difference)})"
    ]


def _factor(v: float) -> str:
    """A number inside an expression: negatives in parentheses."""
    text = fmt_number(v)
    return f"({text})" if text.startswith("-") else text


def _format_sum(s: Sum, times: str) -> str:
    if not s.terms:
        body = "0 (no input position reaches this cell)"
    else:
        body = " + ".join(f"{_factor(t.value)}{times}{_factor(t.weight)}" for t in s.terms)
    extra = f" + {s.padded} padded zero{'s' if s.padded > 1 else ''}" if s.padded else ""
    return f"{s.label}: {body}{extra} = {fmt_number(s.result)}"


def _kernel_blocks(e: ExplanationData, in_axis: int, out_axis: int) -> list[Block]:
    """One block per (input, output) channel pair of a full kernel, the used output starred."""
    k, m = e.weights["kernel"], e.cell[2]
    blocks: list[Block] = []
    for c in range(k.shape[in_axis]):
        for o in range(k.shape[out_axis]):
            index: list[slice | int] = [slice(None), slice(None), 0, 0]
            index[in_axis], index[out_axis] = c, o
            blocks.append((f"in {c} -> out {o}" + (" *" if o == m else ""), k[tuple(index)], None))
    return blocks


def _weight_section(e: ExplanationData, width: int, everything: str) -> list[str]:
    kh, kw = e.config.kernel_size
    if e.config.kind in ("conv2d", "transpose"):
        in_axis, out_axis, axes = (2, 3, "in, out") if e.config.kind == "conv2d" else (3, 2, "out, in")
        title = f"Kernel: one {kh}x{kw} matrix kernel[:, :, {axes}] per input/output channel pair (* used)"
        out = _matrix_section(title, _kernel_blocks(e, in_axis, out_axis), width, everything)
    else:
        out = _depthwise_section(e, width, everything)
    if "bias" in e.weights:
        out += _matrix_section("Bias", [("", e.weights["bias"][None, :], None)], width, everything)
    return out


def _depthwise_section(e: ExplanationData, width: int, everything: str) -> list[str]:
    """Depthwise kernels, one per input channel and multiplier; separable's pointwise kernel after."""
    (kh, kw), dm, k = e.config.kernel_size, e.config.depth_multiplier, e.weights["depthwise_kernel"]
    labels = [(c, q, f"in {c}" + (f" x{q}" if dm > 1 else "")) for c in range(k.shape[2]) for q in range(dm)]
    blocks = [(label, k[:, :, c, q], None) for c, q, label in labels]
    title = f"Depthwise kernel: one {kh}x{kw} matrix depthwise_kernel[:, :, in, multiplier] per input channel"
    out = _matrix_section(title, blocks, width, everything)
    if e.config.kind == "separable":
        pointwise = [("", e.weights["pointwise_kernel"][0, 0], None)]
        out += _matrix_section(_POINTWISE_TITLE, pointwise, width, everything)
    return out


def _matrix_section(title: str, blocks: Sequence[Block], width: int, everything: str) -> list[str]:
    shown = blocks[:MAX_MATRICES]
    rendered = [([label] if label else []) + matrix_lines(matrix, marked) for label, matrix, marked in shown]
    lines = [title, *("  " + line if line else line for line in hstack_blocks(rendered, width=width - 2))]
    if len(blocks) > len(shown):
        lines.insert(-1, f"  ... and {len(blocks) - len(shown)} more (all of them with {everything})")
    return lines
