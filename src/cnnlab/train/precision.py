"""The precision a run computes in (``TrainConfig.precision``): what ``auto`` resolves to on a
device, the autocast context of each forward pass, and the gradient scaler fp16 needs on CUDA."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 where the device computes it natively (CUDA with bf16, or a CPU with
    AVX-512 BF16 / AMX), else fp32 (emulated bf16 is slower than fp32 on an AVX2 CPU)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"


def autocast_for(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """What each forward pass runs in for a resolved ``precision``: ``torch.autocast`` to its
    dtype, or nothing for fp32. Called anew for each pass: ``with autocast_for(p, d)(): ...``."""
    dtype = DTYPES[precision]
    return (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """The gradient scaler of a run: active for fp16 on CUDA (``auto`` resolved first), a no-op otherwise."""
    enabled = resolve_precision(precision, device) == "fp16" and device.type == "cuda"
    return torch.amp.GradScaler(device.type, enabled=enabled)
