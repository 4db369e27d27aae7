"""The recipe's pieces the trainer applies: the optimizer, the learning-rate schedule, the
precision, and "precise BN" (BatchNorm statistics recomputed for the final weights)."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .config import TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """``config``'s optimizer over every parameter, at peak rate ``lr`` (default ``config.lr``)."""
    lr = config.lr if lr is None else lr
    # Every parameter, frozen ones too: a parameter with requires_grad=False gets no gradient and
    # the optimizer skips it, and unfreezing it mid-run (cnnlab finetune's switch from head-only
    # to whole-network training) then needs no new optimizer, so checkpoints and resume still work.
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # Keras's Adam: epsilon 1e-7 (PyTorch's default is 1e-8)
    return cls(params, lr=lr, betas=(0.9, 0.999), eps=1e-7, weight_decay=config.weight_decay)


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


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 where the device computes it natively (CUDA with bf16, or a CPU with
    AVX-512 BF16 / AMX), else fp32 (emulated bf16 is slower than fp32 on an AVX2 CPU)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"


@torch.no_grad()
def precise_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int, autocast=nullcontext,
                      like: nn.Module | None = None) -> int:
    """Set every BatchNorm layer that trains (frozen ones stay as they are) to the exact mean and
    variance of its inputs over ``images`` (uint8 NCHW), the other layers in eval mode (no
    dropout). ``like``: the model whose training layers decide (``model`` is a copy of it, e.g.
    the EMA of its weights). Returns the number of layers recomputed."""
    (like or model).train()
    trained = {name for name, m in (like or model).named_modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats}
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
