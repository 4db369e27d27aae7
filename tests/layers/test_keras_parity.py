"""Each cnnlab convolution against the Keras 3 layer of the same name, on many random
configurations: same output shape, same numbers (<= 1e-4), same parameter count."""

from __future__ import annotations

import numpy as np
import pytest

from .keras_peer import build_pair, cnnlab_forward, keras_forward

CASES_PER_LAYER = 200


def random_config(kind: str, rng: np.random.Generator) -> tuple[dict, tuple[int, int]]:
    """A random layer configuration within what Keras allows, plus an input size that fits."""

    def size(low, high):  # an int, or now and then a (h, w) pair
        if rng.random() < 0.25:
            return (int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)))
        return int(rng.integers(low, high + 1))

    def pair(v):
        return v if isinstance(v, tuple) else (v, v)

    kernel = size(1, 5)
    strides = size(1, 3)
    # Keras/TensorFlow refuse strides > 1 together with dilation > 1.
    dilation = size(1, 2) if max(pair(strides)) == 1 else 1
    config = {
        "in_channels": int(rng.integers(1, 9)),
        "kernel_size": kernel,
        "strides": strides,
        "padding": str(rng.choice(["valid", "same"])),
        "dilation_rate": dilation,
        "use_bias": bool(rng.random() < 0.7),
    }
    if kind != "depthwise":
        config["filters"] = int(rng.integers(1, 9))
    if kind in ("depthwise", "separable"):
        config["depth_multiplier"] = int(rng.integers(1, 4))
    if kind == "transpose" and rng.random() < 0.5:
        config["output_padding"] = tuple(int(rng.integers(0, s)) for s in pair(strides))
    # Odd and even input sizes; a 'valid' forward convolution needs the dilated kernel to fit.
    k_eff = [(k - 1) * d + 1 for k, d in zip(pair(kernel), pair(dilation))]
    if config["padding"] == "valid" and kind != "transpose":
        hw = tuple(int(rng.integers(k, k + 9)) for k in k_eff)
    else:
        hw = tuple(int(rng.integers(1, 12)) for _ in range(2))
    return config, hw


def cases(kind: str):
    rng = np.random.default_rng({"conv2d": 1, "depthwise": 2, "separable": 3, "transpose": 4}[kind])
    return [random_config(kind, rng) for _ in range(CASES_PER_LAYER)]


@pytest.mark.parametrize("kind", ["conv2d", "depthwise", "separable", "transpose"])
def test_random_configurations_match_keras(kind):
    rng = np.random.default_rng(123)
    failures = []
    seen = {"same": 0, "valid": 0, "bias": 0, "odd": 0, "even": 0, "output_padding": 0}
    for config, (h, w) in cases(kind):
        ours, theirs = build_pair(kind, config)
        x = rng.standard_normal((2, config["in_channels"], h, w)).astype(np.float32)
        theirs.build((None, h, w, config["in_channels"]))
        # Random weights *and* bias (Keras starts biases at zero, which would hide bias bugs).
        weights = [rng.standard_normal(v.shape).astype(np.float32) for v in theirs.get_weights()]
        theirs.set_weights(weights)
        ours.set_keras_weights(weights)

        expected = keras_forward(theirs, x)
        actual = cnnlab_forward(ours, x)
        label = f"{config} input {h}x{w}"
        if actual.shape != expected.shape:
            failures.append(f"{label}: shape {actual.shape} != keras {expected.shape}")
            continue
        if actual.shape[1:] != ours.output_shape((config["in_channels"], h, w)):
            failures.append(f"{label}: output_shape() {ours.output_shape((config['in_channels'], h, w))}")
        diff = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
        if diff > 1e-4:
            failures.append(f"{label}: max abs diff {diff:.2e}")
        if ours.count_params() != theirs.count_params():
            failures.append(f"{label}: params {ours.count_params()} != keras {theirs.count_params()}")
        for mine, ref in zip(ours.get_keras_weights(), weights):
            if mine.shape != ref.shape or not np.array_equal(mine, ref):
                failures.append(f"{label}: get_keras_weights() does not give back what was set")
        seen[config["padding"]] += 1
        seen["bias"] += config["use_bias"]
        seen["odd" if h % 2 else "even"] += 1
        seen["output_padding"] += "output_padding" in config
    assert not failures, f"{len(failures)} of {CASES_PER_LAYER} differ from Keras:\n" + "\n".join(failures[:20])
    # The random draw really covered what the issue asks for.
    assert min(seen["same"], seen["valid"], seen["bias"], seen["odd"], seen["even"]) >= 20, seen
    if kind == "transpose":
        assert seen["output_padding"] >= 50, seen


@pytest.mark.parametrize("kind", ["conv2d", "depthwise", "separable", "transpose"])
def test_keras_initial_weights_load_into_cnnlab(kind):
    """Keras's own freshly initialised weights, unchanged, give the same outputs in cnnlab."""
    config = {"in_channels": 3, "kernel_size": 3, "strides": 2, "padding": "same", "use_bias": True}
    if kind != "depthwise":
        config["filters"] = 5
    ours, theirs = build_pair(kind, config)
    x = np.random.default_rng(0).standard_normal((1, 3, 7, 6)).astype(np.float32)
    theirs.build((None, 7, 6, 3))
    ours.set_keras_weights(theirs.get_weights())
    np.testing.assert_allclose(cnnlab_forward(ours, x), keras_forward(theirs, x), atol=1e-5)


def test_keras_init_scale_matches():
    """cnnlab initialises like Keras (glorot_uniform, fans from the Keras kernel shape)."""
    from cnnlab.layers import DepthwiseConv2D

    layer = DepthwiseConv2D(64, 3, depth_multiplier=2)
    kernel = layer.get_keras_weights()[0]  # (3, 3, 64, 2): fan_in 576, fan_out 18
    limit = np.sqrt(6.0 / (64 * 9 + 2 * 9))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit
    assert not layer.get_keras_weights()[1].any()  # zero bias
