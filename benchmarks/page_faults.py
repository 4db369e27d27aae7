"""Page faults per training step with and without ``keep_freed_memory()`` (cnnlab/train/host.py).

    .venv/bin/python benchmarks/page_faults.py [--threads 2]

glibc as it comes serves every large activation with a fresh ``mmap``, so the kernel faults in
and zeroes its pages again every step; with the allocator tuned, once the heap has grown to the
step's working size almost nothing new is mapped. Each configuration runs in a fresh
interpreter (``mallopt`` changes the whole process for good) and the quietest of three steps
after five warm-up steps is reported, with the ratio of the two. This was a unit test until it
had to be retuned twice for loaded machines: a measurement, so it lives here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

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


def measure(tuning: str | None, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CNNLAB_MALLOC_TUNING"}
    if tuning is not None:
        env["CNNLAB_MALLOC_TUNING"] = tuning
    script = SCRIPT.replace("torch.set_num_threads(2)", f"torch.set_num_threads({threads})")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    tuned, untuned = measure(None, args.threads), measure("0", args.threads)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads, "
        f"glibc {platform.libc_ver()[1]}"
    )
    print(
        f"densenet_cifar, batch 128, page faults per step: glibc as it comes {untuned['faults_per_step']:,}, "
        f"tuned {tuned['faults_per_step']:,} (allocator {tuned['state']!r} / {untuned['state']!r}); "
        f"ratio {untuned['faults_per_step'] / max(1, tuned['faults_per_step']):.0f}x"
    )


if __name__ == "__main__":
    main()
