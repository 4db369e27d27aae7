"""An inspection in a notebook (``_repr_html_``): the image beside its Grad-CAM, the top classes
as bars, the notes. Built from strings (PNG images inline as base64), every name escaped."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from .pictures import heat_overlay


def png_uri(pixels: np.ndarray, scale: int = 1) -> str:
    """An HxWx3 (or HxW) uint8 array as a PNG data URI, enlarged ``scale`` times (nearest)."""
    from PIL import Image

    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]  # a one-channel model's input: gray
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def inspection_html(inspection: Any, k: int = 5) -> str:
    """The notebook view of an :class:`~.result.Inspection`."""
    esc = html.escape
    h = inspection.pixels.shape[0]
    scale = max(1, 192 // max(1, h))
    target = inspection.predicted
    cam = heat_overlay(inspection.pixels, inspection.gradcam(target))
    rows = "".join(
        f'<tr><td>{esc(name)}</td><td style="text-align:right">{p:.1%}</td>'
        f'<td><div style="background:#4c78a8;height:.8em;width:{max(1, round(120 * p))}px"></div></td></tr>'
        for name, p in inspection.top(k)
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in inspection.notes)
    caption = f"Grad-CAM of {esc(inspection.classes[target])} at {esc(inspection.layer)}"
    return (
        f'<div class="cnnlab-inspection"><b>{esc(inspection.subject.name)}</b> '
        f"on <code>{esc(inspection.image_name)}</code>"
        f'<div style="display:flex;gap:1em;align-items:flex-start;margin:.4em 0">'
        f'<figure style="margin:0"><img src="{png_uri(inspection.pixels, scale)}" alt="input"/>'
        f"<figcaption>the model's input</figcaption></figure>"
        f'<figure style="margin:0"><img src="{png_uri(cam, scale)}" alt="Grad-CAM"/>'
        f"<figcaption>{caption}</figcaption></figure>"
        f"<table>{rows}</table></div>"
        f"<div>{len(inspection.stages)} stages, {len(inspection.records)} modules with feature maps: "
        f"<code>.features[name]</code>, <code>.gradcam(class_index, layer)</code>, "
        f"<code>.explain(layer, (y, x, c))</code>, "
        f"<code>.save_html(path)</code></div>" + (f"<ul>{notes}</ul>" if notes else "") + "</div>"
    )
