"""The `imagenet` policy: random-resized crops drawn as torchvision's RandomResizedCrop draws
them, cut and resized as PIL does (the reference: same boxes, same pixels within one level), and
evaluation's center crop; `auto` picks it for photos of 128 px and more."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.augment import Augmentation, auto_policy, center_crop_view, random_resized_boxes, resized_crops


def _photos(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random images (a photo's neighbouring pixels are alike; noise would test aliasing, not crops)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(s).resize((w, h), Image.BICUBIC)) for s in small])


@pytest.mark.parametrize("size", [(160, 200), (96, 96)])  # shrinking and enlarging crops
def test_same_boxes_give_pils_pixels(size):
    h, w = size
    images = _photos(8, h, w)
    boxes = random_resized_boxes(8, h, w, torch.Generator().manual_seed(3))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    ours = resized_crops(x, boxes, (128, 128)).round().clamp(0, 255).permute(0, 2, 3, 1).numpy()
    for i, (top, left, bh, bw) in enumerate(boxes.tolist()):
        # torchvision's PIL path: crop, then resize (bilinear, PIL's antialiasing)
        reference = np.asarray(
            Image.fromarray(images[i]).crop((left, top, left + bw, top + bh)).resize((128, 128), Image.BILINEAR)
        )
        difference = np.abs(ours[i] - reference.astype(np.float64))
        assert difference.max() <= 2 and difference.mean() < 0.5, (i, difference.max(), difference.mean())


def test_boxes_follow_torchvisions_ranges_and_are_seeded():
    boxes = random_resized_boxes(2000, 120, 160, torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T.double()
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 120).all() and (left + w <= 160).all()
    area = h * w / (120 * 160)
    assert area.min() >= 0.08 * 0.9 and area.max() <= 1.0
    ratio = w / h
    assert ratio.min() >= 0.75 * 0.9 and ratio.max() <= (4 / 3) * 1.1
    # the same distribution as torchvision's get_params, re-done here in NumPy from its documentation
    rng, ref = np.random.default_rng(1), []
    for _ in range(4000):
        for _ in range(10):
            a = 120 * 160 * rng.uniform(0.08, 1.0)
            r = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            bw, bh = round(math.sqrt(a * r)), round(math.sqrt(a / r))
            if 0 < bw <= 160 and 0 < bh <= 120:
                ref.append((bh * bw / (120 * 160), bw / bh))
                break
    ref_area, ref_ratio = np.array(ref).T
    assert abs(float(area.mean()) - ref_area.mean()) < 0.02 and abs(float(area.std()) - ref_area.std()) < 0.02
    assert abs(float(torch.log(ratio).mean()) - np.log(ref_ratio).mean()) < 0.02
    again = random_resized_boxes(2000, 120, 160, torch.Generator().manual_seed(0))
    assert torch.equal(boxes, again)


def test_fallback_is_the_center_crop_at_the_nearest_ratio():
    boxes = random_resized_boxes(50, 10, 400, torch.Generator().manual_seed(0))  # 1:40: few tries can fit
    fallback = boxes[(boxes[:, 2] == 10) & (boxes[:, 3] == round(10 * 4 / 3))]
    assert len(fallback) > 0 and (fallback[:, 1] == (400 - 13) // 2).all()


def test_policy_output_and_center_crop():
    images = torch.from_numpy(_photos(4, 64, 64)).permute(0, 3, 1, 2)
    out = Augmentation("imagenet")(images, torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 64, 64) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert not torch.allclose(out, images.float() / 255)
    view = center_crop_view(images.float())
    for i in range(4):  # the central 56x56 (87.5%) resized back to 64x64, as PIL does it
        pil = Image.fromarray(images[i].permute(1, 2, 0).numpy()).crop((4, 4, 60, 60)).resize((64, 64), Image.BILINEAR)
        assert np.abs(view[i].round().permute(1, 2, 0).numpy() - np.asarray(pil)).max() <= 2


def test_auto_picks_imagenet_for_photos(tmp_path, monkeypatch):
    from cnnlab.data import DataConfig
    from cnnlab.train import TrainConfig, run_training

    from ..images import image_folder

    assert (
        auto_policy(224, 224) == "imagenet" and auto_policy(32, 32) == "standard" and auto_policy(128, 96) == "standard"
    )
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "photos", per_class=4, size=128, splits=("train", "val"))
    train = TrainConfig(epochs=1, batch_size=4, augment="auto", device="cpu", precise_bn=0)
    run = run_training(
        "convtype_cifar",
        {"widths": (4, 8)},
        data=DataConfig("folder", str(root)),
        train=train,
        out_dir=tmp_path / "run",
        quiet=True,
    )
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["config"]["augment"] == "imagenet" and history["info"]["eval_crop"] == 0.875
    assert math.isfinite(run.history.epochs[0].val_loss)
