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
memory that stays at its peak (1.12 GB instead of 0.84 GB for the step above). ``fit`` calls
it for CPU runs; ``CNNLAB_MALLOC_TUNING=0`` in the environment leaves the allocator alone.
Elsewhere than glibc (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

ENV = "CNNLAB_MALLOC_TUNING"
M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1

_state: str | None = None  # what the last call found or did, for run records


def keep_freed_memory() -> str:
    """Stop glibc from returning freed memory to the OS (once per process); says what was done.

    One of ``"tuned"`` (this call or an earlier one switched it), ``"off"`` (``CNNLAB_MALLOC_TUNING=0``),
    ``"unsupported"`` (not glibc) or ``"failed"`` (``mallopt`` refused).
    """
    global _state
    if _state == "tuned":
        return _state
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        _state = "off"
    elif not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        _state = "unsupported"
    else:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, _INT_MAX) == 1
        _state = "tuned" if ok else "failed"
    return _state
