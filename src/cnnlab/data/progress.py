"""How the data layer tells its caller what it does: a decode's progress, and notices (a
validation split without some classes, a cache decoded again). ``cnnlab.data`` cannot import
``cnnlab.train``; a caller passes its own :class:`DataProgress`, else :class:`TerminalProgress`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class DataProgress:
    """Silent; subclass to show or record. ``begin(what, total)`` opens a bar of ``total`` images,
    ``advance(n)`` moves it, ``end()`` closes it; ``note(message)`` is one line for the user."""

    def begin(self, what: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def end(self) -> None:
        pass

    def note(self, message: str) -> None:
        pass


class TerminalProgress(DataProgress):
    """A transient bar on stderr while a dataset is decoded (only when stderr is a terminal);
    notes as plain lines on stderr."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def begin(self, what: str, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        if not console.is_terminal:
            return
        self.bar = Progress(
            TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
        )
        self.task = self.bar.add_task("decode", total=total)
        self.bar.start()

    def advance(self, n: int = 1) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, n)

    def end(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def note(self, message: str) -> None:
        sys.stderr.write(f"cnnlab: {message}\n")
