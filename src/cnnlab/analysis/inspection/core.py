"""``inspect(model, image)``: run one image through a model with every module watched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .capture import capture
from .gradcam import check_layer, default_layer
from .result import Inspection
from .source import model_input, read_image, subject


def inspect(
    model: Any,
    image: Any,
    *,
    classes: Sequence[str] | None = None,
    layer: str | None = None,
    image_size: int | Sequence[int] | None = None,
) -> Inspection:
    """What ``model`` computes on ``image``, every layer of it (an :class:`~.result.Inspection`).

    ``model``: an ``nn.Module``, a zoo name (random weights, said in ``.notes``) or a loaded run
    (``cnnlab.train.load_run(path)``: its classes and its evaluation view; ``cnnlab.inspect``
    also takes the run directory, checkpoint or weights file itself). ``image``: a path, a PIL
    image or an HxWxC uint8 array, read as the run's evaluation reads images (anything changed on
    the way is said in ``.notes``). ``classes``: class names (default: the run's, else ``class
    0`` ...); ``layer``: the module Grad-CAM looks at (default: the last convolutional stage);
    ``image_size``: the input size for a bare module (default: the image's own size). The model
    runs as evaluation runs it (eval mode, for this pass and each Grad-CAM; its mode is restored).
    """
    who = subject(model, classes, image_size)
    if layer is not None:
        check_layer(who.model, layer)  # before any work
    pil, name, notes = read_image(image, who.preprocess.channels)
    x, pixels, more = model_input(pil, who.preprocess, name)
    parameter = next(who.model.parameters(), None)
    if parameter is not None:
        x = x.to(device=parameter.device, dtype=parameter.dtype if parameter.dtype.is_floating_point else x.dtype)
    logits, records = capture(who.model, x)
    if logits.dim() != 2 or logits.shape[1] != len(who.classes):
        raise ValueError(
            f"the model returned shape {tuple(logits.shape)}, not one logit per class of its {len(who.classes)} classes"
        )
    chosen = layer or default_layer(who.model, [r.name for r in records if min(r.output.shape[-2:]) > 1])
    notes = [*who.notes, *notes, *more]
    return Inspection(who, name, pixels, x.detach(), logits.to(torch.float64), records, chosen, notes)
