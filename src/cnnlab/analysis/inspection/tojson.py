"""An inspection's numbers as JSON-ready data (``cnnlab inspect --json``).

Per image: the model and how the image was read, every class's probability and the top ``k``,
each stage's shape and channel means (most active first), the Grad-CAM of the target class at
the layer's own resolution and at the input's, and the first layer's filters' shape. The
feature maps themselves stay out (``Inspection.features`` holds them; ``--png`` draws them).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _rounded(array: np.ndarray, digits: int = 6) -> list:
    return np.round(np.asarray(array, dtype=np.float64), digits).tolist()


def stage_dict(inspection: Any, stage: Any) -> dict[str, Any]:
    maps = inspection.features[stage.name]
    means = maps.reshape(maps.shape[0], -1).mean(axis=1)
    order = inspection.channel_order(stage.name)
    item = {
        "name": stage.name,
        "kind": stage.kind,
        "title": stage.title,
        "shape": list(maps.shape),
        "channels_by_mean": order.tolist(),
        "channel_means": _rounded(means[order]),
        "min": float(maps.min()),
        "max": float(maps.max()),
    }
    if stage.unit is not None:
        item["unit"] = {"conv": stage.unit.conv, "bn": stage.unit.bn, "act": stage.unit.act}
    if stage.sources:
        item["concatenates"] = [{"channels": [a, b], "from": name} for a, b, name in stage.sources]
    return item


def inspection_dict(inspection: Any, k: int, target: int, layer: str) -> dict[str, Any]:
    """What ``--json`` prints for one image (see the module's docstring)."""
    cam = inspection.gradcam(target, layer)
    small = inspection.features.get(layer)
    filters = inspection.first_filters()
    return {
        "image": inspection.image_name,
        "model": inspection.subject.name,
        "preprocessing": inspection.subject.preprocess.describe(),
        "input_shape": list(inspection.input.shape),
        "notes": inspection.notes,
        "top": [{"class": name, "probability": p} for name, p in inspection.top(k)],
        "probabilities": {name: float(p) for name, p in zip(inspection.classes, inspection.probabilities)},
        "stages": [stage_dict(inspection, s) for s in inspection.stages],
        "gradcam": {
            "layer": layer,
            "class": inspection.classes[target],
            "class_index": target,
            "layer_shape": list(small.shape) if small is not None else None,
            "map": _rounded(cam, 4),  # at the input's size, in [0, 1]
        },
        "first_filters": list(filters.shape) if filters is not None else None,  # (M, kh, kw, 3)
    }
