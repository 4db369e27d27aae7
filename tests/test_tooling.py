"""The project's own tooling: one version, a typed package, pytest's markers and time limit as
pyproject.toml sets them, and the small disk the disk-full tests run on."""

from __future__ import annotations

import errno
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import cnnlab

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cnnlab.version.__version__"}
    assert importlib.metadata.version("cnnlab") == cnnlab.__version__


def test_the_package_says_it_is_typed():
    assert (ROOT / "src" / "cnnlab" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["cnnlab"]


def run_pytest(tmp_path: Path, source: str, *options: str) -> subprocess.CompletedProcess:
    """pytest on one test file, configured by this project's pyproject.toml."""
    test = tmp_path / "test_probe.py"
    test.write_text(source)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(tmp_path),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-q",
        *options,
        str(test),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_a_mistyped_marker_is_an_error_and_the_registered_ones_select(tmp_path):
    mistyped = run_pytest(tmp_path, "import pytest\n\n@pytest.mark.slwo\ndef test_x():\n    pass\n")
    assert mistyped.returncode != 0
    assert "'slwo' not found in `markers` configuration option" in mistyped.stdout
    kinds = ("slow", "browser", "postgres", "distributed", "interop")
    marked = "import pytest\n\n" + "".join(f"@pytest.mark.{k}\ndef test_{k}():\n    pass\n\n" for k in kinds)
    marked += "def test_plain():\n    pass\n"
    # `make test-quick`'s selection, as the Makefile writes it
    [quick_marks] = [
        line.split("?=", 1)[1].strip()
        for line in (ROOT / "Makefile").read_text().splitlines()
        if line.startswith("QUICK ?=")
    ]
    quick = run_pytest(tmp_path, marked, "-m", quick_marks)
    assert quick.returncode == 0 and "1 passed, 5 deselected" in quick.stdout, quick.stdout


def test_a_hung_test_fails_at_the_time_limit(tmp_path):
    assert PYPROJECT["tool"]["pytest"]["ini_options"]["timeout"] == 300
    hung = run_pytest(tmp_path, "import time\n\ndef test_hangs():\n    time.sleep(60)\n", "-o", "timeout=2")
    assert hung.returncode != 0 and "Timeout" in hung.stdout + hung.stderr, hung.stdout[-2000:]


def test_the_small_disk_fills_up_like_a_disk(make_small_disk):
    """tests/conftest.py's small disk (simulated; a tmpfs too where root): a write that does not
    fit writes what fits and fails with ENOSPC, and the free space says so."""
    disk = make_small_disk("2m")
    assert shutil.disk_usage(disk).total <= 2 * 2**20
    (disk / "a").write_bytes(b"\0" * 2**20)
    with pytest.raises(OSError) as full:
        with open(disk / "b", "wb") as f:
            f.write(b"\0" * 2 * 2**20)
    assert full.value.errno == errno.ENOSPC
    assert 0 < os.path.getsize(disk / "b") <= 2**20 and shutil.disk_usage(disk).free < 64 * 1024
    (disk / "b").unlink()
    assert shutil.disk_usage(disk).free > 2**19  # the space is back
