import atexit
import os
import shutil
import tempfile

import pytest

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


@pytest.fixture()
def mount_tmpfs(tmp_path):
    """``mount_tmpfs(size)``: a directory on a tmpfs of ``size`` ("2m", "4m"), a real disk that
    fills up; unmounted after the test. Mounting needs root (CAP_SYS_ADMIN); where it is not
    allowed the test is skipped, and says why."""
    import subprocess

    mounts = []

    def mount(size: str):
        path = tmp_path / f"tmpfs-{len(mounts)}"
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): the disk-full test needs root")
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        subprocess.run(["umount", str(path)], check=False)
