"""Backbones: ``create_model(name, features_only=True, out_indices=...)`` for every ImageNet
family and the CIFAR nets: the returned maps are the full model's stage outputs (checked with
hooks on the full model carrying the same weights), ``feature_info`` describes them."""

from __future__ import annotations

import pytest
import torch

import cnnlab
from cnnlab.models import FeatureExtractor, get_model_entry

# one model per family (the whole registry is checked for shapes below), at a small input
CASES = [
    ("vgg11", {"stem": "cifar"}, 32),
    ("googlenet", {"stem": "cifar"}, 32),
    ("resnet18", {"stem": "cifar"}, 32),
    ("mobilenet_v2", {}, 64),
    ("mobilenet_v3_small", {}, 64),
    ("densenet_bc", {"depth": 40}, 32),
    ("xception", {"stem": "cifar"}, 32),
    ("densenet_cifar", {}, 32),
    ("convtype_cifar", {"conv": "separable"}, 32),
]


def stage_outputs(model, x):
    outputs = {}
    hooks = [
        model.get_submodule(i.module).register_forward_hook(lambda m, a, o, k=i.module: outputs.__setitem__(k, o))
        for i in model.feature_info
    ]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return outputs


@pytest.mark.parametrize("name, kwargs, size", CASES, ids=[c[0] for c in CASES])
def test_backbone_returns_the_models_stage_outputs(name, kwargs, size):
    torch.manual_seed(0)
    full = cnnlab.create_model(name, **kwargs).eval()
    n = len(full.feature_info)
    backbone = FeatureExtractor(full, out_indices=(0, n - 1)).eval()
    x = torch.randn(1, 3, size, size)
    expected = stage_outputs(full, x)
    with torch.no_grad():
        features = backbone(x)
    assert [i.module for i in backbone.feature_info] == [full.feature_info[0].module, full.feature_info[-1].module]
    assert len(features) == 2
    for info, feature in zip(backbone.feature_info, features):
        assert feature.shape[1] == info.channels
        assert torch.equal(feature, expected[info.module])


def test_all_stages_by_default_and_later_stages_dropped():
    backbone = cnnlab.create_model("resnet18", features_only=True)
    full = cnnlab.create_model("resnet18")
    missing, unexpected = backbone.load_state_dict(full.state_dict(), strict=False)
    assert not missing and unexpected == ["head.fc.weight", "head.fc.bias"]  # the full model's names
    assert isinstance(backbone, FeatureExtractor)
    assert [(i.channels, i.reduction) for i in backbone.feature_info] == [(64, 4), (128, 8), (256, 16), (512, 32)]
    shapes = [tuple(f.shape) for f in backbone(torch.randn(1, 3, 64, 64))]
    assert shapes == [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
    early = cnnlab.create_model("resnet18", features_only=True, out_indices=(-3,))
    assert len(early.stages) == 2 and not hasattr(early, "head")
    assert sum(p.numel() for p in early.parameters()) < sum(p.numel() for p in backbone.parameters()) / 4


def test_final_is_a_feature_where_it_widens_the_last_stage():
    backbone = cnnlab.create_model("mobilenet_v2", features_only=True, out_indices=(-1,))
    assert backbone.feature_info[0].module == "final" and backbone.feature_info[0].channels == 1280
    assert backbone(torch.randn(1, 3, 64, 64))[0].shape == (1, 1280, 2, 2)


@pytest.mark.parametrize(
    "out_indices, message",
    [
        (
            (4,),
            r"out_indices must be distinct stage indices in 0..3 \(or -4..-1\) for ResNet, whose stages are 0: stages.0 \(64 ch, /4\)",  # noqa: E501 (a table row / command line kept whole)
        ),
        ((1, 1), "repeats a stage"),
        ((), "got \\(\\)"),
        (("1",), "got \\('1',\\)"),
        (1.5, "got 1.5"),
    ],
)
def test_bad_out_indices_are_named(out_indices, message):
    with pytest.raises(ValueError, match=message):
        cnnlab.create_model("resnet18", features_only=True, out_indices=out_indices)


def test_out_indices_need_features_only():
    with pytest.raises(ValueError, match="out_indices=\\(1,\\) needs features_only=True"):
        cnnlab.create_model("resnet18", out_indices=(1,))


def test_every_registered_model_has_a_backbone():
    """Cheap structural check over the whole registry (meta device: shapes only)."""
    for name in cnnlab.list_models():
        c, h, w = get_model_entry(name).input_size
        with torch.device("meta"):
            backbone = cnnlab.create_model(name, features_only=True)
            features = backbone(torch.empty(1, c, h, w))
        assert [f.shape[1] for f in features] == [i.channels for i in backbone.feature_info], name
