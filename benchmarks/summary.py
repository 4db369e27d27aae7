"""How long `cnnlab summary` takes for every zoo model, next to fvcore's operator count.

    .venv/bin/python benchmarks/summary.py [PATTERN] [--threads 2]

Columns: wall time of the whole command `cnnlab summary NAME` (a fresh process: Python and
torch start-up included, which is what a user waits for); in-process `model_summary` on the
meta device (what the command does after start-up); and, as the peer, fvcore's
`FlopCountAnalysis(...).by_operator()` on the real model (build + trace), with the ratio.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
import warnings
from datetime import date

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pattern", nargs="?", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from fvcore.nn import FlopCountAnalysis

    import cnnlab
    from cnnlab.analysis.summary import model_summary
    from cnnlab.models import get_model_entry

    print(f"# {date.today()}  {platform.machine()}  torch {torch.__version__}  threads {args.threads}")
    print(
        "| model | input | `cnnlab summary` (s, whole command) | model_summary in-process (s) | fvcore build+count (s) | fvcore / in-process |"  # noqa: E501 (a table row / command line kept whole)
    )
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for name in cnnlab.list_models(args.pattern):
        entry = get_model_entry(name)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cnnlab", "summary", name], check=True, capture_output=True)
        command = time.perf_counter() - start
        worst = max(worst, command)
        start = time.perf_counter()
        model_summary(name)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cnnlab.create_model(name).eval()
            counter = FlopCountAnalysis(model, torch.zeros(1, *entry.input_size))
            counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            counter.by_operator()
        peer = time.perf_counter() - start
        size = "x".join(map(str, entry.input_size))
        print(f"| {name} | {size} | {command:.2f} | {ours:.3f} | {peer:.2f} | {peer / ours:.1f}x |", flush=True)
    print(f"\nslowest `cnnlab summary`: {worst:.2f} s")


if __name__ == "__main__":
    main()
