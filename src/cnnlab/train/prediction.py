"""Predict the classes of image files with a trained run (``cnnlab predict``): each image framed as
the run's evaluation framed its own, and normalised as it trained (``load_run``: a run fine-tuned
from published weights records their preprocessing)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.frames import center_views, resize_short_side
from .evaluation import run_view
from .rundir import load_run


def predict_images(
    path: str | Path,
    images: Sequence[str | Path],
    device: str = "auto",
    top: int = 5,
    model: torch.nn.Module | None = None,
) -> list[dict[str, Any]]:
    """Top-``top`` classes with probabilities for each image file, resized as the run was trained;
    ``model``: an instance to load the weights into, for a model not in the registry (``load_run``)."""
    from PIL import Image

    run = load_run(path, device, model=model)  # its model normalises its input as the run trained, if it did
    view = run_view(run.info)  # the central crop, for runs trained with the imagenet policy
    frame = run.info.get("eval_frame")  # trained on images in their own framing: as its evaluation saw them
    dev = next(run.model.parameters()).device
    results = []
    for image in images:
        try:
            with Image.open(image) as img:
                rgb = img.convert("RGB")
        except OSError as error:
            raise ValueError(f"cannot read image {image}: {error}") from None
        if frame:  # as the cache kept it, then its center view
            x = center_views([np.asarray(resize_short_side(rgb, frame["short_side"]))], run.image_size, frame["crop"])
        else:
            size = (run.image_size[1], run.image_size[0])  # PIL: width, height
            x = torch.from_numpy(np.array(rgb.resize(size, Image.Resampling.BILINEAR)))[None]
        x = x.permute(0, 3, 1, 2).float().div(255).to(dev)
        if view is not None:
            x = view(x)
        with torch.no_grad():
            probs = run.model(x).softmax(dim=1)[0]
        values, index = probs.topk(min(top, len(run.classes)))
        results.append(
            {"image": str(image), "top": [(run.classes[i], float(v)) for v, i in zip(values.tolist(), index.tolist())]}
        )
    return results
