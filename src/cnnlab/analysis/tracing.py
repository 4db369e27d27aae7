"""The tracer behind ``cnnlab.summary``: a torch function mode that tags every tensor with the
rows that produced it and the number of weight layers behind it, and counts the multiply-adds of
convolutions and dense layers (per module on its stack, and in all)."""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

_MAC_OPS = {"conv2d", "conv_transpose2d", "linear"}


class Tracer(TorchFunctionMode):
    """Propagates (producers, depth) tags through every torch function and counts MACs."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[int, tuple[frozenset[str], int]] = {}
        self.alive: list[torch.Tensor] = []  # keeps ids unique while tracing
        self.stack: list[str] = []
        self.macs: dict[str, int] = {}
        self.total_macs = 0

    def tag(self, tensor: torch.Tensor, producers: frozenset[str], depth: int) -> None:
        self.tags[id(tensor)] = (producers, depth)
        self.alive.append(tensor)

    def merged(self, values) -> tuple[frozenset[str], int]:
        producers: set[str] = set()
        depth = 0
        for v in values:
            if isinstance(v, torch.Tensor) and id(v) in self.tags:
                p, d = self.tags[id(v)]
                producers |= p
                depth = max(depth, d)
        return frozenset(producers), depth

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs, _ = tree_flatten((args, kwargs))
        name = getattr(func, "__name__", "")
        if name in _MAC_OPS:
            macs = _op_macs(name, inputs, out)
            self.total_macs += macs
            if self.stack:
                self.macs[self.stack[-1]] = self.macs.get(self.stack[-1], 0) + macs
        outputs, _ = tree_flatten(out)
        tensors = [o for o in outputs if isinstance(o, torch.Tensor)]
        if tensors:
            producers, depth = self.merged(inputs)
            if producers:
                for t in tensors:
                    self.tag(t, producers, depth)
        return out


def _op_macs(name: str, inputs: list, out: torch.Tensor) -> int:
    x, weight = inputs[0], inputs[1]
    if name == "conv2d":  # every output element: (C / groups) * kh * kw products
        return out.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]
    if name == "conv_transpose2d":  # every input element scatters (M / groups) * kh * kw products
        return x.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]
    return out.numel() * weight.shape[1]  # linear
