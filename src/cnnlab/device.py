"""Which device a run uses: one resolver for every command and library entry point.

``"auto"`` (the default everywhere) means the first CUDA device when PyTorch sees one, else
the CPU; ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` are taken as given, and asking for CUDA on a
machine without it is an error before any work starts.
"""

from __future__ import annotations

import platform

import torch

DEFAULT_DEVICE = "auto"


def resolve_device(name: str | torch.device = DEFAULT_DEVICE) -> torch.device:
    """The ``torch.device`` a device name stands for; ValueError for a CUDA device that is not there."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device={name!r}` asked for, but PyTorch sees no CUDA device; use `device='cpu'`")
    return device


def is_cpu(name: str | torch.device) -> bool:
    """Whether ``name`` resolves to the CPU (without failing on a missing GPU)."""
    if isinstance(name, torch.device):
        return name.type == "cpu"
    return name == "cpu" or (name == "auto" and not torch.cuda.is_available())


def device_name(device: torch.device) -> str:
    """A human name for results tables: the GPU's model, or the CPU's architecture and threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.machine()}, {torch.get_num_threads()} threads"


def spread_over_gpus(name: str, workers: int) -> list[str]:
    """The device of each of ``workers`` processes: one GPU each, in turn, where ``name`` means
    CUDA without an index (``auto`` or ``cuda``) and PyTorch sees several; else ``name`` for all."""
    if name not in ("auto", "cuda") or not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return [name] * workers
    return [f"cuda:{i % torch.cuda.device_count()}" for i in range(workers)]
