"""Keras references for the interop tests (test_keras.py, test_pretrained.py): keras.applications
models with random weights and BatchNorm statistics, and their logits on random inputs."""

from __future__ import annotations

import numpy as np


def keras_model(name: str, size: int = 224, seed: int = 0, **kwargs):
    """A keras.applications model with random weights and random BatchNorm statistics.

    BatchNorm scales below 1 keep a 150-layer residual sum of random weights at logits of
    order 1 (with scales up to 1.5, ResNet152's reach 50, and float32 rounding alone then
    approaches the 1e-4 criterion); means and variances are random around 0 and 1."""
    import keras

    keras.utils.set_random_seed(seed)
    kwargs.setdefault("classifier_activation", None)
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), **kwargs)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            c = layer.get_weights()[0].shape[0]
            values = [rng.uniform(0.4, 1.0, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)]
            layer.set_weights([v.astype("float32") for v in values])
    return model


def keras_logits(reference, size: int = 224, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Random NHWC inputs and Keras's logits for them (eval mode)."""
    x = np.random.default_rng(1).normal(size=(batch, size, size, 3)).astype("float32")
    return x, np.asarray(reference(x, training=False).detach().cpu())
