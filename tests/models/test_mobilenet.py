"""MobileNet v1/v2/v3: keras.applications parity (counts, conv output shapes, outputs layer for
layer with Keras weights), depth, layout, cifar stem, argument validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis.summary import summary
from cnnlab.layers import DepthwiseConv2D, KerasConv2dBase
from cnnlab.models.mobilenet import CorrectPad, SqueezeExcite

from .counts import keras_param_counts
from .keras_copy import copy_keras_weights_in_order

NAMES = ("mobilenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large")


@pytest.mark.parametrize(
    "name, kwargs, total, trainable",
    [
        ("mobilenet", {}, 4_253_864, 4_231_976),  # keras.applications.MobileNet
        ("mobilenet", {"conv_bias": True}, 4_264_808, 4_242_920),  # article 004 (summary: 4,264,808 / 4,242,920)
        ("mobilenet", {"num_classes": 10}, 3_239_114, 3_217_226),  # 1025 * 990 fewer classifier weights
        ("mobilenet", {"stem": "cifar"}, 4_253_864, 4_231_976),  # only the stem stride differs
        ("mobilenet_v2", {}, 3_538_984, 3_504_872),  # Keras MobileNetV2; trainable = torchvision's count
        ("mobilenet_v2", {"stem": "cifar", "in_channels": 1}, 3_538_408, 3_504_296),  # 2 * 9 * 32 fewer
        ("mobilenet_v3_small", {}, 2_554_968, 2_542_856),  # Keras MobileNetV3Small
        ("mobilenet_v3_large", {}, 5_507_432, 5_483_032),  # Keras MobileNetV3Large
    ],
)
def test_param_counts(name, kwargs, total, trainable):
    assert keras_param_counts(cnnlab.create_model(name, **kwargs)) == (total, trainable)


def _keras_model(name: str, size: int, **kwargs):
    import keras

    apps = keras.applications
    common = {"weights": None, "input_shape": (size, size, 3), "classifier_activation": None}
    if name == "mobilenet":
        return apps.MobileNet(**common, **kwargs)
    if name == "mobilenet_v2":
        return apps.MobileNetV2(**common, **kwargs)
    cls = apps.MobileNetV3Small if name == "mobilenet_v3_small" else apps.MobileNetV3Large
    return cls(**common, include_preprocessing=False, **kwargs)


# keyword combinations our factories and Keras's share (alpha, depth_multiplier, minimalistic)
KERAS_CONFIGS = [
    ("mobilenet", {}),
    ("mobilenet", {"alpha": 0.5, "depth_multiplier": 2}),
    ("mobilenet_v2", {}),
    ("mobilenet_v2", {"alpha": 1.4}),
    ("mobilenet_v2", {"alpha": 0.35}),
    ("mobilenet_v3_small", {}),
    ("mobilenet_v3_small", {"alpha": 0.75, "minimalistic": True}),
    ("mobilenet_v3_large", {}),
    ("mobilenet_v3_large", {"alpha": 1.25}),
    ("mobilenet_v3_large", {"minimalistic": True}),
]


def _conv_shapes(model: nn.Module, size: int) -> list[tuple[int, int, int]]:
    """(H, W, C) after every cnnlab conv, in module order (on the meta device: shapes only)."""
    shapes = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: shapes.append((o.shape[2], o.shape[3], o.shape[1])))
        for m in model.modules()
        if isinstance(m, KerasConv2dBase)
    ]
    with torch.no_grad():
        model(torch.empty(1, 3, size, size, device="meta"))
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize("name, kwargs", KERAS_CONFIGS)
def test_counts_and_conv_shapes_match_keras(name, kwargs):
    import keras

    reference = _keras_model(name, 224, **kwargs)
    trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
    assert keras_param_counts(cnnlab.create_model(name, **kwargs)) == (reference.count_params(), trainable)
    with torch.device("meta"):
        meta = cnnlab.create_model(name, **kwargs).eval()
    ours = _conv_shapes(meta, 224)
    conv_types = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    convs = [layer for layer in reference.layers if isinstance(layer, conv_types)]
    # Keras's classifier convs act on the 1x1 pooled map; ours are the head's Linear layers
    expected = [tuple(layer.output.shape[1:]) for layer in convs[: len(ours)]]
    assert ours == expected
    head = {"mobilenet": ["conv_preds"], "mobilenet_v2": []}.get(name, ["conv_2", "logits"])
    assert [layer.name for layer in convs[len(ours) :]] == head


@pytest.mark.parametrize("name, kwargs", [c for i, c in enumerate(KERAS_CONFIGS) if i in (0, 1, 2, 5, 6, 7)])
def test_matches_keras_layer_for_layer(name, kwargs):
    """Same logits at 57x57: the maps go 29, 15, 8, 4, 2 (v1: 29, 14, 7, 3, 1), odd and even,
    so v1's fixed ((0, 1), (0, 1)) and v2/v3's parity-dependent correct_pad are both exercised."""
    import keras

    size = 57

    reference = _keras_model(name, size, **kwargs)
    model = cnnlab.create_model(name, **kwargs).eval()
    copy_keras_weights_in_order(reference, model)
    x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype("float32")
    expected = np.asarray(keras.ops.convert_to_numpy(reference(x, training=False)))
    with torch.no_grad():
        got = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "name, depth", [("mobilenet", 28), ("mobilenet_v2", 53), ("mobilenet_v3_small", 54), ("mobilenet_v3_large", 64)]
)
@pytest.mark.parametrize("stem, size", [("imagenet", 64), ("cifar", 32)])
def test_depth(name, depth, stem, size):
    """v1: conv + 13 * (dw + pw) + fc = 28. v2: conv + 2 + 16 * 3 + final + fc = 53. v3 (the
    squeeze-excite's two convs lie on the longest path): small 1 + 4 + 10 * 3 + 8 * 2 + 1 + 2 = 54,
    large 1 + 2 + 14 * 3 + 8 * 2 + 1 + 2 = 64."""
    assert summary(cnnlab.create_model(name, stem=stem), input_size=(3, size, size)).depth == depth


def test_layout_and_feature_info():
    v1 = cnnlab.create_model("mobilenet")
    assert [len(s) for s in v1.stages] == [1, 2, 2, 6, 2]
    assert isinstance(v1.stages[1].block0.pad, nn.ZeroPad2d) and v1.stages[1].block0.pad.padding == (0, 1, 0, 1)
    assert v1.stages[1].block0.dw.conv.padding == "valid" and isinstance(v1.stages[1].block0.dw.act, nn.ReLU6)
    norms = [m for m in v1.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.eps == 1e-3 and m.momentum == pytest.approx(0.01) for m in norms)  # Keras momentum 0.99
    assert not any(m.use_bias for m in v1.modules() if isinstance(m, KerasConv2dBase))
    assert all(
        m.use_bias for m in cnnlab.create_model("mobilenet", conv_bias=True).modules() if isinstance(m, KerasConv2dBase)
    )
    assert [(f.module, f.channels, f.reduction) for f in v1.feature_info] == [
        ("stages.0", 64, 2),
        ("stages.1", 128, 4),
        ("stages.2", 256, 8),
        ("stages.3", 512, 16),
        ("stages.4", 1024, 32),
    ]

    v2 = cnnlab.create_model("mobilenet_v2")
    keys = v2.state_dict().keys()
    for key in (
        "stem.conv.weight",
        "stages.0.block0.dw.conv.weight",
        "stages.1.block0.expand.bn.running_var",
        "stages.4.block3.project.conv.weight",
        "final.conv.weight",
        "head.fc.weight",
    ):
        assert key in keys, key
    assert [len(s) for s in v2.stages] == [1, 2, 3, 7, 4]
    assert not hasattr(v2.stages[0].block0, "expand") and isinstance(v2.stages[1].block0.pad, CorrectPad)
    assert [b.use_residual for b in v2.stages[3]] == [False, True, True, True, False, True, True]
    assert all(m.momentum == pytest.approx(0.001) for m in v2.modules() if isinstance(m, nn.BatchNorm2d))
    assert [(f.module, f.channels, f.reduction) for f in v2.feature_info][-1] == ("final", 1280, 32)

    small = cnnlab.create_model("mobilenet_v3_small")
    assert [(f.module, f.channels, f.reduction) for f in small.feature_info] == [
        ("stages.0", 16, 4),
        ("stages.1", 24, 8),
        ("stages.2", 48, 16),
        ("final", 576, 32),
    ]
    assert isinstance(small.stages[0].block0.se, SqueezeExcite) and small.stages[0].block0.se.conv_reduce.filters == 8
    assert small.head.pre_logits.fc1.out_features == 1024 and isinstance(small.head.pre_logits.act1, nn.Hardswish)
    assert small.head.drop.p == 0.2 and small.num_features == 1024
    large = cnnlab.create_model("mobilenet_v3_large")
    assert [f.reduction for f in large.feature_info] == [2, 4, 8, 16, 32] and large.final.conv.filters == 960
    assert large.stages[2].block0.dw.conv.kernel_size == (5, 5) and large.stages[2].block0.pad.padding == (1, 2, 1, 2)
    minimal = cnnlab.create_model("mobilenet_v3_large", minimalistic=True)
    assert not any(isinstance(m, (SqueezeExcite, nn.Hardswish)) for m in minimal.modules())
    assert all(m.kernel_size == (3, 3) for m in minimal.modules() if isinstance(m, DepthwiseConv2D))


@pytest.mark.parametrize(
    "name, sizes",
    [
        ("mobilenet", [32, 32, 16, 8, 4, 2]),
        ("mobilenet_v2", [32, 32, 16, 8, 4, 2]),
        ("mobilenet_v3_small", [32, 16, 8, 4, 2]),
        ("mobilenet_v3_large", [32, 32, 16, 8, 4, 2]),
    ],
)
def test_cifar_stem(name, sizes):
    """stem="cifar": 3x3/1 'same' stem conv, every stride-2 block kept: 32x32 ends at 2x2."""
    model = cnnlab.create_model(name, num_classes=10, stem="cifar").eval()
    assert model.stem.conv.strides == (1, 1) and model.stem.conv.kernel_size == (3, 3)
    got = [model.stem(torch.randn(1, 3, 32, 32))]
    for stage in model.stages:
        got.append(stage(got[-1]))
    assert [t.shape[-1] for t in got] == sizes
    assert [f.reduction for f in model.feature_info] == [32 // s for s in sizes[1:]]


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("mobilenet", {"alpha": 0}, r"alpha .*> 0, got 0"),
        ("mobilenet", {"depth_multiplier": 0}, r"depth_multiplier must be an integer >= 1, got 0"),
        ("mobilenet", {"dropout": 1.0}, r"dropout must be a rate in \[0, 1\), got 1.0"),
        ("mobilenet", {"conv_bias": "yes"}, r"conv_bias must be True or False, got 'yes'"),
        ("mobilenet_v2", {"alpha": "wide"}, r"alpha .*got 'wide'"),
        ("mobilenet_v3_small", {"minimalistic": 1}, r"minimalistic must be True or False, got 1"),
        ("mobilenet_v3_large", {"stem": "tiny"}, r"stem must be 'imagenet'.*got 'tiny'"),
    ],
)
def test_bad_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnnlab.create_model(name, **kwargs)
