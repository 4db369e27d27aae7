import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .browser import browser  # noqa: F401 -- the Chromium fixture, for every test that asks for it

# Keras is our reference implementation; it must run on its torch backend. Set before any
# test module imports keras.
os.environ.setdefault("KERAS_BACKEND", "torch")

if not os.environ.get("CNNLAB_DATA"):
    # Decoded datasets go to a cache of this test session (inherited by the xdist workers), not
    # the user's ~/.cache/cnnlab; removed when the session ends.
    os.environ["CNNLAB_DATA"] = tempfile.mkdtemp(prefix="cnnlab-test-cache-")
    atexit.register(shutil.rmtree, os.environ["CNNLAB_DATA"], True)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One intra-op thread per xdist worker: `make test` runs one worker per core, and
    # oversubscribed cores make every convolution slower.
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """A test that uses the ``browser`` fixture (tests/browser.py: Chromium under Selenium) is
    marked ``browser``, so ``make test-quick`` leaves it out (markers: pyproject.toml)."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


def can_mount_tmpfs() -> bool:
    """Whether this process may mount a tmpfs (root, CAP_SYS_ADMIN): tried once, on a tiny one."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = tempfile.mkdtemp(prefix="cnnlab-tmpfs-probe-")
    try:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], capture_output=True).returncode:
            return False
        subprocess.run(["umount", probe], check=False)
        return True
    finally:
        os.rmdir(probe)


# The kinds of small disk the disk-full tests run on: a simulated one everywhere (tests/simulated_disk.py),
# and a real tmpfs too where this process may mount one.
SMALL_DISKS = ["simulated", "tmpfs"] if can_mount_tmpfs() else ["simulated"]


@pytest.fixture()
def mount_tmpfs(tmp_path):
    """``mount_tmpfs(size)``: a directory on a tmpfs of ``size`` ("2m", "4m"), a real disk that
    fills up; unmounted after the test. Mounting needs root (CAP_SYS_ADMIN); where it is not
    allowed the test is skipped, and says why."""
    mounts = []

    def mount(size: str):
        path = tmp_path / f"tmpfs-{len(mounts)}"
        path.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(
                f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): this test needs root "
                "(a read-only remount; the disk-full tests also run on a simulated disk, make_small_disk)"
            )
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        subprocess.run(["umount", str(path)], check=False)


@pytest.fixture(params=SMALL_DISKS)
def make_small_disk(request, tmp_path, monkeypatch, mount_tmpfs):
    """``make_small_disk(size)``: a directory on a disk of ``size`` ("2m": MiB) that fills up, where
    a write that does not fit fails with ENOSPC. Each test using it runs on a simulated disk
    (no root needed) and, where this process may mount one, on a real tmpfs."""
    from .simulated_disk import SimulatedDisk

    def make(size: str) -> Path:
        if request.param == "tmpfs":
            return mount_tmpfs(size)
        path = tmp_path / "simulated-disk"
        path.mkdir()
        SimulatedDisk(path, int(size.removesuffix("m")) * 2**20).install(monkeypatch)
        return path

    return make
