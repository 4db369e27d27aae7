"""A worker: load the data once, then train the trials the study hands out until it is done.

Each trial: the space turns the trial into model arguments; the architecture is claimed (an
architecture already evaluated or in flight is not trained again, see ``dedup``); its cost
is measured (params, and latency once per architecture); it is trained with ``fit`` into
``trials/<architecture hash>/`` while reporting validation accuracy every epoch, so the
pruner can stop it and a retry after a crash resumes from the last epoch's checkpoint.

User attributes of a trial (what ``report`` and optuna-dashboard show):
``arch``, ``rank``, ``dedup`` / ``duplicate_of``, ``label``, ``model``, ``model_args`` (``model_kwargs``
in studies of older versions),
``params``, ``macs``, ``latency_ms``, ``val_acc`` (per epoch), ``best_val_acc``,
``epochs_done``, ``resumed_from_epoch``, ``worker``, ``seconds``, ``run_dir``, ``error``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from ..analysis.summary import summary
from ..data import DataSplits
from ..device import resolve_device
from ..train import TrainingDiverged, load_checkpoint, run_training
from .dedup import claim
from .guards import stop_on_repeated_failure
from .interrupts import Interrupts
from .objectives import CostAwareMedianPruner, measure_latency
from .spaces import architecture_key, get_space, model_args_to_json
from .study import SearchSettings, is_done, make_pruner, make_sampler, open_storage, stop_when_done, worker_name

log = logging.getLogger("cnnlab.search")
_LATENCY_CACHE: dict[tuple[str, str, int], float] = {}


def load_data(settings: SearchSettings) -> DataSplits:
    return settings.data.load(seed=settings.train.seed)


def run_dir_name(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:12]


class TrialRunner:
    """The Optuna objective: one trial = claim, measure, train, score."""

    def __init__(self, settings: SearchSettings, data: DataSplits, interrupts: Interrupts | None = None) -> None:
        self.settings = settings
        self.interrupts = interrupts or Interrupts()
        self.space = get_space(settings.space)
        self.objective = settings.objective
        self.data = data
        self.out = Path(settings.out)
        self.input_size = (data.train.images.shape[3], *data.train.images.shape[1:3])
        self.device = str(resolve_device(settings.train.device))
        self.cost_pruner = CostAwareMedianPruner() if self.objective.multi and settings.pruner == "median" else None

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self.interrupts.check()  # interrupted while Optuna started this trial: it is recorded as failed, and retried
        model_args = self.space.trial_model_args(trial, self.settings.model_args)
        key = architecture_key(self.space.model, model_args)
        trial.set_user_attr("worker", worker_name())
        owner = claim(trial.study, trial, key, trial.user_attrs.get("rank", trial.number))
        if owner is not None:
            return self._duplicate(trial, owner)
        try:
            return self._train(trial, key, model_args)
        except (optuna.TrialPruned, KeyboardInterrupt):
            raise
        except TrainingDiverged as error:
            trial.set_user_attr("diverged", str(error)[:300])
            raise optuna.TrialPruned(f"training diverged: {error}") from None
        except Exception as error:  # recorded, so the report says why (and the trial is not retried)
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
            raise

    def _duplicate(self, trial: optuna.Trial, owner) -> float | list[float]:
        """An architecture already taken: its result if finished, else pruned (never trained twice)."""
        for name in ("label", "params", "best_val_acc", "latency_ms"):
            if name in owner.user_attrs:
                trial.set_user_attr(name, owner.user_attrs[name])
        if owner.state == TrialState.COMPLETE:
            return owner.values if self.objective.multi else owner.value
        state = "pruned" if owner.state == TrialState.PRUNED else "in progress"
        raise optuna.TrialPruned(f"duplicate of trial {owner.number} ({state})")

    def _cost(self, trial: optuna.Trial, key: str, model: torch.nn.Module, params: int) -> float | None:
        kind = self.objective.cost_kind
        if kind == "params":
            return float(params)
        if kind != "latency":
            return None
        batch = self.objective.latency_batch
        cache_key = (key, self.device, batch)
        if cache_key not in _LATENCY_CACHE:  # another attempt of this architecture may have measured it
            for t in trial.study.get_trials(deepcopy=False):
                a = t.user_attrs
                if (
                    a.get("arch") == key
                    and "latency_ms" in a
                    and a.get("latency_device") == self.device
                    and a.get("latency_batch") == batch
                ):
                    _LATENCY_CACHE[cache_key] = a["latency_ms"]
                    break
            else:
                _LATENCY_CACHE[cache_key] = measure_latency(
                    model, self.input_size, batch, self.device, self.settings.train.channels_last
                )
        ms = _LATENCY_CACHE[cache_key]
        trial.set_user_attr("latency_ms", ms)
        trial.set_user_attr("latency_device", self.device)
        trial.set_user_attr("latency_batch", batch)
        return ms

    def _train(self, trial: optuna.Trial, key: str, model_args: dict[str, Any]) -> float | list[float]:
        start = time.perf_counter()
        trial.set_user_attr("label", self.space.label(model_args))
        trial.set_user_attr("model", self.space.model)
        trial.set_user_attr("model_args", model_args_to_json(model_args))
        run_dir = self.out / "trials" / run_dir_name(key)
        trial.set_user_attr("run_dir", str(run_dir))
        costs: list[float | None] = []

        curve: list[float] = []
        resume = (run_dir / "last.pt").exists()

        def init(model: torch.nn.Module, splits: DataSplits) -> None:  # the new model's cost, before training
            with self.interrupts.live_section(False):  # storage writes: an interrupt waits for their end
                cost_summary = summary(model, self.input_size)
                trial.set_user_attr("params", cost_summary.total_params)
                trial.set_user_attr("macs", cost_summary.macs)
                costs.append(self._cost(trial, key, model, cost_summary.total_params))
                if resume:
                    self._replay(trial, run_dir, curve, costs[0])

        def epoch_end(record) -> None:
            with self.interrupts.live_section(False):
                self._epoch(trial, record.epoch, record.val_acc, curve, costs[0])

        with self.interrupts.live_section():  # training: Ctrl-C stops it at once (checkpoints are written atomically)
            run = run_training(
                self.space.model,
                model_args,
                data=self.settings.data,
                train=self.settings.train,
                out_dir=run_dir,
                splits=self.data,
                init=init,
                resume=resume,
                quiet=True,
                info={"study": trial.study.study_name, "trial": trial.number},
                on_epoch_end=epoch_end,
            )
        best = run.history.summary()["best_val_acc"]
        trial.set_user_attr("best_val_acc", best)
        trial.set_user_attr("seconds", time.perf_counter() - start)
        values = self.objective.values(best, costs[0])
        return values if self.objective.multi else values[0]

    def _replay(self, trial: optuna.Trial, run_dir: Path, curve: list[float], cost: float | None) -> None:
        """A retry: continue the dead attempt's run, and show the pruner its earlier epochs again."""
        done = load_checkpoint(run_dir / "last.pt")["history"]["epochs"]
        trial.set_user_attr("resumed_from_epoch", len(done))
        for e in done:
            self._epoch(trial, e["epoch"], e["val_acc"], curve, cost, prune=False)

    def _epoch(
        self,
        trial: optuna.Trial,
        epoch: int,
        val_acc: float,
        curve: list[float],
        cost: float | None,
        prune: bool = True,
    ) -> None:
        curve.append(val_acc)
        trial.set_user_attr("val_acc", list(curve))
        trial.set_user_attr("epochs_done", epoch)
        if self.objective.multi:
            if (
                prune
                and self.cost_pruner is not None
                and cost is not None  # (always, for a pareto objective: params or latency)
                and self.cost_pruner.should_prune(epoch, val_acc, cost, self._finished_curves(trial))
            ):
                raise optuna.TrialPruned(
                    f"accuracy {val_acc:.2%} at epoch {epoch} below the median of trials of similar cost"
                )
            return
        trial.report(self.objective.values(max(curve), cost)[0], epoch)
        if prune and trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    def _finished_curves(self, trial: optuna.Trial) -> list[tuple[float, list[float]]]:
        cost_name = "params" if self.objective.cost_kind == "params" else "latency_ms"
        return [
            (t.user_attrs[cost_name], t.user_attrs["val_acc"])
            for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("dedup") == "owner" and cost_name in t.user_attrs and "val_acc" in t.user_attrs
        ]


def run_worker(
    settings: SearchSettings,
    storage_url: str,
    study_name: str,
    sampler_seed: int | None = None,
    data: DataSplits | None = None,
) -> int:
    """Take part in the study until it is done; returns how many trials this worker ran."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url, settings, for_workers=True)
    study = optuna.load_study(
        study_name=study_name, storage=storage, sampler=make_sampler(sampler_seed), pruner=make_pruner(settings)
    )
    if is_done(study, settings):
        return 0
    data = data if data is not None else load_data(settings)
    with Interrupts().installed() as interrupts:
        runner = TrialRunner(settings, data, interrupts)
        before = len(study.get_trials(deepcopy=False))
        callbacks = [stop_when_done(settings), stop_on_repeated_failure(since=before), interrupts.stop_study()]
        study.optimize(runner, callbacks=callbacks, catch=(Exception,), gc_after_trial=True)
        interrupts.check()  # an interrupt between two trials: the finished one is kept, no other starts
    mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("worker") == worker_name()]
    return len(mine) if mine else len(study.get_trials(deepcopy=False)) - before


def worker_main(
    settings: dict,
    storage_url: str,
    study_name: str,
    sampler_seed: int | None,
    threads: int | None,
    log_path: str,
    parent: int | None = None,
) -> None:
    """Entry point of a worker process (``multiprocessing`` spawn): its output goes to ``log_path``."""
    if parent is not None:
        follow_parent(parent)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log_path, "a", buffering=1) as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
        optuna_logs_to(out),
    ):
        logging.basicConfig(stream=out, level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        if threads:
            torch.set_num_threads(threads)
        print(f"worker {worker_name()} started", flush=True)
        try:
            n = run_worker(SearchSettings.from_dict(settings), storage_url, study_name, sampler_seed)
        except BaseException:
            import traceback

            traceback.print_exc(file=out)
            sys.exit(1)
        print(f"worker {worker_name()} done: {n} trials", flush=True)


@contextlib.contextmanager
def optuna_logs_to(stream):
    """Optuna's own log lines -- a failed trial's traceback among them -- go to ``stream`` (a
    worker's log) instead of the terminal, whose lines are cnnlab's; restored afterwards."""
    logger = logging.getLogger("optuna")
    handlers = list(logger.handlers)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for h in handlers:
        logger.removeHandler(h)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        for h in handlers:
            logger.addHandler(h)


def follow_parent(parent: int) -> None:
    """End this worker when the process that started it dies, however it dies (Linux:
    ``PR_SET_PDEATHSIG``; elsewhere a thread watching the parent's pid). A trial it was running
    stays RUNNING in the storage and is retried (heartbeat, or ``--resume``)."""
    import signal
    import threading

    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="follow-parent").start()
