"""DenseNet: keras.applications parity (counts, shapes, outputs), article 000's table, the paper's DenseNet-BC."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.analysis.summary import summary
from cnnlab.layers import AveragePooling2D, Conv2D

from .counts import keras_param_counts
from .keras_copy import copy_keras_weights_in_order


@pytest.mark.parametrize(
    "name, kwargs, total, trainable",
    [
        ("densenet121", {}, 8_062_504, 7_978_856),
        ("densenet169", {}, 14_307_880, 14_149_480),
        ("densenet201", {}, 20_242_984, 20_013_928),
        ("densenet264", {}, 33_736_232, 33_337_704),
        # article 000's results table (DenseNetSimple)
        ("densenet_cifar", {}, 255_046, 251_614),
        ("densenet_cifar", {"growth_rate": 32}, 505_200, 501_004),
        ("densenet_cifar", {"blocks": (2, 4, 8, 5)}, 599_536, 591_412),
        ("densenet_cifar", {"blocks": (3, 6, 12, 8)}, 1_104_186, 1_089_114),
        ("densenet_cifar", {"blocks": (6, 12, 24, 16)}, 3_316_848, 3_271_120),
        # the paper's DenseNet-BC L=100 k=12 ("0.8M"); checked in closed form below
        ("densenet_bc", {}, 793_150, 769_162),
    ],
)
def test_param_counts(name, kwargs, total, trainable):
    assert keras_param_counts(cnnlab.create_model(name, **kwargs)) == (total, trainable)


@pytest.mark.parametrize(
    "name, kwargs, size, depth",
    [
        ("densenet121", {}, 64, 121),
        ("densenet169", {}, 64, 169),
        ("densenet201", {}, 64, 201),
        # The paper's (6, 12, 64, 48) has 1 + 2*130 + 3 + 1 = 265 weight layers; "264" is its name.
        ("densenet264", {}, 64, 265),
        ("densenet_cifar", {}, 32, 25),
        ("densenet_cifar", {"growth_rate": 32}, 32, 25),
        ("densenet_cifar", {"blocks": (2, 4, 8, 5)}, 32, 43),
        ("densenet_cifar", {"blocks": (3, 6, 12, 8)}, 32, 63),
        ("densenet_cifar", {"blocks": (6, 12, 24, 16)}, 32, 121),
        ("densenet_bc", {}, 32, 100),
        ("densenet_bc", {"depth": 40}, 32, 40),
    ],
)
def test_depth(name, kwargs, size, depth):
    assert summary(cnnlab.create_model(name, **kwargs), input_size=(3, size, size)).depth == depth


@pytest.mark.parametrize(
    "name, keras_name", [("densenet121", "DenseNet121"), ("densenet169", "DenseNet169"), ("densenet201", "DenseNet201")]
)
def test_counts_match_keras(name, keras_name):
    import keras

    reference = getattr(keras.applications, keras_name)(weights=None)
    trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
    assert keras_param_counts(cnnlab.create_model(name)) == (reference.count_params(), trainable)


def test_densenet121_matches_keras_layer_for_layer():
    """Same layers in the same order: Keras weights (random BN statistics too) copied in order
    give identical stage shapes and logits."""
    import keras

    size = 64
    reference = keras.applications.DenseNet121(weights=None, input_shape=(size, size, 3), classifier_activation=None)
    model = cnnlab.create_model("densenet121").eval()
    copy_keras_weights_in_order(reference, model)

    x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype("float32")
    expected = np.asarray(keras.ops.convert_to_numpy(reference(x, training=False)))
    outputs = {}
    hooks = [
        model.get_submodule(info.module).register_forward_hook(lambda m, i, o, k=info.module: outputs.__setitem__(k, o))
        for info in model.feature_info
    ]
    with torch.no_grad():
        got = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    for hook in hooks:
        hook.remove()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # dense block outputs = Keras's last concat of each block (conv{2..5}_block{n}_concat)
    for s, n in enumerate((6, 12, 24, 16)):
        keras_shape = tuple(reference.get_layer(f"conv{s + 2}_block{n}_concat").output.shape[1:])
        c, h, w = outputs[f"stages.{s}"].shape[1:]
        assert (h, w, c) == keras_shape


def _bc_closed_form(depth: int, k: int, theta: float = 0.5, num_classes: int = 10) -> tuple[int, int]:
    """(total, trainable) in Keras's convention, summed layer by layer from the paper's description."""
    n = (depth - 4) // 6
    trainable = stats = 0

    def bn(c: int) -> None:
        nonlocal trainable, stats
        trainable, stats = trainable + 2 * c, stats + 2 * c  # gamma, beta / moving mean, variance

    c = 2 * k
    trainable += 3 * 3 * 3 * c  # 3x3 stem conv, no bias
    for block in range(3):
        if block:
            bn(c)
            out = int(c * theta)
            trainable += c * out  # 1x1 transition conv
            c = out
        for _ in range(n):
            bn(c)
            trainable += c * 4 * k  # 1x1 bottleneck
            bn(4 * k)
            trainable += 9 * 4 * k * k  # 3x3 conv
            c += k
    bn(c)
    trainable += c * num_classes + num_classes  # fc
    return trainable + stats, trainable


@pytest.mark.parametrize("depth, k, paper_millions", [(100, 12, 0.8), (250, 24, 15.3), (190, 40, 25.6)])
def test_densenet_bc_closed_form_and_paper(depth, k, paper_millions):
    counts = keras_param_counts(cnnlab.create_model("densenet_bc", depth=depth, growth_rate=k))
    assert counts == _bc_closed_form(depth, k)
    assert round(counts[1] / 1e6, 1) == paper_millions  # the paper's Table 2 (PyTorch convention)


def test_densenet_bc_reference_figure():
    assert _bc_closed_form(100, 12) == (793_150, 769_162)


def test_readable_names_and_structure():
    keys = cnnlab.create_model("densenet121").state_dict().keys()
    for key in (
        "stem.conv.weight",
        "stem.bn.running_var",
        "stages.0.layer0.conv1.weight",
        "stages.0.layer5.conv2.weight",
        "stages.1.transition.bn.weight",
        "stages.1.transition.conv.weight",
        "stages.3.layer15.bn2.weight",
        "final.bn.weight",
        "head.fc.weight",
    ):
        assert key in keys, key
    simple = cnnlab.create_model("densenet_cifar")
    transition = simple.stages[1].transition
    assert [type(m) for m in transition] == [Conv2D, AveragePooling2D]  # the article's bare transition
    assert transition.conv.use_bias and simple.stem.conv.use_bias and simple.stages[0].layer0.conv1.use_bias
    assert getattr(simple, "final", None) is None
    assert simple.stages[0].layer0.bn1.eps == 1e-3 and simple.stages[0].layer0.conv1.out_channels == 128
    assert [(f.channels, f.reduction) for f in simple.feature_info] == [(32, 1), (48, 2), (88, 4), (92, 8)]
    bc = cnnlab.create_model("densenet_bc")
    assert bc.stem.conv.kernel_size == (3, 3) and bc.stem.conv.out_channels == 24 and not bc.stem.conv.use_bias
    assert bc.final.bn.eps == 1e-5 and [len(s) for s in bc.stages] == [16, 17, 17]
    assert [(f.channels, f.reduction) for f in bc.feature_info] == [(216, 1), (300, 2), (342, 4)]


def test_feature_info_imagenet_and_cifar_stem():
    model = cnnlab.create_model("densenet121")
    assert [(f.channels, f.reduction) for f in model.feature_info] == [(256, 4), (512, 8), (1024, 16), (1024, 32)]
    cifar = cnnlab.create_model("densenet121", num_classes=10, stem="cifar").eval()
    assert cifar.stem.conv.kernel_size == (3, 3) and not hasattr(cifar.stem, "pool")
    assert [f.reduction for f in cifar.feature_info] == [1, 2, 4, 8]
    with torch.no_grad():
        assert cifar.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 1024, 4, 4)


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("densenet121", {"growth_rate": 0}, "growth_rate must be a positive int, got 0"),
        ("densenet169", {"compression": 1.5}, r"compression must be a number in \(0, 1\].*got 1.5"),
        ("densenet201", {"stem": "tiny"}, "stem must be 'imagenet'.*got 'tiny'"),
        ("densenet_cifar", {"blocks": (1, 0)}, r"blocks must be a non-empty sequence of positive ints.*got \(1, 0\)"),
        ("densenet_cifar", {"blocks": ()}, r"blocks must be a non-empty sequence"),
        ("densenet_cifar", {"bottleneck_width": -1}, "bottleneck_width must be a positive int, got -1"),
        ("densenet_cifar", {"compression": 0.01}, "compression=0.01 leaves transition 1 with no channels"),
        ("densenet_bc", {"depth": 101}, r"depth must be an int >= 10 with \(depth - 4\) % 6 == 0.*got 101"),
        ("densenet_bc", {"depth": 4}, "got 4"),
        ("densenet_bc", {"compression": 0}, "compression must be a number in"),
    ],
)
def test_validation(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnnlab.create_model(name, **kwargs)


def test_compression_one_is_densenet_b():
    model = cnnlab.create_model("densenet_bc", depth=40, compression=1.0)
    assert model.stages[1].transition.conv.out_channels == model.feature_info[0].channels
