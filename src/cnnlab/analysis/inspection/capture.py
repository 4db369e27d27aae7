"""One forward pass with every module watched: what each module read and wrote, in the order
the modules finished, and how the outputs connect.

From the tensors' identities during the pass (which module's output is which module's input)
the conv units are found -- a convolution with the BatchNorm and the activation that follow it,
as :class:`~cnnlab.layers.blocks.ConvNormAct` and DenseNet's layers chain them -- and the
*stages* a page shows: each unit, each pooling, and each block whose output is a new tensor
(a residual sum, a DenseNet concatenation), with the earlier outputs a concatenation joins.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ...layers.base import KerasConv2dBase

EXPLAINED = {"Conv2D": "conv2d", "DepthwiseConv2D": "depthwise", "SeparableConv2D": "separable"}
ACTIVATIONS = {
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.Hardswish: "hardswish",
    nn.Hardsigmoid: "hardsigmoid",
    nn.SiLU: "silu",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
}
POOLS = (nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class Record:
    """One module's call: its first input and its output (detached copies) and their identities
    during the pass (``input_id`` / ``output_id``: equal ids are the same tensor)."""

    name: str
    module: nn.Module
    input: torch.Tensor | None
    output: torch.Tensor
    input_id: int
    output_id: int
    order: int  # when the module finished (children finish before their parents)


@dataclass
class Unit:
    """A convolution and the BatchNorm and activation that take its output, in that order."""

    conv: str
    bn: str | None = None
    act: str | None = None

    @property
    def last(self) -> str:
        """The module whose output the unit shows."""
        return self.act or self.bn or self.conv


@dataclass
class Stage:
    """One entry of the network's column: a module's output feature maps."""

    name: str  # the module whose output this is
    kind: str  # "unit" (explained), "conv" (not explained), "pool" or "block"
    title: str
    unit: Unit | None = None
    sources: list[tuple[int, int, str]] = field(default_factory=list)  # a concatenation: (start, stop, stage)


@contextmanager
def no_inplace(model: nn.Module) -> Iterator[None]:
    """The model in eval mode (BatchNorm's running statistics, no dropout: as evaluation runs it)
    with every ``inplace=True`` turned off (a ReLU overwriting BatchNorm's output), so that each
    module's output stays what it was; both restored afterwards."""
    changed: list[Any] = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    training = [m for m in model.modules() if m.training]
    for module in changed:
        module.inplace = False
    model.eval()
    try:
        yield
    finally:
        for module in changed:
            module.inplace = True
        for module in training:
            module.train()


def capture(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[Record]]:
    """(logits, a :class:`Record` per module that wrote a feature map (N, C, H, W)), one pass."""
    records: list[Record] = []
    alive: list[torch.Tensor] = []  # the pass's own tensors, kept so that no id is reused during it
    seen: set[str] = set()

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: object) -> None:
            if name in seen or not isinstance(output, torch.Tensor) or output.dim() != 4:
                return  # a module called twice keeps its first call
            seen.add(name)
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            alive.extend(t for t in (first, output) if t is not None)
            keep = isinstance(module, (KerasConv2dBase, nn.BatchNorm2d)) or not list(module.children())
            records.append(
                Record(
                    name,
                    module,
                    first.detach().clone() if first is not None and keep else None,
                    output.detach().clone(),
                    id(first),
                    id(output),
                    len(records),
                )
            )

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with no_inplace(model), torch.no_grad():
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return logits, records


def _activation(module: nn.Module) -> str | None:
    return ACTIVATIONS.get(type(module))


def _parent(name: str) -> str:
    return name.rpartition(".")[0]


def find_units(records: list[Record]) -> list[Unit]:
    """Every Conv2D / DepthwiseConv2D / SeparableConv2D with the BatchNorm2d that reads its output
    and the activation that reads that, where those are its siblings (``ConvNormAct``'s conv, bn,
    act; a ResNet block's conv1, bn1, act1). A BatchNorm elsewhere that reads the output -- the
    next DenseNet layer's pre-activation -- is not part of the unit: the output is used raw too."""
    readers: dict[int, list[Record]] = {}
    for r in records:
        readers.setdefault(r.input_id, []).append(r)
    units = []
    for r in records:
        if not (isinstance(r.module, KerasConv2dBase) and r.module.keras_class in EXPLAINED):
            continue
        unit, last = Unit(r.name), r
        siblings = [n for n in readers.get(r.output_id, []) if _parent(n.name) == _parent(r.name)]
        bn = next((n for n in siblings if isinstance(n.module, nn.BatchNorm2d)), None)
        if bn is not None:
            unit.bn, last = bn.name, bn
        act = next(
            (
                a
                for a in readers.get(last.output_id, [])
                if _activation(a.module) and _parent(a.name) == _parent(r.name)
            ),
            None,
        )
        if act is not None:
            unit.act = act.name
        units.append(unit)
    return units


def find_stages(records: list[Record], units: list[Unit]) -> list[Stage]:
    """The column of a page: units, other convolutions (torch's ``nn.Conv2d``, a transposed one:
    shown, not explained), poolings and blocks with a new output, in the order they finished."""
    by_name = {r.name: r for r in records}
    shown: dict[int, Stage] = {}
    for u in units:
        if min(by_name[u.last].output.shape[-2:]) < 2:
            continue  # a 1x1 map (squeeze-excite's convolutions): nothing to look at
        title = " → ".join(n for n in (u.conv, u.bn, u.act) if n)
        shown[by_name[u.last].output_id] = Stage(u.last, "unit", title, u)
    convs = {r.name for r in records if isinstance(r.module, (KerasConv2dBase, nn.Conv2d, nn.ConvTranspose2d))}
    for r in records:
        if r.output_id in shown or min(r.output.shape[-2:]) < 2:
            continue
        if r.name in convs and r.name not in {u.conv for u in units}:
            shown[r.output_id] = Stage(r.name, "conv", f"{r.name} ({type(r.module).__name__}: shown, not explained)")
        elif isinstance(r.module, POOLS) or type(r.module).__name__.endswith("Pooling2D"):
            shown[r.output_id] = Stage(r.name, "pool", f"{r.name} ({type(r.module).__name__})")
        elif list(r.module.children()) and any(c.startswith(r.name + ".") for c in convs):
            shown[r.output_id] = Stage(r.name, "block", f"{r.name} ({type(r.module).__name__} output)")
    stages = sorted(shown.values(), key=lambda s: by_name[s.name].order)
    for stage in stages:
        if stage.kind == "block":
            stage.sources = concat_sources(by_name[stage.name], records, stages)
    return stages


def producer(records: list[Record], tensor_id: int, before: int) -> Record | None:
    """The first module (innermost) that wrote tensor ``tensor_id`` before order ``before``."""
    return next((r for r in records if r.output_id == tensor_id and r.order < before), None)


def concat_sources(block: Record, records: list[Record], stages: list[Stage]) -> list[tuple[int, int, str]]:
    """Where a concatenating block's channels come from: ``[(start, stop, name), ...]`` -- its input
    (expanded into what that joined, when it was a concatenation too) and the new channels one of
    its own modules wrote (DenseNet's ``torch.cat([x, new])``); ``[]`` when it does not concatenate."""
    out = block.output[0]
    first = producer(records, block.input_id, block.order)
    if first is None or first.output.shape[1] >= out.shape[0] or first.output.shape[-2:] != out.shape[-2:]:
        return []
    known = first.output[0]
    if not torch.equal(out[: known.shape[0]], known):
        return []
    width = out.shape[0] - known.shape[0]
    inner = [r for r in records if r.name.startswith(block.name + ".") and r.output.shape[1] == width]
    new = next((r for r in reversed(inner) if torch.equal(r.output[0], out[known.shape[0] :])), None)
    if new is None:
        return []
    stage_names = {s.name for s in stages}
    earlier = next((s for s in stages if s.name == first.name and s.sources), None)
    head = earlier.sources if earlier is not None else [(0, known.shape[0], _shown_name(first, records, stage_names))]
    return [*head, (known.shape[0], out.shape[0], _shown_name(new, records, stage_names))]


def _shown_name(record: Record, records: list[Record], stage_names: set[str]) -> str:
    """The stage that shows ``record``'s output, else the module's own name."""
    for r in records:
        if r.output_id == record.output_id and r.name in stage_names:
            return r.name
    return record.name
