"""A local worker that dies does not hide the study's result when the others finished it, and
workers never outlive the command that started them (even one killed with SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from cnnlab.cli import main
from cnnlab.search import run as run_module

ARGS = [
    "search",
    "modules",
    "--objective",
    "error+params",
    "--preset",
    "smoke",
    "--trials",
    "2",
    "--epochs",
    "1",
    "--arg",
    "widths=4,8,8",
    "--dataset",
    "quadrants",
    "--device",
    "cpu",
    "--workers",
    "2",
    "--quiet",
]


def one_survivor(finishes: bool):
    """Stand-in for the worker processes: one worker runs (in this process) and, if ``finishes``,
    completes the study; the other 'died'."""

    def run(settings, url, name, seeds, logs):
        if finishes:
            from cnnlab.search.worker import run_worker

            run_worker(settings, url, name, seeds[0])
        return ["cnnlab-search-worker-1 (exit code -9)"]

    return run


@pytest.mark.slow
def test_the_report_stands_when_the_survivors_finish(folder, data_cache, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_module, "_run_processes", one_survivor(finishes=True))
    assert main(ARGS + ["--data-dir", str(folder), "--out", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    assert "rank  layers" in printed and "wall time" in printed  # the report
    assert "note: worker(s) cnnlab-search-worker-1 (exit code -9) stopped with an error" in printed
    assert (tmp_path / "s" / "trials.csv").exists()


@pytest.mark.slow
def test_an_unfinished_study_with_a_dead_worker_is_one_line(folder, data_cache, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_module, "_run_processes", one_survivor(finishes=False))
    with pytest.raises(SystemExit) as stop:
        main(ARGS + ["--data-dir", str(folder), "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert "stopped with an error before the study finished" in err and "--resume" in err


CHILD = (
    "import os, sys, time\n"
    "from cnnlab.search.worker import follow_parent\n"
    "follow_parent(int(sys.argv[1]))\n"
    "print(os.getpid(), flush=True)\n"
    "time.sleep(120)\n"
)
PARENT = (
    "import os, subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', sys.argv[1], str(os.getpid())])\n"
    "time.sleep(120)\n"
)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_ends_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert alive(child)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child), "the worker outlived its killed parent"
