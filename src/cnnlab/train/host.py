"""The host allocator: keep freed memory in the process instead of handing it back to the OS.

A CPU training step allocates and frees the same few dozen large activation buffers (tens of
MB each) every step. glibc serves every block above its mmap threshold (at most 32 MiB, and
as low as 128 KiB) with a fresh ``mmap`` and returns it with ``munmap``, so each step pays for
the kernel zeroing those pages again on first touch: on the 2-core CI machine that was a third
of a ``densenet_cifar`` step (314 -> 520 images/s once it stopped, ``benchmarks/training.py``).
jemalloc or tcmalloc preloaded with ``LD_PRELOAD`` cure it the same way, which is what PyTorch's
CPU performance guide advises; asking glibc itself needs nothing installed.

``keep_freed_memory()`` turns glibc's ``mmap`` use off and its heap trimming off for this
process (``mallopt``), so freed blocks are reused by the next step. The price is resident
memory that stays at its peak (1.12 GB instead of 0.84 GB for the step above), for the whole
process and for good: so ``fit`` does it only when asked. cnnlab's training commands ask
(``cnnlab train``, ``reproduce``, ``search``, ``finetune``); a Python caller asks with
``tune_allocator()``; ``CNNLAB_MALLOC_TUNING=0`` in the environment says no to both, ``=1``
asks. Elsewhere than glibc (macOS, musl, Windows) it does nothing.

    from cnnlab.train import fit, tune_allocator
    tune_allocator()  # CPU runs of this process (and of those it starts) keep freed memory
    fit(model, data, config, "runs/x")
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

import torch

ENV = "CNNLAB_MALLOC_TUNING"
YES, NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1

_state: str | None = None  # what the last call found or did, for run records


def tune_allocator() -> None:
    """Ask for the tuning: from now on, ``fit`` on the CPU has glibc keep freed memory (the first
    such run switches it, for the whole process and for good). What the cnnlab command does for
    its training commands. It is said in the environment (``CNNLAB_MALLOC_TUNING=1``), so the
    processes this one starts (search workers, torchrun ranks) ask too; ``CNNLAB_MALLOC_TUNING=0``
    set beforehand wins."""
    os.environ.setdefault(ENV, "1")


def allocator_state() -> str:
    """What this process's allocator is: ``"default"`` (glibc's own settings: nothing asked for
    the tuning), or what ``keep_freed_memory`` found or did."""
    return _state or "default"


def tune_for_training(device: torch.device) -> str | None:
    """What ``fit`` calls: on the CPU, keep freed memory if asked (``tune_allocator``, or the
    environment); the allocator's state, for the run's record (None off the CPU)."""
    asked = _setting()
    if device.type != "cpu":
        return None
    return keep_freed_memory() if asked is not None else allocator_state()


def keep_freed_memory() -> str:
    """Stop glibc from returning freed memory to the OS (once per process); says what was done.

    One of ``"tuned"`` (this call or an earlier one switched it), ``"off"`` (``CNNLAB_MALLOC_TUNING=0``),
    ``"unsupported"`` (not glibc) or ``"failed"`` (``mallopt`` refused).
    """
    global _state
    if _state == "tuned":
        return _state
    if _setting() is False:
        _state = "off"
    elif not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        _state = "unsupported"
    else:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, _INT_MAX) == 1
        _state = "tuned" if ok else "failed"
    return _state


def _setting() -> bool | None:
    """``CNNLAB_MALLOC_TUNING``: True (asked), False (refused) or None (not set)."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return None
    if value in YES or value in NO:
        return value in YES
    raise ValueError(
        f"{ENV} must be 1 (keep freed memory for the next training step) or 0 (leave glibc's "
        f"allocator alone), got {os.environ[ENV]!r}"
    )
