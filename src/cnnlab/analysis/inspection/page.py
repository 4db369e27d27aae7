"""An inspection as one offline page (``cnnlab inspect ... --html FILE``), in the spirit of CNN
Explainer but for any cnnlab model.

The page shows the image and the prediction, Grad-CAM per class (a menu), and the network as a
column of stages with thumbnails; a click on a stage shows its feature maps, a click on a cell
of a convolution unit's map shows how that number was computed: the window of the previous
activations it reads, the kernel, the sums, then BatchNorm and the activation, against the
model's own value. The page computes those sums itself in float64 -- in the same order as
``cnnlab explain``'s :func:`~cnnlab.analysis.explain.compute.explain_cell`, so the same numbers
(the tests compare them) -- from the layer's input and weights embedded as float32.

What keeps it small: maps for display are 8-bit (one scale per stage) and only the
``max_channels`` most active channels of each stage; Grad-CAM for the top ``cam_classes``
classes; and float data for explained cells only for the units that fit ``explain_bytes``,
cheapest first -- the page lists the units left out (``Inspection.explain`` explains any).
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...io import atomic_write_text
from ...layers.base import KerasConv2dBase
from ..pages import embedded_data, fill_template
from .capture import Record, Stage, producer

DATA_ID = "cnnlab-data"
MAX_CHANNELS = 12  # feature maps per stage in the page, the most active first
CAM_CLASSES = 10  # Grad-CAM maps in the page: the most likely classes (and the one asked for)
EXPLAIN_BYTES = 6_000_000  # characters of the page for explaining cells (float32, compressed), cheapest units first


def b64(array: np.ndarray | torch.Tensor, dtype: str) -> str:
    """An array as base64 of its zlib-compressed little-endian ``dtype`` bytes, C order (the page
    inflates it with the browser's own ``DecompressionStream``; :func:`decode` reads it back)."""
    values = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    raw = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def quantized(maps: np.ndarray) -> tuple[str, float, float]:
    """(base64 uint8 maps, low, high): one linear scale for all the maps given."""
    lo, hi = float(maps.min()), float(maps.max())
    scaled = np.zeros(maps.shape) if hi <= lo else (maps - lo) / (hi - lo) * 255
    return b64(np.round(scaled).astype(np.uint8), "u1"), lo, hi


def stage_entry(inspection: Any, stage: Stage, max_channels: int) -> dict[str, Any]:
    """A stage as the page draws it: the most active channels, 8-bit, with their means."""
    maps = inspection.features[stage.name]
    order = inspection.channel_order(stage.name)[:max_channels]
    data, lo, hi = quantized(maps[order])
    means = maps.reshape(maps.shape[0], -1).mean(axis=1)
    unit = stage.unit
    label = unit.conv if unit is not None else stage.name
    steps = [n.rpartition(".")[2] for n in (unit.bn, unit.act) if n] if unit is not None else []
    return {
        "name": stage.name,
        "label": label,
        "steps": steps,
        "title": stage.title,
        "kind": stage.kind,
        "shape": list(maps.shape),
        "channels": order.tolist(),
        "means": [float(means[c]) for c in order],
        "lo": lo,
        "hi": hi,
        "maps": data,
        "sources": [[a, b, name] for a, b, name in stage.sources],
        "explain": None,
    }


def unit_entry(inspection: Any, stage: Stage, channels: list[int]) -> tuple[dict[str, Any], str, torch.Tensor]:
    """(what the page needs to explain the unit's cells on ``channels``, the name of the tensor
    its convolution reads, that tensor (C, H, W))."""
    unit = stage.unit
    if unit is None:
        raise ValueError(f"stage {stage.name} is not a convolution unit")
    conv: Record = inspection.by_name[unit.conv]
    module = conv.module
    if conv.input is None or not isinstance(module, KerasConv2dBase):
        raise ValueError(f"{unit.conv} is not a convolution whose input was kept")
    source = producer(inspection.records, conv.input_id, conv.order)
    input_name = source.name if source is not None else "input"
    h, w = conv.input.shape[-2:]
    run = inspection.explain_run(unit.conv)
    pads = [list(p) for p in run.input_padding]
    entry: dict[str, Any] = {
        "conv": unit.conv,
        "layer": module.keras_class,
        "kind": run.config.kind,
        "input": input_name,
        "input_shape": [int(conv.input.shape[1]), int(h), int(w)],
        "kernel": list(module.kernel_size),
        "strides": list(module.strides),
        "dilation": list(module.dilation_rate),
        "pads": pads,
        "dm": int(getattr(module, "depth_multiplier", 1)),
        "bias": None,
        "bn": None,
        "act": None,
        "values": b64(inspection.features[stage.name][channels], "<f4"),
    }
    entry.update(_weights(run, channels))
    if unit.bn is not None:
        bn = inspection.by_name[unit.bn].module

        def pick(t):
            return [float(v) for v in t.detach().double()[channels]] if t is not None else None

        entry["bn"] = {
            "name": unit.bn,
            "mean": pick(bn.running_mean),
            "var": pick(bn.running_var),
            "eps": float(bn.eps),
            "gamma": pick(bn.weight) or [1.0] * len(channels),
            "beta": pick(bn.bias) or [0.0] * len(channels),
        }
    if unit.act is not None:
        act = inspection.by_name[unit.act].module
        entry["act"] = {"name": unit.act, "kind": type(act).__name__.lower()}
    return entry, input_name, conv.input[0]


def _weights(run: Any, channels: list[int]) -> dict[str, Any]:
    """The kernels the shown channels use, in the layouts the page reads (float32, C order)."""
    w, kind = run.weights, run.config.kind
    out: dict[str, Any] = {}
    if "bias" in w:
        out["bias"] = [float(w["bias"][c]) for c in channels]
    if kind == "conv2d":  # (kh, kw, C, M) -> (shown, C, kh, kw)
        out["weights"] = b64(np.transpose(w["kernel"][:, :, :, channels], (3, 2, 0, 1)), "<f4")
    elif kind == "depthwise":  # (kh, kw, C, dm); output o reads input o // dm with multiplier o % dm
        dm = w["depthwise_kernel"].shape[3]
        out["weights"] = b64(np.stack([w["depthwise_kernel"][:, :, o // dm, o % dm] for o in channels]), "<f4")
    else:  # separable: every depthwise kernel (C*dm, kh, kw), the pointwise columns (shown, C*dm)
        k = w["depthwise_kernel"]
        out["weights"] = b64(np.transpose(k, (2, 3, 0, 1)).reshape(-1, k.shape[0], k.shape[1]), "<f4")
        out["pointwise"] = b64(np.transpose(w["pointwise_kernel"][0, 0][:, channels], (1, 0)), "<f4")
    return out


def _cost(entry: dict[str, Any]) -> int:
    return sum(len(v) for k, v in entry.items() if k in ("values", "weights", "pointwise"))


def page_data(
    inspection: Any,
    max_channels: int = MAX_CHANNELS,
    cam_classes: int = CAM_CLASSES,
    explain_bytes: int = EXPLAIN_BYTES,
    target: int | None = None,
    layer: str | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as the JSON it embeds (see the module's docstring)."""
    for name, value in (("max_channels", max_channels), ("cam_classes", cam_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    layer = layer or inspection.layer
    stages = [stage_entry(inspection, s, max_channels) for s in inspection.stages]
    tensors, left_out = _explanations(inspection, stages, explain_bytes)
    top = [int(i) for i in np.argsort(-inspection.probabilities, kind="stable")[:cam_classes]]
    wanted = list(dict.fromkeys(([target] if target is not None else []) + top))
    cams = inspection.gradcams(wanted, layer)
    pixels = inspection.pixels
    return {
        "model": inspection.subject.name,
        "image_name": inspection.image_name,
        "preprocessing": inspection.subject.preprocess.describe(),
        "notes": inspection.notes,
        "input": {
            "h": int(pixels.shape[0]),
            "w": int(pixels.shape[1]),
            "c": int(pixels.shape[2]),
            "pixels": b64(pixels, "u1"),
        },
        "classes": inspection.classes,
        "probabilities": [float(p) for p in inspection.probabilities],
        "cam": {
            "layer": layer,
            "grid": list(inspection.features[layer].shape[-2:]) if layer in inspection.features else None,
            "classes": wanted,
            "maps": [b64(np.round(c * 255).astype(np.uint8), "u1") for c in cams],
            "of": len(inspection.classes),
        },
        "stages": stages,
        "tensors": tensors,
        "left_out": left_out,
        "limits": {"max_channels": max_channels, "cam_classes": cam_classes, "explain_bytes": explain_bytes},
    }


def _explanations(inspection: Any, stages: list[dict[str, Any]], budget: int) -> tuple[dict[str, Any], list[str]]:
    """Attach the explain data of the units that fit ``budget`` bytes of the page, cheapest first;
    return the tensors they read (shared: a unit's output is often the next one's input) and the
    units left out."""
    candidates, packed = [], {}
    for entry, stage in zip(stages, inspection.stages):
        if stage.unit is not None:
            explain, input_name, tensor = unit_entry(inspection, stage, entry["channels"])
            if input_name not in packed:
                packed[input_name] = {"shape": list(tensor.shape), "data": b64(tensor.float(), "<f4")}
            candidates.append((_cost(explain) + len(packed[input_name]["data"]), entry, explain, input_name))
    tensors: dict[str, Any] = {}
    used, left_out = 0, []
    for cost, entry, explain, input_name in sorted(candidates, key=lambda c: c[0]):
        extra = cost - (len(packed[input_name]["data"]) if input_name in tensors else 0)
        if used + extra > budget:
            left_out.append(explain["conv"])
            continue
        used += extra
        entry["explain"] = explain
        tensors[input_name] = packed[input_name]
    order = {s.unit.conv: i for i, s in enumerate(inspection.stages) if s.unit is not None}
    return tensors, sorted(left_out, key=lambda name: order.get(name, 0))


def render_page(data: dict[str, Any], title: str) -> str:
    return fill_template(__package__, "page.html", title, data)


def save_page(inspection: Any, path: str | Path, **options: Any) -> Path:
    """The page of ``inspection``, written atomically (``options``: :func:`page_data`'s)."""
    data = page_data(inspection, **options)
    title = f"cnnlab inspect: {inspection.subject.name} on {Path(inspection.image_name).name}"
    return atomic_write_text(path, render_page(data, title))


def read_page_data(text: str) -> dict[str, Any]:
    """The JSON a written page embeds (for checking it)."""
    return embedded_data(text, DATA_ID)


def decode(text: str, dtype: str) -> np.ndarray:
    """A base64 array of the page back as numbers (for checking it)."""
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.dtype(dtype).newbyteorder("<"))
