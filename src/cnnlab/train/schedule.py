"""The learning-rate schedule (``TrainConfig.schedule``): constant, or a linear warmup then a
cosine down to zero (``cosine``, ``onecycle``), counted in optimizer steps."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .config import TrainConfig


def lr_factor(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at optimizer step ``t`` (0-based)."""
    total = config.epochs * steps_per_epoch
    warmup = int(config.warmup_epochs * steps_per_epoch)

    def factor(t: int) -> float:
        if config.schedule == "constant":
            return 1.0
        if t < warmup:
            return (t + 1) / warmup
        progress = min(1.0, (t - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """``config``'s schedule over ``optimizer``'s peak rate; stepped once per optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps_per_epoch))
