"""What a decode or a run needs, checked before it is allocated: memory (``/proc/meminfo``'s
MemAvailable, else ``os.sysconf``) and disk space, refused with both figures."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from .errors import DataError


def size(n: float) -> str:
    """Bytes for people: ``512 B``, ``3.2 MiB``, ``65.2 GiB``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get without swapping (MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: int, what: str, hint: str = "") -> None:
    """Refuse (:class:`DataError`) when ``needed`` bytes exceed the available memory: ``what``
    needs them (e.g. "decoding one image at image_size 100000x100000"); ``hint``: what to change."""
    available = available_memory()
    if available is not None and needed > available:
        raise DataError(
            f"{what} needs about {size(needed)} of memory; {size(available)} are available"
            + (f" -- {hint}" if hint else "")
        )


def free_disk(path: Path) -> int:
    """Free bytes on the disk that holds ``path`` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_disk(path: Path, needed: int, what: str) -> None:
    """Refuse (``OSError`` ENOSPC) when ``what`` needs more than the free space at ``path``."""
    free = free_disk(path)
    if needed > free:
        raise OSError(
            errno.ENOSPC,
            f"{what} needs about {size(needed)} on {path}, {size(free)} are free; "
            "free some space, or set CNNLAB_DATA to a folder on a larger disk",
        )


def disk_full(path: Path, what: str) -> OSError:
    """A full disk's bare ``[Errno 28]`` as an ``OSError`` naming ``path`` and the free space left."""
    return OSError(
        errno.ENOSPC,
        f"no space left on device writing {what} {path} ({size(free_disk(path))} free); "
        "free some space, or set CNNLAB_DATA to a folder on a larger disk",
    )


def batch_bytes(image_size: tuple[int, int], batch_size: int) -> int:
    """The input tensors of one training step: the uint8 batch read (``b x H x W x 3``) and two
    float32 copies of it (the input and its augmented view); the model's activations come on top."""
    height, width = image_size
    return batch_size * height * width * (3 + 2 * 3 * 4)


def check_batch(image_size: tuple[int, int], batch_size: int) -> None:
    """Refuse a batch whose input tensors alone exceed the available memory (for the trainer, before step 1)."""
    check_memory(
        batch_bytes(image_size, batch_size),
        f"a batch of {batch_size} images of {image_size[0]}x{image_size[1]}",
        "pass a smaller batch_size or image_size",
    )
