"""Architecture search with Optuna: article 001's module search and its generalisations.

    from cnnlab.search import Objective, SearchSettings, run_search, rebuild
    result = run_search(SearchSettings(space="modules", objective=Objective("error+params")))
    model = rebuild(result.load().best_trial)     # create_model(name, **params) of the winner

Modules: ``spaces`` (trial -> model arguments), ``objectives`` (scores, latency, cost-aware
pruning), ``dedup`` (never train an architecture twice), ``study`` (settings, storage,
retries), ``worker`` (the objective), ``run`` (local workers, progress), ``report``.
"""

from __future__ import annotations

from typing import Any

from .objectives import Objective
from .spaces import SPACES, SearchSpace, get_space
from .study import SearchSettings


def rebuild(trial: Any, num_classes: int | None = None):
    """The model of a finished trial (a FrozenTrial or its ``user_attrs``), rebuilt with ``create_model``."""
    from ..models import create_model
    from .spaces import model_args_from_json, stored_model_args

    attrs = trial.user_attrs if hasattr(trial, "user_attrs") else trial
    return create_model(attrs["model"], num_classes=num_classes, **model_args_from_json(stored_model_args(attrs)))


def run_search(*args: Any, **kwargs: Any):
    """See ``cnnlab.search.run.run_search``."""
    from .run import run_search as _run

    return _run(*args, **kwargs)


__all__ = ["Objective", "SPACES", "SearchSettings", "SearchSpace", "get_space", "rebuild", "run_search"]
