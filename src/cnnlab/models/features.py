"""Backbones: a zoo model cut after the stages you need, returning their feature maps.

    >>> backbone = create_model("resnet50", features_only=True, out_indices=(1, 2, 3))
    >>> [f.shape[1] for f in backbone(torch.randn(1, 3, 224, 224))]     # doctest: +SKIP
    [512, 1024, 2048]
    >>> [(i.channels, i.reduction) for i in backbone.feature_info]       # doctest: +SKIP
    [(512, 8), (1024, 16), (2048, 32)]

Every zoo model is ``stem`` -> ``stages.0 .. stages.{n-1}`` -> [``final``] -> ``head``, and its
``feature_info[i]`` names the module whose output is stage i's feature map (``stages.i``, or
``final`` where that widens the last stage). :class:`FeatureExtractor` runs that chain, keeps
the chosen outputs and drops everything after the last one (the head always; later stages
too), so a backbone costs only what it returns. Its parameter names are the full model's
(``stem.conv.weight``, ``stages.0...``), so weights loaded into a full model carry over.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import CnnModel, FeatureInfo


def check_out_indices(
    out_indices: object, feature_info: Sequence[FeatureInfo], name: str = "the model"
) -> tuple[int, ...]:
    """``out_indices`` as a strictly increasing tuple of stage indices (negative ones count from the end)."""
    n = len(feature_info)
    stages = ", ".join(f"{i}: {f.module} ({f.channels} ch, /{f.reduction})" for i, f in enumerate(feature_info))
    wanted = f"distinct stage indices in 0..{n - 1} (or -{n}..-1) for {name}, whose stages are {stages}"
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        out_indices = (out_indices,)
    if (
        not isinstance(out_indices, (tuple, list))
        or not out_indices
        or any(isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n for i in out_indices)
    ):
        raise ValueError(f"out_indices must be {wanted}; got {out_indices!r}")
    resolved = [i % n for i in out_indices]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"out_indices must be {wanted}; got {out_indices!r}, which repeats a stage")
    return tuple(sorted(resolved))


class FeatureExtractor(nn.Module):
    """The stages of ``model`` up to the last of ``out_indices``; ``forward`` returns a list of
    feature maps, one per index, in stage order, each ``(N, feature_info[k].channels, H / r, W / r)``."""

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        if not isinstance(model, CnnModel):
            raise ValueError(
                f"features_only needs a zoo model (stem, stages, feature_info), got {type(model).__name__}"
            )
        infos = list(model.feature_info)
        name = type(model).__name__
        indices = tuple(range(len(infos))) if out_indices is None else check_out_indices(out_indices, infos, name)
        self.out_indices = indices
        self.feature_info = [infos[i] for i in indices]
        # the chain: stem, stages.0 .. stages.{n-1}, [final]; keep up to the last wanted module
        chain = ["stem"] + [f"stages.{i}" for i in range(len(model.stages))]
        if getattr(model, "final", None) is not None:
            chain.append("final")
        wanted = {info.module for info in self.feature_info}
        missing = wanted - set(chain)
        if missing:
            raise ValueError(f"{name}'s feature_info names {sorted(missing)}, which is not stem, stages.i or final")
        last = max(chain.index(m) for m in wanted)
        self._chain = chain[: last + 1]
        self._wanted = wanted
        self.stem = model.stem
        self.stages = model.stages[: min(last, len(model.stages))]
        if "final" in self._chain:
            self.final = model.final

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for name in self._chain:
            x = self.get_submodule(name)(x)
            if name in self._wanted:
                outputs.append(x)
        return outputs

    def extra_repr(self) -> str:
        return f"out_indices={self.out_indices}"
