"""The decoded cache: ``<cache>/decoded/<name>-<key>/`` holds each split's arrays and ``meta.json``,
which says what was decoded (name, source, decode settings) and carries a sha256 of every file
it holds, checked on every load: a cache changed after it was decoded (even to valid labels) is
never used as is.

Files up to ``FULL_HASH_LIMIT`` are hashed whole (the 50,000-image CIFAR-10 cache: 150 MB in
0.15 s warm on this machine, 0.2 s cold); larger ones (a folder decoded at ImageNet sizes, many GB)
by their size and ``SAMPLES`` blocks of 1 MiB spread over them, so that a load costs at most
about a second of reading: a change to labels is always found (label files are small), a changed
pixel in a multi-GB image file only when it falls in a sampled block.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..io import current_umask
from . import memory
from .dataset import ImageDataset, MappedRows
from .errors import DataError
from .frames import FramedRows, FrameFile
from .rowfile import RowFile

CACHE_VERSION = 2  # 2: meta.json carries what was decoded and the checksum of every file
FULL_HASH_LIMIT = 1 << 30
SAMPLES, BLOCK = 512, 1 << 20


def file_digest(path: Path) -> str:
    """sha256 of a file (its size and, beyond ``FULL_HASH_LIMIT``, ``SAMPLES`` spread blocks)."""
    size = path.stat().st_size
    digest = hashlib.sha256(f"{size}\n".encode())
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(BLOCK), b""):
                digest.update(block)
        else:
            for i in range(SAMPLES):
                f.seek((size - BLOCK) * i // (SAMPLES - 1))
                digest.update(f.read(BLOCK))
    return digest.hexdigest()


def file_digests(directory: Path) -> dict[str, str]:
    """The digest of every file of a cache folder but ``meta.json``."""
    return {f.name: file_digest(f) for f in sorted(directory.iterdir()) if f.is_file() and f.name != "meta.json"}


def content_checksum(meta: dict[str, Any]) -> str:
    """One sha256 for what a cache holds: its classes, splits and every file's digest."""
    content = {k: meta[k] for k in ("classes", "splits", "files")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _temp_prefix(directory: Path, what: str = "") -> str:
    """``.<name>.<host>.<pid>.``: a temporary folder of this process, which :func:`sweep` can tell
    apart from those of live decodes (of any host sharing the cache) and remove once its process is gone."""
    return f".{directory.name}{what}.{socket.gethostname()}.{os.getpid()}."


def sweep(root: Path) -> None:
    """Remove the temporary folders left in ``root`` by decodes of this host that were killed
    (SIGKILL, the OOM killer: no ``finally`` ran)."""
    pattern = re.compile(rf"^\..+\.{re.escape(socket.gethostname())}\.(\d+)\.[^.]+$")
    for entry in root.iterdir() if root.is_dir() else ():
        found = pattern.match(entry.name)
        if found and entry.is_dir() and not _alive(int(found.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True


def save(directory: Path, write: Callable[[Path], tuple[list[str], list[str]]], meta: dict[str, Any]) -> None:
    """``write(tmp)`` fills a new folder with ``<split>_images.npy`` / ``_labels.npy`` and returns
    (splits, classes); with ``meta.json`` added (``meta`` and the files' digests), the folder replaces
    ``directory`` atomically: readers see all of the cache or none of it. A failure of any kind
    removes the temporary folder; a full disk is said with the path and the space left."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    sweep(directory.parent)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=_temp_prefix(directory)))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; the cache is as shareable as the user's umask says
    try:
        splits, classes = write(tmp)
        meta = {
            **meta,
            "version": CACHE_VERSION,
            "splits": sorted(splits),
            "classes": classes,
            "files": file_digests(tmp),
        }
        meta["checksum"] = content_checksum(meta)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp, directory)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed decode, another process won the race, or the disk is full
        if directory.is_dir() and isinstance(error, Exception):
            return
        if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            raise memory.disk_full(directory, "the decoded cache") from None
        raise


def read_meta(directory: Path) -> dict[str, Any] | None:
    """A cache folder's ``meta.json`` when it is of this version, else None."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("version") == CACHE_VERSION and "checksum" in meta else None


def changed(directory: Path, meta: dict[str, Any]) -> str | None:
    """What differs between a cache folder and the checksums it recorded (None: nothing)."""
    files = meta.get("files") or {}
    try:
        found = file_digests(directory)
    except OSError as error:
        return f"its files cannot be read ({error})"
    wrong = sorted(name for name in set(files) | set(found) if files.get(name) != found.get(name))
    if wrong or content_checksum(meta) != meta["checksum"]:
        return f"{', '.join(wrong) or 'meta.json'} changed since it was decoded"
    return None


def load(
    directory: Path, view_size: tuple[int, int] | None = None
) -> tuple[dict[str, ImageDataset] | None, str | None]:
    """(the cached splits, None), their images left on disk (:class:`MappedRows`, read when used;
    :class:`~.frames.FramedRows` seen at ``view_size`` for a cache of images in their own framing);
    (None, what is wrong) for a cache that is absent, of an older version, damaged or changed."""
    meta = read_meta(directory)
    if meta is None:
        return None, None if not directory.exists() else "it is of an older cnnlab or damaged"
    problem = changed(directory, meta)
    if problem is not None:
        return None, problem
    try:
        return {split: _split(directory, split, meta["classes"], view_size) for split in meta["splits"]}, None
    except (OSError, ValueError, KeyError, EOFError, DataError) as error:
        return None, f"it cannot be read ({error})"


def _split(directory: Path, split: str, classes: list[str], view_size) -> ImageDataset:
    labels = np.load(directory / f"{split}_labels.npy")
    if (directory / f"{split}_frames.npy").is_file():
        frames = FrameFile(directory, split)
        if len(frames) != len(labels) or view_size is None:
            raise ValueError(f"{split}: {len(frames)} framed images for {len(labels)} labels")
        return ImageDataset(FramedRows(frames, view_size), labels, classes)
    images = RowFile(directory / f"{split}_images.npy")
    if images.dtype != np.uint8 or len(images.shape) != 4 or images.shape[0] != len(labels):
        raise ValueError(f"{split}_images.npy holds {images.dtype} {images.shape} for {len(labels)} labels")
    return ImageDataset(MappedRows(images), labels, classes)


def discard(directory: Path) -> None:
    """Move a damaged cache out of the way (atomically) and delete it, so that it can be rewritten."""
    if directory.exists():
        trash = Path(tempfile.mkdtemp(dir=directory.parent, prefix=_temp_prefix(directory, ".damaged")))
        try:
            os.replace(directory, trash / directory.name)
        except OSError:
            pass  # another process replaced it meanwhile
        shutil.rmtree(trash, ignore_errors=True)


def find(root: Path, name: str, settings: dict[str, Any]) -> list[Path]:
    """The caches of dataset ``name`` in ``root`` decoded with ``settings`` (decode, limit), newest first."""
    found = []
    for directory in root.glob(f"{name}-*") if root.is_dir() else ():
        meta = read_meta(directory)
        if meta is not None and meta.get("name") == name and all(meta.get(k) == v for k, v in settings.items()):
            found.append(directory)
    return sorted(found, key=lambda d: d.stat().st_mtime_ns, reverse=True)
