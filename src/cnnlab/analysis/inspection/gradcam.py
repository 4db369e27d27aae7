"""Grad-CAM (Selvaraju et al., ICCV 2017): where in the image the evidence for a class lies,
seen from one layer's feature maps.

For class ``c`` and layer output ``A`` (C x h x w): each channel's weight is the mean over the
map of d logit_c / dA; the map is ReLU(sum over channels of weight x A), resized to the input
bilinearly (``align_corners=False``) and divided by its largest value, so it lies in [0, 1].
That is Captum's ``LayerGradCam(..., relu_attributions=True)`` followed by
``LayerAttribution.interpolate(..., "bilinear")`` and the same division (tests check it).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .capture import no_inplace


def module_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def check_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called ``name``, or a ValueError listing the nearest names."""
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    names = module_names(model)
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
    if not close:  # a name nothing resembles: its longest known prefix's children, else the top level
        prefix = str(name)
        while prefix and prefix not in modules:
            prefix = prefix.rpartition(".")[0]
        close = (
            [n for n in names if n.startswith(prefix + ".") and n.count(".") == prefix.count(".") + 1][:8]
            if prefix
            else [n for n in names if "." not in n]
        )
    raise ValueError(f"unknown layer {name!r} in {type(model).__name__}; nearest module names: {', '.join(close)}")


def default_layer(model: nn.Module, feature_maps: Sequence[str]) -> str:
    """The last convolutional stage: the model's last ``feature_info`` entry (timm's face: the
    last stage, or ``final`` where a 1x1 conv widens it), else the last of ``feature_maps`` (the
    modules whose maps are larger than 1x1, in the order they were computed)."""
    info = getattr(model, "feature_info", None)
    if info:
        name = getattr(info[-1], "module", None)
        if isinstance(name, str) and name in dict(model.named_modules()):
            return name
    if not feature_maps:
        raise ValueError(f"{type(model).__name__} writes no feature map (N, C, H, W): nothing for Grad-CAM to look at")
    return feature_maps[-1]


def gradcams(model: nn.Module, x: torch.Tensor, layer: str, classes: Sequence[int]) -> dict[int, np.ndarray]:
    """Grad-CAM of each class in ``classes`` at ``layer``, each an (H, W) array in [0, 1] at the input's size."""
    module = check_layer(model, layer)
    found: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, i, out: found.append(out) if not found else None)
    try:
        with no_inplace(model), torch.enable_grad():
            logits = model(x.detach().clone().requires_grad_(True))
            if not found or not isinstance(found[0], torch.Tensor) or found[0].dim() != 4:
                shape = tuple(found[0].shape) if found and isinstance(found[0], torch.Tensor) else None
                raise ValueError(
                    f"layer {layer!r} writes {shape or 'no tensor'}, not a feature map (N, C, H, W): "
                    "choose a convolutional layer or stage for Grad-CAM"
                )
            activation = found[0]
            maps = {}
            for c in classes:
                (grads,) = torch.autograd.grad(logits[0, int(c)], activation, retain_graph=True)
                maps[int(c)] = _cam(activation.detach(), grads, (int(x.shape[-2]), int(x.shape[-1])))
    finally:
        handle.remove()
    return maps


def _cam(activation: torch.Tensor, grads: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size, mode="bilinear")
    top = cam.max()
    cam = cam / top if top > 0 else torch.zeros_like(cam)
    return cam[0, 0].detach().cpu().numpy()
