"""Writing results without ever leaving a half-written file behind.

Every failure names the file the caller asked for, never the temporary file beside it: a full
disk (``DiskFull``: the path and the space left), a target that is a directory (``NotAFile``),
a read-only or unwritable directory.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


class _Plain(OSError):
    """An OSError whose text is its message alone (no ``[Errno N]``): the message names the path."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class DiskFull(_Plain):
    """The disk filled up while writing a file; the message names it and the space left."""


class NotAFile(_Plain, IsADirectoryError):
    """An output file was asked for at a path that is a directory."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path`` (what it returns is ignored),
    then rename it into place.

    A crash or Ctrl-C mid-write leaves the previous file (or none), never a truncated one.
    A ``path`` that is a directory is refused; a full disk raises ``DiskFull`` naming ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise not_a_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a result file gets the usual mode
        write(tmp)
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(error, Exception):
            named = named_error(error, path)
            if named is not None:
                raise named from error
        raise
    return path


def named_error(error: BaseException, path: Path) -> OSError | None:
    """The error of a failed write of ``path`` as one that names ``path`` (not its temporary
    file), or None when it needs no other words."""
    if is_disk_full(error):
        return no_space(path)
    if isinstance(error, IsADirectoryError) and path.is_dir():
        return not_a_file(path)
    if (
        isinstance(error, OSError)
        and error.filename is not None
        and Path(str(error.filename)).name.startswith(f".{path.name}.")
    ):
        return type(error)(error.errno, error.strerror, str(path))  # the temporary file's name: say the target's
    return None


def is_disk_full(error: BaseException) -> bool:
    """A full disk, as the OS says it (ENOSPC), also when a library wrapped it in its own error."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "errno", None) == errno.ENOSPC or "No space left on device" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def no_space(path: str | os.PathLike, advice: str = "free some space and try again") -> DiskFull:
    """``DiskFull`` for ``path``: its name, the space left where it goes, and what to do."""
    path = Path(path)
    where = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    try:
        free = f"{shutil.disk_usage(where).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return DiskFull(errno.ENOSPC, f"no space left on device writing {path} ({free}); {advice}")


def not_a_file(path: Path) -> NotAFile:
    return NotAFile(
        errno.EISDIR, f"{path} is a directory, not a file name; give the path of a file (for example one inside it)"
    )


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, write)
