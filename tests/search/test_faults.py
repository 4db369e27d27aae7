"""Searches that would go wrong stop early and say why in one line (issue 24): bad fixed model
arguments, trials that keep failing, other training options in a used study directory, a report
on something that is not a study (read, never written), a bad --top, Ctrl-C and SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cnnlab.cli import main
from cnnlab.search import Objective, SearchSettings
from cnnlab.search import worker as worker_module
from cnnlab.search.report import table
from cnnlab.search.run import run_search
from cnnlab.train import TrainConfig

TRAIN = TrainConfig(epochs=1, batch_size=32, lr=3e-3, augment="none", device="cpu", seed=0)
SMOKE = [
    "--preset",
    "smoke",
    "--epochs",
    "1",
    "--arg",
    "widths=4,8,8",
    "--dataset",
    "quadrants",
    "--device",
    "cpu",
    "--quiet",
]


def settings(tmp_path, trials=3, train=TRAIN, model_args=None, out="study"):
    return SearchSettings(
        space="modules",
        objective=Objective("error"),
        train=train,
        model_args=model_args or {"widths": (4, 8, 8)},
        trials=trials,
        out=str(tmp_path / out),
        heartbeat=2,
    )


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# 1. bad fixed model arguments fail before trial 1; trials that keep failing stop the study


class Runaway(BaseException):
    """Raised once a study has gone on far too long (so a test of today's code fails instead of hanging)."""


def guarded(run_training, calls: list[int], limit: int = 8):
    def run(*args, info=None, **kwargs):
        calls.append(info["trial"])
        if len(calls) > limit:
            raise Runaway(f"{len(calls)} trials ran and the study still goes on")
        return run_training(*args, info=info, **kwargs)

    return run


def test_a_bad_fixed_argument_fails_before_the_study_exists(tmp_path, folder, data_cache, splits, capsys, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(worker_module, "run_training", guarded(worker_module.run_training, calls))
    out = tmp_path / "s"
    with pytest.raises(SystemExit) as stop:
        main(["search", "modules", *SMOKE, "--arg", "layers=foo", "--data-dir", str(folder), "--out", str(out)])
    err = one_error_line(capsys)
    assert stop.value.code == 2
    assert "fixed model argument layers='foo' does not build modulenet_cifar" in err
    assert "must be one of ['conv', 'depthwise', 'separable'], got 'foo'" in err
    assert not (out / "study.db").exists() and calls == []
    with pytest.raises(ValueError, match=r"fixed model argument layers=\('conv', 'conv'\) does not build"):
        run_search(
            settings(tmp_path, model_args={"widths": (4, 8, 8), "layers": ("conv", "conv")}), quiet=True, data=splits
        )
    assert not (tmp_path / "study" / "study.db").exists() and calls == []


def failing_training(calls: list[int], message: str = "out of memory (fake)"):
    def run_training(*args, info=None, **kwargs):
        calls.append(info["trial"])
        if len(calls) > 8:
            raise Runaway(f"{len(calls)} trials failed and the study still goes on")
        raise RuntimeError(message)

    return run_training


def test_trials_failing_for_the_same_reason_stop_the_study(tmp_path, splits, monkeypatch):
    from cnnlab.search.guards import SearchStopped

    calls: list[int] = []
    monkeypatch.setattr(worker_module, "run_training", failing_training(calls))
    with pytest.raises(SearchStopped) as stopped:
        run_search(settings(tmp_path, trials=20), quiet=True, data=splits)
    message = str(stopped.value)
    assert (
        "\n" not in message
        and "3 trials in a row failed" in message
        and "RuntimeError: out of memory (fake)" in message
    )
    assert len(calls) == 3
    study = optuna.load_study(study_name="modules-error", storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL] * 3
    # Optuna's traceback of each failed trial is in the worker's log, not on the terminal
    log = next((tmp_path / "study" / "logs").glob("worker-*.log")).read_text()
    assert log.count("Traceback") == 3 and "out of memory (fake)" in log


def test_a_failing_search_is_one_line_and_a_nonzero_exit(tmp_path, folder, data_cache, capsys, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(worker_module, "run_training", failing_training(calls, "disk on fire"))
    with pytest.raises(SystemExit) as stop:
        main(["search", "modules", *SMOKE, "--trials", "20", "--data-dir", str(folder), "--out", str(tmp_path / "s")])
    err = one_error_line(capsys)
    assert stop.value.code == 2 and "3 trials in a row failed with the same error: RuntimeError: disk on fire" in err
    assert len(calls) == 3


# 2. --top


@pytest.mark.parametrize("top", ["0", "-1", "x"])
def test_top_must_be_a_positive_number_of_rows(top, tmp_path, capsys):
    for command in (["search", "report", str(tmp_path)], ["search", "modules", "--out", str(tmp_path / "s")]):
        with pytest.raises(SystemExit) as stop:
            main([*command, "--top", top])
        assert stop.value.code == 2
        assert f"--top must be a positive number of rows, got {top}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before any work
    with pytest.raises(ValueError, match="top must be a positive int, got 0"):
        table([], settings(tmp_path), top=0)


# 3. another study with other training options in a study directory already used


def test_other_training_options_in_a_used_study_directory_are_refused(tmp_path, splits):
    run_search(settings(tmp_path, trials=1), quiet=True, data=splits)
    other = settings(tmp_path, trials=1, train=TRAIN.with_overrides(lr=0.01, batch_size=16))
    with pytest.raises(ValueError) as refused:
        run_search(other, study_name="other", quiet=True, data=splits)
    message = str(refused.value)
    assert "holds the trained runs of study 'modules-error'" in message
    assert "train.batch_size: 32 there, 16 here; train.lr: 0.003 there, 0.01 here" in message
    assert "another out directory" in message
    storage = f"sqlite:///{tmp_path / 'study' / 'study.db'}"
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["modules-error"]  # nothing created
    # the same options may share the directory: its runs are reused, not trained again
    again = run_search(settings(tmp_path, trials=1), study_name="again", quiet=True, data=splits).load()
    assert [t.state for t in again.get_trials()] == [TrialState.COMPLETE]


def test_a_directory_from_before_the_record_is_checked_against_its_studies(tmp_path, splits):
    run_search(settings(tmp_path, trials=1), quiet=True, data=splits)
    (tmp_path / "study" / "trial-options.json").unlink(
        missing_ok=True
    )  # as a study directory made before it was written
    other = settings(tmp_path, trials=1, train=TRAIN.with_overrides(epochs=2))
    with pytest.raises(
        ValueError, match=r"study 'modules-error', trained with other options \(train.epochs: 1 there, 2 here\)"
    ):
        run_search(other, study_name="other", quiet=True, data=splits)


# 4. a report reads; it never creates a file, a directory or Optuna's tables


def report_error(target: str, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main(["search", "report", target])
    assert stop.value.code == 2
    err = one_error_line(capsys)
    assert "sqlalchemy" not in err.lower() and "background on this error" not in err
    return err


def test_report_on_a_mistyped_url_creates_nothing(tmp_path, capsys):
    err = report_error(f"sqlite:///{tmp_path}/typo/study.db", capsys)
    assert f"no SQLite file {tmp_path}/typo/study.db" in err
    assert list(tmp_path.iterdir()) == []
    assert "no journal file" in report_error(f"journal:{tmp_path}/typo/journal.log", capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["empty", "unrelated", "garbage"])
def test_report_on_a_file_that_is_not_a_study_leaves_it_alone(kind, tmp_path, capsys):
    path = tmp_path / "some.db"
    if kind == "empty":
        path.touch()
    elif kind == "unrelated":
        with sqlite3.connect(path) as db:
            db.execute("create table notes (text)")
    else:
        path.write_bytes(b"this is not a database\n" * 100)
    before = path.read_bytes()
    err = report_error(f"sqlite:///{path}", capsys)
    expected = (
        "is not an SQLite database"
        if kind == "garbage"
        else "is not an Optuna study database (it has no studies, trials"
    )
    assert f"{path} {expected}" in err
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["some.db"]
    (tmp_path / "dir").mkdir()  # the same file as a study directory's study.db
    (tmp_path / "dir" / "study.db").write_bytes(before)
    assert expected in report_error(str(tmp_path / "dir"), capsys)
    assert (tmp_path / "dir" / "study.db").read_bytes() == before


def test_report_on_a_file_that_is_not_a_journal(tmp_path, capsys):
    path = tmp_path / "journal.log"
    path.write_bytes(bytes(range(256)) * 4)
    err = report_error(f"journal:{path}", capsys)
    assert f"{path} is not an Optuna journal file (UnicodeDecodeError" in err
    assert path.read_bytes() == bytes(range(256)) * 4


def test_report_on_an_unknown_kind_of_url(capsys):
    err = report_error("foo://somewhere/db", capsys)
    assert "unknown database kind 'foo' in 'foo://somewhere/db'" in err and "sqlite:///FILE" in err


# 5. Ctrl-C and SIGTERM: the trial is recorded as interrupted, one line says how to resume


def environment(data_cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CNNLAB_DATA": str(data_cache),
        "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
    }


def running_trials(db: Path) -> int:
    """Running trials in the study database, read without Optuna (which would create it)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            return connection.execute("select count(*) from trials where state = 'RUNNING'").fetchone()[0]
    except sqlite3.Error:  # tables not made yet, or the database busy
        return 0


def stop_mid_trial(command: list[str], env: dict[str, str], db: Path, signum: int) -> subprocess.CompletedProcess:
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    sent = False
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
        if running_trials(db):
            process.send_signal(signum)
            sent = True
            break
    out, err = process.communicate(timeout=60)
    assert sent, f"the search ended before a trial ran: {out}{err}"
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.slow
def test_interrupted_search_says_how_to_resume(signum, code, tmp_path, folder, data_cache):
    out = tmp_path / "s"
    command = [
        sys.executable,
        "-m",
        "cnnlab",
        "search",
        "modules",
        *SMOKE,
        "--epochs",
        "30",
        "--trials",
        "2",
        "--data-dir",
        str(folder),
        "--out",
        str(out),
    ]
    stopped = stop_mid_trial(command, environment(data_cache), out / "study.db", signum)
    assert stopped.returncode == code, stopped.stderr
    assert "Traceback" not in stopped.stderr and "KeyboardInterrupt" not in stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("cnnlab search: interrupted") and "the same command with --resume" in last
    study = optuna.load_study(study_name="modules-error", storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]  # recorded, so --resume retries it


# 6. Optuna's own warnings stay out of the output


def test_a_pareto_report_shows_no_optuna_warning(tmp_path, splits, capsys):
    s = SearchSettings(
        space="modules",
        objective=Objective("pareto"),
        train=TRAIN,
        model_args={"widths": (4, 8, 8)},
        trials=3,
        pruner="none",
        out=str(tmp_path / "study"),
        heartbeat=2,
    )
    run_search(s, quiet=True, data=splits)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["search", "report", str(tmp_path / "study")]) == 0
    assert [str(w.message) for w in caught if "optuna" in w.filename] == []
    assert capsys.readouterr().err == ""


def test_interrupts_wait_for_a_safe_point():
    from cnnlab.search.interrupts import Interrupts

    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as stop, Interrupts().installed() as interrupts:
        os.kill(os.getpid(), signal.SIGTERM)  # outside training (Optuna's bookkeeping): remembered, not raised
        time.sleep(0.05)
        assert interrupts.pending == signal.SIGTERM
        interrupts.check()  # the next safe point
    assert stop.value.args == (signal.SIGTERM,)
    with pytest.raises(KeyboardInterrupt), Interrupts().installed() as interrupts, interrupts.live_section():
        os.kill(os.getpid(), signal.SIGINT)  # inside training: at once
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is handler  # put back


def test_a_shortened_preset_keeps_its_warmup_share_in_a_search():
    """`search --preset fast --epochs 1` used to fail on fast's 2 warm-up epochs (longer than the run)."""
    from cnnlab.search.study import SearchSettings

    settings = SearchSettings.from_preset("fast", train={"epochs": 1}, out="unused")
    assert settings.train.epochs == 1 and settings.train.warmup_epochs == round(2 / 30, 4)
    given = SearchSettings.from_preset("fast", train={"epochs": 3, "warmup_epochs": 0.5}, out="unused")
    assert given.train.warmup_epochs == 0.5


def test_ctrl_c_before_the_search_starts_says_how_to_continue():
    """An interrupt caught by the CLI's own handler (while parsing or loading) names --resume for a
    search, and says that a report lost nothing."""
    import argparse

    from cnnlab.cli import continue_hint

    search = continue_hint(argparse.Namespace(command="search", space="modules"))
    assert "--resume" in search and "nothing was lost" in search
    assert (
        continue_hint(argparse.Namespace(command="search", space="report")) == "nothing was lost: a report only reads"
    )
