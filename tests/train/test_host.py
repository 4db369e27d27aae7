"""train/host.py: after keep_freed_memory(), training steps reuse the freed activations instead
of the kernel handing out (and zeroing) fresh pages; CNNLAB_MALLOC_TUNING=0 leaves glibc alone.

Each case runs in a fresh interpreter: mallopt changes the whole process for good."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, resource, torch
from cnnlab.models import create_model
from cnnlab.train.host import keep_freed_memory
state = keep_freed_memory()
torch.set_num_threads(2)
torch.manual_seed(0)
model = create_model("densenet_cifar").to(memory_format=torch.channels_last)
opt = torch.optim.Adam(model.parameters())
x = torch.rand(128, 3, 32, 32).to(memory_format=torch.channels_last)  # 33.5 MB activations: above glibc's
y = torch.randint(0, 10, (128,))                                       # largest dynamic mmap threshold
def step():
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
for _ in range(5):  # warm-up: the heap grows to its working size
    step()
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
# the quietest of three steps: a step that happens to grow the heap once more is not the steady state
print(json.dumps({"state": state, "again": keep_freed_memory(), "faults_per_step": min(faults)}))
"""

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
)


def run(env_value: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CNNLAB_MALLOC_TUNING"}
    if env_value is not None:
        env["CNNLAB_MALLOC_TUNING"] = env_value
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@glibc
def test_training_steps_reuse_freed_memory_instead_of_faulting_in_new_pages():
    tuned, untuned = run(None), run("0")
    assert (tuned["state"], tuned["again"]) == ("tuned", "tuned")
    assert (untuned["state"], untuned["again"]) == ("off", "off")
    # glibc as it comes: every large activation is a fresh mmap, each of its pages faulted in and
    # zeroed again every step (measured: ~110,000 faults per step, a third of the step's time)
    assert untuned["faults_per_step"] > 10_000, untuned
    # kept: once the heap has grown to the step's working size almost nothing new is mapped
    # (measured: 0 on a quiet machine, ~2,700 with the other test worker busy beside it)
    assert tuned["faults_per_step"] < untuned["faults_per_step"] / 20, (tuned, untuned)
