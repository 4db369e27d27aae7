"""train/host.py: keep_freed_memory() tunes glibc's allocator once per process (and says so
when asked again); CNNLAB_MALLOC_TUNING=0 leaves glibc alone. What the tuning is worth in page
faults per training step is measured by ``benchmarks/page_faults.py`` (docs/benchmarks.md).

Each case runs in a fresh interpreter: mallopt changes the whole process for good."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .helpers import glibc

SCRIPT = """
import json
from cnnlab.train.host import keep_freed_memory
print(json.dumps({"state": keep_freed_memory(), "again": keep_freed_memory()}))
"""


def run(env_value: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CNNLAB_MALLOC_TUNING"}
    if env_value is not None:
        env["CNNLAB_MALLOC_TUNING"] = env_value
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@glibc
def test_the_allocator_is_tuned_once_unless_the_environment_says_no():
    tuned, untuned = run(None), run("0")
    assert (tuned["state"], tuned["again"]) == ("tuned", "tuned")
    assert (untuned["state"], untuned["again"]) == ("off", "off")
