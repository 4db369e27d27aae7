"""How one number of a trained network's feature map was computed, by ``cnnlab explain``'s own
float64 machinery.

The convolution of a unit is copied in float64 and run on the activations it read in the
inspected pass (:func:`layer_run`, a :class:`~cnnlab.analysis.explain.data.LayerRun` like
``explain``'s examples); :func:`~cnnlab.analysis.explain.compute.explain_cell` writes the cell
out as sums of products and checks them against that layer's output; the BatchNorm and the
activation that follow are applied in float64 after it, and the result is checked against the
model's own activation at that position (:attr:`CellExplanation.matches`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ...layers import padding as P
from ...layers.base import KerasConv2dBase
from ..explain.compute import explain_cell
from ..explain.data import LayerRun
from ..explain.examples import ExampleConfig
from .capture import EXPLAINED, Record, Unit

Cell = tuple[int, int, int]


@dataclass
class Affine:
    """A BatchNorm at one channel, in eval mode: ``(z - mean) / sqrt(var + eps) * gamma + beta``."""

    name: str
    mean: float
    var: float
    eps: float
    gamma: float
    beta: float
    value: float  # applied to the convolution's sum


@dataclass
class Activation:
    name: str  # the module
    kind: str  # relu, relu6, hardswish, ...
    value: float


@dataclass
class CellExplanation:
    """One value of a unit's output: the convolution written out (``conv``, an explain
    ``Explanation``), then BatchNorm and activation, against the model's own value."""

    unit: Unit
    cell: Cell  # (y, x, channel)
    conv: Any  # cnnlab.analysis.explain's explanation of the convolution's cell (explain_cell's result)
    bn: Affine | None
    act: Activation | None
    value: float  # after the whole unit, in float64
    model_value: float  # what the model computed there (in its own precision)
    tolerance: float  # how far the two may be apart for the model's precision

    @property
    def matches(self) -> bool:
        return abs(self.value - self.model_value) <= self.tolerance

    def lines(self) -> list[str]:
        """The explanation as a few lines of text (the sums per input channel, then the steps)."""
        e = self.conv
        y, x, c = self.cell
        shape = "x".join(map(str, e.input.shape))
        out = [f"{self.unit.conv}[y={y}, x={x}, c={c}] ({e.layer.keras_class}, input {shape} HWC)"]
        for title, sums in e.steps:
            out.append(f"  {title}: {len(sums)} sum{'s' * (len(sums) != 1)}")
            top = sorted(sums, key=lambda s: -abs(s.result))[:4]
            out += [f"    {s.label}: {len(s.terms)} product{'s' * (len(s.terms) != 1)} = {s.result:.6g}" for s in top]
            if len(sums) > len(top):
                rest = sum(s.result for s in sums) - sum(s.result for s in top)
                out.append(f"    ... {len(sums) - len(top)} more: {rest:.6g}")
        bias = f" + bias {e.bias:.6g}" if e.bias is not None else ""
        out.append(
            f"  convolution: {sum(e.total_parts):.6g}{bias} = {e.value:.6g} (the float64 layer: {e.layer_output:.6g})"
        )
        if self.bn is not None:
            b = self.bn
            out.append(
                f"  {b.name}: ({e.value:.6g} - {b.mean:.6g}) / sqrt({b.var:.6g} + {b.eps:g}) * {b.gamma:.6g} "
                f"+ {b.beta:.6g} = {b.value:.6g}"
            )
        if self.act is not None:
            before = self.bn.value if self.bn is not None else e.value
            out.append(f"  {self.act.name}: {self.act.kind}({before:.6g}) = {self.act.value:.6g}")
        verdict = "matches" if self.matches else "DIFFERS"
        out.append(f"  value {self.value:.6g}; the model computed {self.model_value:.6g} ({verdict})")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def layer_run(record: Record, note: str = "") -> LayerRun:
    """The convolution of ``record`` in float64 on the input it read, as ``explain`` runs its examples."""
    module = record.module
    if not isinstance(module, KerasConv2dBase) or record.input is None:
        raise ValueError(f"{record.name} is not a Conv2D, DepthwiseConv2D or SeparableConv2D whose input was kept")
    kind = EXPLAINED[module.keras_class]
    layer = copy.deepcopy(module).to(dtype=torch.float64, device="cpu").eval()
    x = record.input[0].detach().to(dtype=torch.float64, device="cpu")
    with torch.no_grad():
        out = layer(x[None])[0]
    h, w = int(x.shape[1]), int(x.shape[2])
    config = ExampleConfig(
        kind=kind,
        input_size=(h, w),
        in_channels=module.in_channels,
        filters=None if kind == "depthwise" else module.out_channels,
        kernel_size=module.kernel_size,
        strides=module.strides,
        padding=module.padding,
        dilation_rate=module.dilation_rate,
        depth_multiplier=getattr(module, "depth_multiplier", 1),
        use_bias=module.use_bias,
        fill="random",
    )
    pads = ((0, 0), (0, 0))
    if module.padding == "same":
        (kh, kw), (sh, sw), (dh, dw) = module.kernel_size, module.strides, module.dilation_rate
        pads = (P.same_padding(h, kh, sh, dh), P.same_padding(w, kw, sw, dw))
    return LayerRun(
        config=config,
        layer=layer,
        cost=layer.cost((module.in_channels, h, w)),
        weights=dict(zip(config.keras_weight_names(), layer.get_keras_weights())),
        input=x.permute(1, 2, 0).numpy(),
        output=out.permute(1, 2, 0).numpy(),
        values_note=note or f"the activations {record.name} read in the inspected pass",
        input_padding=pads,
        output_crop=((0, 0), (0, 0)),
        article=None,
    )


def explain_unit_cell(
    unit: Unit, cell: Cell, records: dict[str, Record], run: LayerRun | None = None
) -> CellExplanation:
    """Output ``cell`` = (y, x, channel) of ``unit`` written out (``run``: its :func:`layer_run`, if made)."""
    run = run or layer_run(records[unit.conv])
    e = explain_cell(run, cell)  # raises if the written-out sum misses the float64 layer's output
    c = e.cell[2]
    value, bn, act = float(e.value), None, None
    if unit.bn is not None:
        m = records[unit.bn].module
        assert isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None
        weight = m.weight.detach() if m.weight is not None else None
        bias = m.bias.detach() if m.bias is not None else None
        gamma = float(weight[c]) if weight is not None else 1.0
        beta = float(bias[c]) if bias is not None else 0.0
        mean, var = float(m.running_mean[c]), float(m.running_var[c])
        value = (value - mean) / float(np.sqrt(var + m.eps)) * gamma + beta
        bn = Affine(unit.bn, mean, var, float(m.eps), gamma, beta, value)
    if unit.act is not None:
        module = records[unit.act].module
        with torch.no_grad():
            value = float(module(torch.tensor([value], dtype=torch.float64)))
        act = Activation(unit.act, type(module).__name__.lower(), value)
    shown = records[unit.last].output
    model_value = float(shown[0, c, e.cell[0], e.cell[1]])
    return CellExplanation(unit, e.cell, e, bn, act, value, model_value, _tolerance(e, shown.dtype, bn, act))


def _tolerance(e, dtype: torch.dtype, bn: Affine | None, act: Activation | None) -> float:
    """How close the model's value must be: its precision's rounding over the products summed,
    scaled by what BatchNorm multiplies it by (activations change it by at most 1.5x: hardswish)."""
    eps = 1e-12 if dtype == torch.float64 else 1e-5
    scale = sum(abs(t.product) for _, sums in e.steps for s in sums for t in s.terms) + abs(e.bias or 0)
    tolerance = eps * max(1.0, scale)
    if bn is not None:
        tolerance = tolerance * abs(bn.gamma) / float(np.sqrt(bn.var + bn.eps)) + eps * max(1.0, abs(bn.value))
    if act is not None:
        tolerance = 1.5 * tolerance + eps * max(1.0, abs(act.value))
    return tolerance
