"""Fixtures of the analysis tests."""

from __future__ import annotations

import numpy as np
import pytest


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    disc = ((y - 0.5) ** 2 + (x - 0.4) ** 2 < 0.08).astype(float)
    channels = [np.sin(6 * x + rng.uniform(0, 3)) * 0.4 + 0.5 * disc + 0.3 * y for _ in range(3)]
    return np.clip(np.stack(channels, -1) * 200 + rng.integers(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def photo():
    """``photo(h, w, seed=0)``: a smooth picture with some structure (waves, a disc, a little
    noise), HxWx3 uint8 -- something for a network to look at that needs no dataset."""
    return _photo
