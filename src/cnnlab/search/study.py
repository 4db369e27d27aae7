"""The study: its settings, storage, creation or joining, pruners, stopping and retries.

A study lives in a directory (``out``): ``study.db`` (the default SQLite storage, created on
first use), ``trials/<architecture hash>/`` (each trained architecture's run: checkpoints,
history, curves), ``trial-options.json`` (the training options those runs were trained with),
``logs/`` (one log per worker) and the report files. Its settings are stored
in the study itself (user attribute ``cnnlab``), so workers on other machines and ``report``
read them from the storage, and a worker started with different settings is refused.

Storages: an SQLAlchemy URL (``sqlite:///...``, ``postgresql://user@host/db``, ``mysql://...``)
or ``journal:PATH`` for Optuna's journal file (several processes on one machine; it has no
heartbeats, so a dead worker's trial is recovered by a resume (``--resume``) once no worker runs).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..data import DataConfig
from ..presets import get_preset
from ..train import TrainConfig
from .objectives import Objective
from .spaces import get_space, model_args_from_json, model_args_to_json

PRUNERS = ("median", "hyperband", "none")
SETTINGS_ATTR = "cnnlab"
DEFAULT_DB = "study.db"
DEFAULT_TRIALS = 50  # finished trials before a study stops (article B: 50)
PRESET_TRIALS = {"smoke": 6}  # a preset's own default, where it has one
# settings a joining worker may set for itself (paths and hardware differ between machines)
LOCAL_SETTINGS = ("out", "heartbeat", "grace")
LOCAL_TRAIN = ("device",)
LOCAL_DATA = ("data_dir", "stream")
# the DataConfig fields that settings stored before they held a DataConfig kept at the top level
FLAT_DATA = ("dataset", "data_dir", "limit_train", "limit_val", "val_split")


@dataclass
class SearchSettings:
    """Everything that defines a search (and a few things local to each worker)."""

    space: str = "modules"  # modules, modules-free, densenet (spaces.SPACES)
    objective: Objective = field(default_factory=Objective)
    train: TrainConfig = field(default_factory=TrainConfig)  # every trial's training run
    data: DataConfig = field(default_factory=DataConfig)  # what every trial trains and validates on, at its own size
    model_args: dict[str, Any] = field(default_factory=dict)  # model arguments given, not searched (--arg)
    trials: int = DEFAULT_TRIALS  # finished trials (complete or pruned, duplicates included) before stopping
    pruner: str = "median"  # median, hyperband (single objective), none
    out: str = "runs/search"  # study directory (local)
    heartbeat: int = 10  # seconds between a running trial's heartbeats (RDB storages)
    grace: int | None = None  # seconds without heartbeat before a trial counts as dead (None: 3 x heartbeat)
    max_retry: int = 3  # retries of a dead worker's trial

    def __post_init__(self) -> None:
        space = get_space(self.space)
        if not isinstance(self.trials, int) or self.trials < 1:
            raise ValueError(f"trials must be a positive int, got {self.trials!r}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if self.pruner == "hyperband" and self.objective.multi:
            raise ValueError(
                "pruner 'hyperband' cannot prune a multi-objective (pareto) study; "
                "use 'median' (cost-aware median on accuracy) or 'none'"
            )
        if not isinstance(self.heartbeat, int) or self.heartbeat < 1:
            raise ValueError(f"heartbeat must be a positive int of seconds, got {self.heartbeat!r}")
        if self.grace is not None and (not isinstance(self.grace, int) or self.grace <= self.heartbeat):
            raise ValueError(
                f"grace must be an int of seconds larger than heartbeat={self.heartbeat}, got {self.grace!r}"
            )
        if not isinstance(self.data, DataConfig):
            raise ValueError(f"data must be a DataConfig, got {type(self.data).__name__}")
        if self.data.image_size is not None:
            raise ValueError("a search trains at the dataset's own image size; image_size cannot be set")
        self.model_args = model_args_from_json(self.model_args)
        # fail now, not in trial 30: the given model arguments must be ones the model accepts
        from ..models import get_model_entry

        accepted = get_model_entry(space.model).accepted_arguments() + ["max_blocks"]
        unknown = sorted(set(self.model_args) - set(accepted))
        if unknown:
            raise ValueError(
                f"{space.model} does not accept {', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)}"
            )

    @classmethod
    def from_preset(
        cls,
        preset: str = "article",
        *,
        train: dict[str, Any] | None = None,
        data: DataConfig | None = None,
        model_args: dict[str, Any] | None = None,
        trials: int | None = None,
        **settings: Any,
    ) -> SearchSettings:
        """Settings from a named preset (``cnnlab.presets``): its training options (``train``
        overrides those that are not None), its subset sizes (``data`` overrides what it sets);
        ``trials`` defaults to the preset's own count (``PRESET_TRIALS``), else ``DEFAULT_TRIALS``;
        the ``smoke`` preset also uses the space's small widths (``model_args`` win over them)."""
        p = get_preset(preset)
        space = get_space(settings.get("space", "modules"))
        if settings.get("out") is None:  # runs/search/SPACE-OBJECTIVE
            settings["out"] = f"runs/search/{space.name}-{settings.get('objective', Objective()).kind}"
        return cls(
            train=p.train_config(**(train or {})),  # a shorter run keeps the preset's warm-up share
            data=p.data.with_overrides(**dataclasses.asdict(data or DataConfig())),  # what ``data`` sets
            model_args={**(space.smoke_model_args if preset == "smoke" else {}), **(model_args or {})},
            trials=trials if trials is not None else PRESET_TRIALS.get(preset, DEFAULT_TRIALS),
            **settings,
        )

    @property
    def grace_period(self) -> int:
        return self.grace if self.grace is not None else 3 * self.heartbeat

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data"] = self.data.to_dict()
        d["model_args"] = model_args_to_json(self.model_args)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchSettings:
        """Settings as ``to_dict`` wrote them, or as cnnlab stored them before they held a
        DataConfig (its fields at the top level) and called the model arguments ``fixed``."""
        d = dict(d)
        d["objective"] = Objective(**d["objective"])
        d["train"] = TrainConfig.from_dict(d["train"])
        flat = {k: d.pop(k) for k in FLAT_DATA if k in d}
        d["data"] = DataConfig.from_dict({**flat, **d.get("data", {})})
        if "fixed" in d:
            d["model_args"] = d.pop("fixed")
        return cls(**d)

    def differences(self, other: SearchSettings) -> list[str]:
        """Study-defining settings that differ (local ones -- paths, device -- may)."""
        a, b = self.to_dict(), other.to_dict()
        diff = [k for k in a if k not in LOCAL_SETTINGS and k not in ("train", "data") and a[k] != b[k]]
        for part, local in (("train", LOCAL_TRAIN), ("data", LOCAL_DATA)):
            diff += [f"{part}.{k}" for k in a[part] if k not in local and a[part][k] != b[part].get(k)]
        return diff


def default_storage(out: str | Path) -> str:
    return f"sqlite:///{Path(out).resolve() / DEFAULT_DB}"


def open_storage(
    url: str, settings: SearchSettings | None = None, for_workers: bool = False
) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; ``for_workers`` adds heartbeats and the retry of dead trials."""
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = url[len("journal:") :].removeprefix("//")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    if "://" not in url:
        raise ValueError(
            f"storage must be an SQLAlchemy URL (sqlite:///file.db, postgresql://...) or journal:PATH, got {url!r}"
        )
    url = _postgres_driver(url)
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}  # several local workers share one file
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if for_workers and settings is not None:
        kwargs.update(
            heartbeat_interval=settings.heartbeat,
            grace_period=settings.grace_period,
            heartbeat_stale_trial_callback=RetryDeadTrial(settings.max_retry),
        )
    import sqlalchemy.exc

    for attempt in range(10):
        try:
            with (
                warnings.catch_warnings()
            ):  # heartbeats are "experimental" in Optuna since 2.x; we rely on them knowingly
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except ImportError as error:  # e.g. psycopg2 missing for postgresql://
            raise ValueError(
                f"cannot open storage {url!r}: {error} (pip install cnnlab[postgres] for PostgreSQL)"
            ) from None
        except sqlalchemy.exc.DBAPIError as error:
            # workers starting together on a fresh database race to create Optuna's tables; the loser retries
            if "already exists" not in str(error) or attempt == 9:
                raise
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


def _postgres_driver(url: str) -> str:
    """SQLAlchemy 2.1 reads ``postgresql://`` as psycopg 3; use psycopg2 where only that is installed."""
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def make_pruner(settings: SearchSettings) -> optuna.pruners.BasePruner:
    """Optuna's pruner for single-objective studies; multi-objective ones prune themselves (CostAwareMedianPruner)."""
    if settings.pruner == "none" or settings.objective.multi:
        return optuna.pruners.NopPruner()
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=settings.train.epochs, reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


def make_sampler(seed: int | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


class RetryDeadTrial:
    """Heartbeat-stale trial callback: queue the dead trial again, keeping its rank and architecture.

    Only trials that had claimed their architecture are retried (a duplicate did no work); the
    retry finds the dead trial's checkpoints in ``trials/<hash>/`` and resumes from its last epoch.
    """

    def __init__(self, max_retry: int = 3) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        enqueue_retry(study, trial, self.max_retry)


def enqueue_retry(study: optuna.Study, trial: FrozenTrial, max_retry: int) -> bool:
    attrs = trial.user_attrs
    attempt = attrs.get("attempt", 0) + 1
    if attrs.get("dedup") != "owner" or attrs.get("diverged") or attrs.get("error") or attempt > max_retry:
        return False
    study.enqueue_trial(
        trial.params,
        user_attrs={
            "arch": attrs["arch"],
            "rank": attrs.get("rank", trial.number),
            "retry_of": trial.number,
            "attempt": attempt,
        },
    )
    logging.getLogger("cnnlab.search").warning("trial %d died; queued its retry (attempt %d)", trial.number, attempt)
    return True


def open_study(
    settings: SearchSettings,
    storage_url: str,
    study_name: str,
    *,
    resume: bool = False,
    explicit_storage: bool = True,
    for_workers: bool = True,
    sampler_seed: int | None = None,
) -> optuna.Study:
    """Create the study or load it; a loaded one must have been started with the same settings.

    With the default storage (``explicit_storage=False``) an existing study is refused unless
    ``resume``; with an explicit ``--storage`` an existing study is joined (that is how workers
    on other machines take part).
    """
    storage = open_storage(storage_url, settings, for_workers=for_workers)
    exists = study_name in {
        s.study_name for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)
    }
    if exists and not resume and not explicit_storage:
        raise FileExistsError(
            f"{settings.out} already holds study {study_name!r}; pass `resume=True` to continue it, "
            "or choose another `out` or `study_name`"
        )
    if resume and not exists:
        raise FileNotFoundError(f"nothing to resume: no study {study_name!r} in {storage_url}")
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=settings.objective.directions,
        load_if_exists=True,
        sampler=make_sampler(sampler_seed),
        pruner=make_pruner(settings),
    )
    stored = study.user_attrs.get(SETTINGS_ATTR)
    if stored is None:
        study.set_user_attr(SETTINGS_ATTR, settings.to_dict())
        stored = study.user_attrs.get(SETTINGS_ATTR) or settings.to_dict()  # another worker may have won the race
    diff = SearchSettings.from_dict(stored).differences(settings)
    if resume and diff == ["trials"]:  # continuing a stopped study may ask for more (or fewer) trials
        study.set_user_attr(SETTINGS_ATTR, {**stored, "trials": settings.trials})
        diff = []
    if diff:
        theirs = SearchSettings.from_dict(stored).to_dict()
        mine = settings.to_dict()

        def show(d: dict, k: str) -> Any:
            part, _, name = k.partition(".")
            return d[part][name] if name else d[k]

        detail = "; ".join(f"{k}: study {show(theirs, k)!r}, here {show(mine, k)!r}" for k in diff)
        raise ValueError(
            f"study {study_name!r} was started with other settings ({detail}); run the same command to join it"
        )
    return study


def load_settings(study: optuna.Study) -> SearchSettings:
    stored = study.user_attrs.get(SETTINGS_ATTR)
    if stored is None:
        raise ValueError(f"study {study.study_name!r} was not made by cnnlab search (no {SETTINGS_ATTR!r} settings)")
    return SearchSettings.from_dict(stored)


def recover_interrupted(
    study: optuna.Study, settings: SearchSettings, storage_url: str, wait: bool = True
) -> list[int]:
    """``--resume``: queue again the trials a stopped study left behind; returns their numbers.

    Trials interrupted by Ctrl-C are failed (not stale) and were never retried; trials of a
    killed worker are failed here once their heartbeat is stale (waiting out the grace period
    if needed). A journal storage has no heartbeats: its running trials are taken as dead,
    which is right only when no other worker runs.
    """
    from optuna.storages import fail_stale_trials

    # Optuna's public storage API only: the study's own storage object and a trial's storage id
    # are private attributes, so the storage is opened again and ids are looked up by number.
    storage = open_storage(storage_url, settings, for_workers=True)
    interval = getattr(storage, "get_heartbeat_interval", None)  # RDB storages have heartbeats, journals none
    heartbeats = callable(interval) and interval() is not None
    if heartbeats:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)  # runs RetryDeadTrial for each
            if wait and study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(settings.grace_period + 1)
                fail_stale_trials(study)
    else:
        study_id = storage.get_study_id_from_name(study.study_name)
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                enqueue_retry(study, storage.get_trial(trial_id), settings.max_retry)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = []
    for t in trials:
        if t.state == TrialState.FAIL and t.number not in retried and enqueue_retry(study, t, settings.max_retry):
            queued.append(t.number)
    return queued


def is_done(study: optuna.Study, settings: SearchSettings) -> bool:
    """``trials`` trials finished, or every architecture of the space taken -- and no retry queued
    (a dead worker's trial is never left behind)."""
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return False
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    taken = {
        t.user_attrs["arch"]
        for t in trials
        if t.user_attrs.get("dedup") == "owner"
        and t.state in (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
    }
    return finished >= settings.trials or len(taken) >= get_space(settings.space).space_size(settings.model_args)


def stop_when_done(settings: SearchSettings):
    """Study callback: ``study.stop()`` once ``is_done``."""

    def callback(study: optuna.Study, _trial: FrozenTrial) -> None:
        if is_done(study, settings):
            study.stop()

    return callback


def worker_name() -> str:
    import os

    return f"{socket.gethostname()}:{os.getpid()}"
