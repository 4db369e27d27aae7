"""Images in a ``.npy`` file, written and read one row (image) at a time with ``pwrite``/``pread``.

A decoded dataset larger than memory lives in such a file: :class:`RowWriter` fills it as the
images are decoded (one image in memory at a time), :class:`RowFile` reads any rows back.
Plain reads, not ``mmap``: pages of a mapped file count in the process's resident memory, so an
epoch over a memory-mapped 2 GB cache makes the trainer "use" 2 GB; read with ``pread`` they sit
in the kernel's page cache, which gives them back when memory is short. The files are ordinary
``.npy`` (``np.load`` reads a small one whole).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np


class RowWriter:
    """A new ``.npy`` of ``shape`` (rows first), every row written where it belongs, in any order."""

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype=np.uint8) -> None:
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        with open(self.path, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
            )
            self.offset = f.tell()
            f.truncate(self.offset + self.shape[0] * self.row_bytes)  # sparse until written
        self.fd = os.open(self.path, os.O_WRONLY)

    def write(self, row: int, value: np.ndarray) -> None:
        data = np.ascontiguousarray(value, dtype=self.dtype)
        if data.shape != self.shape[1:]:
            raise ValueError(f"row {row} has shape {data.shape}, the file holds {self.shape[1:]}")
        os.pwrite(self.fd, data.tobytes(), self.offset + row * self.row_bytes)

    def close(self) -> None:
        if self.fd >= 0:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileReader:
    """A file read with ``pread`` from any thread: the descriptor opens on first use (and again
    in a process it is pickled to)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd, self._lock = -1, threading.Lock()

    @property
    def fd(self) -> int:
        if self._fd < 0:
            with self._lock:
                if self._fd < 0:
                    self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def read_spans(self, spans: list[tuple[memoryview, int]]) -> None:
        """Fill each ``(view, offset)``: ``view`` from the file at ``offset``."""
        fd = self.fd
        for view, offset in spans:
            got = 0
            while got < len(view):
                n = os.preadv(fd, [view[got:]], offset + got)
                if n <= 0:
                    raise OSError(f"{self.path}: unexpected end of file")
                got += n

    def __getstate__(self) -> dict:  # a DataLoader worker or a spawned process opens its own descriptor
        state = dict(self.__dict__)
        state["_fd"], state["_lock"] = -1, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class RowFile(FileReader):
    """Rows of a ``.npy`` file read on demand (``pread``; safe from several threads)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            self.offset = f.tell()
        if fortran:
            raise ValueError(f"{self.path} is in Fortran order; expected C order")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        size = self.path.stat().st_size
        if size < self.offset + self.shape[0] * self.row_bytes:
            raise ValueError(
                f"{self.path} is truncated: {size:,} bytes for {self.shape[0]:,} rows of {self.row_bytes:,}"
            )

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``rows`` (sorted reads are fastest) into ``out`` (a new array when None); one
        read per run of consecutive rows."""
        rows = np.asarray(rows, dtype=np.int64)
        if out is None:
            out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"rows outside 0..{self.shape[0] - 1}")
        flat = out.reshape(len(rows), -1).view(np.uint8)  # a view: out must be contiguous
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1) if len(rows) else np.zeros(0, np.int64)
        ends = np.append(starts[1:], len(rows))
        spans = [
            (flat[a:b].reshape(-1).data, self.offset + int(rows[a]) * self.row_bytes) for a, b in zip(starts, ends)
        ]
        self.read_spans(spans)
        return out


class LazyRows:
    """Images of a cache file chosen by index (``rows``), read only when asked: a subset (a
    limit, a validation split) of a cache larger than memory costs its index, not its pixels.
    ``view[index]`` reads those images, ``np.asarray(view)`` all of them. Subclasses give the
    shape of one image (``row_shape``), :meth:`read_into` and :meth:`_on` (the same view on other rows)."""

    rows: np.ndarray
    dtype = np.dtype(np.uint8)
    row_shape: tuple[int, ...]
    shape = property(lambda self: (len(self.rows), *self.row_shape))
    ndim = property(lambda self: 1 + len(self.row_shape))
    nbytes = property(lambda self: len(self.rows) * int(np.prod(self.row_shape)) * self.dtype.itemsize)

    def __len__(self) -> int:
        return len(self.rows)

    def read_into(self, index: np.ndarray, out: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def _on(self, rows: np.ndarray) -> LazyRows:
        raise NotImplementedError

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, tuple):  # images[i, y, x] / images[a:b, ..., 0]: the rows first, then the rest
            first = self[index[0]]
            return first[index[1:]] if np.ndim(self.rows[index[0]]) == 0 else first[(slice(None), *index[1:])]
        positions = np.arange(len(self.rows))[index]
        if np.ndim(positions) == 0:
            return self[positions[None]][0]
        return self.read_into(positions, np.empty((len(positions), *self.row_shape), dtype=self.dtype))

    def select(self, index) -> LazyRows:
        """The rows at ``index`` (ints or a boolean mask) as another lazy view."""
        index = np.flatnonzero(index) if np.asarray(index).dtype == bool else index
        return self._on(self.rows[index])
