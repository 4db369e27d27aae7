"""An exponential moving average of a model's weights (``TrainConfig.ema``), as timm's
``ModelEmaV3``: after every optimizer step each EMA weight moves toward the live one,

    ema = decay_eff * ema + (1 - decay_eff) * live,   decay_eff = min(decay, (1 + t) / (10 + t))

(``t``: the updates done before this one, so the first updates follow the young weights closely
instead of the random initialisation), in two fused calls over the parameter lists
(``torch._foreach_lerp_``). Buffers (BatchNorm's running statistics) are copied from the live
model, not averaged, as timm does; with "precise BN" the trainer then recomputes the EMA model's
statistics for its own weights before evaluating it. The EMA model lives on the same device, in
eval mode, without gradients.

    ema = ModelEma(model, 0.999)
    ...; optimizer.step(); ema.update()
    evaluate(ema.module, x, y)
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"ema decay must be in (0, 1), e.g. 0.999, got {decay!r}")
        self.decay, self.updates = decay, 0
        self.live = model
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        pairs = [(e, p) for e, p in zip(self.module.parameters(), model.parameters()) if p.is_floating_point()]
        self._ema_params: list[torch.Tensor] = [e for e, _ in pairs]
        self._live_params: list[torch.Tensor] = [p for _, p in pairs]
        self._ema_buffers, self._live_buffers = list(self.module.buffers()), list(model.buffers())

    def decay_now(self) -> float:
        """The decay of the next update: ``min(decay, (1 + t) / (10 + t))`` after ``t`` updates."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Move the average one optimizer step toward the live weights; copy the buffers."""
        weight = 1.0 - self.decay_now()
        if self._ema_params:
            torch._foreach_lerp_(self._ema_params, [p.detach() for p in self._live_params], weight)
        if self._ema_buffers:
            torch._foreach_copy_(self._ema_buffers, self._live_buffers)
        self.updates += 1

    def state_dict(self) -> dict:
        """What a checkpoint keeps beside the EMA weights (which it stores as its ``model``)."""
        return {"decay": self.decay, "updates": self.updates}

    def load_state_dict(self, weights: dict, state: dict) -> None:
        self.module.load_state_dict(weights)
        self.updates = int(state["updates"])
