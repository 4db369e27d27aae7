"""A small disk that fills up, simulated in this process for tests that run without root.

A real small disk is a tmpfs (tests/conftest.py mounts one where it can: as root). Without root,
``SimulatedDisk(root, capacity).install(monkeypatch)`` makes a plain directory behave like a
disk of ``capacity`` bytes: its used space is the size of the files under it; a write that does
not fit writes what fits and then fails the way the kernel does, ``OSError(ENOSPC, "No space
left on device")``; and ``shutil.disk_usage`` reports its capacity and free space. What it
covers: every file opened for writing with ``open``/``io.open`` (so ``Path.write_bytes``,
matplotlib, PIL, numpy, ONNX export) and ``torch.save`` (whose C++ writer would bypass ``open``:
on this disk it is handed the file object instead). Not covered: writes by C code to a path
(``shutil.copyfile``'s sendfile, ``os.write`` on a raw descriptor).
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
from collections import namedtuple
from pathlib import Path

import torch

WRITING = set("wax+")
Usage = namedtuple("usage", "total used free")  # what shutil.disk_usage returns


class SimulatedDisk:
    def __init__(self, root: Path, capacity: int):
        self.root = Path(os.path.realpath(root))
        self.capacity = capacity

    def holds(self, file) -> bool:
        """Whether ``file`` (a path; not a descriptor or a file object) lies on this disk."""
        if not isinstance(file, (str, bytes, os.PathLike)):
            return False
        path = os.path.realpath(os.fsdecode(file))
        return path == str(self.root) or path.startswith(str(self.root) + os.sep)

    def used(self) -> int:
        return sum(os.lstat(os.path.join(top, name)).st_size for top, _, names in os.walk(self.root) for name in names)

    def free(self) -> int:
        return max(0, self.capacity - self.used())

    def install(self, monkeypatch) -> None:
        real_open, real_usage, real_save = builtins.open, shutil.disk_usage, torch.save

        def open_(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None):
            if not (self.holds(file) and WRITING & set(mode)):
                return real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
            raw = real_open(file, mode.replace("t", "").replace("b", "") + "b", 0, closefd=closefd, opener=opener)
            binary = _QuotaFile(self, raw)
            return binary if "b" in mode else io.TextIOWrapper(binary, encoding, errors, newline)

        def disk_usage(path):
            if not self.holds(path):
                return real_usage(path)
            os.stat(path)  # a missing path fails as it does on a real disk
            used = self.used()
            return Usage(self.capacity, used, max(0, self.capacity - used))

        def save(obj, f, *args, **kwargs):
            if not self.holds(f):
                return real_save(obj, f, *args, **kwargs)
            with open_(f, "wb") as handle:
                return real_save(obj, handle, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)
        monkeypatch.setattr(shutil, "disk_usage", disk_usage)
        monkeypatch.setattr(torch, "save", save)


class _QuotaFile(io.BufferedIOBase):
    """An unbuffered binary file on a ``SimulatedDisk``: growing it past the disk's free space
    writes what fits and raises ENOSPC. No ``fileno``, so nothing writes around the quota (numpy
    then writes through ``write`` too)."""

    def __init__(self, disk: SimulatedDisk, raw: io.FileIO):
        self.disk, self.raw, self.name, self.mode = disk, raw, raw.name, raw.mode

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        position, size = self.raw.tell(), os.fstat(self.raw.fileno()).st_size
        room = self.disk.free() + max(0, size - position)  # overwriting bytes already there takes no space
        if len(data) > room:
            self.raw.write(data[:room])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)
        return self.raw.write(data)

    def read(self, n=-1):
        return self.raw.read(n)

    def read1(self, n=-1):
        return self.raw.read(n)

    def readinto(self, buffer):
        return self.raw.readinto(buffer)

    def seek(self, offset, whence=os.SEEK_SET):
        return self.raw.seek(offset, whence)

    def tell(self):
        return self.raw.tell()

    def truncate(self, size=None):
        return self.raw.truncate(size)

    def readable(self):
        return self.raw.readable()

    def writable(self):
        return True

    def seekable(self):
        return self.raw.seekable()

    def fileno(self):
        raise io.UnsupportedOperation("a file on a simulated disk has no descriptor to write around its quota")

    def close(self):
        if not self.closed:
            self.raw.close()
        super().close()
