"""What a run does to BatchNorm layers: their moving-average momentum (``TrainConfig.bn_momentum``,
Keras's convention) and "precise BN" (``TrainConfig.precise_bn``: the statistics recomputed for
the final weights)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn


def set_momentum(model: nn.Module, momentum: float | None) -> list[float] | None:
    """Apply ``momentum`` (Keras convention) to every BatchNorm layer; the momenta now in use."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if momentum is not None:  # Keras keeps `momentum` of the old average; PyTorch takes `momentum` of the new batch
        for m in norms:
            m.momentum = 1.0 - momentum
    used = {1.0 - m.momentum for m in norms if m.momentum is not None}
    return sorted(round(m, 6) for m in used) if used else None


@torch.no_grad()
def precise_batchnorm(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    like: nn.Module | None = None,
) -> int:
    """Set every BatchNorm layer that trains (frozen ones stay as they are) to the exact mean and
    variance of its inputs over ``images`` (uint8 NCHW), the other layers in eval mode (no
    dropout). ``like``: the model whose training layers decide (``model`` is a copy of it, e.g.
    the EMA of its weights). Returns the number of layers recomputed."""
    (like or model).train()
    trained = {
        name
        for name, m in (like or model).named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
    }
    layers = [m for name, m in model.named_modules() if name in trained]
    (like or model).eval()
    model.eval()
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch weighs the same
        m.train()
    for start in range(0, len(images), batch_size):
        with autocast():
            model(images[start : start + batch_size].float() / 255.0)
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    model.eval()
    return len(layers)
