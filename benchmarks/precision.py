"""Training throughput in fp32 and under bf16 autocast, side by side in one run, for the nets of
the articles' rows (what precision ``auto`` chooses between on a CPU).

    .venv/bin/python benchmarks/precision.py [--threads 2] [--steps 6] [--rounds 2]

One optimizer step = forward, loss, backward, SGD step, batch 128 at 32x32, channels_last, as
``fit`` runs it. fp32 and bf16 alternate (``--rounds`` times) so that a machine that gets busier
during the run hurts both alike; the best step after two warm-up steps is reported, with the ratio.
A CPU with AVX-512 BF16 or AMX computes bf16 natively; an AVX2-only CPU emulates it, slower than fp32.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from cnnlab.models import create_model

NETS = [
    ("article 000 case 1/2 (k=16)", "densenet_cifar", {"growth_rate": 16, "blocks": (1, 2, 4, 3)}),
    ("article 000 case 3 (k=32)", "densenet_cifar", {"growth_rate": 32, "blocks": (1, 2, 4, 3)}),
    ("article 001 depthwise net", "convtype_cifar", {"conv": "depthwise"}),
    ("article 001 separable net", "convtype_cifar", {"conv": "separable"}),
]


def images_per_s(model: torch.nn.Module, bf16: bool, steps: int, batch: int = 128) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return batch / min(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    flags = open("/proc/cpuinfo").read() if platform.system() == "Linux" else ""
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    print(
        f"torch {torch.__version__}, {args.threads} threads, {platform.machine()}; "
        f"native bf16: {', '.join(native) or 'no'}"
    )
    print("| net | fp32 img/s | bf16 img/s | bf16 / fp32 |\n|---|---|---|---|")
    for label, name, kwargs in NETS:
        torch.manual_seed(0)
        model = create_model(name, **kwargs).to(memory_format=torch.channels_last).train()
        best = {False: 0.0, True: 0.0}
        for _ in range(args.rounds):
            for bf16 in (False, True):
                best[bf16] = max(best[bf16], images_per_s(model, bf16, args.steps))
        print(f"| {label} | {best[False]:.0f} | {best[True]:.0f} | {best[True] / best[False]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
