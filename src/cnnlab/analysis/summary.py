"""``cnnlab.summary``: a parameter and cost ledger for any model, Keras-style.

One forward pass at batch 1 is traced: every leaf module becomes a row (name, type, output
shape, parameters, multiply-adds, the layers feeding it), and tensors carry two tags through
every torch operation, hooks and functional ops alike -- which rows produced them, and how
many weight layers (convolutions and dense layers) lie on the longest path behind them.

    >>> s = summary(create_model("resnet50"), input_size=(3, 224, 224))
    >>> s.total_params, s.trainable_params, s.depth          # doctest: +SKIP
    (25636712, 25583592, 50)
    >>> print(s)                                            # the Keras-style table

Parameter convention: Keras counts BatchNorm moving mean and variance as *non-trainable
parameters*; PyTorch keeps them as buffers. ``total_params = trainable_params +
non_trainable_params`` is Keras's figure; ``torch_params`` is ``sum(p.numel())``.
MACs count multiply-accumulates of convolutions and dense layers (the figure papers quote);
``flops = 2 * macs``. The model may live on the ``meta`` device: nothing is computed then,
only shapes, which makes the ledger of a 138M-parameter VGG instant.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from ..layers.base import KerasConv2dBase
from ..notebook import bold, bullets, table
from .textfmt import fmt_number
from .tracing import Tracer

WEIGHT_LAYERS = (KerasConv2dBase, nn.Linear, nn.modules.conv._ConvNd)


@dataclass
class LayerRow:
    name: str
    type: str
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int  # Keras convention (BatchNorm statistics included)
    trainable: int
    macs: int
    inputs: list[str]  # names of the rows feeding this one ("input": the model input)
    depth: int  # weight layers on the longest path from the input to this row's output
    output_numel: int = 0  # elements this row produced at batch 1 (all its calls)


@dataclass
class ModelSummary:
    model: str
    input_size: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    torch_params: int
    buffers: int
    macs: int
    depth: int
    activation_bytes: int  # every row's output at batch 1, float32
    output_shape: tuple[int, ...] = field(default=())

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["flops"] = self.flops
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def _repr_html_(self) -> str:  # Jupyter: the ledger as a table
        header = ("layer", "type", "output shape", "params", "MACs", "connected to")
        rows = [
            (r.name, r.type, r.output_shape, f"{r.params:,}", human(r.macs) if r.macs else "0", ", ".join(r.inputs))
            for r in self.rows
        ]
        return (
            f"{bold(self.model)} &mdash; input {'x'.join(map(str, self.input_size))}"
            + table(header, rows, numeric=(3, 4))
            + bullets(self.totals_lines())
        )

    def totals_lines(self) -> list[str]:
        return [
            f"Total params: {self.total_params:,} ({_bytes(self.total_params * 4)})",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,} (BatchNorm moving mean/variance, frozen weights)",
            f"PyTorch convention: {self.torch_params:,} parameters + {self.buffers:,} buffer values",
            f"MACs: {human(self.macs)} (FLOPs {human(self.flops)}) "
            f"for one {'x'.join(map(str, self.input_size))} input; "
            f"depth {self.depth} weight layers; activations {_bytes(self.activation_bytes)} (batch 1, float32)",
        ]

    def __str__(self) -> str:
        header = ("Layer (type)", "Output shape", "Param #", "MACs", "Connected to")
        body = [
            (
                f"{r.name} ({r.type})",
                str(r.output_shape),
                f"{r.params:,}",
                human(r.macs) if r.macs else "0",
                ", ".join(r.inputs),
            )
            for r in self.rows
        ]
        widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(header)]
        widths[-1] = len(header[-1])  # the last column is free-running text
        rule = "=" * (sum(widths[:-1]) + 3 * len(widths[:-1]) + 24)

        def line(cells: Sequence[str]) -> str:
            return " | ".join(
                c.ljust(w) if i != 2 and i != 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()

        out = [f'Model: "{self.model}"', rule, line(header), rule]
        out += [line(row) for row in body]
        out += [rule, *self.totals_lines(), rule]
        return "\n".join(out)

    def to_markdown(self) -> str:
        lines = [
            f"**{self.model}** -- input {'x'.join(map(str, self.input_size))}",
            "",
            "| layer | type | output shape | params | MACs | connected to |",
            "|---|---|---|---:|---:|---|",
        ]
        lines += [
            f"| {r.name} | {r.type} | {r.output_shape} | {r.params:,} | {r.macs:,} | {', '.join(r.inputs)} |"
            for r in self.rows
        ]
        lines += ["", *(f"- {t}" for t in self.totals_lines())]
        return "\n".join(lines)


def human(n: float) -> str:
    """1234567 -> '1.23 M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return fmt_number(n)


def _bytes(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def keras_param_split(module: nn.Module, recurse: bool = True) -> tuple[int, int]:
    """(trainable, non_trainable) in Keras's convention for ``module``."""
    trainable = frozen = 0
    for p in module.parameters(recurse=recurse):
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    norms = module.modules() if recurse else [module]
    stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in norms
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None and m.running_var is not None
    )
    return trainable, frozen + stats


def _is_row(module: nn.Module) -> bool:
    if isinstance(module, nn.Identity):
        return False
    return isinstance(module, KerasConv2dBase) or not any(True for _ in module.children())


@torch.no_grad()
def summary(
    model: nn.Module, input_size: Sequence[int] = (3, 224, 224), name: str | None = None, depth: int | None = None
) -> ModelSummary:
    """Trace ``model`` on one input of ``input_size`` = (C, H, W) and return its ledger; a
    batch of one, (1, C, H, W) as torchinfo takes it, is accepted too. ``depth=N`` collapses the
    rows to modules at most N levels deep (``stages.0`` for 2), as torchinfo's ``depth``: their
    parameters and MACs summed, the output shape of their last row. The totals do not change."""
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ValueError(f"depth must be a positive int (module nesting levels), got {depth!r}")
    if len(input_size) == 4 and input_size[0] == 1:
        input_size = tuple(input_size[1:])
    if len(input_size) != 3 or not all(isinstance(v, int) and v > 0 for v in input_size):
        raise ValueError(f"input_size must be (C, H, W) positive ints, got {tuple(input_size)!r}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    names = {module: n for n, module in model.named_modules()}
    tracer = Tracer()
    rows: dict[str, LayerRow] = {}
    handles = []

    def pre_hook(module, args):
        tracer.stack.append(names[module])

    def post_hook(module, args, output):
        key = tracer.stack.pop()
        if not _is_row(module):
            return
        producers, depth = tracer.merged(tree_flatten(args)[0])
        depth += isinstance(module, WEIGHT_LAYERS)
        outs = [o for o in tree_flatten(output)[0] if isinstance(o, torch.Tensor)]
        for o in outs:
            tracer.tag(o, frozenset({key}), depth)
        shape = tuple(outs[0].shape[1:]) if outs else ()
        row = rows.get(key)
        if row is None:  # first call; a module called twice keeps one row
            trainable, non_trainable = keras_param_split(module)
            row = rows[key] = LayerRow(
                key, type(module).__name__, shape, trainable + non_trainable, trainable, 0, [], depth
            )
        row.output_shape, row.depth = shape, max(row.depth, depth)
        row.inputs += [p for p in sorted(producers) if p not in row.inputs]
        row.output_numel += sum(o[0].numel() for o in outs)

    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    was_training = model.training
    model.eval()
    x = torch.zeros((1, *input_size), device=device, dtype=dtype)
    try:
        tracer.tag(x, frozenset({"input"}), 0)
        with tracer:
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    result = _ledger(model, name, tuple(input_size), rows, tracer, out)
    return result if depth is None else _collapse(result, model, depth)


def _collapse(s: ModelSummary, model: nn.Module, depth: int) -> ModelSummary:
    """``s`` with its rows merged into their ancestors ``depth`` levels deep (see ``summary``)."""
    group = {r.name: ".".join(r.name.split(".")[:depth]) for r in s.rows}
    shapes = _output_shapes(model, s.input_size, set(group.values()))
    merged: dict[str, LayerRow] = {}
    for r in s.rows:
        key = group[r.name]
        m = merged.get(key)
        if m is None:
            kind = type(model.get_submodule(key)).__name__ if key != r.name else r.type
            m = merged[key] = LayerRow(key, kind, r.output_shape, 0, 0, 0, [], r.depth)
        m.params, m.trainable, m.macs, m.output_numel = (
            m.params + r.params,
            m.trainable + r.trainable,
            m.macs + r.macs,
            m.output_numel + r.output_numel,
        )
        m.output_shape, m.depth = shapes.get(key, r.output_shape), max(m.depth, r.depth)
        for source in (group.get(i, i) for i in r.inputs):
            if source != key and source not in m.inputs:
                m.inputs.append(source)
    return replace(s, rows=list(merged.values()))


def _output_shapes(model: nn.Module, input_size: tuple, names: set[str]) -> dict[str, tuple[int, ...]]:
    """The output shape (without the batch) of each named submodule on one input (a DenseNet
    stage's output is its concatenation, which no leaf row shows)."""
    shapes: dict[str, tuple[int, ...]] = {}
    param = next(model.parameters(), None)

    def hook(name: str):
        def record(module, args, out) -> None:  # returns None: the output is left as it is
            if isinstance(out, torch.Tensor):
                shapes.setdefault(name, tuple(out.shape[1:]))

        return record

    handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in names]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(
                torch.zeros(
                    (1, *input_size),
                    device=param.device if param is not None else "cpu",
                    dtype=param.dtype if param is not None else torch.float32,
                )
            )
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return shapes


def _ledger(
    model: nn.Module, name: str | None, input_size: tuple, rows: dict[str, LayerRow], tracer: Tracer, out
) -> ModelSummary:
    """The summary of a traced forward pass: its rows with their MACs, and the totals."""
    for key, macs in tracer.macs.items():
        if key in rows:
            rows[key].macs = macs
    ordered = list(rows.values())
    trainable, non_trainable = keras_param_split(model)
    out_tensor = out if isinstance(out, torch.Tensor) else tree_flatten(out)[0][0]
    return ModelSummary(
        model=name or type(model).__name__,
        input_size=input_size,
        rows=ordered,
        total_params=trainable + non_trainable,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        torch_params=sum(p.numel() for p in model.parameters()),
        buffers=sum(b.numel() for b in model.buffers()),
        macs=tracer.total_macs,
        depth=tracer.tags.get(id(out_tensor), (None, max((r.depth for r in ordered), default=0)))[1],
        activation_bytes=4 * sum(r.output_numel for r in ordered),
        output_shape=tuple(out_tensor.shape[1:]),
    )


def model_summary(
    name: str, input_size: Sequence[int] | None = None, depth: int | None = None, **kwargs: Any
) -> ModelSummary:
    """Summary of a registered model built on the ``meta`` device (shapes only: fast, no memory)."""
    from ..models import create_model, get_model_entry

    entry = get_model_entry(name)
    size = tuple(input_size) if input_size is not None else entry.input_size
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return summary(model, size, name=name, depth=depth)


def parse_input_size(text: str) -> tuple[int, int, int]:
    """'3x32x32' (or '3,32,32', '1x3x32x32' as torchinfo writes it, or '32' meaning 3x32x32) -> (3, 32, 32)."""
    try:
        values = tuple(int(v) for v in text.replace(",", "x").split("x"))
    except ValueError:
        raise ValueError(f"input size must look like 3x32x32, got {text!r}") from None
    if len(values) == 1:
        values = (3, values[0], values[0])
    if len(values) == 4 and values[0] == 1:  # a batch of one
        values = values[1:]
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"input size must look like 3x32x32 (C x H x W, positive), got {text!r}")
    return values
