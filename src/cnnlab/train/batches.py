"""Where the trainer's batches come from: the whole dataset on the device (:class:`OnDevice`,
the fast path for data that fits), or the decoded cache on disk, read batch by batch by a
background thread a few batches ahead of the training step (:class:`FromDisk`: memory bounded
by the batch, not by the number of images).

Both hand out uint8 NCHW batches on the training device for a list of index arrays (one per
step), so the trainer, its augmentation and its random draws are the same either way. Images
kept in their own framing (``DataConfig.cache_size``) come to training as
:class:`~cnnlab.data.frames.Frames` (each image its own size; the augmentation crops them) and to
evaluation as their center views.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch

from ..data.dataset import ImageDataset
from ..data.frames import FramedRows, Frames
from ..data.rowfile import LazyRows

Batch = tuple[torch.Tensor | Frames, torch.Tensor]
_B = TypeVar("_B", bound=Batch)  # what a reader makes of the images at an index: a Batch, or center views only


def _nchw(images: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
    return x.to(device, non_blocking=True)


class OnDevice:
    """All images on the device as one uint8 tensor; a batch is an index into it."""

    def __init__(self, data: ImageDataset, device: torch.device, channels_last: bool) -> None:
        self.x = _nchw(np.asarray(data.images), device, channels_last)
        self.y = torch.from_numpy(data.labels).to(device)

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, indices: list[torch.Tensor]) -> Iterator[Batch]:
        if not indices:
            return
        # the epoch's indices reach the device in one copy, not one per step
        on_device = torch.cat(indices).to(self.x.device).split([len(i) for i in indices])
        for index in on_device:
            yield self.x[index], self.y[index]

    def take(self, index: torch.Tensor) -> torch.Tensor:
        return self.x[index.to(self.x.device)]

    def parts(self, parts: int, part: int, chunk: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Part ``part`` of ``parts`` contiguous parts (one per rank), in one piece."""
        yield self.x.tensor_split(parts)[part], self.y.tensor_split(parts)[part]


class FromDisk:
    """Images read from the decoded cache for each batch, ``ahead`` batches in advance by a
    background thread (file reads release the GIL, so reading overlaps the training step), into
    a ring of buffers reused from batch to batch. A batch handed out stays valid until the next
    one is asked for (the trainer augments it into new tensors first). ``frames``: training
    batches of images in their own framing are :class:`Frames` (``take`` and ``parts`` still
    give center views)."""

    def __init__(
        self, data: ImageDataset, device: torch.device, channels_last: bool, ahead: int = 3, frames: bool = False
    ) -> None:
        if not isinstance(data.images, LazyRows):
            raise TypeError("FromDisk reads images left in the decoded cache (ImageDataset.mapped), got an array")
        self.images, self.labels = data.images, data.labels
        self.device, self.channels_last, self.ahead = device, channels_last, ahead
        self.frames = frames and data.framed

    def __len__(self) -> int:
        return len(self.labels)

    def _read(
        self, index: np.ndarray, slot: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of the images at ``index``; into ``slot`` = (images, labels, scratch) buffers
        when given (the reader refills a ring of them: nothing is allocated per batch, which a
        CPU allocator that keeps freed memory would otherwise pile up across threads)."""
        if slot is None:
            images, labels = self.images[index], self.labels[index]
        else:
            images, labels = self.images.read_into(index, slot[0], slot[2]), self._labels(index, slot)
        return _nchw(images, self.device, self.channels_last), torch.from_numpy(labels).to(self.device)

    def _labels(self, index: np.ndarray, slot) -> np.ndarray:
        return np.take(self.labels, index, out=slot[1][: len(index)])

    def _read_frames(self, index: np.ndarray, slot: list) -> Batch:
        """A batch of images in their own framing, read into ``slot``'s buffer (grown when short)."""
        images = self.images
        assert isinstance(images, FramedRows)  # self.frames: data.framed, its images are FramedRows
        pixels, table, slot[2] = images.frames(index, slot[2])
        batch = Frames(torch.from_numpy(pixels).to(self.device, non_blocking=True), table, images.size)
        return batch, torch.from_numpy(self._labels(index, slot)).to(self.device)

    def batches(self, indices: list[torch.Tensor]) -> Iterator[Batch]:
        """The training batches at ``indices`` (:class:`Frames` with ``frames``)."""
        return self._ahead(indices, self._read_frames if self.frames else self._read)

    def _ahead(self, indices: list[torch.Tensor], read: Callable[[np.ndarray, Any], _B]) -> Iterator[_B]:
        done = object()
        ready: queue.Queue = queue.Queue(maxsize=self.ahead)
        stop = threading.Event()
        # the consumer holds one batch, the queue `ahead`, the reader fills one more: a ring of ahead + 2
        size = max((len(i) for i in indices), default=0)
        ring: list[list[np.ndarray | None]] | list[tuple[np.ndarray, np.ndarray, np.ndarray]]
        if read == self._read_frames:  # a flat buffer per slot, sized by the first batches read into it
            ring = [[None, np.empty(size, dtype=np.int64), None] for _ in range(self.ahead + 2)]
        else:
            shape = (size, *self.images.shape[1:])
            scratch = np.empty(shape, dtype=np.uint8)
            ring = [
                (np.empty(shape, dtype=np.uint8), np.empty(size, dtype=np.int64), scratch)
                for _ in range(self.ahead + 2)
            ]

        def read_ahead() -> None:
            try:
                for k, index in enumerate(indices):
                    if stop.is_set():
                        return
                    ready.put(read(index.cpu().numpy(), ring[k % len(ring)]))
                ready.put(done)
            except BaseException as error:  # noqa: BLE001 -- raised in the training thread
                ready.put(error)

        reader = threading.Thread(target=read_ahead, name="cnnlab-reader", daemon=True)
        reader.start()
        try:
            while (item := ready.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting on a full queue
                try:
                    ready.get_nowait()
                except queue.Empty:
                    reader.join(0.05)

    def take(self, index: torch.Tensor) -> torch.Tensor:
        return self._read(index.cpu().numpy())[0]

    def parts(self, parts: int, part: int, chunk: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Part ``part`` of ``parts`` contiguous parts, read ``chunk`` images at a time (default:
        about 32 MB of them, so the reader's ring stays small for large images)."""
        rows = np.array_split(np.arange(len(self.labels)), parts)[part]
        if chunk is None:
            chunk = int(np.clip((32 << 20) // max(1, int(np.prod(self.images.shape[1:]))), 64, 4096))
        yield from self._ahead([torch.from_numpy(rows[i : i + chunk]) for i in range(0, len(rows), chunk)], self._read)


def batch_source(
    data: ImageDataset, device: torch.device, channels_last: bool, training: bool = False
) -> OnDevice | FromDisk:
    """:class:`FromDisk` for images left in the decoded cache (``DataConfig.stream``, and always
    for images in their own framing: :class:`Frames` when ``training``), else :class:`OnDevice`."""
    return (
        FromDisk(data, device, channels_last, frames=training) if data.mapped else OnDevice(data, device, channels_last)
    )
