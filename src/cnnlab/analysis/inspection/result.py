"""What :func:`cnnlab.inspect` returns: one image through one model, every feature map kept.

An :class:`Inspection` holds the tensor the model saw (``input``), the class probabilities,
every module's feature maps by name (``features``), the default Grad-CAM layer (``layer``), and
computes on demand Grad-CAM for any class and layer (``gradcam``) and how any value of a
convolution unit was computed (``explain``). It prints a short summary, renders itself in a
notebook, and writes its pictures (``save_pngs``), its numbers (``to_dict``) and its page
(``save_html``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...layers.base import KerasConv2dBase
from .capture import Record, Stage, Unit, find_stages, find_units
from .cells import CellExplanation, explain_unit_cell, layer_run
from .gradcam import check_layer, gradcams
from .page import save_page
from .pictures import save_pngs
from .source import Subject, class_index
from .tojson import inspection_dict
from .view import inspection_html


class Inspection:
    """One image through one model (see the module's docstring)."""

    def __init__(
        self,
        subject: Subject,
        image_name: str,
        pixels: np.ndarray,
        x: torch.Tensor,
        logits: torch.Tensor,
        records: list[Record],
        layer: str,
        notes: list[str],
    ) -> None:
        self.subject, self.image_name, self.pixels, self.input = subject, image_name, pixels, x
        self.logits = logits.detach().double().cpu().numpy()[0]
        self.probabilities = torch.softmax(logits.detach().double(), dim=1).cpu().numpy()[0]
        self.records = records
        self.layer = layer
        self.notes = list(notes)
        self._cams: dict[tuple[str, int], np.ndarray] = {}
        self._runs: dict[str, Any] = {}

    # ------------------------------------------------------------------ what it holds
    @property
    def model(self) -> torch.nn.Module:
        return self.subject.model

    @property
    def classes(self) -> list[str]:
        return self.subject.classes

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    @cached_property
    def by_name(self) -> dict[str, Record]:
        return {r.name: r for r in self.records}

    @cached_property
    def features(self) -> dict[str, np.ndarray]:
        """Every module's output feature maps (C, H, W) by module name, in the order they were computed."""
        return {r.name: r.output[0].cpu().numpy() for r in self.records}

    @cached_property
    def units(self) -> list[Unit]:
        return find_units(self.records)

    @cached_property
    def stages(self) -> list[Stage]:
        return find_stages(self.records, self.units)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most likely classes, most likely first, with their probabilities."""
        order = np.argsort(-self.probabilities, kind="stable")[: max(1, int(k))]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    def channel_order(self, name: str) -> np.ndarray:
        """The channels of ``name``'s maps, the highest mean activation first."""
        maps = self.feature_maps(name)
        return np.argsort(-maps.reshape(maps.shape[0], -1).mean(axis=1), kind="stable")

    def feature_maps(self, name: str) -> np.ndarray:
        """The (C, H, W) output of module ``name`` (a ValueError lists the nearest names)."""
        if name not in self.by_name:
            check_layer(self.model, name)  # not a module at all: the nearest names
            close = difflib.get_close_matches(name, list(self.by_name), n=5, cutoff=0.5)
            raise ValueError(f"module {name!r} writes no feature map (N, C, H, W); modules that do: {', '.join(close)}")
        return self.features[name]

    def class_index(self, which: int | str | None) -> int:
        """A class by name or index (None: the predicted one); a ValueError names the classes."""
        return self.predicted if which is None else class_index(self.classes, which)

    # ------------------------------------------------------------------ computed on demand
    def gradcam(self, class_index: int | str | None = None, layer: str | None = None) -> np.ndarray:
        """Grad-CAM of a class (default: the predicted one) at ``layer`` (default: :attr:`layer`):
        an (H, W) array in [0, 1] at the input's size."""
        return self.gradcams([self.class_index(class_index)], layer)[0]

    def gradcams(self, classes: Sequence[int | str], layer: str | None = None) -> list[np.ndarray]:
        layer = layer or self.layer
        wanted = [self.class_index(c) for c in classes]
        missing = [c for c in dict.fromkeys(wanted) if (layer, c) not in self._cams]
        if missing:
            for c, cam in gradcams(self.model, self.input, layer, missing).items():
                self._cams[(layer, c)] = cam
        return [self._cams[(layer, c)] for c in wanted]

    def unit(self, name: str) -> Unit:
        """The convolution unit a module belongs to (its conv, BatchNorm or activation)."""
        for u in self.units:
            if name in (u.conv, u.bn, u.act):
                return u
        check_layer(self.model, name)
        convs = difflib.get_close_matches(name, [u.conv for u in self.units], n=5, cutoff=0.3)
        raise ValueError(
            f"{name!r} is not a Conv2D, DepthwiseConv2D or SeparableConv2D (or its BatchNorm or "
            f"activation); convolutions near it: {', '.join(convs)}"
        )

    def explain(self, layer: str, cell: tuple[int, int, int]) -> CellExplanation:
        """How value ``cell`` = (y, x, channel) of ``layer``'s unit was computed, in float64,
        checked against the layer's own output and the model's value (``.matches``)."""
        unit = self.unit(layer)
        if not (isinstance(cell, (tuple, list)) and len(cell) == 3):
            raise ValueError(f"cell must be three ints (y, x, channel), got {cell!r}")
        y, x, c = cell
        return explain_unit_cell(unit, (y, x, c), self.by_name, self.explain_run(unit.conv))

    def explain_run(self, conv: str) -> Any:
        """The float64 copy of convolution ``conv`` run on what it read (an explain ``LayerRun``), made once."""
        if conv not in self._runs:
            self._runs[conv] = layer_run(self.by_name[conv], f"what {conv} read from {self.image_name}")
        return self._runs[conv]

    def first_filters(self) -> np.ndarray | None:
        """The first convolution's kernels as (M, kh, kw, 3) when it is a Conv2D on 3 channels, else None."""
        for r in self.records:
            module = r.module
            if isinstance(module, KerasConv2dBase) and module.keras_class == "Conv2D":
                if module.in_channels != 3:
                    return None
                kernel = module.get_keras_weights()[0]  # (kh, kw, 3, M)
                return np.transpose(kernel, (3, 0, 1, 2))
            if isinstance(module, torch.nn.Conv2d):
                w = module.weight.detach().cpu().numpy()
                return np.transpose(w, (0, 2, 3, 1)) if w.shape[1] == 3 else None
        return None

    # ------------------------------------------------------------------ renderings
    def summary_lines(self, k: int = 5) -> list[str]:
        h, w = self.input.shape[-2:]
        view = self.subject.preprocess.describe()
        lines = [
            f"{self.subject.name} on {self.image_name}: input {tuple(self.input.shape)} ({view})",
            "  top: " + ", ".join(f"{name} {p:.1%}" for name, p in self.top(k)),
        ]
        maps = [f"{s.name} {'x'.join(map(str, self.features[s.name].shape))}" for s in self.stages]
        lines.append(
            f"  {len(self.records)} modules wrote feature maps; {len(self.stages)} stages: "
            + ", ".join(maps[:4])
            + (f", ... {maps[-1]}" if len(maps) > 4 else "")
        )
        grid = self.features[self.layer].shape[-2:] if self.layer in self.features else None
        at = f" ({grid[0]}x{grid[1]} map, shown at {h}x{w})" if grid else ""
        lines.append(f"  Grad-CAM layer: {self.layer}{at}; .gradcam(class_index) for any class")
        lines += [f"  note: {n}" for n in self.notes]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.summary_lines())

    def __repr__(self) -> str:
        return f"<Inspection of {self.subject.name} on {self.image_name}: {self.top(1)[0][0]} {self.top(1)[0][1]:.1%}>"

    def _repr_html_(self) -> str:
        return inspection_html(self)

    def to_dict(self, k: int = 5, target: int | str | None = None, layer: str | None = None) -> dict[str, Any]:
        """The numbers as JSON-ready data: probabilities, top ``k``, stages, Grad-CAM of ``target``."""
        return inspection_dict(self, k, self.class_index(target), layer or self.layer)

    def save_pngs(
        self,
        directory: str | Path,
        prefix: str | None = None,
        target: int | str | None = None,
        layer: str | None = None,
        max_channels: int = 32,
    ) -> list[Path]:
        """The pictures: a labelled grid per stage, Grad-CAM over the image, the first layer's filters."""
        return save_pngs(self, directory, prefix, self.class_index(target), layer or self.layer, max_channels)

    def save_html(self, path: str | Path, **options: Any) -> Path:
        """The offline page (:func:`~.page.save_page`)."""
        return save_page(self, path, **options)
