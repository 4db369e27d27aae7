"""Workers in separate processes, as on several machines: a real PostgreSQL server shared by two
workers, and a worker killed mid-trial whose trial is retried from its last epoch's checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pgserver
import pytest
from optuna.trial import TrialState

from cnnlab.search.study import open_storage

# pgserver asks platformdirs for a runtime directory; CI containers have none
pytestmark = pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")


def search_command(folder: Path, out: Path, storage: str, study: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cnnlab",
        "search",
        "modules",
        "--storage",
        storage,
        "--study",
        study,
        "--dataset",
        "quadrants",
        "--data-dir",
        str(folder),
        "--device",
        "cpu",
        "--batch-size",
        "32",
        "--augment",
        "none",
        "--lr",
        "0.003",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}


@pytest.mark.postgres
def test_two_workers_share_a_postgresql_study(tmp_path, folder, data_cache):
    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    url = server.get_uri()
    extra = ("--trials", "8", "--epochs", "2", "--arg", "widths=4,8,8")
    # two "machines": separate processes and output directories, the same --storage and --study
    workers = [
        subprocess.Popen(
            search_command(folder, tmp_path / f"machine{i}", url, "shared", *extra),
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=240)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=open_storage(url))
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))
    # nothing lost: every trial finished; the study reached its 8 (a worker mid-trial may add one)
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert 8 <= len(trials) <= 9
    # nothing duplicated: one owner per architecture, every other proposal of it a recorded duplicate
    owners = [t for t in trials if t.user_attrs["dedup"] == "owner"]
    assert len({t.user_attrs["arch"] for t in owners}) == len(owners)
    for t in trials:
        if t.user_attrs["dedup"] == "duplicate":
            owner = study.trials[t.user_attrs["duplicate_of"]]
            assert owner.user_attrs["arch"] == t.user_attrs["arch"] and "epochs_done" not in t.user_attrs
    # both workers took part, and each trained architecture has one run, trained once
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    runs = [r for i in range(2) for r in (tmp_path / f"machine{i}" / "trials").iterdir()]
    assert len(runs) == len(owners)
    for run in runs:
        epochs = [e["epoch"] for e in json.loads((run / "history.json").read_text())["epochs"]]
        assert epochs in ([1], [1, 2])


@pytest.mark.slow
def test_killed_worker_trial_resumes_from_its_checkpoint(tmp_path, folder, data_cache):
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    out = tmp_path / "study"
    command = search_command(
        folder,
        out,
        url,
        "killed",
        "--trials",
        "1",
        "--epochs",
        "4",
        "--arg",
        "widths=16,32,32",
        "--heartbeat",
        "1",
        "--grace",
        "2",
    )
    worker = subprocess.Popen(command, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    storage_seen = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.05)
        try:
            storage_seen = storage_seen or open_storage(url)
            study = optuna.load_study(study_name="killed", storage=storage_seen)
        except (KeyError, ValueError, optuna.exceptions.StorageInternalError):
            continue  # not created yet
        running = study.get_trials(states=(TrialState.RUNNING,))
        if running and running[0].user_attrs.get("epochs_done", 0) >= 1:
            os.kill(worker.pid, signal.SIGKILL)
            break
    worker.wait(30)
    assert worker.returncode == -signal.SIGKILL, "the worker finished before it could be killed mid-trial"
    killed = study.get_trials()[0]
    assert killed.state == TrialState.RUNNING and 1 <= killed.user_attrs["epochs_done"] < 4

    resumed = subprocess.run(command + ["--resume"], env=environment(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (
        f"retried interrupted trial(s) [{killed.number}]" in resumed.stdout or "resumed after epoch" in resumed.stdout
    )
    study = optuna.load_study(study_name="killed", storage=open_storage(url))
    assert study.trials[killed.number].state == TrialState.FAIL  # its heartbeat stopped: marked failed
    retry = [t for t in study.get_trials() if t.user_attrs.get("retry_of") == killed.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    r = retry[0].user_attrs
    assert r["arch"] == killed.user_attrs["arch"] and r["dedup"] == "owner"
    assert r["resumed_from_epoch"] >= killed.user_attrs["epochs_done"] >= 1  # started after epoch 1, not from scratch
    assert r["epochs_done"] == 4 and len(r["val_acc"]) == 4
    history = json.loads((Path(r["run_dir"]) / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4]  # each epoch trained once across both attempts
    assert sorted(retry[0].intermediate_values) == [1, 2, 3, 4]
