"""The four worked examples of article 001 (SPEC.md, "Convolution arithmetic"), reproduced
with Keras-layout weights and NHWC inputs exactly as the article writes them."""

import numpy as np
import torch

from cnnlab.layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D


def run(layer, x_nhwc):
    with torch.no_grad():
        y = layer(torch.tensor(x_nhwc, dtype=torch.float32).permute(0, 3, 1, 2))
    return y.permute(0, 2, 3, 1).numpy()[0]  # HWC


def test_conv2d_example():
    layer = Conv2D(2, 3, kernel_size=3, use_bias=False)
    layer.set_keras_weights([np.arange(1, 55).reshape(3, 3, 2, 3)])
    out = run(layer, np.arange(1, 19).reshape(1, 3, 3, 2) * 0.1)
    np.testing.assert_allclose(out.reshape(-1), [598.5, 615.6, 632.7], rtol=1e-6)


def test_depthwise_example():
    layer = DepthwiseConv2D(2, kernel_size=3, use_bias=False)
    layer.set_keras_weights([np.arange(1, 19).reshape(3, 3, 2, 1)])
    out = run(layer, np.arange(1, 19).reshape(1, 3, 3, 2) * 0.1)
    np.testing.assert_allclose(out.reshape(-1), [96.9, 114.0], rtol=1e-6)


def test_separable_example():
    layer = SeparableConv2D(1, 2, kernel_size=3, use_bias=False)
    layer.set_keras_weights([np.arange(1, 10).reshape(3, 3, 1, 1), np.arange(2, 4).reshape(1, 1, 1, 2)])
    out = run(layer, np.arange(1, 10).reshape(1, 3, 3, 1) * 0.1)
    np.testing.assert_allclose(out.reshape(-1), [57.0, 85.5], rtol=1e-6)


def test_transpose_example():
    layer = Conv2DTranspose(3, 2, kernel_size=3, use_bias=False)
    layer.set_keras_weights([np.arange(1, 55).reshape(3, 3, 2, 3)])
    out = run(layer, np.arange(1, 13).reshape(1, 2, 2, 3) * 0.1)
    first = [
        [1.4, 8.2, 20.8, 21.2],
        [17.2, 72.2, 119.0, 94.6],
        [71.2, 212.6, 259.4, 181.0],
        [91.4, 231.4, 265.6, 165.2],
    ]
    second = [
        [3.2, 14.5, 27.1, 25.7],
        [26.2, 95.6, 142.4, 109.0],
        [80.2, 236.0, 282.8, 195.4],
        [98.6, 248.5, 282.7, 175.1],
    ]
    assert out.shape == (4, 4, 2)
    np.testing.assert_allclose(out[:, :, 0], first, rtol=1e-6)
    np.testing.assert_allclose(out[:, :, 1], second, rtol=1e-6)


def test_same_padding_with_stride_two_pads_bottom_right():
    """Keras 'same', stride 2, 4x4 input, 3x3 kernel: one padded row/column, at the bottom/right
    (PyTorch's own padding='same' refuses strides; a symmetric pad would shift the grid)."""
    layer = Conv2D(1, 1, kernel_size=3, strides=2, padding="same", use_bias=False)
    layer.set_keras_weights([np.ones((3, 3, 1, 1))])
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), torch.ones(1, 1, 3, 3), stride=2)
    assert torch.equal(layer(x).detach(), expected)
    assert layer(x).shape == (1, 1, 2, 2)
