"""Ctrl-C and SIGTERM in a worker, delivered where they are safe.

An interrupt that lands inside Optuna's or SQLAlchemy's bookkeeping (asking for a trial, writing
its state) can leave the trial "running" for good, or the storage's session half-closed. While a
worker runs, ``Interrupts`` holds SIGINT and SIGTERM back outside the training itself: the
signal is remembered and raised as ``KeyboardInterrupt(signum)`` at the next safe point -- the
start of a trial (Optuna records it as failed, and ``--resume`` retries it), between a trial
and the next (the finished one is kept), or at once inside training, where every file is
written atomically. A signal repeated later (``INSIST_AFTER_S``: someone pressing Ctrl-C again on a
worker that seems stuck) is raised at once wherever it lands; one right after the first (the
terminal's Ctrl-C reaching a worker, then the command stopping it) waits like the first.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
INSIST_AFTER_S = 2.0


class Interrupts:
    def __init__(self) -> None:
        self.pending: int | None = None
        self.first = 0.0  # when the first signal came (time.monotonic)
        self.live = False  # True inside training: raise at once

    def _handle(self, signum: int, _frame: Any) -> None:
        insists = self.pending is not None and time.monotonic() - self.first > INSIST_AFTER_S
        if self.pending is None:
            self.pending, self.first = signum, time.monotonic()
        if self.live or insists:
            raise KeyboardInterrupt(self.pending)

    def check(self) -> None:
        """A safe point: raise the remembered interrupt. Again if it was raised before: one raised
        where Python ignores exceptions (a weakref callback, ``__del__``) is not lost."""
        if self.pending is not None:
            raise KeyboardInterrupt(self.pending)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle SIGINT and SIGTERM (main thread only; elsewhere signals are not ours to take)."""
        if threading.current_thread() is not threading.main_thread():
            self.live = True  # no handler here: nothing to defer
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        self.check()  # one that came after the last safe point is not lost

    @contextlib.contextmanager
    def live_section(self, live: bool = True) -> Iterator[None]:
        """Interrupts raise at once inside (``live=False``: are held back inside); checked on entering and leaving."""
        before = self.live
        self.check()
        self.live = live
        try:
            yield
        finally:
            self.live = before
        self.check()

    def stop_study(self):
        """Study callback: stop the study after the trial in which an interrupt came."""

        def callback(study: Any, _trial: Any) -> None:
            if self.pending is not None:
                study.stop()

        return callback
