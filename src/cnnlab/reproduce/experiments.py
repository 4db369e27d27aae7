"""The articles' experiments as data: which models, which settings, and what the article got.

An ``Experiment`` is one of an article's results tables (``densenet``: article 000's six cases,
``convtypes``: article 001's three nets); each ``Case`` is one row of it; ``article`` holds that row's published
figures so the reproduction can print ours beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ArticleRow:
    """One published row (figures in the Keras parameter convention)."""

    params: int
    best_acc: float  # fraction
    depth: int | None = None
    seconds_per_epoch: float | None = None  # the article's way (mean after dropping fastest and slowest)


@dataclass(frozen=True)
class Case:
    number: int
    model: str
    model_args: dict[str, Any]  # arguments of the registered model
    augment: bool  # the article trained this case with its augmentation
    columns: dict[str, str]  # the experiment's own leading columns, e.g. {"k": "16", "blocks": "1,2,4,3"}
    article: ArticleRow

    @property
    def label(self) -> str:
        cols = ", ".join(f"{k}={v}" for k, v in self.columns.items())
        return f"case {self.number}: {self.model} ({cols}{'' if self.augment else ', no augmentation'})"


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    article: str  # the source, as cited in results
    article_setup: str  # how the article's figures were obtained
    columns: tuple[str, ...]
    cases: tuple[Case, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def select(self, numbers: list[int] | None) -> tuple[Case, ...]:
        if not numbers:
            return self.cases
        known = {c.number for c in self.cases}
        unknown = [n for n in numbers if n not in known]
        if unknown:
            raise ValueError(f"experiment {self.name!r} has cases {sorted(known)}; unknown case(s) {unknown}")
        return tuple(c for c in self.cases if c.number in set(numbers))


def _densenet_case(
    number: int, k: int, blocks: tuple[int, ...], augment: bool, params: int, depth: int, acc: float, sec: float
) -> Case:
    return Case(
        number,
        "densenet_cifar",
        {"growth_rate": k, "blocks": blocks},
        augment,
        {"k": str(k), "blocks": ",".join(map(str, blocks))},
        ArticleRow(params, acc, depth, sec),
    )


DENSENET = Experiment(
    name="densenet",
    title="Article 000: DenseNetSimple on CIFAR-10, growth rate and depth",
    article="article 000 (DenseNetSimple, Keras 2.1.6)",
    article_setup="100 epochs, Adam (Keras defaults), batch 128, test set as validation, Colab GPU",
    columns=("k", "blocks"),
    cases=(
        _densenet_case(1, 16, (1, 2, 4, 3), False, 255_046, 25, 0.779, 64.7),
        _densenet_case(2, 16, (1, 2, 4, 3), True, 255_046, 25, 0.838, 64.7),
        _densenet_case(3, 32, (1, 2, 4, 3), True, 505_200, 25, 0.859, 67.1),
        _densenet_case(4, 16, (2, 4, 8, 5), True, 599_536, 43, 0.874, 116.3),
        _densenet_case(5, 16, (3, 6, 12, 8), True, 1_104_186, 63, 0.890, 175.2),
        _densenet_case(6, 16, (6, 12, 24, 16), True, 3_316_848, 121, 0.909, 381.8),
    ),
)

CONVTYPES = Experiment(
    name="convtypes",
    title="Article 001: a 10-layer CIFAR-10 net of one convolution type",
    article="article 001 (Keras)",
    article_setup="test accuracy as published; the article does not state epochs, optimizer or augmentation",
    columns=("conv",),
    cases=tuple(
        Case(i, "convtype_cifar", {"conv": conv}, True, {"conv": conv}, ArticleRow(params, acc, 10))
        for i, (conv, params, acc) in enumerate(
            [("conv", 1_598_730, 0.8766), ("depthwise", 58_506, 0.7736), ("separable", 230_538, 0.8433)], start=1
        )
    ),
    notes=(
        "Article 001 does not say how its three nets were trained; cnnlab uses article 000's protocol "
        "(Adam, batch 128, 100 epochs, its augmentation) for the `article` preset.",
    ),
)

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (DENSENET, CONVTYPES)}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; experiments: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]
