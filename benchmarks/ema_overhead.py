"""What ``--ema`` costs per optimizer step: a CIFAR-sized training step (channels_last, SGD with
Nesterov, cross-entropy, the trainer's own order of calls) with and without the EMA update, the
update alone (``torch._foreach_lerp_`` over the parameters + ``torch._foreach_copy_`` of the
buffers, as ``cnnlab.train.ema.ModelEma`` does), and a per-tensor Python loop for comparison.

    .venv/bin/python benchmarks/ema_overhead.py [--model convtype_cifar --arg conv=depthwise]
        [--batch 128] [--device cpu]

Every figure is the median of ``--repeats`` timings of ``--steps`` steps after ``--warmup`` steps
(CUDA: synchronised before each clock read).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from cnnlab.models import create_model
from cnnlab.models.arguments import parse_model_args
from cnnlab.train.ema import ModelEma


def _clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _median_ms(fn, steps: int, repeats: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        start = _clock(device)
        for _ in range(steps):
            fn()
        runs.append((_clock(device) - start) / steps * 1e3)
    return statistics.median(runs)


def naive_update(ema: ModelEma) -> None:
    """The per-tensor loop an EMA is often written as (one kernel per tensor and per op)."""
    with torch.no_grad():
        d = ema.decay_now()
        for e, p in zip(ema.module.parameters(), ema.live.parameters()):
            e.mul_(d).add_(p, alpha=1 - d)
        for e, b in zip(ema.module.buffers(), ema.live.buffers()):
            e.copy_(b)
        ema.updates += 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="convtype_cifar")
    p.add_argument(
        "--arg", action="append", default=None, help="model keyword (default conv=depthwise for convtype_cifar)"
    )
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    device = torch.device(args.device)
    model_args = parse_model_args(
        args.arg if args.arg is not None else (["conv=depthwise"] if args.model == "convtype_cifar" else [])
    )
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10, **model_args).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.rand(args.batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,), device=device)
    ema = ModelEma(model, 0.999)
    dtype = torch.bfloat16 if args.precision == "bf16" else None

    def step(update=None) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if update is not None:
            update()

    timing = dict(steps=args.steps, repeats=args.repeats, warmup=args.warmup, device=device)
    plain = _median_ms(step, **timing)
    fused = _median_ms(lambda: step(ema.update), **timing)
    alone = _median_ms(ema.update, **timing)
    loop = _median_ms(lambda: naive_update(ema), **timing)
    params = sum(t.numel() for t in model.parameters())
    tensors = len(list(model.parameters())) + len(list(model.buffers()))
    name = f"{args.model}({', '.join(f'{k}={v}' for k, v in model_args.items())})"
    print(
        f"{name}: {params:,} parameters in {tensors} tensors (with buffers); batch {args.batch}, {args.precision}, "
        f"{device} "
        f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'})"
    )
    print(f"training step without EMA   {plain:8.3f} ms")
    print(
        f"training step with EMA      {fused:8.3f} ms  (+{fused - plain:.3f} ms, {100 * (fused - plain) / plain:+.1f}%)"
    )
    print(f"EMA update alone (foreach)  {alone:8.3f} ms  ({100 * alone / plain:.1f}% of a step)")
    print(f"EMA update, per-tensor loop {loop:8.3f} ms  ({loop / alone:.1f}x the foreach update)")


if __name__ == "__main__":
    main()
