"""Batch augmentation: Keras's ImageDataGenerator transform reproduced, and the statistics of
each policy (flip rate, shift range, crop, cutout), determinism and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.data.augment import Augmentation, keras_transform


def test_keras_transform_matches_keras_image_data_generator():
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    reference = ImageDataGenerator()  # apply_transform with explicit parameters
    rng = np.random.default_rng(0)
    for _ in range(40):
        img = rng.integers(0, 256, (32, 32, 3)).astype("float32")
        p = {
            "theta": float(rng.uniform(-20, 20)),
            "tx": float(rng.uniform(-6.4, 6.4)),
            "ty": float(rng.uniform(-6.4, 6.4)),
            "channel_shift_intensity": float(rng.uniform(-50, 50)),
            "flip_horizontal": bool(rng.random() < 0.5),
        }
        expected = reference.apply_transform(img, p)
        got = (
            keras_transform(
                torch.from_numpy(img).permute(2, 0, 1)[None],
                torch.tensor([np.deg2rad(p["theta"])], dtype=torch.float32),
                torch.tensor([p["tx"]]),
                torch.tensor([p["ty"]]),
                torch.tensor([p["channel_shift_intensity"]]),
                torch.tensor([p["flip_horizontal"]]),
            )[0]
            .permute(1, 2, 0)
            .numpy()
        )
        np.testing.assert_allclose(got, expected, atol=1e-2, err_msg=str(p))  # 0-255 scale


def ramp(n=2000, size=32) -> torch.Tensor:
    """Each pixel's value is 4 * its column: position can be read back from values."""
    row = (torch.arange(size) * 4).to(torch.uint8)
    return row.expand(n, 3, size, size).contiguous()


def test_flip_rate_and_determinism():
    aug = Augmentation("standard", pad=0)
    x = ramp()
    out = aug(x, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] > out[:, 0, 0, -1]).float().mean().item()
    assert 0.46 < flipped < 0.54
    again = aug(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    other = aug(x, torch.Generator().manual_seed(1))
    assert not torch.equal(out, other)


def test_keras_policy_shift_range_and_rescale():
    aug = Augmentation("keras", rotation=0, channel_shift=0, flip=False)
    out = aug(ramp(), torch.Generator().manual_seed(0))
    assert 0.0 <= out.min() and out.max() <= 124 / 255 + 1e-6  # rescaled to [0, 1]
    shift = out[:, 0, 16, 16] * 255 / 4 - 16  # columns moved, read at the centre
    assert shift.abs().max() <= 0.2 * 32 + 1e-3
    assert shift.max() > 5.5 and shift.min() < -5.5  # the whole +-6.4 range is used
    assert abs(shift.mean().item()) < 0.3 and shift.std().item() == pytest.approx(6.4 / 3**0.5, rel=0.1)


def test_keras_policy_channel_shift_stays_in_image_range():
    aug = Augmentation("keras", rotation=0, shift=0, flip=False)
    x = torch.randint(50, 200, (500, 3, 8, 8), dtype=torch.uint8)
    out = aug(x, torch.Generator().manual_seed(0)) * 255
    delta = (out - x.float()).mean(dim=(1, 2, 3))
    assert delta.abs().max() <= 50 + 1e-3 and delta.max() > 30 and delta.min() < -30
    assert (out.amin(dim=(1, 2, 3)) >= x.float().amin(dim=(1, 2, 3)) - 1e-3).all()


def test_standard_crop_is_a_shifted_window():
    aug = Augmentation("standard", flip=False)
    x = ramp(500)
    out = (aug(x, torch.Generator().manual_seed(0)) * 255).round()
    # a crop of the zero-padded ramp: interior columns are consecutive ramp values
    offsets = out[:, 0, 10, 10] / 4 - 10
    assert offsets.min() == -4 and offsets.max() == 4
    assert torch.equal(out[:, 0, 10, 11] - out[:, 0, 10, 10], torch.full((500,), 4.0))


def test_cutout_zeroes_at_most_one_square():
    aug = Augmentation("standard", pad=0, flip=False, cutout=8)
    out = aug(torch.full((300, 3, 32, 32), 255, dtype=torch.uint8), torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert zeros.max() == 64 and zeros.min() >= 16  # clipped at borders: at least a quarter
    assert (out == 0).all(dim=1).sum() == (out == 0).any(dim=1).sum()  # same hole in every channel


def test_none_rescales_only():
    x = torch.randint(0, 256, (4, 3, 5, 7), dtype=torch.uint8)
    assert torch.equal(Augmentation("none")(x, torch.Generator()), x.float() / 255)


def test_bad_arguments():
    with pytest.raises(
        ValueError, match=r"policy must be one of \('keras', 'standard', 'imagenet', 'none'\), got 'autoaugment'"
    ):
        Augmentation("autoaugment")
    with pytest.raises(ValueError, match="non-negative"):
        Augmentation("keras", shift=-0.1)
    with pytest.raises(ValueError, match="NCHW batch"):
        Augmentation("keras")(torch.zeros(3, 32, 32), torch.Generator())
