"""What keeps a search from going on wrong: trials that keep failing for the same reason stop the
study, and a study directory's trained runs are never mixed with runs of other training options.

* ``repeated_failure`` / ``stop_on_repeated_failure``: after ``FAILURES_IN_A_ROW`` trials in a
  row failed with the same error (its type and message, numbers and hashes aside), the workers
  stop and the search ends with that error in one line (``SearchStopped``), instead of failing
  trial after trial until someone notices.
* ``check_trials_dir`` / ``record_trials_dir``: ``OUT/trials/<architecture hash>/`` holds each
  trained architecture's run, shared by every study that uses ``OUT`` (a retry, or a second study
  of the same options, continues it). ``OUT/trial-options.json`` records the options those runs
  were trained with; a study with other options is refused before it is created.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..io import atomic_write_text
from .study import DEFAULT_DB, FLAT_DATA, LOCAL_TRAIN, SETTINGS_ATTR, SearchSettings

FAILURES_IN_A_ROW = 3
TRIALS_RECORD = "trial-options.json"  # in OUT, beside trials/
# the data settings that decide what a trial's run trains, beside its training options (not the model: its hash
# names the run); where the data lies and how it is read (data_dir, stream) change nothing of the run
RUN_DATA = ("dataset", "val_split", "limit_train", "limit_val")


class SearchStopped(RuntimeError):
    """A search that stopped because its trials kept failing for the same reason."""


def _same_reason(error: str) -> str:
    """An error with its numbers and hashes masked: "layer 2 ... trials/6b9c8582" is the same reason
    as "layer 0 ... trials/9e95c7"."""
    return re.sub(r"\b[0-9a-f]*\d[0-9a-f]*\b", "#", error)


def repeated_failure(study: optuna.Study, since: int = 0, n: int = FAILURES_IN_A_ROW) -> str | None:
    """The error of the last ``n`` finished trials (numbered ``since`` or later) when they all
    failed for the same reason, else None. A trial that failed without an error (an interrupted
    or dead worker's) does not count: it is retried."""
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number >= since
        and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        and t.datetime_complete
    ]
    last = sorted(finished, key=lambda t: (t.datetime_complete, t.number))[-n:]
    errors = [
        t.user_attrs["error"] for t in last if t.state == TrialState.FAIL and t.user_attrs.get("error") is not None
    ]
    if len(last) < n or len(errors) < n or len({_same_reason(e) for e in errors}) > 1:  # errors: the failed with one
        return None
    return errors[-1]


def stop_on_repeated_failure(since: int = 0):
    """Study callback: ``study.stop()`` once ``repeated_failure`` finds a reason."""

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL and repeated_failure(study, since) is not None:
            study.stop()

    return callback


def stopped_message(study_name: str, reason: str, logs: Path) -> str:
    return (
        f"study {study_name!r} stopped: {FAILURES_IN_A_ROW} trials in a row failed with the same error: {reason} "
        f"(tracebacks in {logs}); fix the cause, then rerun (`resume=True` continues the study)"
    )


def run_settings(settings: SearchSettings) -> dict[str, Any]:
    """The settings that decide what each trial's run is: training options (not the device) and data."""
    d = settings.to_dict()
    train = {k: v for k, v in d["train"].items() if k not in LOCAL_TRAIN}
    return {**{f"train.{k}": v for k, v in sorted(train.items())}, **{f"data.{k}": d["data"][k] for k in RUN_DATA}}


def _read_record(run: dict[str, Any]) -> dict[str, Any]:
    """A record's run settings, its data keys as ``run_settings`` names them (a record written
    before the settings held a DataConfig has them without the ``data.`` prefix)."""
    return {f"data.{k}" if k in FLAT_DATA else k: v for k, v in run.items()}


def _recorded(out: Path) -> list[tuple[str, dict[str, Any]]]:
    """(study name, run settings) of the studies whose runs ``out/trials`` holds: its record, else
    (a directory from before the record) the cnnlab studies of ``out/study.db``."""
    record = out / TRIALS_RECORD
    if record.is_file():
        d = json.loads(record.read_text())
        return [(d["study"], _read_record(d["run"]))]
    if not (out / DEFAULT_DB).is_file() or not any((out / "trials").glob("*/last.pt")):
        return []
    from .stored import read_storage

    storage = read_storage(f"sqlite:///{(out / DEFAULT_DB).resolve()}")
    found = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        stored = summary.user_attrs.get(SETTINGS_ATTR)
        if stored is not None:
            found.append((summary.study_name, run_settings(SearchSettings.from_dict(stored))))
    return found


def check_trials_dir(settings: SearchSettings, study_name: str) -> None:
    """Refuse a study whose runs would land among ``out/trials`` runs of other options (a trial
    would resume another study's run and fail, or show its score)."""
    out = Path(settings.out)
    mine = run_settings(settings)
    for other, theirs in _recorded(out):
        if other == study_name:
            continue  # the same study: ``open_study`` compares all its settings
        diff = sorted(k for k in {**mine, **theirs} if mine.get(k) != theirs.get(k))
        if diff:
            detail = "; ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in diff)
            raise ValueError(
                f"{out / 'trials'} holds the trained runs of study {other!r}, trained with other options ({detail}); "
                f"give study {study_name!r} another out directory, or the options of {other!r}"
            )


def record_trials_dir(settings: SearchSettings, study_name: str) -> None:
    """Write ``out/trial-options.json`` (once: the first study of a directory sets its options)."""
    record = Path(settings.out) / TRIALS_RECORD
    if not record.exists():
        atomic_write_text(record, json.dumps({"study": study_name, "run": run_settings(settings)}, indent=1))
