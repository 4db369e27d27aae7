"""Xception: keras.applications parity (counts, per-flow shapes, outputs layer for layer), depth, layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis.summary import summary
from cnnlab.layers import KerasConv2dBase, MaxPooling2D, SeparableConv2D

from .counts import keras_param_counts
from .keras_copy import copy_keras_weights_in_order


@pytest.mark.parametrize(
    "kwargs, total, trainable",
    [
        ({}, 22_910_480, 22_855_952),  # keras.applications.Xception
        ({"num_classes": 10}, 20_881_970, 20_827_442),  # 2048 * 990 + 990 fewer classifier weights
        ({"stem": "cifar"}, 22_910_480, 22_855_952),  # same layers, only strides/padding differ
        ({"in_channels": 1}, 22_909_904, 22_855_376),  # 2 * 9 * 32 fewer stem weights
    ],
)
def test_param_counts(kwargs, total, trainable):
    assert keras_param_counts(cnnlab.create_model("xception", **kwargs)) == (total, trainable)


def _keras_xception(size: int):
    import keras

    return keras.applications.Xception(weights=None, input_shape=(size, size, 3), classifier_activation=None)


def _flow_outputs(reference) -> dict[str, tuple[int, ...]]:
    """Keras (H, W, C) after the stem and after each of our stages: the Add closing the stage."""
    import keras

    adds = [layer for layer in reference.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 12  # 3 entry + 8 middle + 1 exit modules
    layers = {
        "stem": reference.get_layer("block1_conv2_act"),
        "stages.0": adds[0],  # block2 (entry)
        "stages.1": adds[1],  # block3 (entry)
        "stages.2": adds[10],  # block4 (entry) + block5..12 (middle flow)
        "stages.3": adds[11],  # block13 (exit)
        "final": reference.get_layer("block14_sepconv2_act"),
    }
    return {name: tuple(layer.output.shape[1:]) for name, layer in layers.items()}


def _our_outputs(model: nn.Module, x: torch.Tensor, names) -> dict[str, torch.Tensor]:
    outputs = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, k=n: outputs.__setitem__(k, o)) for n in names
    ]
    with torch.no_grad():
        logits = model(x)
    for hook in hooks:
        hook.remove()
    outputs["logits"] = logits
    return outputs


def test_counts_and_flow_shapes_match_keras():
    reference = _keras_xception(299)
    trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
    assert (reference.count_params(), trainable) == (22_910_480, 22_855_952)
    model = cnnlab.create_model("xception").eval()
    assert keras_param_counts(model) == (reference.count_params(), trainable)
    expected = _flow_outputs(reference)
    with torch.device("meta"):  # shapes only
        meta = cnnlab.create_model("xception").eval()
    got = _our_outputs(meta, torch.empty(1, 3, 299, 299, device="meta"), expected)
    shapes = {name: (t.shape[2], t.shape[3], t.shape[1]) for name, t in got.items() if name != "logits"}
    assert shapes == expected
    assert [h for h, _, _ in shapes.values()] == [147, 74, 37, 19, 10, 10]


def test_matches_keras_layer_for_layer():
    """Keras weights (random BN statistics too) copied in module order give the same logits
    at 71x71 (Keras's minimum; every map from the stem on is odd, so the asymmetric 'same'
    padding of the pools and shortcut convs is exercised)."""
    size = 71
    reference = _keras_xception(size)
    model = cnnlab.create_model("xception").eval()
    n_layers = len([layer for layer in reference.layers if layer.get_weights()])
    assert n_layers == 4 + 4 * 6 + 8 * 6 + 4 + 1  # stem, 4 strided modules, middle, final, fc
    copy_keras_weights_in_order(reference, model)

    import keras

    x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype("float32")
    expected = np.asarray(keras.ops.convert_to_numpy(reference(x, training=False)))
    got = _our_outputs(model, torch.from_numpy(x).permute(0, 3, 1, 2), [])["logits"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stem, size, depth", [("imagenet", 71, 37), ("cifar", 32, 37)])
def test_depth(stem, size, depth):
    """2 stem convs + 2 * 3 entry + 3 * 8 middle + 2 exit + 2 final separable convs + fc:
    the paper's 36 convolutional layers and the classifier (the 1x1 shortcuts are shorter paths)."""
    assert summary(cnnlab.create_model("xception", stem=stem), input_size=(3, size, size)).depth == depth


def test_layout_and_feature_info():
    model = cnnlab.create_model("xception")
    keys = model.state_dict().keys()
    for key in (
        "stem.conv1.weight",
        "stem.bn2.running_var",
        "stages.0.block0.sepconv1.depthwise_weight",
        "stages.0.block0.shortcut.conv.weight",
        "stages.2.block0.shortcut.bn.weight",
        "stages.2.block8.sepconv3.pointwise_weight",
        "stages.3.block0.sepconv2.pointwise_weight",
        "final.sepconv2.pointwise_weight",
        "final.bn2.weight",
        "head.fc.weight",
    ):
        assert key in keys, key
    assert [len(stage) for stage in model.stages] == [1, 1, 9, 1]
    assert not hasattr(model.stages[0].block0, "act1")  # the stem already ends in a ReLU
    assert isinstance(model.stages[1].block0.act1, nn.ReLU)
    assert isinstance(model.stages[2].block1.shortcut, nn.Identity)
    assert isinstance(model.stages[3].block0.pool, MaxPooling2D) and model.stages[3].block0.pool.padding == "same"
    assert isinstance(model.final.sepconv1, SeparableConv2D) and model.final.sepconv1.out_channels == 1536
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(not m.use_bias for m in model.modules() if isinstance(m, KerasConv2dBase))
    assert model.stem.conv1.strides == (2, 2) and model.stem.conv1.padding == "valid"
    assert [(f.module, f.channels, f.reduction) for f in model.feature_info] == [
        ("stages.0", 128, 4),
        ("stages.1", 256, 8),
        ("stages.2", 728, 16),
        ("final", 2048, 32),
    ]
    assert model.num_features == 2048


def test_cifar_stem():
    model = cnnlab.create_model("xception", num_classes=10, stem="cifar").eval()
    assert model.stem.conv1.strides == (1, 1) and model.stem.conv2.padding == "same"
    assert [f.reduction for f in model.feature_info] == [2, 4, 8, 16]
    got = _our_outputs(model, torch.randn(1, 3, 32, 32), ["stem", "stages.0", "stages.1", "stages.2", "final"])
    assert [t.shape[-1] for k, t in got.items() if k != "logits"] == [32, 16, 8, 4, 2]
    assert got["logits"].shape == (1, 10)


@pytest.mark.parametrize(
    "kwargs, match", [({"stem": "tiny"}, "stem must be 'imagenet'.*got 'tiny'"), ({"num_classes": -1}, "num_classes")]
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnnlab.create_model("xception", **kwargs)
