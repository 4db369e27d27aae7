"""Data larger than memory: the decoded cache is written one image at a time and read batch by
batch while training, and a streamed run is the same run as one held in memory."""

from __future__ import annotations

import io
import json
import tarfile
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import DataConfig
from cnnlab.data.dataset import MappedRows
from cnnlab.data.rowfile import RowFile, RowWriter
from cnnlab.data.sources import load_dataset
from cnnlab.train import TrainConfig, run_training

from ..images import image_folder


def test_rowfile_reads_any_rows_and_refuses_a_truncated_file(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, size=(50, 4, 5, 3), dtype=np.uint8)
    with RowWriter(tmp_path / "x.npy", data.shape) as writer:
        for i in np.random.default_rng(1).permutation(50):  # any order
            writer.write(int(i), data[i])
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), data)  # an ordinary .npy
    rows = RowFile(tmp_path / "x.npy")
    for index in ([3], [0, 1, 2, 7, 8, 49], [10, 2, 2, 30]):
        np.testing.assert_array_equal(MappedRows(rows)[np.array(index)], data[index])
    view = MappedRows(rows).select(np.arange(50) % 3 == 0).select([1, 2])
    np.testing.assert_array_equal(np.asarray(view), data[[3, 6]])
    with open(tmp_path / "x.npy", "r+b") as f:
        f.truncate(f.seek(0, 2) - 7)
    with pytest.raises(ValueError, match="truncated"):
        RowFile(tmp_path / "x.npy")


def _tar_of_noise(path, n: int, size: int = 64) -> int:
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w") as tar:
        for i in range(n):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, format="PNG")
            info = tarfile.TarInfo(f"photos/train/{'ab'[i % 2]}/{i:04d}.png")
            info.size = len(buffer.getvalue())
            tar.addfile(info, io.BytesIO(buffer.getvalue()))
    return path.stat().st_size


def test_a_tar_is_decoded_as_a_stream(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    size = _tar_of_noise(tmp_path / "photos.tar", 1200)  # 16 MB of PNGs, 15 MB decoded
    tracemalloc.start()
    splits = load_dataset("photos", tmp_path / "photos.tar")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < size / 4, f"decoding held {peak:,} bytes at its peak for a {size:,}-byte tar"
    images = splits["train"].images
    assert isinstance(images, MappedRows) and images.shape == (1200, 64, 64, 3)
    limited = splits["train"].limit(20)
    assert isinstance(limited.images, MappedRows) and len(limited) == 20  # a subset is an index, not pixels


@pytest.mark.parametrize("augment", ["standard", "none"])
def test_a_streamed_run_is_the_run_held_in_memory(tmp_path, monkeypatch, augment):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "shapes", per_class=24, size=16, splits=("train", "test"))
    train = TrainConfig(epochs=2, batch_size=10, optimizer="sgd", lr=0.05, augment=augment, device="cpu", precise_bn=16)
    runs = {}
    for stream in (False, True):
        run = run_training(
            "convtype_cifar",
            {"widths": (4, 8)},
            data=DataConfig("shapes", str(root), stream=stream),
            train=train,
            out_dir=tmp_path / f"run-{stream}",
            quiet=True,
        )
        runs[stream] = run
        assert run.data.train.mapped is stream
    memory, streamed = (
        torch.load(tmp_path / f"run-{s}" / "last.pt", weights_only=True)["model"] for s in (False, True)
    )
    for name in memory:
        torch.testing.assert_close(streamed[name], memory[name], rtol=0, atol=0)
    h = [json.loads((tmp_path / f"run-{s}" / "history.json").read_text()) for s in (False, True)]
    assert [e["val_acc"] for e in h[0]["epochs"]] == [e["val_acc"] for e in h[1]["epochs"]]
    assert h[1]["info"]["streamed"] and not h[0]["info"]["streamed"]
    assert h[0]["info"]["data_digest"] == h[1]["info"]["data_digest"] and h[0]["info"]["data"] == h[1]["info"]["data"]
