"""Layer cost: parameters equal Keras's count_params (see test_keras_parity), MACs follow the
article formulas and agree with PyTorch's own FLOP counter (2 FLOPs per multiply-add)."""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D


def torch_macs(layer, shape):
    with FlopCounterMode(display=False) as counter:
        layer(torch.zeros(1, *shape))
    return counter.get_total_flops() // 2


def test_standard_conv_formula():
    layer = Conv2D(16, 32, kernel_size=3, strides=2, padding="same")
    cost = layer.cost((16, 33, 20))
    assert cost.output_shape == (32, 17, 10)
    assert cost.macs == 17 * 10 * 3 * 3 * 16 * 32
    assert cost.params == 3 * 3 * 16 * 32 + 32


def test_depthwise_formula():
    layer = DepthwiseConv2D(16, kernel_size=5, depth_multiplier=3, padding="valid", use_bias=False)
    cost = layer.cost((20, 24))  # (H, W) alone is fine
    assert cost.output_shape == (48, 16, 20)
    assert cost.macs == 16 * 20 * 16 * 5 * 5 * 3
    assert cost.params == 5 * 5 * 16 * 3


def test_separable_is_depthwise_plus_pointwise():
    layer = SeparableConv2D(16, 32, kernel_size=3, padding="same", depth_multiplier=2)
    cost = layer.cost((16, 8, 8))
    assert cost.macs_by_step == {"depthwise": 8 * 8 * 16 * 9 * 2, "pointwise": 8 * 8 * 32 * 32}
    assert cost.macs == sum(cost.macs_by_step.values())
    assert cost.params == 9 * 16 * 2 + 32 * 32 + 32
    # The saving article 003 quotes: 1/M + 1/K^2 of a standard conv (depth_multiplier 1).
    sep = SeparableConv2D(64, 128, 3, padding="same").cost((64, 16, 16)).macs
    std = Conv2D(64, 128, 3, padding="same").cost((64, 16, 16)).macs
    assert sep / std == pytest.approx(1 / 128 + 1 / 9)


def test_transpose_counts_input_positions():
    layer = Conv2DTranspose(8, 4, kernel_size=3, strides=2, padding="same")
    cost = layer.cost((8, 5, 7))
    assert cost.output_shape == (4, 10, 14)
    assert cost.macs == 5 * 7 * 3 * 3 * 8 * 4


@pytest.mark.parametrize("seed", range(40))
def test_macs_agree_with_torch_flop_counter(seed):
    rng = np.random.default_rng(seed)
    c, m, k = (int(v) for v in rng.integers(1, 9, size=3))
    k = int(rng.integers(1, 6))
    s = int(rng.integers(1, 4))
    pad = str(rng.choice(["valid", "same"]))
    h, w = (int(v) for v in rng.integers(k, k + 10, size=2))
    layers = [
        Conv2D(c, m, k, s, pad),
        DepthwiseConv2D(c, k, s, pad, depth_multiplier=int(rng.integers(1, 4))),
        SeparableConv2D(c, m, k, s, pad, depth_multiplier=int(rng.integers(1, 4))),
        Conv2DTranspose(c, m, k, s, pad),
    ]
    for layer in layers:
        assert layer.cost((c, h, w)).macs == torch_macs(layer, (c, h, w)), layer
