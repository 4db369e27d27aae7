"""Find a dataset, decode it once, and cache the decoded arrays keyed by the source's checksum.

Where ``cifar10``/``cifar100`` come from, in order:
1. ``data_dir`` when given (never any network then): the official archive, its extracted
   folder, a folder holding either, an image-folder tree, or a ``.tar``/``.tar.gz`` of one
   (``../shared/datasets/cifar10-jpg.tar.gz`` is such a tar);
2. otherwise the first of ``$CNNLAB_DATA``, the cache directory and ``../shared/datasets``
   that holds a recognisable copy;
3. otherwise a download of the official archive into the cache directory (MD5-checked).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..io import current_umask
from . import cifar
from .dataset import ImageDataset, MappedRows
from .errors import DataError
from .frames import FrameFile, FramedRows, default_input_size
from .rowfile import RowFile
from .folder import decode_image_folder, is_tar, scan_image_folder

# Checksums of copies we know by name; a mismatch means a damaged file.
KNOWN_SHA256 = {"cifar10-jpg.tar.gz": "45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db"}
CACHE_VERSION = 1


def cache_dir() -> Path:
    """``$CNNLAB_DATA`` (when it is a folder), else ``$XDG_CACHE_HOME/cnnlab``, else ``~/.cache/cnnlab``."""
    if os.environ.get("CNNLAB_DATA") and not Path(os.environ["CNNLAB_DATA"]).expanduser().is_file():
        return Path(os.environ["CNNLAB_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnnlab"


def search_dirs() -> list[Path]:
    dirs = [cache_dir(), Path.cwd().parent / "shared" / "datasets", Path.cwd() / "shared" / "datasets"]
    return [d for i, d in enumerate(dirs) if d.is_dir() and d.resolve() not in {x.resolve() for x in dirs[:i]}]


def _official_batches(directory: Path, name: str) -> Path | None:
    meta = cifar.LAYOUT[name][3]
    for found in directory.rglob(meta):
        if (found.parent / cifar.LAYOUT[name][1]).is_file():
            return found.parent
    return None


def resolve(name: str, path: Path, any_folder: bool = True) -> tuple[str, Path] | None:
    """What ``path`` holds for dataset ``name``: ("official", p) or ("folder", p); None if nothing.

    ``any_folder=False`` (searching known places rather than a path the user named) accepts
    only copies recognisable by name, never an arbitrary folder."""
    if path.is_file():
        if name in cifar.ARCHIVES and path.name == cifar.ARCHIVES[name][1]:
            return "official", path
        return ("folder", path) if is_tar(path) else None
    if not path.is_dir():
        return None
    if name in cifar.ARCHIVES:
        if (path / cifar.ARCHIVES[name][1]).is_file():
            return "official", path / cifar.ARCHIVES[name][1]
        batches = _official_batches(path, name)
        if batches is not None:
            return "official", batches
        for candidate in (f"{name}-jpg.tar.gz", f"{name}.tar.gz", f"{name}.tar"):
            if (path / candidate).is_file():
                return "folder", path / candidate
        if (path / name).is_dir():
            return "folder", path / name
    return ("folder", path) if any_folder and any(path.iterdir()) else None


def fingerprint(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's listing (relative paths, sizes, mtimes)."""
    digest = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        known = KNOWN_SHA256.get(path.name)
        if known and digest.hexdigest() != known:
            raise DataError(
                f"{path} has sha256 {digest.hexdigest()}, but the published copy has {known}: the file is "
                f"damaged or truncated -- copy it again"
            )
    else:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_key(kind: str, path: Path, image_size, limit_per_class) -> str:
    spec = json.dumps([CACHE_VERSION, kind, fingerprint(path), image_size, limit_per_class])
    return hashlib.sha256(spec.encode()).hexdigest()[:20]


def _save(directory: Path, write) -> None:
    """``write(tmp)`` fills a new folder with ``<split>_images.npy`` / ``_labels.npy`` and returns
    (splits, classes); with ``meta.json`` added, the folder replaces ``directory`` atomically:
    readers see all of the cache or none of it."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; the cache is as shareable as the user's umask says
    try:
        splits, classes = write(tmp)
        (tmp / "meta.json").write_text(json.dumps({"splits": sorted(splits), "classes": classes}))
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed decode, another process won the race, or the disk is full
        if not directory.is_dir():
            raise


def _write_arrays(splits: dict[str, ImageDataset]):
    def write(tmp: Path) -> tuple[list[str], list[str]]:
        for split, data in splits.items():
            np.save(tmp / f"{split}_images.npy", data.images)
            np.save(tmp / f"{split}_labels.npy", data.labels)
        return list(splits), next(iter(splits.values())).classes

    return write


def _decode_folder(path: Path, image_size, limit_per_class, cache_size=None):
    scan = scan_image_folder(path, limit_per_class)  # the layout is checked before any image is decoded

    def write(tmp: Path) -> tuple[list[str], list[str]]:
        decode_image_folder(scan, tmp, image_size, cache_size)  # one image in memory at a time
        return list(scan.splits), scan.classes

    return write


def _load(directory: Path, view_size: tuple[int, int] | None = None) -> dict[str, ImageDataset] | None:
    """The cached splits, their images left on disk (:class:`MappedRows`, read when used;
    :class:`~.frames.FramedRows` seen at ``view_size`` for a cache of images in their own framing)."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
        splits = {}
        for split in meta["splits"]:
            labels = np.load(directory / f"{split}_labels.npy")
            if (directory / f"{split}_frames.npy").is_file():
                frames = FrameFile(directory, split)
                if len(frames) != len(labels) or view_size is None:
                    return None
                splits[split] = ImageDataset(FramedRows(frames, view_size), labels, meta["classes"])
                continue
            images = RowFile(directory / f"{split}_images.npy")
            if images.dtype != np.uint8 or len(images.shape) != 4 or images.shape[0] != len(labels):
                return None
            splits[split] = ImageDataset(MappedRows(images), labels, meta["classes"])
        return splits
    except (OSError, ValueError, KeyError, EOFError, DataError):
        return None  # absent or damaged cache: decode again


def _discard(directory: Path) -> None:
    """Move a damaged cache out of the way (atomically) and delete it, so that it can be rewritten."""
    if directory.exists():
        trash = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.damaged."))
        try:
            os.replace(directory, trash / directory.name)
        except OSError:
            pass  # another process replaced it meanwhile
        shutil.rmtree(trash, ignore_errors=True)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    limit_per_class: int | None = None,
    download: bool = True,
    cache_size: int | None = None,
) -> dict[str, ImageDataset]:
    """Decoded splits (``{"train", "test"}``, or ``{"all"}`` for a folder without splits) of
    ``name`` ("cifar10", "cifar100", or any name with ``data_dir`` pointing at an image folder).
    The first load decodes into the cache (an image folder streamed, one image in memory at a
    time); the images stay there (:class:`~.dataset.MappedRows`) until read: ``load_splits``
    reads them into memory, or leaves them for the trainer to read batch by batch (``stream``).

    ``cache_size`` (image folders): keep each image in its own framing, shorter side
    ``cache_size`` px (:mod:`~.frames`); ``image_size`` is then the model's input, which the
    images are seen at (default ``floor(0.875 * cache_size)``, 224 for 256)."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.exists():
            raise DataError(f"--data-dir {path} does not exist")
        found = resolve(name, path)
        if found is None:
            raise DataError(f"{path} holds no {name} data (empty folder or not an archive)")
    else:
        if name not in cifar.ARCHIVES:
            raise DataError(f"dataset {name!r} is not one cnnlab can fetch ({sorted(cifar.ARCHIVES)}); pass --data-dir")
        env = Path(os.environ.get("CNNLAB_DATA", "")).expanduser()
        places = ([env] if env.is_file() else []) + search_dirs()  # $CNNLAB_DATA may name the archive itself
        found = next((f for d in places if (f := resolve(name, d, any_folder=False)) is not None), None)
        if found is None:
            if not download:
                looked = ", ".join(str(d) for d in search_dirs()) or str(cache_dir())
                raise DataError(f"no {name} found in {looked}, and downloading is off; pass --data-dir")
            found = ("official", cifar.download(name, cache_dir()))
    kind, path = found
    if kind == "official" and (limit_per_class is not None or image_size not in (None, (32, 32))):
        raise DataError("the official CIFAR archive is read whole at 32x32; limit and resize after loading")
    if kind == "official" and cache_size is not None:
        raise DataError(f"--cache-size applies to image folders; {path} is the official CIFAR archive of 32x32 images")
    if cache_size is not None and image_size is None:
        image_size = (default_input_size(cache_size),) * 2
    decode = {"short_side": cache_size} if cache_size is not None else image_size  # framed: one cache for any input size
    cached = cache_dir() / "decoded" / f"{name}-{_cache_key(kind, path, decode, limit_per_class)}"
    view = image_size if cache_size is not None else None
    splits = _load(cached, view)
    if splits is None:
        if kind == "official":
            write = _write_arrays(cifar.load_cifar_archive(name, path))
        else:
            write = _decode_folder(path, None if cache_size is not None else image_size, limit_per_class, cache_size)
        _discard(cached)  # a damaged cache (truncated by a kill or a full disk) is repaired, not re-decoded every time
        _save(cached, write)
        splits = _load(cached, view)
        if splits is None:
            raise DataError(f"the decoded cache {cached} could not be read back right after writing it")
    return splits
