"""Freeze the early part of a network for transfer learning, and thaw it again.

    freeze(model)                      # everything but the head: train a new classifier only
    freeze(model, until="stage1")      # stem, stages.0 and stages.1
    unfreeze(model)                    # the whole network trains again

Frozen parameters get ``requires_grad=False``; the optimizer skips them (they receive no
gradient). A BatchNorm layer would still update its running statistics in training mode even
with frozen weights, which drifts a pretrained backbone on a small dataset; ``bn_eval=True``
(default) keeps the frozen BatchNorm layers in eval mode through ``model.train()`` calls, as
Keras does for layers with ``trainable=False``.
"""

from __future__ import annotations

import types

from torch import nn


def _stages(model: nn.Module) -> nn.Sequential:
    """``model.stages``, checking that ``model`` is a zoo model or backbone (stem, stages, ...)."""
    stages = getattr(model, "stages", None)
    if not isinstance(stages, nn.Sequential) or not hasattr(model, "stem"):
        raise ValueError(f"freeze needs a zoo model or backbone (stem, stages, ...), got {type(model).__name__}")
    return stages


def _parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) in forward order: stem, stages.0 .. stages.{n-1}, [final], [head]."""
    stages = _stages(model)
    parts = [("stem", model.get_submodule("stem"))] + [(f"stages.{i}", stage) for i, stage in enumerate(stages)]
    for name in ("final", "head"):
        if getattr(model, name, None) is not None:
            parts.append((name, getattr(model, name)))
    return parts


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


def freeze(model: nn.Module, until: str = "backbone", bn_eval: bool = True) -> list[str]:
    """Freeze ``model`` from its input up to and including ``until``; returns the frozen parts.

    ``until``: ``"stem"``, ``"stageN"`` (stem and stages 0..N), or ``"backbone"`` (everything
    before the head: stem, every stage and ``final``). Parts after it keep their current state.
    ``bn_eval``: keep the frozen BatchNorm layers in eval mode (frozen running statistics).
    """
    if not isinstance(bn_eval, bool):
        raise ValueError(f"bn_eval must be True or False, got {bn_eval!r}")
    parts = _parts(model)
    names = [n for n, _ in parts if n != "head"]
    allowed = ["stem"] + [f"stage{i}" for i in range(len(_stages(model)))] + ["backbone"]
    if until not in allowed:
        raise ValueError(f"until must be one of {', '.join(allowed)} for {type(model).__name__}, got {until!r}")
    last = len(names) - 1 if until == "backbone" else names.index("stem" if until == "stem" else f"stages.{until[5:]}")
    frozen = []
    for name, part in parts[: last + 1]:
        for parameter in part.parameters():
            parameter.requires_grad_(False)
        if bn_eval:
            for module in part.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    # Shadows nn.Module.train on this instance on purpose (mypy forbids assigning to a method).
                    module.train = types.MethodType(_stay_in_eval, module)  # type: ignore[method-assign]
                    module.eval()
        frozen.append(name)
    return frozen


def unfreeze(model: nn.Module) -> None:
    """Make every parameter trainable again and let BatchNorm layers follow ``model.train()``."""
    _parts(model)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    for module in model.modules():
        if "train" in vars(module):
            del module.train
            module.train(model.training)


def frozen_parts(model: nn.Module) -> list[str]:
    """Names of the parts (stem, stages.i, final, head) whose parameters are all frozen."""
    return [
        name
        for name, part in _parts(model)
        if all(not p.requires_grad for p in part.parameters()) and any(True for _ in part.parameters())
    ]
