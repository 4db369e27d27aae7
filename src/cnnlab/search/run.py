"""Start (or join, or resume) a study and run its local workers, with a progress display.

    result = run_search(SearchSettings(space="modules", objective=Objective("error+params")), workers=2)

One worker runs in this process; ``workers=N > 1`` spawns N processes (each loads the data
once and, on a CPU, gets an equal share of the cores; on one GPU they train N trials at a time
side by side). Worker output goes to ``OUT/logs/``; the terminal shows trials done / total,
the best score so far and the rate, and one line per finished trial.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from .guards import SearchStopped, check_trials_dir, record_trials_dir, repeated_failure, stopped_message
from .interrupts import Interrupts
from .spaces import get_space
from .study import SearchSettings, default_storage, open_storage, open_study, recover_interrupted, worker_name


@dataclass
class SearchResult:
    study_name: str
    storage: str
    out: Path
    seconds: float  # wall time of this command
    queued_retries: list[int]  # trials a resume queued again
    dead_workers: list[str] = field(default_factory=list)  # local worker processes that stopped with an error

    def load(self) -> optuna.Study:
        return optuna.load_study(study_name=self.study_name, storage=open_storage(self.storage))


def default_study_name(settings: SearchSettings) -> str:
    return f"{settings.space}-{settings.objective.kind}"


def trial_line(t: FrozenTrial) -> str:
    """One line about a finished trial, for the terminal and the logs."""
    a = t.user_attrs
    label = a.get("label", "?")
    if a.get("dedup") == "duplicate":
        return f"trial {t.number:4d}  duplicate of trial {a.get('duplicate_of')}  ({label}): not trained again"
    if t.state == TrialState.FAIL:
        return f"trial {t.number:4d}  failed  {label}  {a.get('error', 'worker died or was interrupted')}"
    parts = [f"trial {t.number:4d}", f"{t.state.name.lower():8s}", f"{label:36s}"]
    if t.state == TrialState.COMPLETE:
        parts.append(
            "values " + ", ".join(f"{v:.4g}" for v in t.values) if len(t.values) > 1 else f"score {t.value:.4f}"
        )
    elif t.state == TrialState.PRUNED:
        parts.append(f"at epoch {a.get('epochs_done', 0)}")
    if "best_val_acc" in a or a.get("val_acc"):
        parts.append(f"acc {a.get('best_val_acc', max(a.get('val_acc', [0.0]))):.2%}")
    if "params" in a:
        parts.append(f"{a['params']:,} params")
    if "resumed_from_epoch" in a:
        parts.append(f"resumed after epoch {a['resumed_from_epoch']}")
    if "seconds" in a:
        parts.append(f"{a['seconds']:.1f} s")
    return "  ".join(parts)


class Monitor:
    """Polls the storage (its own connection) and shows progress; runs in a thread."""

    def __init__(
        self,
        storage_url: str,
        study_name: str,
        total: int,
        quiet: bool = False,
        every: float = 1.0,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url))
        self.total, self.every, self.quiet = total, every, quiet
        self.console = Console(stderr=True, soft_wrap=True)
        self.echo = echo or (lambda line: self.console.print(line, highlight=False, markup=False))
        self.seen: set[int] = set()
        self.start = time.monotonic()
        self.best = ""
        self.bar = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet or not self.console.is_terminal,
            transient=True,
        )
        self.task = self.bar.add_task("search", total=total, best="", rate="")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Monitor:
        self.bar.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()
        self.bar.__exit__(*exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(Exception):  # a busy database must not kill the display
                self.poll()

    def poll(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
        for t in sorted(finished, key=lambda t: t.datetime_complete or t.datetime_start or datetime.min):
            if t.number not in self.seen:
                self.seen.add(t.number)
                if not self.quiet:
                    self.echo(trial_line(t))
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        complete = [
            (t.value, t)
            for t in trials
            if t.state == TrialState.COMPLETE and len(t.values or []) == 1 and t.value is not None
        ]
        if complete:
            value, b = min(complete, key=lambda pair: pair[0])
            self.best = f"best {value:.4f} ({b.user_attrs.get('label', '?')}, trial {b.number})"
        minutes = (time.monotonic() - self.start) / 60
        rate = f"{len(self.seen) / minutes:.1f} trials/min" if minutes > 0 else ""
        self.bar.update(self.task, completed=min(done, self.total), best=self.best, rate=rate)


def run_search(
    settings: SearchSettings,
    storage: str | None = None,
    study_name: str | None = None,
    workers: int = 1,
    resume: bool = False,
    quiet: bool = False,
    data=None,
) -> SearchResult:
    """Create, join or resume the study, run ``workers`` local workers until it is done.

    Fails before the study is created when a given model argument cannot build the model, or when
    ``out`` holds trained runs of other options; stops (``SearchStopped``) when trials keep
    failing for the same reason."""
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    start = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what happened; Optuna's go to the logs
    get_space(settings.space).check_model_args(settings.model_args)
    out = Path(settings.out)
    url = storage or default_storage(out)
    name = study_name or default_study_name(settings)
    check_trials_dir(settings, name)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(settings, url, name, resume=resume, explicit_storage=storage is not None)
    record_trials_dir(settings, name)
    before = len(study.get_trials(deepcopy=False))
    joined = before > 0 and not resume
    queued = recover_interrupted(study, settings, url) if resume else []
    # one sampler seed per local worker; a worker joining a running study draws its own
    seeds = [random.randrange(2**31) if joined else settings.train.seed + i for i in range(workers)]
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    dead: list[str] = []
    # Ctrl-C or SIGTERM: at once while worker processes run, else once the display has stopped
    with Interrupts().installed() as interrupts, Monitor(url, name, settings.trials, quiet=quiet):
        if workers == 1:
            from .worker import optuna_logs_to, run_worker

            log_path = logs / f"worker-{worker_name().replace(':', '-')}.log"
            with open(log_path, "a", buffering=1) as log, contextlib.redirect_stdout(log), optuna_logs_to(log):
                run_worker(settings, url, name, seeds[0], data=data)
        else:
            with interrupts.live_section():
                dead = _run_processes(settings, url, name, seeds, logs)
    reason = repeated_failure(study, since=before)
    if reason is not None:
        raise SearchStopped(stopped_message(name, reason, logs))
    if dead and not _finished(study, settings.trials):
        raise RuntimeError(
            f"worker(s) {', '.join(dead)} stopped with an error before the study finished; see {logs}. "
            "Their trials are retried by `resume=True`"
        )
    return SearchResult(name, url, out, time.perf_counter() - start, queued, dead)


def _finished(study: optuna.Study, trials: int) -> bool:
    """Whether the surviving workers finished the study (its trial count, or every architecture taken)."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    done = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
    return done >= trials or (done > 0 and TrialState.RUNNING not in states and TrialState.WAITING not in states)


def _run_processes(settings: SearchSettings, url: str, name: str, seeds: list[int], logs: Path) -> list[str]:
    """Run the workers to the end; the names (and exit codes) of those that stopped with an error.
    Each worker ends itself when this process dies, even by SIGKILL (``worker.follow_parent``)."""
    import multiprocessing

    from ..device import is_cpu, spread_over_gpus
    from .worker import worker_main

    threads = None
    if is_cpu(settings.train.device):
        threads = max(1, (os.cpu_count() or 1) // len(seeds))
    context = multiprocessing.get_context("spawn")  # no fork after torch and the database are loaded
    devices = spread_over_gpus(settings.train.device, len(seeds))  # N GPUs, N workers: one each
    processes = [
        context.Process(
            target=worker_main,
            args=(
                _on_device(settings, device),
                url,
                name,
                seed,
                threads,
                str(logs / f"worker-{i}-{os.getpid()}.log"),
                os.getpid(),
            ),
            name=f"cnnlab-search-worker-{i}",
        )
        for i, (seed, device) in enumerate(zip(seeds, devices))
    ]
    for p in processes:
        p.start()
    try:
        for p in processes:
            p.join()
    finally:
        for p in processes:
            if p.is_alive():
                p.terminate()
                p.join(10)
    return [f"{p.name} (exit code {p.exitcode})" for p in processes if p.exitcode not in (0, None)]


def _on_device(settings: SearchSettings, device: str) -> dict:
    d = settings.to_dict()
    d["train"]["device"] = device
    return d


def prepare_search(settings: SearchSettings, study_name: str | None = None):
    """Check what can fail before a study exists -- the given model arguments, the study directory's
    runs, the device, then the data -- and return the data (a single local worker trains on it directly)."""
    from ..device import resolve_device
    from .worker import load_data

    get_space(settings.space).check_model_args(settings.model_args)  # a bad model argument: now, not in every trial
    check_trials_dir(settings, study_name or default_study_name(settings))
    resolve_device(settings.train.device)  # a missing GPU is an error now, not in every trial
    return load_data(settings)
