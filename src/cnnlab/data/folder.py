"""Image-folder datasets: ``train/<class>/*`` and ``test/<class>/*`` and/or ``val/<class>/*`` (or just ``<class>/*``),
as a directory or as a ``.tar`` / ``.tar.gz`` of one. Class index = sorted folder name
(for CIFAR-10 that is the official label order)."""

from __future__ import annotations

import io
import tarfile
import zlib
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from .dataset import ImageDataset
from .errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
SPLITS = ("train", "val", "test")


def is_tar(path: Path) -> bool:
    return path.is_file() and any(str(path).endswith(s) for s in (".tar", ".tar.gz", ".tgz"))


def _entries_from_dir(root: Path) -> Iterator[tuple[PurePosixPath, Callable[[], bytes]]]:
    for file in sorted(root.rglob("*")):
        if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
            yield PurePosixPath(file.relative_to(root).as_posix()), file.read_bytes


def _entries_from_tar(path: Path) -> Iterator[tuple[PurePosixPath, Callable[[], bytes]]]:
    try:
        with tarfile.open(path, "r:*") as archive:
            members = sorted((m for m in archive if m.isfile()), key=lambda m: m.name)
            for member in members:
                name = PurePosixPath(member.name)
                if name.suffix.lower() in IMAGE_SUFFIXES:
                    data = archive.extractfile(member).read()  # read now: the archive closes after the loop
                    yield name, lambda data=data: data
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DataError(
            f"{path} is not a readable tar archive ({type(error).__name__}: {error}); it may be truncated "
            f"or corrupt -- copy or download it again"
        ) from None


def _layout(names: list[PurePosixPath]) -> tuple[int, bool]:
    """(number of leading path parts to drop, has train/test splits)."""
    for prefix in (0, 1):  # an archive usually wraps everything in one top-level folder
        parts = [n.parts[prefix:] for n in names if len(n.parts) > prefix]
        if parts and all(len(p) == 3 and p[0] in SPLITS for p in parts):
            return prefix, True
        if parts and all(len(p) == 2 for p in parts):
            return prefix, False
    return -1, False


def load_image_folder(
    source: str | Path, image_size: tuple[int, int] | None = None, limit_per_class: int | None = None
) -> dict[str, ImageDataset]:
    """Decode an image folder (directory or tar) into ``{"train": ..., "test": ...}`` (or
    ``{"all": ...}`` without split folders). ``image_size=(H, W)`` resizes; without it all
    images must share one size. ``limit_per_class`` decodes only the first images of each class."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path} does not exist; give a directory with train/<class>/ and test/<class>/ folders or a tar of one")
    entries = list(_entries_from_tar(path) if is_tar(path) else _entries_from_dir(path))
    if not entries:
        raise DataError(f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); expected train/<class>/*.jpg ...")
    prefix, has_splits = _layout([name for name, _ in entries])
    if prefix < 0:
        examples = ", ".join(str(name) for name, _ in entries[:3])
        raise DataError(
            f"{path} is not laid out as an image folder: found files like {examples}; expected "
            f"train/<class>/<image> and test/<class>/<image> (or <class>/<image>)"
        )
    grouped: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for name, read in entries:
        parts = name.parts[prefix:]
        split, cls = (parts[0], parts[1]) if has_splits else ("all", parts[0])
        grouped[split][cls].append((name, read))
    classes = sorted({cls for split in grouped.values() for cls in split})
    if not has_splits and set(classes) <= set(SPLITS):
        raise DataError(
            f"{path}: {'/ and '.join(classes)}/ hold images directly, without class folders; expected "
            f"train/<class>/<image> and test/<class>/<image>"
        )
    if len(classes) < 2:
        raise DataError(f"{path} has {len(classes)} class folder(s) ({classes}); a classification dataset needs at least 2")
    if has_splits and "train" not in grouped:
        raise DataError(f"{path} has a test/ folder but no train/ folder")
    return {
        split: _decode(path, by_class, classes, image_size, limit_per_class) for split, by_class in sorted(grouped.items())
    }


def _decode(path, by_class, classes, image_size, limit) -> ImageDataset:
    images, labels = [], []
    for label, cls in enumerate(classes):
        for name, read in by_class.get(cls, [])[:limit]:
            try:
                with Image.open(io.BytesIO(read())) as img:
                    img = img.convert("RGB")
                    if image_size is not None and img.size != (image_size[1], image_size[0]):
                        img = img.resize((image_size[1], image_size[0]), Image.BILINEAR)
                    array = np.asarray(img, dtype=np.uint8)
            except UnidentifiedImageError:
                raise DataError(f"cannot read image {name} in {path} (not an image format Pillow knows, or a damaged file); "
                                "remove or replace that file") from None
            except Image.DecompressionBombError as error:
                raise DataError(f"refused image {name} in {path}: {error}") from None
            except (OSError, ValueError) as error:
                raise DataError(f"cannot read image {name} in {path} ({error}); remove or replace that file") from None
            if images and array.shape != images[0].shape:
                raise DataError(
                    f"image {name} in {path} is {array.shape[1]}x{array.shape[0]} but earlier ones are "
                    f"{images[0].shape[1]}x{images[0].shape[0]}; pass an image size to resize them"
                )
            images.append(array)
            labels.append(label)
    if not images:
        raise DataError(f"{path}: a split has no images")
    return ImageDataset(np.stack(images), np.asarray(labels, dtype=np.int64), classes)
