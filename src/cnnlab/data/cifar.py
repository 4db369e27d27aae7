"""The official CIFAR-10/100 python archives (Krizhevsky 2009): download with the published
MD5, and read their pickled batches with an unpickler that only rebuilds plain data and
NumPy arrays -- the only pickle reading in cnnlab."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .dataset import ImageDataset
from .errors import DataError

ARCHIVES = {
    # name: (url, file name, md5 published on https://www.cs.toronto.edu/~kriz/cifar.html)
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": (
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
    ),
}
LAYOUT = {
    # train batches, test batch, label key, meta file, class-name key
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels", "batches.meta", b"label_names"),
    "cifar100": (["train"], "test", b"fine_labels", "meta", b"fine_label_names"),
}
CLASS_COUNT = {"cifar10": 10, "cifar100": 100}  # how many classes a copy of each must hold
IMAGES = 60_000  # train + test, either archive


class _DataOnlyUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, bytes, numbers and NumPy arrays; refuses every other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def read_batch(data: bytes, where: str) -> dict:
    try:
        return _DataOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:  # any malformed or hostile pickle
        raise DataError(f"{where} is not a CIFAR python batch ({error})") from None


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(name: str, directory: Path) -> Path:
    """Fetch the official archive into ``directory`` (atomically), MD5-checked."""
    url, filename, expected = ARCHIVES[name]
    target = directory / filename
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            atomic_write(target, lambda tmp: Path(tmp).write_bytes(response.read()))
    except OSError as error:
        raise DataError(
            f"could not download {name} from {url} ({error}); without network, pass `data_dir` (or set "
            f"CNNLAB_DATA, or CNNLAB_DATA_PATH to the folders holding one) to the official archive, its extracted "
            f"folder, or an image-folder tree/tar"
        ) from None
    check_md5(name, target)
    return target


def check_md5(name: str, path: Path) -> None:
    got = md5(path)
    if got != ARCHIVES[name][2]:
        raise DataError(
            f"{path} has MD5 {got}, but the published {name} archive has {ARCHIVES[name][2]}: the file is "
            f"corrupt or truncated -- delete it and download it again"
        )


def _read_members(name: str, source: Path) -> dict[str, bytes]:
    """Batch file name -> bytes, from the archive or its extracted folder."""
    train, test, _, meta, _ = LAYOUT[name]
    wanted = set(train) | {test, meta}
    found: dict[str, bytes] = {}
    if source.is_dir():
        for file in source.rglob("*"):
            if file.name in wanted and file.is_file():
                found[file.name] = file.read_bytes()
    else:
        check_md5(name, source)
        try:
            with tarfile.open(source, "r:gz") as archive:
                for member in archive:
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in wanted:
                        handle = archive.extractfile(member)
                        assert handle is not None  # None only for members that are not regular files (isfile())
                        found[base] = handle.read()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise DataError(f"{source} cannot be read as a tar.gz ({error}); download it again") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{source} lacks the {name} batch files {missing}; is it the official python archive?")
    return found


def load_cifar_archive(
    name: str, source: str | Path, advance: Callable[[int], None] | None = None
) -> dict[str, ImageDataset]:
    """``{"train": ..., "test": ...}`` from the official archive or its extracted folder;
    ``advance(n)`` is told of every batch of ``n`` images read (a progress bar)."""
    source = Path(source)
    train, test, label_key, meta, names_key = LAYOUT[name]
    files = _read_members(name, source)
    classes = [c.decode() for c in read_batch(files[meta], f"{source}:{meta}")[names_key]]

    def split(batches: list[str]) -> ImageDataset:
        images, labels = [], []
        for batch in batches:
            content = read_batch(files[batch], f"{source}:{batch}")
            data = np.asarray(content[b"data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3072:
                raise DataError(f"{source}:{batch} holds data of shape {data.shape}, expected (N, 3072)")
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(content[label_key], dtype=np.int64))
            if advance is not None:
                advance(len(data))
        return ImageDataset(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), classes)

    return {"train": split(train), "test": split([test])}
