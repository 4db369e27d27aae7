"""ResNet: exact counts (article 004, keras.applications, torchvision), keras.applications.ResNet50
parity (counts, stage shapes, Conv2D count, outputs with Keras's weights), depth, layout, keywords."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis.summary import summary
from cnnlab.layers import Conv2D

from .counts import keras_param_counts


@pytest.mark.parametrize(
    "name, kwargs, total, trainable",
    [
        ("resnet50", {}, 25_636_712, 25_583_592),  # article 004's code (bias, stride on the 3x3)
        ("resnet50", {"stride_on": "1x1"}, 25_636_712, 25_583_592),  # keras.applications.ResNet50
        ("resnet50", {"conv_bias": False}, 25_610_152, 25_557_032),  # torchvision resnet50
        ("resnet18", {"conv_bias": False}, 11_699_112, 11_689_512),  # torchvision resnet18
        ("resnet34", {"conv_bias": False}, 21_814_696, 21_797_672),  # torchvision resnet34
        ("resnet101", {"conv_bias": False}, 44_654_504, 44_549_160),  # torchvision resnet101
        ("resnet152", {"conv_bias": False}, 60_344_232, 60_192_808),  # torchvision resnet152
        # biases add one weight per conv output channel
        ("resnet18", {}, 11_703_912, 11_694_312),
        ("resnet101", {"stride_on": "1x1"}, 44_707_176, 44_601_832),  # keras.applications.ResNet101
        ("resnet152", {"stride_on": "1x1"}, 60_419_944, 60_268_520),  # keras.applications.ResNet152
        ("resnet50", {"num_classes": 10}, 25_636_712 - 2049 * 990, 25_583_592 - 2049 * 990),
        ("resnet50", {"stem": "cifar"}, 25_636_712 - 64 * 3 * 40, 25_583_592 - 64 * 3 * 40),  # 3x3 vs 7x7 stem
    ],
)
def test_param_counts(name, kwargs, total, trainable):
    assert keras_param_counts(cnnlab.create_model(name, **kwargs)) == (total, trainable)


@pytest.mark.parametrize(
    "name, depth", [("resnet18", 18), ("resnet34", 34), ("resnet50", 50), ("resnet101", 101), ("resnet152", 152)]
)
def test_depth_is_the_name(name, depth):
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    assert summary(model, input_size=(3, 224, 224)).depth == depth


def _keras_resnet50(size: int):
    import keras

    return keras.applications.ResNet50(weights=None, input_shape=(size, size, 3), classifier_activation=None)


def _outputs(model: nn.Module, x: torch.Tensor, names) -> dict[str, torch.Tensor]:
    outputs = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, k=n: outputs.__setitem__(k, o)) for n in names
    ]
    with torch.no_grad():
        outputs["logits"] = model(x)
    for hook in hooks:
        hook.remove()
    return outputs


def test_counts_and_stage_shapes_match_keras_resnet50():
    import keras

    reference = _keras_resnet50(224)
    trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
    model = cnnlab.create_model("resnet50", stride_on="1x1")
    assert keras_param_counts(model) == (reference.count_params(), trainable) == (25_636_712, 25_583_592)
    convs = [layer for layer in reference.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == sum(isinstance(m, Conv2D) for m in model.modules()) == 53
    keras_names = {"stem": "pool1_pool", "stages.0": "conv2_block3_out", "stages.1": "conv3_block4_out"}
    keras_names.update({"stages.2": "conv4_block6_out", "stages.3": "conv5_block3_out"})
    expected = {ours: tuple(reference.get_layer(k).output.shape[1:]) for ours, k in keras_names.items()}
    with torch.device("meta"):  # shapes only
        meta = cnnlab.create_model("resnet50", stride_on="1x1")
    got = _outputs(meta, torch.empty(1, 3, 224, 224, device="meta"), expected)
    shapes = {n: (t.shape[2], t.shape[3], t.shape[1]) for n, t in got.items() if n != "logits"}
    assert shapes == expected
    assert [(i.module, i.channels, i.reduction) for i in meta.feature_info] == [
        ("stages.0", 256, 4),
        ("stages.1", 512, 8),
        ("stages.2", 1024, 16),
        ("stages.3", 2048, 32),
    ]


def _module_for(keras_name: str) -> str:
    """keras.applications' ResNet layer name -> our module name."""
    if keras_name.startswith("conv1_"):
        return "stem." + keras_name[len("conv1_") :]
    stage, block, index, kind = keras_name.split("_")  # conv3_block2_1_conv
    prefix = f"stages.{int(stage[4:]) - 2}.block{int(block[5:]) - 1}"
    return f"{prefix}.downsample.{kind}" if index == "0" else f"{prefix}.{kind}{index}"


def test_keras_resnet50_weights_give_keras_outputs():
    """stride_on="1x1" is keras.applications' ResNet50 layer for layer: its weights (random BN
    statistics included) loaded by name give Keras's logits."""
    import keras

    size = 64
    reference = _keras_resnet50(size)
    model = cnnlab.create_model("resnet50", stride_on="1x1").eval()
    rng = np.random.default_rng(0)
    loaded = set()
    for layer in reference.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            c = weights[0].shape[0]
            weights = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)]
            weights = [w.astype("float32") for w in weights]
            layer.set_weights(weights)
            bn = model.get_submodule(_module_for(layer.name))
            assert bn.eps == pytest.approx(layer.epsilon)
            for tensor, w in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), weights):
                tensor.data.copy_(torch.from_numpy(w))
            loaded.add(_module_for(layer.name))
        elif isinstance(layer, keras.layers.Conv2D):
            model.get_submodule(_module_for(layer.name)).set_keras_weights(weights)
            loaded.add(_module_for(layer.name))
        else:
            assert layer.name == "predictions"
            model.head.fc.weight.data.copy_(torch.from_numpy(weights[0].T))
            model.head.fc.bias.data.copy_(torch.from_numpy(weights[1]))
            loaded.add("head.fc")
    ours = {n for n, m in model.named_modules() if isinstance(m, (Conv2D, nn.BatchNorm2d, nn.Linear))}
    assert loaded == ours
    x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(reference(x, training=False))
    with torch.no_grad():
        got = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_layout_names_and_strides():
    model = cnnlab.create_model("resnet50")
    names = dict(model.named_modules())
    for name in (
        "stem.pad",
        "stem.conv",
        "stem.bn",
        "stem.pool_pad",
        "stem.pool",
        "stages.0.block0.downsample.conv",
        "stages.3.block2.conv3",
        "stages.2.block5.bn2",
    ):
        assert name in names
    assert len(model.stages) == 4 and [len(s) for s in model.stages] == [3, 4, 6, 3]
    # the shortcut is a 1x1 conv + BN in each stage's first block only (stage 0 widens 64 -> 256)
    assert [[b.downsample is not None for b in s] for s in model.stages] == [
        [True] + [False] * (n - 1) for n in (3, 4, 6, 3)
    ]
    # the stride sits on the 3x3 by default, on the first 1x1 with stride_on="1x1"; shortcut always strided
    block = model.stages[1].block0
    assert (block.conv1.strides, block.conv2.strides, block.downsample.conv.strides) == ((1, 1), (2, 2), (2, 2))
    block = cnnlab.create_model("resnet50", stride_on="1x1").stages[1].block0
    assert (block.conv1.strides, block.conv2.strides) == ((2, 2), (1, 1))
    assert all(m.use_bias for m in model.modules() if isinstance(m, Conv2D))
    assert not any(
        m.use_bias for m in cnnlab.create_model("resnet18", conv_bias=False).modules() if isinstance(m, Conv2D)
    )
    assert all(
        m.eps == 1.001e-5 and m.momentum == pytest.approx(0.01)
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    )
    basic = cnnlab.create_model("resnet18")
    assert [b.downsample is not None for s in basic.stages for b in s] == [
        False,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
    ]


def test_cifar_stem_keeps_32x32():
    model = cnnlab.create_model("resnet18", num_classes=10, stem="cifar").eval()
    assert list(model.stem) == [model.stem.conv, model.stem.bn, model.stem.act]
    assert model.stem.conv.kernel_size == (3, 3) and model.stem.conv.strides == (1, 1)
    out = _outputs(model, torch.randn(1, 3, 32, 32), [f"stages.{i}" for i in range(4)])
    assert [out[f"stages.{i}"].shape[2] for i in range(4)] == [32, 16, 8, 4]
    assert [(i.channels, i.reduction) for i in model.feature_info] == [(64, 1), (128, 2), (256, 4), (512, 8)]


def test_kernel_init():
    torch.manual_seed(0)
    conv = cnnlab.create_model("resnet18").stages[3].block1.conv2  # 3x3, 512 -> 512
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 512)), rel=0.01)  # He: N(0, sqrt(2/n))
    assert conv.weight.abs().max().item() > 2 * math.sqrt(2 / (9 * 512))  # a normal, not a uniform
    assert conv.bias.abs().sum().item() == 0
    conv = cnnlab.create_model("resnet18", kernel_init="glorot_uniform").stages[3].block1.conv2
    assert conv.weight.abs().max().item() <= math.sqrt(6 / (9 * 512 * 2))  # Keras's default


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stride_on": "3x3x"}, r"stride_on must be one of '3x3', '1x1', got '3x3x'"),
        ({"conv_bias": 1}, r"conv_bias must be one of True, False, got 1"),
        ({"kernel_init": "he_uniform"}, r"kernel_init must be one of 'he_normal', 'glorot_uniform', got 'he_uniform'"),
        ({"stem": "tiny"}, r"stem must be 'imagenet'"),
    ],
)
def test_bad_keywords(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnnlab.create_model("resnet50", **kwargs)
