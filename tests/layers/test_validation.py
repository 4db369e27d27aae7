"""Bad arguments and bad inputs fail loudly, naming the argument, the value and what is allowed."""

import numpy as np
import pytest
import torch

from cnnlab.layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda: Conv2D(0, 4, 3), "in_channels must be a positive int, got 0"),
        (lambda: Conv2D(3, -1, 3), "filters must be a positive int, got -1"),
        (lambda: Conv2D(3, 4, 0), "kernel_size must be a positive int or a pair of positive ints, got 0"),
        (lambda: Conv2D(3, 4, (3, 3, 3)), "kernel_size must be"),
        (lambda: Conv2D(3, 4, 2.5), "got 2.5"),
        (lambda: Conv2D(3, 4, 3, strides=(1, 0)), "strides must be"),
        (lambda: Conv2D(3, 4, 3, padding="full"), "padding must be one of ('valid', 'same'), got 'full'"),
        (lambda: Conv2D(3, 4, 3, strides=2, dilation_rate=2), "strides > 1 cannot be combined with dilation_rate > 1"),
        (lambda: Conv2D(3, 4, 3, use_bias="no"), "use_bias must be True or False, got 'no'"),
        (lambda: DepthwiseConv2D(3, 3, depth_multiplier=0), "depth_multiplier must be a positive int, got 0"),
        (lambda: SeparableConv2D(3, 4, 3, dilation_rate=0), "dilation_rate must be"),
        (lambda: Conv2DTranspose(3, 4, 3, strides=2, output_padding=2), "output_padding must be smaller than strides"),
        (lambda: Conv2DTranspose(3, 4, 3, output_padding=-1), "output_padding must be None, a non-negative int"),
        (lambda: Conv2D(True, 4, 3), "in_channels must be a positive int, got True"),
    ],
)
def test_bad_arguments(build, fragment):
    with pytest.raises(ValueError) as info:
        build()
    assert fragment in str(info.value)


def test_padding_is_case_insensitive_like_keras():
    assert Conv2D(1, 1, 3, padding="SAME").padding == "same"


@pytest.mark.parametrize(
    "layer", [Conv2D(3, 4, 3), DepthwiseConv2D(3, 3), SeparableConv2D(3, 4, 3), Conv2DTranspose(3, 4, 3)]
)
def test_wrong_channel_count_is_refused(layer):
    with pytest.raises(ValueError, match=r"expects 3 input channels .* got shape \(1, 4, 8, 8\)"):
        layer(torch.zeros(1, 4, 8, 8))


@pytest.mark.parametrize("layer", [Conv2D(3, 4, 3), Conv2DTranspose(3, 4, 3)])
def test_no_silent_broadcasting_of_unbatched_input(layer):
    with pytest.raises(ValueError, match=r"expects a 4-D NCHW tensor, got shape \(3, 8, 8\)"):
        layer(torch.zeros(3, 8, 8))


@pytest.mark.parametrize(
    "layer", [Conv2D(2, 4, 5), DepthwiseConv2D(2, 3, dilation_rate=3), SeparableConv2D(2, 4, (1, 5))]
)
def test_kernel_larger_than_valid_input(layer):
    with pytest.raises(ValueError, match=r"input of size 4x4 is smaller than the .*kernel .* padding='valid'"):
        layer(torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="smaller than"):
        layer.cost((2, 4, 4))


def test_cost_checks_channel_count():
    with pytest.raises(ValueError, match=r"expects 3 input channels, got input size \(4, 8, 8\)"):
        Conv2D(3, 4, 3).cost((4, 8, 8))


def test_bad_keras_weights_change_nothing():
    layer = SeparableConv2D(2, 3, 3)
    before = [w.copy() for w in layer.get_keras_weights()]
    with pytest.raises(ValueError, match=r"takes 3 Keras weight arrays .* got 2"):
        layer.set_keras_weights(before[:2])
    bad = [np.ones_like(before[0]), np.ones((1, 1, 3, 2)), before[2]]  # pointwise transposed
    with pytest.raises(
        ValueError, match=r"Keras weight 1 \(pointwise_weight\) must have shape \(1, 1, 2, 3\), got \(1, 1, 3, 2\)"
    ):
        layer.set_keras_weights(bad)
    for old, new in zip(before, layer.get_keras_weights()):
        np.testing.assert_array_equal(old, new)


def test_keras_layouts():
    assert [w.shape for w in Conv2D(2, 5, (3, 4)).get_keras_weights()] == [(3, 4, 2, 5), (5,)]
    assert [w.shape for w in DepthwiseConv2D(4, 3, depth_multiplier=2, use_bias=False).get_keras_weights()] == [
        (3, 3, 4, 2)
    ]
    assert [w.shape for w in SeparableConv2D(4, 6, 3, depth_multiplier=2).get_keras_weights()] == [
        (3, 3, 4, 2),
        (1, 1, 8, 6),
        (6,),
    ]
    assert [w.shape for w in Conv2DTranspose(3, 2, 3).get_keras_weights()] == [(3, 3, 2, 3), (2,)]


@pytest.mark.parametrize(
    "layer",
    [
        Conv2D(3, 4, 3, 2, "same"),
        SeparableConv2D(3, 4, 4, 1, "same"),
        Conv2DTranspose(3, 4, 3, 2, "same", output_padding=0),
    ],
)
def test_float64_channels_last_and_gradients(layer):
    """The layers are ordinary modules: other dtypes, memory formats and autograd just work."""
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, requires_grad=True)
    layer = layer.double()
    y = layer(x)
    y_cl = layer.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(y, y_cl)
    y.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in layer.parameters())
