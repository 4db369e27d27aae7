"""The optimizer a run trains with (``TrainConfig.optimizer``): SGD with momentum, or Adam /
AdamW with Keras's epsilon, over every parameter of the model."""

from __future__ import annotations

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


def moments_per_weight(optimizer: str) -> int:
    """Tensors of the weights' size the optimizer keeps in a checkpoint (Adam: two moments, SGD: one)."""
    return 2 if optimizer in ("adam", "adamw") else 1
