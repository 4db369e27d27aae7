"""Inspect a trained run (``cnnlab inspect``, ``cnnlab.inspect``): the run's model with its classes
and its evaluation view -- the same preprocessing as ``cnnlab evaluate`` and ``predict`` -- handed
to :func:`cnnlab.analysis.inspection.inspect`. It lives here, beside :mod:`.prediction`, because
reading a run directory is training's format; the inspection itself knows nothing of runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ..analysis.inspection import Inspection, Subject
from ..analysis.inspection import inspect as inspect_subject
from ..analysis.inspection.source import subject
from ..models import get_model_entry, list_models
from .rundir import load_run


def load_subject(
    model: Any,
    device: str = "auto",
    classes: Sequence[str] | None = None,
    image_size: int | Sequence[int] | None = None,
) -> Subject:
    """``model`` ready to inspect: a run directory, a checkpoint or weights file (its model, classes
    and evaluation view), a zoo name (random weights, said so), an ``nn.Module`` or a loaded run."""
    if isinstance(model, (str, Path)) and Path(model).exists():
        return subject(load_run(model, device), classes, image_size)
    if isinstance(model, str) and model not in list_models():
        looks_like_path = any(part in model for part in ("/", "\\", ".pt", ".pth"))
        if looks_like_path:
            raise FileNotFoundError(f"no such run directory, checkpoint or weights file: {model}")
        try:
            get_model_entry(model)
        except ValueError as error:
            raise ValueError(
                f"{model!r} is neither a run directory, checkpoint or weights file (no such path) nor a "
                f"zoo model: {error}"
            ) from None
    if isinstance(model, nn.Module) and device != "auto":
        from ..device import resolve_device

        model = model.to(resolve_device(device))
    return subject(model, classes, image_size)


def inspect(
    model: Any,
    image: Any,
    *,
    classes: Sequence[str] | None = None,
    layer: str | None = None,
    image_size: int | Sequence[int] | None = None,
    device: str = "auto",
) -> Inspection:
    """What ``model`` computes on ``image``, every layer of it -- see
    :func:`cnnlab.analysis.inspection.inspect`; ``model`` may also be a run directory, a checkpoint
    or weights file (read as ``cnnlab evaluate`` reads it) or a zoo name (random weights).

        >>> i = cnnlab.inspect("docs/weights/densenet-case3.pt", "cat.png")    # doctest: +SKIP
        >>> i.top(3), i.layer, i.gradcam("cat").shape                            # doctest: +SKIP
    """
    return inspect_subject(load_subject(model, device, classes, image_size), image, layer=layer)
