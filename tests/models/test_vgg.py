"""VGG: Keras-convention parameter counts (keras.applications / torchvision), Keras parity of
the conv trunk, stem="cifar", dropout and argument validation."""

import pytest
import torch

import cnnlab
from cnnlab.analysis.summary import summary

from .counts import keras_param_counts


def meta(name, **kwargs):
    """Built on the meta device: shapes only, no 100M-element initialisation (fast)."""
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


# name, total (Keras convention), trainable, depth (weight layers). Plain: keras.applications'
# VGG16/VGG19 (and the same construction for 11/13); _bn: torchvision's trainable count, total
# adds the BatchNorm running mean and variance.
COUNTS = [
    ("vgg11", 132_863_336, 132_863_336, 11),
    ("vgg13", 133_047_848, 133_047_848, 13),
    ("vgg16", 138_357_544, 138_357_544, 16),
    ("vgg19", 143_667_240, 143_667_240, 19),
    ("vgg11_bn", 132_874_344, 132_868_840, 11),
    ("vgg13_bn", 133_059_624, 133_053_736, 13),
    ("vgg16_bn", 138_374_440, 138_365_992, 16),
    ("vgg19_bn", 143_689_256, 143_678_248, 19),
]


@pytest.mark.parametrize("name, total, trainable, depth", COUNTS)
def test_counts_and_depth(name, total, trainable, depth):
    model = meta(name)
    assert keras_param_counts(model) == (total, trainable)
    s = summary(model, (3, 224, 224))
    assert (s.total_params, s.trainable_params, s.depth) == (total, trainable, depth)
    assert s.output_shape == (1000,)


@pytest.mark.parametrize("name", ["vgg11_bn", "vgg19_bn"])
def test_bn_running_stats_are_the_only_difference(name):
    total, trainable = keras_param_counts(meta(name))
    plain = keras_param_counts(meta(name[:-3]))[0]
    bns = [m for m in meta(name).modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.eps == 1e-5 for m in bns)
    channels = sum(m.num_features for m in bns)
    assert (trainable, total) == (plain + 2 * channels, plain + 4 * channels)


@pytest.mark.parametrize("name, keras_name", [("vgg16", "VGG16"), ("vgg19", "VGG19")])
def test_conv_trunk_matches_keras(name, keras_name):
    """The full Keras models exceed 30M parameters; their conv trunks (include_top=False) do not."""
    import keras

    peer = getattr(keras.applications, keras_name)(weights=None, include_top=False, input_shape=(224, 224, 3))
    model = meta(name)
    assert keras_param_counts(model.stages)[0] == peer.count_params()
    keras_shapes = [
        tuple(layer.output.shape[1:3]) for layer in peer.layers if type(layer).__name__ in ("Conv2D", "MaxPooling2D")
    ]
    ours = []
    x = torch.empty(1, 3, 224, 224, device="meta")
    for stage in model.stages:
        for unit in stage:
            x = unit(x)
            ours.append(tuple(x.shape[2:]))
    assert ours == keras_shapes


def test_names_and_features():
    model = meta("vgg16_bn")
    names = dict(model.named_modules())
    assert {"stages.2.conv3.conv", "stages.2.conv3.bn", "stages.4.pool", "head.pre_logits.fc2", "head.fc"} <= set(names)
    assert isinstance(model.stem, torch.nn.Identity)
    expected = [(64, 2), (128, 4), (256, 8), (512, 16), (512, 32)]
    assert [(f.channels, f.reduction) for f in model.feature_info] == expected


def test_cifar_stem_ends_at_2x2():
    model = meta("vgg11", num_classes=10, stem="cifar")
    assert "pool" not in dict(model.stages[0].named_children())
    assert [f.reduction for f in model.feature_info] == [1, 2, 4, 8, 16]
    x = torch.empty(1, 3, 32, 32, device="meta")
    assert model.forward_features(x).shape == (1, 512, 2, 2)
    assert model(x).shape == (1, 10)
    assert keras_param_counts(model)[0] == keras_param_counts(meta("vgg11", num_classes=10))[0]


def test_dropout():
    head = meta("vgg11", dropout=0.5).head
    assert [m.p for m in head.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    assert not any(isinstance(m, torch.nn.Dropout) for m in meta("vgg11").modules())


@pytest.mark.parametrize("bad", [1.0, -0.1, "0.5", True])
def test_bad_dropout(bad):
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\).*got"):
        cnnlab.create_model("vgg13", dropout=bad)


def test_bad_stem():
    with pytest.raises(ValueError, match="stem must be 'imagenet'.*got 'tiny'"):
        cnnlab.create_model("vgg16", stem="tiny")
