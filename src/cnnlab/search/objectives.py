"""What a trial is scored on: article 001's objectives A and B, a latency penalty, and a Pareto pair.

==============  =======================================================  =============
objective       value(s), minimised                                      pruned by
==============  =======================================================  =============
error           1 - max(val_acc)                      (article's A)      median/hyperband
error+params    1 - max(val_acc) + params / scale * weight  (B: 250000, 0.05)   "
error+latency   1 - max(val_acc) + latency_ms / scale * weight (10 ms, 0.05)    "
pareto          (1 - max(val_acc), params or latency_ms)                 cost-aware median
==============  =======================================================  =============

Params are the Keras convention total (BatchNorm statistics included), what the article's
``model.count_params()`` printed. Latency is the median wall time of one forward pass of
``latency_batch`` images on the search's device after warm-up, measured once per architecture.

Single-objective trials report the objective with the accuracy reached so far after every
epoch, so the pruner judges the penalised score (the article's footnote: it forgot the
penalty in its pruning and thought including it would prune better).

Pruning multi-objective trials: Optuna's pruners compare one intermediate value, which a
Pareto study does not have. ``CostAwareMedianPruner`` prunes a trial at epoch k when its
accuracy at epoch k is below the median accuracy at epoch k of the earlier trials of
*similar cost* (within a factor ``cost_band`` of its params or latency). Comparing only with
neighbours in cost keeps the cheap end of the front alive -- a 60k-parameter net is never
killed for being less accurate than a 2M one -- while a net that is both as costly as its
neighbours and worse than most of them, i.e. one that is going to be dominated, stops early.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

OBJECTIVES = ("error", "error+params", "error+latency", "pareto")
COSTS = ("params", "latency")
DEFAULT_SCALE = {"params": 250_000.0, "latency": 10.0}  # article B: 250,000 params = 5 points; 10 ms = 5 points


@dataclass(frozen=True)
class Objective:
    kind: str = "error"  # one of OBJECTIVES
    weight: float = 0.05  # penalty for one `scale` of cost (article B: 0.05)
    scale: float | None = None  # cost units per `weight` (None: 250,000 params or 10 ms)
    cost: str = "params"  # pareto's second objective: params or latency
    latency_batch: int = 1  # images per timed forward pass

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.kind!r}")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(COSTS)}, got {self.cost!r}")
        if not (isinstance(self.weight, (int, float)) and self.weight >= 0 and math.isfinite(self.weight)):
            raise ValueError(f"penalty weight must be a non-negative number, got {self.weight!r}")
        if self.scale is not None and not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"penalty scale must be a positive number, got {self.scale!r}")
        if not isinstance(self.latency_batch, int) or self.latency_batch < 1:
            raise ValueError(f"latency batch must be a positive int, got {self.latency_batch!r}")

    @property
    def cost_kind(self) -> str | None:
        """Which cost the objective needs: params, latency, or None for plain error."""
        return {"error": None, "error+params": "params", "error+latency": "latency", "pareto": self.cost}[self.kind]

    @property
    def multi(self) -> bool:
        return self.kind == "pareto"

    @property
    def directions(self) -> list[Literal["minimize", "maximize"]]:
        return ["minimize", "minimize"] if self.multi else ["minimize"]

    @property
    def names(self) -> list[str]:
        """Names of the values, for tables and the dashboard."""
        if self.multi:
            return ["error", "params" if self.cost == "params" else "latency_ms"]
        return ["score" if self.cost_kind else "error"]

    def penalty_scale(self) -> float:
        return self.scale if self.scale is not None else DEFAULT_SCALE[self.cost_kind or "params"]

    def values(self, best_val_acc: float, cost: float | None) -> list[float]:
        """The trial's value(s): ``[score]`` or, for pareto, ``[error, cost]``."""
        error = 1.0 - best_val_acc
        if self.kind == "error":
            return [error]
        if cost is None:
            raise ValueError(f"objective {self.kind} needs the architecture's {self.cost_kind}")
        if self.multi:
            return [error, float(cost)]
        return [error + cost / self.penalty_scale() * self.weight]

    def describe(self) -> str:
        if self.kind == "error":
            return "1 - max(val_acc)"
        if self.multi:
            return f"(1 - max(val_acc), {self.names[1]})"
        unit = "params" if self.cost_kind == "params" else "latency_ms"
        return f"1 - max(val_acc) + {unit} / {self.penalty_scale():g} * {self.weight:g}"


def measure_latency(
    model,
    input_size: Sequence[int],
    batch_size: int = 1,
    device: str = "cpu",
    channels_last: bool = True,
    warmup: int = 5,
    repeats: int = 20,
) -> float:
    """Median milliseconds of one forward pass of ``batch_size`` images, after ``warmup`` passes.

    CUDA work is synchronised before and after every pass so the clock sees the kernels.
    """
    import torch

    where = torch.device(device)
    model = model.to(where).eval()
    x = torch.rand(batch_size, *input_size, device=where)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if where.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


class CostAwareMedianPruner:
    """Prune a multi-objective trial whose accuracy at an epoch is below the median of its cost neighbours.

    ``neighbours_acc(step, cost)`` gives the epoch-``step`` accuracies of the other finished
    trials whose cost is within a factor ``cost_band`` of ``cost``; with fewer than
    ``min_neighbours`` of them, or before ``warmup_epochs``, nothing is pruned.
    """

    def __init__(self, cost_band: float = 2.0, min_neighbours: int = 2, warmup_epochs: int = 0) -> None:
        if cost_band <= 1:
            raise ValueError(f"cost_band must be > 1 (a factor), got {cost_band!r}")
        self.cost_band, self.min_neighbours, self.warmup_epochs = cost_band, min_neighbours, warmup_epochs

    def similar(self, cost: float, other: float) -> bool:
        if cost <= 0 or other <= 0:
            return cost == other
        return abs(math.log(other / cost)) <= math.log(self.cost_band)

    def should_prune(
        self, epoch: int, val_acc: float, cost: float, finished: Sequence[tuple[float, Sequence[float]]]
    ) -> bool:
        """``finished``: (cost, per-epoch val_acc list) of the other finished, non-duplicate trials."""
        if epoch <= self.warmup_epochs:
            return False
        accs = [curve[epoch - 1] for c, curve in finished if self.similar(cost, c) and len(curve) >= epoch]
        if len(accs) < self.min_neighbours:
            return False
        return val_acc < statistics.median(accs)
