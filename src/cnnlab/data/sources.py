"""Find a dataset, decode it once, and cache the decoded arrays keyed by the source's checksum
(:mod:`~.cache`: the cache checks its own content on every load).

Where ``cifar10``/``cifar100`` come from, in order:
1. ``data_dir`` when given (never any network then): the official archive, its extracted
   folder, a folder holding either, an image-folder tree, or a ``.tar``/``.tar.gz`` of one
   (``cifar10-jpg.tar.gz``, CIFAR-10 as JPEG folders, is such a tar);
2. otherwise the first of ``$CNNLAB_DATA`` (a copy itself, or the cache directory) and the
   folders of ``$CNNLAB_DATA_PATH`` (``os.pathsep``-separated, like ``PATH``) that holds a
   recognisable copy; the library looks nowhere else (the ``cnnlab`` command adds the folders
   its checkout keeps data in, ``cnnlab.cli.datasets``);
3. otherwise a copy decoded earlier (with the same settings) from anywhere, found in the cache;
4. otherwise a download of the official archive into the cache directory (MD5-checked).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import cache, cifar, memory
from .dataset import ImageDataset
from .errors import DataError
from .folder import FolderScan, decode_image_folder, is_tar, missing_classes, scan_image_folder
from .frames import default_input_size
from .names import check_name, inside
from .progress import DataProgress, TerminalProgress

# Checksums of copies we know by name; a mismatch means a damaged file.
KNOWN_SHA256 = {"cifar10-jpg.tar.gz": "45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db"}


def cache_dir() -> Path:
    """``$CNNLAB_DATA`` (when it is a folder), else ``$XDG_CACHE_HOME/cnnlab``, else ``~/.cache/cnnlab``."""
    if os.environ.get("CNNLAB_DATA") and not Path(os.environ["CNNLAB_DATA"]).expanduser().is_file():
        return Path(os.environ["CNNLAB_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnnlab"


DATA_PATH = "CNNLAB_DATA_PATH"  # folders where a copy of a dataset may lie, os.pathsep-separated


def search_dirs() -> list[Path]:
    """The cache directory, then the folders of ``$CNNLAB_DATA_PATH``: where a dataset's copy is looked for."""
    listed = [Path(p).expanduser() for p in os.environ.get(DATA_PATH, "").split(os.pathsep) if p]
    dirs = [cache_dir(), *listed]
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


class Decoded(dict[str, ImageDataset]):
    """The decoded splits by name (``{"train", "test"}``, ``{"all"}``, ...) and ``origin``: what
    they are and where from -- ``{"name", "checksum"`` (of the cache's content)``, "location"``
    (the source, absolute; None when only the decoded copy was found)``, "cache"}`` (absolute)."""

    origin: dict[str, Any]


def _cache_key(kind: str, path: Path, settings: dict[str, Any]) -> str:
    spec = json.dumps([cache.CACHE_VERSION, kind, fingerprint(path), settings])
    return hashlib.sha256(spec.encode()).hexdigest()[:20]


def _settings(image_size, limit_per_class, cache_size) -> dict[str, Any]:
    """How a source is decoded (what its cache folder is for), as ``meta.json`` stores it."""
    decode = (
        {"short_side": cache_size} if cache_size is not None else image_size
    )  # framed: one cache for any input size
    return json.loads(json.dumps({"decode": decode, "limit_per_class": limit_per_class}))


def _check_named(name: str, classes: list[str], path: Path | str) -> None:
    """A CIFAR name on data that is not that CIFAR (counted by its classes) is refused."""
    expected = cifar.CLASS_COUNT.get(name)
    if expected is not None and len(classes) != expected:
        shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
        other = next((n for n, k in cifar.CLASS_COUNT.items() if k == len(classes)), None)
        raise DataError(
            f"{name} has {expected} classes, but {path} holds {len(classes)} ({shown}): "
            + (f"pass `dataset={other!r}` if it is {other}, else " if other else "pass ")
            + "a name of its own (e.g. `dataset='my-photos'`)"
        )


def _check_source(name: str, kind: str, path: Path, image_size, limit_per_class, cache_size) -> None:
    if kind == "folder" and name in cifar.ARCHIVES:
        for other in cifar.ARCHIVES:
            if other != name and (resolve(other, path, any_folder=False) or ("", None))[0] == "official":
                raise DataError(f"{path} holds the official {other} batches, not {name}: pass `dataset={other!r}`")
    if kind == "official" and (limit_per_class is not None or image_size not in (None, (32, 32))):
        raise DataError("the official CIFAR archive is read whole at 32x32; limit and resize after loading")
    if kind == "official" and cache_size is not None:
        raise DataError(f"`cache_size` applies to image folders; {path} is the official CIFAR archive of 32x32 images")


def _check_fits(name: str, scan: FolderScan, image_size, cache_size, root: Path) -> None:
    """Refuse a decode whose images cannot fit in memory (one at a time) or on the disk, before it starts."""
    if cache_size is not None:
        pixels, what = cache_size * cache_size, f"cache_size {cache_size} (shorter side)"
    elif image_size is not None:
        pixels, what = image_size[0] * image_size[1], f"image_size {image_size[0]}x{image_size[1]}"
    else:
        return  # each image at its own size: a full disk is said when it happens
    # one image at a time: Pillow's RGB(X) image (4 bytes a pixel) and its uint8 array (3)
    memory.check_memory(7 * pixels, f"decoding {name} at {what}: one image", "pass a smaller size")
    images = sum(len(items) for items in scan.splits.values())
    memory.check_disk(root, images * pixels * 3, f"the decoded cache of {name}")


def _folder_writer(name: str, path: Path, image_size, limit_per_class, cache_size, root: Path, progress: DataProgress):
    scan = scan_image_folder(path, limit_per_class)  # the layout is checked before any image is decoded
    _check_named(name, scan.classes, path)
    _check_fits(name, scan, None if cache_size is not None else image_size, cache_size, root)

    def write(tmp: Path) -> tuple[list[str], list[str]]:
        progress.begin(f"decoding {name} into the cache", sum(len(items) for items in scan.splits.values()))
        try:  # one image in memory at a time
            decode_image_folder(scan, tmp, None if cache_size is not None else image_size, cache_size, progress.advance)
        finally:
            progress.end()
        return list(scan.splits), scan.classes

    return write


def _official_writer(name: str, path: Path, root: Path, progress: DataProgress):
    size = cifar.IMAGES * 3072
    memory.check_memory(
        4 * size, f"reading the official {name} archive"
    )  # the archive's bytes, its batches, the arrays
    memory.check_disk(root, size, f"the decoded cache of {name}")

    def write(tmp: Path) -> tuple[list[str], list[str]]:
        progress.begin(f"decoding {name} into the cache", cifar.IMAGES)
        try:
            splits = cifar.load_cifar_archive(name, path, progress.advance)
        finally:
            progress.end()
        for split, data in splits.items():
            np.save(tmp / f"{split}_images.npy", np.asarray(data.images))
            np.save(tmp / f"{split}_labels.npy", data.labels)
        return list(splits), next(iter(splits.values())).classes

    return write


def _find_source(name: str) -> tuple[str, Path] | None:
    if name not in cifar.ARCHIVES:
        raise DataError(f"dataset {name!r} is not one cnnlab can fetch ({sorted(cifar.ARCHIVES)}); pass `data_dir`")
    env = Path(os.environ.get("CNNLAB_DATA", "")).expanduser()
    places = ([env] if env.is_file() else []) + search_dirs()  # $CNNLAB_DATA may name the archive itself
    return next((f for d in places if (f := resolve(name, d, any_folder=False)) is not None), None)


def _earlier(root: Path, name: str, image_size, limit_per_class, cache_size) -> Path | None:
    """The newest cache of ``name`` decoded with these settings (or at its own size, when that is ``image_size``)."""
    found = cache.find(root, name, _settings(image_size, limit_per_class, cache_size))
    if found or image_size is None or cache_size is not None:
        return found[0] if found else None
    for directory in cache.find(root, name, _settings(None, limit_per_class, None)):
        meta = cache.read_meta(directory) or {}
        shapes = {
            tuple(np.load(directory / f"{s}_images.npy", mmap_mode="r").shape[1:3])
            for s in meta.get("splits", [])
            if (directory / f"{s}_images.npy").is_file()
        }
        if shapes == {tuple(image_size)}:
            return directory
    return None


def _loaded(name: str, directory: Path, view) -> dict[str, ImageDataset]:
    """The splits of a cache folder, checked against its checksums, or a :class:`DataError` saying why not."""
    splits, problem = cache.load(directory, view)
    if splits is None:
        raise DataError(
            f"the decoded copy of {name} in {directory} cannot be used: {problem or 'it is gone'}; "
            f"pass `data_dir` with the {name} source to decode it again"
        )
    return splits


def _decoded(
    name: str, directory: Path, splits: dict[str, ImageDataset], source: Path | None, progress: DataProgress
) -> Decoded:
    """The splits of a cache folder, said to be what ``name`` says (and which classes a split lacks);
    their origin recorded."""
    meta = cache.read_meta(directory) or {}
    if meta.get("name") not in (None, name):
        raise DataError(f"{directory} holds the decoded {meta['name']}, not {name}: pass `dataset={meta['name']!r}`")
    classes = next(iter(splits.values())).classes
    _check_named(name, classes, source or directory)
    for split, data in splits.items():
        missing = missing_classes(classes, data.labels) if split not in ("train", "all") else []
        if missing:
            progress.note(
                f"{name}: {split}/ has no images of {', '.join(missing)}: those classes are trained "
                "but never validated (evaluate lists them as 'no images')"
            )
    found = Decoded(splits)
    found.origin = {
        "name": name,
        "checksum": meta.get("checksum"),
        "location": os.path.abspath(source) if source else None,
        "cache": os.path.abspath(directory),
    }
    return found


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    limit_per_class: int | None = None,
    download: bool = True,
    cache_size: int | None = None,
    progress: DataProgress | None = None,
) -> Decoded:
    """Decoded splits (``{"train", "test"}``, or ``{"all"}`` for a folder without splits) of
    ``name`` ("cifar10", "cifar100", or any name with ``data_dir`` pointing at an image folder).
    The first load decodes into the cache (an image folder streamed, one image in memory at a
    time); the images stay there (:class:`~.dataset.MappedRows`) until read: ``load_splits``
    reads them into memory, or leaves them for the trainer to read batch by batch (``stream``).
    ``data_dir`` may also be a decoded copy itself (``Decoded.origin["cache"]``).

    ``cache_size`` (image folders): keep each image in its own framing, shorter side
    ``cache_size`` px (:mod:`~.frames`); ``image_size`` is then the model's input, which the
    images are seen at (default ``floor(0.875 * cache_size)``, 224 for 256).
    ``progress``: told of a decode's progress and of notices (default: a bar on a terminal)."""
    check_name(name)
    progress = progress if progress is not None else TerminalProgress()
    if cache_size is not None and image_size is None:
        image_size = (default_input_size(cache_size),) * 2
    view = image_size if cache_size is not None else None
    root = cache_dir() / "decoded"
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.exists():
            raise DataError(f"`data_dir={str(path)!r}` does not exist")
        if cache.read_meta(path) is not None:  # a decoded copy (what a run records)
            return _decoded(name, path, _loaded(name, path, view), None, progress)
        found = resolve(name, path)
        if found is None:
            raise DataError(f"{path} holds no {name} data (empty folder or not an archive)")
    else:
        found = _find_source(name)
        if found is None:  # decoded before, from a source that is elsewhere now: used before any download
            earlier = _earlier(root, name, image_size, limit_per_class, cache_size)
            if earlier is not None:
                return _decoded(name, earlier, _loaded(name, earlier, view), None, progress)
            if not download:
                looked = ", ".join(str(d) for d in search_dirs()) or str(cache_dir())
                raise DataError(f"no {name} found in {looked}, and downloading is off; pass `data_dir`")
            found = ("official", cifar.download(name, cache_dir()))
    kind, path = found
    return _decode_into_cache(name, kind, path, image_size, limit_per_class, cache_size, view, progress)


def _decode_into_cache(
    name: str,
    kind: str,
    path: Path,
    image_size: tuple[int, int] | None,
    limit_per_class: int | None,
    cache_size: int | None,
    view: tuple[int, int] | None,
    progress: DataProgress,
) -> Decoded:
    """The decoded copy of source ``path`` (``kind``: official or folder) for these settings, from the
    cache when it is there and whole, else decoded into it (a damaged or changed copy is replaced)."""
    root = cache_dir() / "decoded"
    _check_source(name, kind, path, image_size, limit_per_class, cache_size)
    settings = _settings(None if kind == "official" else image_size, limit_per_class, cache_size)
    cached = inside(root, f"{name}-{_cache_key(kind, path, settings)}")
    splits, problem = cache.load(cached, view)
    if splits is None:
        if problem is not None:  # damaged or changed: repaired, not re-decoded every time
            progress.note(f"the decoded cache {cached} is not used as is: {problem}; decoding it again from {path}")
            cache.discard(cached)
        # absent: never discarded here, as another process (a torchrun rank) may have just written it and be
        # reading it; if one did, ``save`` keeps that copy and drops ours
        write = (
            _official_writer(name, path, root, progress)
            if kind == "official"
            else _folder_writer(name, path, image_size, limit_per_class, cache_size, root, progress)
        )
        cache.save(cached, write, {"name": name, "kind": kind, "source": os.path.abspath(path), **settings})
        splits = _loaded(name, cached, view)
    return _decoded(name, cached, splits, path, progress)


def locate(origin: dict[str, Any] | None) -> str | None:
    """Where the data a run recorded (:meth:`~.dataset.DataSplits.record`) can be read now, from
    any directory: its source when it is still there, else a decoded copy holding that checksum
    (the recorded one, or any in the cache); None when neither is found."""
    if not origin:
        return None
    if origin.get("location") and Path(origin["location"]).exists():
        return origin["location"]
    candidates = [Path(origin["cache"])] if origin.get("cache") else []
    root = cache_dir() / "decoded"
    candidates += sorted(root.glob(f"{check_name(origin['name'])}-*")) if root.is_dir() else []
    for directory in candidates:
        meta = cache.read_meta(directory)
        if meta is not None and meta["checksum"] == origin.get("checksum"):
            return str(directory)
    return None
