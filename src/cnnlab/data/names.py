"""Dataset names become folder names in the cache (``decoded/<name>-<key>``): only a safe slug
may, and the folder built from it must lie inside the cache."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import DataError

_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_name(name: object) -> str:
    """``name`` when it is a safe slug (letters, digits, ``-``, ``_``, ``.``; starting with a
    letter or digit; no ``..``; at most 100 characters), else a :class:`DataError` naming it."""
    if not isinstance(name, str) or not _SLUG.fullmatch(name) or ".." in name:
        raise DataError(
            f"dataset name {name!r} must be letters, digits, '-', '_' and '.' (starting with a letter or digit, "
            f"no '..', no '/'), e.g. cifar10 or my-photos: it names the dataset's folder in the cache"
        )
    return name


def inside(root: Path, *parts: str) -> Path:
    """``root / parts``, refused unless it stays inside ``root`` (compared as written, so that a
    cache folder which is itself a link to another disk still works)."""
    path = Path(root, *parts)
    base = os.path.normpath(os.path.abspath(root))
    if os.path.commonpath([base, os.path.normpath(os.path.abspath(path))]) != base:
        raise DataError(f"refused cache path {path}: it lies outside the cache {root}")
    return path
