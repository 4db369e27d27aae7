"""Keras-semantics pooling against Keras 3's MaxPooling2D / AveragePooling2D."""

import numpy as np
import pytest
import torch

from cnnlab.layers import AveragePooling2D, MaxPooling2D

from .keras_peer import keras, keras_forward


def tf_average_pool(x, pool, strides, pads):
    """TensorFlow's 'same' average pooling, by definition: the mean of each window's real cells."""
    (top, _), (left, _) = pads
    n, c, h, w = x.shape
    ho, wo = -(-h // strides[0]), -(-w // strides[1])
    out = np.zeros((n, c, ho, wo), dtype=np.float64)
    for i in range(ho):
        for j in range(wo):
            y0, x0 = i * strides[0] - top, j * strides[1] - left
            window = x[:, :, max(y0, 0) : y0 + pool[0], max(x0, 0) : x0 + pool[1]]
            out[:, :, i, j] = window.mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_random_pooling_matches_keras(kind):
    rng = np.random.default_rng({"max": 11, "avg": 12}[kind])
    ours_cls = MaxPooling2D if kind == "max" else AveragePooling2D
    keras_cls = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    failures = []
    for _ in range(100):
        pool = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        strides = None if rng.random() < 0.3 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = str(rng.choice(["valid", "same"]))
        h, w = (int(rng.integers(p, p + 8)) for p in pool)
        x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            actual = ours_cls(pool, strides, padding)(torch.from_numpy(x)).numpy()
        layer = ours_cls(pool, strides, padding)
        pads = layer._pads(torch.from_numpy(x))
        if kind == "avg" and any(a != b for a, b in pads):
            # Keras 3.15's torch backend counts asymmetric padding cells in the average, unlike
            # TensorFlow/JAX (fixed upstream in keras-team/keras#23233): compare with TF's rule.
            expected = tf_average_pool(x, pool, layer.strides, pads)
        else:
            expected = keras_forward(keras_cls(pool, strides, padding), x)
        if actual.shape != expected.shape or np.abs(actual - expected).max() > 1e-5:
            failures.append(f"pool {pool} strides {strides} {padding} input {h}x{w}")
    assert not failures, failures


def test_same_average_excludes_padding():
    """3x3 'same' average at a corner of a 4x4 ones input is 1, not 4/9."""
    out = AveragePooling2D(3, 2, "same")(torch.ones(1, 1, 4, 4))
    assert torch.allclose(out, torch.ones(1, 1, 2, 2))


def test_bad_pooling_arguments():
    with pytest.raises(ValueError, match="pool_size must be a positive int"):
        MaxPooling2D(0)
    with pytest.raises(ValueError, match="smaller than pool_size"):
        MaxPooling2D(3)(torch.zeros(1, 1, 2, 2))
