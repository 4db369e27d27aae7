"""`make run`'s own command line (read from the Makefile through `make main-job`), run end to
end with smoke-sized overrides: the same experiment, case, preset and output layout, on 200
training and 100 validation images for 2 epochs."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from cnnlab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def main_job(run_dir: Path) -> list[str]:
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "main-job", f"RUN_DIR={run_dir}"], capture_output=True, text=True, check=True
    )
    return shlex.split(done.stdout.strip())


@pytest.mark.slow
def test_the_main_job_runs_end_to_end_and_resumes(tmp_path, capsys):
    assert (ROOT.parent / "shared" / "datasets").is_dir(), "the main job trains on ../shared/datasets (CIFAR-10)"
    out = tmp_path / "make-run"
    argv = main_job(out)
    assert argv[:2] == ["reproduce", "convtypes"] and "--out" in argv
    smoke = argv + ["--epochs", "2", "--limit-train", "200", "--limit-val", "100", "--device", "cpu", "--quiet"]
    assert main(smoke) == 0
    printed = capsys.readouterr().out
    assert "77.36%" in printed  # the article's figure beside ours
    result = json.loads((out / "results.json").read_text())
    (row,) = result["rows"]
    assert row["epochs"] == 2 and 0.0 <= row["best_val_acc"] <= 1.0
    for name in ("results.md", "results.csv", "comparison.png", "curves_case2.png"):
        assert (out / name).is_file(), name
    assert str(out) in printed  # where the curves were written
    assert main(smoke) == 0  # the fixed directory: a rerun finds the finished case and trains nothing
    assert "finished earlier, skipped" in capsys.readouterr().out
