"""Image-folder datasets: ``train/<class>/*`` and ``test/<class>/*`` and/or ``val/<class>/*`` (or just ``<class>/*``),
as a directory or as a ``.tar`` / ``.tar.gz`` of one. Class index = sorted folder name
(for CIFAR-10 that is the official label order)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import posixpath
import tarfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError
from .frames import FrameWriter, resize_short_side
from .rowfile import RowWriter

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
SPLITS = ("train", "val", "test")


def is_tar(path: Path) -> bool:
    return path.is_file() and any(str(path).endswith(s) for s in (".tar", ".tar.gz", ".tgz"))


# Names are kept as plain "a/b/c.jpg" strings: a folder of 200,000 images holds its names (and
# the rows they go to) while it is decoded, and a str costs a third of a PurePosixPath.
def _clean(name: str) -> str:
    """A member name as "split/class/file": no "./", no doubled or leading slash."""
    return posixpath.normpath(name).lstrip("/")


def _is_image(name: str) -> bool:
    return posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _names_from_dir(root: Path) -> list[str]:
    return [f.relative_to(root).as_posix() for f in sorted(root.rglob("*")) if f.is_file() and _is_image(f.name)]


def _tar_error(path: Path, error: BaseException) -> DataError:
    return DataError(
        f"{path} is not a readable tar archive ({type(error).__name__}: {error}); it may be truncated "
        f"or corrupt -- copy or download it again"
    )


_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
_COMPRESSED = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f)),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)


def _tar_members(path: Path) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Every member of a tar (plain, .gz, .bz2 or .xz) in archive order, read as a stream, with the
    archive to read it from. An archive cut short is refused: tarfile alone takes a cut at a member
    boundary for the end of the archive, so a compressed stream must reach its own end (its reader
    raises EOFError otherwise) and a plain tar must end with its zero block."""
    try:
        with open(path, "rb") as raw:
            magic = raw.read(6)
            raw.seek(0)
            opener = next((o for m, o in _COMPRESSED if magic.startswith(m)), None)
            with tarfile.open(fileobj=opener(raw) if opener else raw, mode="r|") as archive:
                yield from ((member, archive) for member in archive)
            end = os.pread(raw.fileno(), 512, archive.offset)
            if opener is None and (len(end) < 512 or any(end)):
                raise tarfile.ReadError(f"no end-of-archive block at byte {archive.offset:,}: the archive is cut short")
    except _TAR_ERRORS as error:
        raise _tar_error(path, error) from None


def _names_from_tar(path: Path) -> list[str]:
    """The image members' names (one pass over the archive, no image kept)."""
    return sorted(_clean(m.name) for m, _ in _tar_members(path) if m.isfile() and _is_image(m.name))


def _stream(path: Path, wanted) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the ``wanted`` images, one at a time: a directory's files, or a tar's
    members in archive order, read as a stream (never the whole archive in memory)."""
    if not is_tar(path):
        for name in sorted(wanted):
            yield name, (path / name).read_bytes()
        return
    for member, archive in _tar_members(path):
        name = _clean(member.name)
        if member.isfile() and name in wanted:
            try:
                handle = archive.extractfile(member)
                assert handle is not None  # None only for members that are not regular files (member.isfile())
                data = handle.read()
            except _TAR_ERRORS as error:
                raise _tar_error(path, error) from None
            yield name, data


def _layout(names: list[str]) -> tuple[int, bool]:
    """(number of leading path parts to drop, has train/test splits)."""
    for prefix in (0, 1):  # an archive usually wraps everything in one top-level folder
        parts = (p[prefix:] for p in (n.split("/") for n in names) if len(p) > prefix)
        shapes = {(len(p), len(p) == 3 and p[0] in SPLITS) for p in parts}  # one pass, no list of every name's parts
        if shapes == {(3, True)}:
            return prefix, True
        if shapes == {(2, False)}:
            return prefix, False
    return -1, False


@dataclass
class FolderScan:
    """An image folder's layout, from its names alone: the classes, and for each split the images
    in the order they are stored (class by class, by name) with their labels."""

    path: Path
    classes: list[str]
    splits: dict[str, list[tuple[str, int]]]


def scan_image_folder(source: str | Path, limit_per_class: int | None = None) -> FolderScan:
    """Check an image folder's layout (directory or tar) and list its images, reading no image."""
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"{path} does not exist; give a directory with train/<class>/ and test/<class>/ folders or a tar of one"
        )
    names = _names_from_tar(path) if is_tar(path) else _names_from_dir(path)
    if not names:
        raise DataError(
            f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); expected train/<class>/*.jpg ..."
        )
    prefix, has_splits = _layout(names)
    if prefix < 0:
        examples = ", ".join(str(name) for name in names[:3])
        raise DataError(
            f"{path} is not laid out as an image folder: found files like {examples}; expected "
            f"train/<class>/<image> and test/<class>/<image> (or <class>/<image>)"
        )
    grouped: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for name in names:
        parts = name.split("/")[prefix:]
        split, cls = (parts[0], parts[1]) if has_splits else ("all", parts[0])
        grouped[split][cls].append(name)
    classes = sorted({cls for split in grouped.values() for cls in split})
    if not has_splits and set(classes) <= set(SPLITS):
        raise DataError(
            f"{path}: {'/ and '.join(classes)}/ hold images directly, without class folders; expected "
            f"train/<class>/<image> and test/<class>/<image>"
        )
    if len(classes) < 2:
        raise DataError(
            f"{path} has {len(classes)} class folder(s) ({classes}); a classification dataset needs at least 2"
        )
    if has_splits and "train" not in grouped:
        raise DataError(f"{path} has a test/ folder but no train/ folder")
    if has_splits:
        _check_split_classes(path, grouped)
    splits = {
        split: [(name, label) for label, cls in enumerate(classes) for name in by_class.get(cls, [])[:limit_per_class]]
        for split, by_class in sorted(grouped.items())
    }
    for split, items in splits.items():
        if not items:
            raise DataError(f"{path}: split {split}/ has no images")
    return FolderScan(path, classes, splits)


def _check_split_classes(path: Path, grouped: dict[str, dict[str, list]]) -> None:
    """Refuse a split holding classes that train/ lacks (a head for the union of the classes would
    be validated on classes it never trained on), naming the classes only in one split; a split
    missing some of train's classes is allowed (the caller says so: ``missing_classes``)."""
    trained = set(grouped["train"])
    extra = {split: sorted(set(by_class) - trained) for split, by_class in grouped.items() if split != "train"}
    if any(extra.values()):
        untested = sorted(trained - set().union(*(set(c) for s, c in grouped.items() if s != "train")))
        only = [f"only in {split}/: {', '.join(classes)}" for split, classes in sorted(extra.items()) if classes]
        only += [f"only in train/: {', '.join(untested)}"] if untested else []
        raise DataError(
            f"{path}: the splits hold different classes ({'; '.join(only)}); a model for all of them would "
            "be validated on classes it never trained on -- give every split the same class folders"
        )


def missing_classes(classes: list[str], labels: np.ndarray) -> list[str]:
    """The classes of which ``labels`` hold no image."""
    counts = np.bincount(labels, minlength=len(classes))
    return [c for c, n in zip(classes, counts) if n == 0]


def decode_image_folder(
    scan: FolderScan,
    out_dir: str | Path,
    image_size: tuple[int, int] | None = None,
    cache_size: int | None = None,
    advance: Callable[[int], None] | None = None,
) -> None:
    """Decode every image of ``scan`` into ``out_dir/<split>_images.npy`` and ``_labels.npy``, one
    image in memory at a time (rows written where they belong: :class:`~.rowfile.RowWriter`).
    ``image_size=(H, W)`` resizes; without it all images must share one size. ``cache_size``
    instead keeps each image in its own framing, shorter side ``cache_size``
    (:class:`~.frames.FrameWriter`: ``<split>_pixels.bin`` and ``<split>_frames.npy``).
    ``advance(1)`` is told of every image written (a progress bar)."""
    out = Path(out_dir)
    where = {name: (split, row) for split, items in scan.splits.items() for row, (name, _) in enumerate(items)}
    writers: dict[str, RowWriter | FrameWriter] = {}
    first: dict[str, tuple[str, tuple[int, ...]]] = {}
    try:
        for name, data in _stream(scan.path, where):
            split, row = where[name]
            array = _decode_image(scan.path, name, data, image_size, cache_size)
            if split not in writers:
                first[split] = (name, array.shape)
                writers[split] = (
                    FrameWriter(out, split, len(scan.splits[split]))
                    if cache_size is not None
                    else RowWriter(out / f"{split}_images.npy", (len(scan.splits[split]), *array.shape))
                )
            elif cache_size is None and array.shape != first[split][1]:
                shape = first[split][1]
                raise DataError(
                    f"image {name} in {scan.path} is {array.shape[1]}x{array.shape[0]} but {first[split][0]} is "
                    f"{shape[1]}x{shape[0]}; pass an image size to resize them (or a cache size to keep their framing)"
                )
            writers[split].write(row, array)
            if advance is not None:
                advance(1)
    finally:
        for writer in writers.values():
            writer.close()
    for split, items in scan.splits.items():
        np.save(out / f"{split}_labels.npy", np.array([label for _, label in items], dtype=np.int64))


def _decode_image(path: Path, name: str, data: bytes, image_size, cache_size: int | None = None) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            img = opened.convert("RGB")
            if cache_size is not None:
                return np.asarray(resize_short_side(img, cache_size), dtype=np.uint8)
            if image_size is not None and img.size != (image_size[1], image_size[0]):
                img = img.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:
        raise DataError(
            f"cannot read image {name} in {path} (not an image format Pillow knows, or a damaged file); "
            "remove or replace that file"
        ) from None
    except Image.DecompressionBombError as error:
        raise DataError(f"refused image {name} in {path}: {error}") from None
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read image {name} in {path} ({error}); remove or replace that file") from None
