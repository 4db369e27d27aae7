"""One process per run directory: ``.lock`` holds the owner's pid, host and start time.

Two trainings writing one directory (two shells, or ``torchrun`` around a script that is not
distributed) would mix their checkpoints without a word; the second one is refused instead,
naming the owner. A lock whose owner is gone (same host, no such process: a kill -9, a crash, a
torchrun restart) is stale and taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

LOCK_NAME = ".lock"


class RunDirectoryBusy(FileExistsError):
    """Another live process is training into this directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class RunLock:
    """``with RunLock(out):`` (or ``acquire()`` ... ``release()``) -- owns ``out/.lock``, created
    atomically (O_EXCL)."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self.owned = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> RunLock:
        """Take the lock (``RunDirectoryBusy`` when a live process holds it)."""
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and not self._stale(owner):
                    raise RunDirectoryBusy(
                        f"{self.path.parent} is in use by process {owner.get('pid')} on {owner.get('host')} "
                        f"(since {owner.get('started')}); wait for it, stop it, or choose another output directory. "
                        f"If that process is gone, delete {self.path}"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale or unreadable: take it over
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.owned = True
            return self
        raise RunDirectoryBusy(f"could not take {self.path}: other processes keep taking it")

    def _owner(self) -> dict | None:
        try:
            owner = json.loads(self.path.read_text())
            return owner if isinstance(owner, dict) else None
        except (OSError, ValueError):
            # being written right now (created, not yet filled): treat as live unless it stays empty
            time.sleep(0.2)
            try:
                return json.loads(self.path.read_text())
            except (OSError, ValueError):
                return None

    @staticmethod
    def _stale(owner: dict) -> bool:
        pid = owner.get("pid")
        if owner.get("host") != socket.gethostname() or not isinstance(pid, int):
            return False  # another machine's process (a shared disk): cannot tell, so live
        return pid == os.getpid() or not _alive(pid)

    def release(self) -> None:
        """Give the lock back, if this object holds it."""
        if self.owned:
            self.path.unlink(missing_ok=True)
            self.owned = False
