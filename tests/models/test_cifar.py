"""Article 001's CIFAR nets reach the article's parameter counts exactly (Keras convention)."""

import itertools

import pytest

import cnnlab

from .counts import keras_param_counts


@pytest.mark.parametrize(
    "conv, total",
    [("conv", 1_598_730), ("depthwise", 58_506), ("separable", 230_538)],
)
def test_convtype_counts(conv, total):
    assert keras_param_counts(cnnlab.create_model("convtype_cifar", conv=conv))[0] == total


@pytest.mark.parametrize(
    "layers, total",
    [
        (("conv", "conv", "conv"), 2_375_114),
        (("separable", "separable", "depthwise"), 236_810),
        (("separable", "separable", "separable"), 322_826),
        (("conv", "depthwise", "depthwise"), 834_890),
        (("conv", "separable", "separable"), 1_006_922),
        (("depthwise", "depthwise", "depthwise"), 64_778),
    ],
)
def test_modulenet_counts(layers, total):
    assert keras_param_counts(cnnlab.create_model("modulenet_cifar", layers=layers))[0] == total


def test_all_27_modules_build_and_are_distinct():
    counts = {
        layers: keras_param_counts(cnnlab.create_model("modulenet_cifar", layers=layers))[0]
        for layers in itertools.product(("conv", "depthwise", "separable"), repeat=3)
    }
    assert len(counts) == 27
    assert min(counts, key=counts.get) == ("depthwise", "depthwise", "depthwise")
    assert max(counts, key=counts.get) == ("conv", "conv", "conv")


def test_bad_layer_type():
    with pytest.raises(
        ValueError, match=r"layer 1 type must be one of \['conv', 'depthwise', 'separable'\], got 'pointwise'"
    ):
        cnnlab.create_model("modulenet_cifar", layers=("conv", "pointwise", "conv"))
    with pytest.raises(ValueError, match="layers must be one of"):
        cnnlab.create_model("modulenet_cifar", layers=("conv", "conv"))
