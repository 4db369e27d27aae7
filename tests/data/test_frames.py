"""Images cached in their own framing (``--cache-size``): shorter side at the cache size, aspect
kept; training crops each one over its whole size, evaluation sees the central 87.5% -- checked
against PIL doing the same steps (torchvision's own transforms: tests/interop)."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import tarfile
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import DataConfig, DataError
from cnnlab.data.augment import Augmentation, random_resized_boxes
from cnnlab.data.frames import FramedRows, FrameFile, Frames, FrameWriter, center_views, short_side_size
from cnnlab.data.sources import load_dataset

SIZES = [(90, 150), (150, 90), (101, 203), (64, 64), (40, 70)]  # wide, tall, odd, square, smaller than the cache


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random picture (neighbouring pixels alike, as in a photo)."""
    small = np.random.default_rng(seed).integers(0, 256, size=(h // 6 + 1, w // 6 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def _folder(root, sizes=SIZES, classes=("a", "b"), splits=("train", "val")):
    """``root/<split>/<class>/<i>.png`` with the pictures of ``sizes``; {path: array}."""
    written = {}
    for s, split in enumerate(splits):
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i, (h, w) in enumerate(sizes):
                picture = _photo(h, w, seed=100 * s + 10 * c + i)
                Image.fromarray(picture).save(root / split / name / f"{i}.png")
                written[f"{split}/{name}/{i}.png"] = picture
    return written


def test_short_side_sizes_follow_resize_of_an_int():
    # the shorter side becomes S, the longer one S * long / short rounded down (torchvision's Resize(S))
    assert short_side_size(90, 150, 64) == (64, 106)
    assert short_side_size(150, 90, 64) == (106, 64)
    assert short_side_size(101, 203, 50) == (50, 100)
    assert short_side_size(40, 70, 64) == (64, 112)  # smaller images are enlarged, as Resize does
    assert short_side_size(64, 64, 64) == (64, 64)


def test_the_cache_keeps_each_image_in_its_framing(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    written = _folder(tmp_path / "photos")
    splits = load_dataset("photos", tmp_path / "photos", image_size=(56, 56), cache_size=64)
    train = splits["train"]
    assert train.framed and train.images.shape == (10, 56, 56, 3) and train.images.short_side == 64
    pixels, table, _ = train.images.frames(np.arange(10))
    for row, (offset, h, w) in enumerate(table.tolist()):
        original = written[f"train/{'ab'[row // 5]}/{row % 5}.png"]
        assert (h, w) == short_side_size(*original.shape[:2], 64)
        expected = np.asarray(Image.fromarray(original).resize((w, h), Image.BILINEAR))  # PIL: Resize(64)'s own path
        np.testing.assert_array_equal(pixels[offset : offset + h * w * 3].reshape(h, w, 3), expected)
    # one cache for any input size: another --image-size is another view of the same files
    again = load_dataset("photos", tmp_path / "photos", image_size=(48, 40), cache_size=64)["train"]
    assert again.images.file.path == train.images.file.path and again.images.shape == (10, 48, 40, 3)
    with pytest.raises(DataError, match="CIFAR"):
        load_dataset("cifar10", _official_stub(tmp_path), cache_size=64)


def _official_stub(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("batches.meta", "test_batch"):
        (folder / name).write_bytes(b"x")
    return folder


def test_a_tar_is_decoded_into_frames_one_image_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    with tarfile.open(tmp_path / "photos.tar", "w") as tar:
        for i in range(300):
            h, w = (int(v) for v in rng.integers(80, 200, 2))
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buffer, format="PNG")
            info = tarfile.TarInfo(f"./photos/train/{'ab'[i % 2]}/{i:04d}.png")  # "./" as `tar -C dir .` writes
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    size = (tmp_path / "photos.tar").stat().st_size
    tracemalloc.start()
    train = load_dataset("photos", tmp_path / "photos.tar", cache_size=64)["train"]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < size / 4, f"decoding held {peak:,} bytes at its peak for a {size:,}-byte tar"
    assert train.framed and len(train) == 300 and train.images.shape == (300, 56, 56, 3)
    assert np.minimum(train.images.file.table[:, 1], train.images.file.table[:, 2]).tolist() == [64] * 300


def test_the_center_view_is_resize_then_center_crop(tmp_path):
    """For cache 64 and input 56 (= 0.875 x 64) the view is Resize(64) + CenterCrop(56): a plain
    crop; for input 48 the central 56 px resized to 48 (PIL's crop + resize, within 2 levels)."""
    pictures = [_photo(h, w, seed=i) for i, (h, w) in enumerate(SIZES)]
    frames = [
        np.asarray(Image.fromarray(p).resize(short_side_size(*p.shape[:2], 64)[::-1], Image.BILINEAR)) for p in pictures
    ]
    exact = center_views(frames, (56, 56)).numpy()
    smaller = center_views(frames, (48, 48)).numpy()
    for i, frame in enumerate(frames):
        h, w = frame.shape[:2]
        top, left = int(round((h - 56) / 2)), int(round((w - 56) / 2))  # torchvision's CenterCrop
        np.testing.assert_array_equal(exact[i], frame[top : top + 56, left : left + 56])
        reference = np.asarray(
            Image.fromarray(frame).crop((left, top, left + 56, top + 56)).resize((48, 48), Image.BILINEAR)
        )
        difference = np.abs(smaller[i].astype(int) - reference)
        assert difference.max() <= 2 and difference.mean() < 0.5, (i, difference.max())
    # a non-square input: the largest box of its aspect, times 0.875, from the middle
    # frame 64 x 106, input 32 x 64: the largest 1:2 box is 53 x 106, x 0.875 = 46 x 93 px at (9, 6)
    wide = center_views([frames[0]], (32, 64)).numpy()[0]
    reference = np.asarray(Image.fromarray(frames[0]).crop((6, 9, 6 + 93, 9 + 46)).resize((64, 32), Image.BILINEAR))
    assert np.abs(wide.astype(int) - reference).max() <= 2


def test_training_crops_are_drawn_over_each_whole_image(tmp_path):
    pictures = [_photo(64, 160, 0), _photo(160, 64, 1), _photo(64, 64, 2)]
    flat = np.concatenate([p.reshape(-1) for p in pictures])
    table = np.array([(0, 64, 160), (64 * 160 * 3, 160, 64), (2 * 64 * 160 * 3, 64, 64)], dtype=np.int64)
    batch = Frames(torch.from_numpy(flat), table, (48, 48))
    out = Augmentation("imagenet", flip=False)(batch, torch.Generator().manual_seed(5))
    boxes = random_resized_boxes(3, [64, 160, 64], [160, 64, 64], torch.Generator().manual_seed(5))  # the same draws
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        reference = np.asarray(
            Image.fromarray(pictures[i]).crop((left, top, left + w, top + h)).resize((48, 48), Image.BILINEAR)
        )
        ours = (out[i] * 255).round().permute(1, 2, 0).numpy()
        assert np.abs(ours - reference).max() <= 2, i
    # over many draws the crops reach both ends of the wide picture (its whole framing, not a square middle)
    many = random_resized_boxes(400, [64] * 400, [160] * 400, torch.Generator().manual_seed(0))
    assert int(many[:, 1].min()) == 0 and int((many[:, 1] + many[:, 3]).max()) == 160
    assert (many[:, 2] <= 64).all() and (many[:, 1] + many[:, 3] <= 160).all()
    # other policies start from the center views
    standard = Augmentation("none")(batch, torch.Generator())
    torch.testing.assert_close(standard * 255, batch.center(), rtol=0, atol=1e-3)


def test_framed_rows_read_subsets_and_refuse_a_damaged_file(tmp_path):
    pictures = [_photo(h, w, i) for i, (h, w) in enumerate(SIZES)]
    writer = FrameWriter(tmp_path, "train", len(pictures))
    for row in (3, 0, 4, 1, 2):  # any order
        writer.write(row, pictures[row])
    writer.close()
    rows = FramedRows(FrameFile(tmp_path, "train"), (32, 32))
    views = np.asarray(rows)
    np.testing.assert_array_equal(views, center_views(pictures, (32, 32)).numpy())
    np.testing.assert_array_equal(rows[np.array([4, 1])], views[[4, 1]])
    np.testing.assert_array_equal(rows[2], views[2])
    subset = rows.select(np.array([True, False, True, False, True])).select([2, 0])
    np.testing.assert_array_equal(np.asarray(subset), views[[4, 0]])
    pixels, table, _ = subset.frames([0])
    np.testing.assert_array_equal(pixels.reshape(table[0, 1], table[0, 2], 3), pictures[4])
    copied = pickle.loads(pickle.dumps(subset))  # a DataLoader worker's copy opens its own descriptor
    np.testing.assert_array_equal(np.asarray(copied), views[[4, 0]])
    with open(tmp_path / "train_pixels.bin", "r+b") as f:
        f.truncate(f.seek(0, 2) - 5)
    with pytest.raises(ValueError, match="truncated"):
        FrameFile(tmp_path, "train")


def test_cache_size_options_are_checked():
    assert DataConfig("photos", cache_size=256).image_size == (224, 224)  # the usual pair
    with pytest.raises(ValueError, match="shorter side"):
        DataConfig("photos", cache_size=3)
    with pytest.raises(ValueError, match="drop `stream=False`"):
        DataConfig("photos", cache_size=256, stream=False)
    with pytest.raises(ValueError, match="at least 224"):
        DataConfig("photos", cache_size=128, image_size=(224, 224))


@pytest.mark.slow
def test_train_evaluate_and_predict_see_the_same_views(tmp_path):
    """A run on images kept in their framing: training reads Frames from disk, the recorded
    validation accuracy is what `cnnlab evaluate` measures again, and `predict` on an original
    file gives the probabilities of the model on that image's cached center view."""
    _folder(tmp_path / "photos", sizes=[(70 + 9 * i, 120 - 7 * i) for i in range(6)])
    env = {"CNNLAB_DATA": str(tmp_path / "cache"), "PYTHONHASHSEED": "0"}
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "cnnlab",
        "train",
        "convtype_cifar",
        "--arg",
        "widths=4,8",
        "--dataset",
        "photos",
        "--data-dir",
        str(tmp_path / "photos"),
        "--cache-size",
        "40",
        "--image-size",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--augment",
        "imagenet",
        "--device",
        "cpu",
        "--out",
        str(run),
        "--quiet",
    ]
    subprocess.run(command, check=True, env=_env(env), capture_output=True, text=True)
    config = json.loads((run / "config.json").read_text())
    assert (
        config["streamed"] and config["eval_frame"] == {"short_side": 40, "crop": 0.875} and config["eval_crop"] is None
    )
    assert config["data"]["cache_size"] == 40 and config["image_size"] == [32, 32]
    last = json.loads((run / "history.json").read_text())["epochs"][-1]
    out = subprocess.run(
        [sys.executable, "-m", "cnnlab", "evaluate", str(run / "last.pt"), "--plot", str(tmp_path / "c.png")],
        check=True,
        env=_env(env),
        capture_output=True,
        text=True,
    )
    measured = json.loads((tmp_path / "c.json").read_text())
    assert measured["split"] == "validation" and measured["images"] == 12, out.stdout
    assert measured["accuracy"] == pytest.approx(last["val_acc"]) and measured["loss"] == pytest.approx(
        last["val_loss"], rel=1e-4
    )

    from cnnlab.train.prediction import predict_images
    from cnnlab.train.rundir import load_run

    picture = tmp_path / "photos" / "val" / "b" / "3.png"
    predicted = dict(predict_images(run / "last.pt", [picture], device="cpu")[0]["top"])
    model = load_run(run / "last.pt", "cpu")
    original = np.asarray(Image.open(picture).convert("RGB"))
    frame = np.asarray(Image.fromarray(original).resize(short_side_size(*original.shape[:2], 40)[::-1], Image.BILINEAR))
    view = center_views([frame], (32, 32)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        probs = model.model.eval()(view).softmax(dim=1)[0]
    for i, name in enumerate(model.classes):
        assert predicted[name] == pytest.approx(float(probs[i]), abs=1e-6)


def _env(extra):
    import os

    return {**os.environ, **extra}
