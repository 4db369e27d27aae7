"""Reproduce the articles' experiments with one call each.

    >>> from cnnlab.reproduce import reproduce                      # doctest: +SKIP
    >>> result = reproduce("densenet", preset="quick", out_dir="runs/dn")  # doctest: +SKIP
    >>> print(result.table())                                       # doctest: +SKIP

Experiments: ``densenet`` (article 000's six cases) and ``convtypes`` (article 001's three nets).
Presets: ``article``, ``fast``, ``quick``, ``smoke`` (``cnnlab.presets``, shared with train and search).
"""

from .experiments import EXPERIMENTS, ArticleRow, Case, Experiment, get_experiment
from .report import Reproduction, Row
from .runner import make_plan, reproduce

__all__ = [
    "EXPERIMENTS",
    "ArticleRow",
    "Case",
    "Experiment",
    "Reproduction",
    "Row",
    "get_experiment",
    "make_plan",
    "reproduce",
]
