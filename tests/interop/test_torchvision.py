"""cnnlab.interop.load_torchvision_weights. Against torchvision itself (a test dependency; see
tests/interop/conftest.py for how it imports beside a CPU-only torch): every family, random
weights and random BatchNorm statistics, the same logits on random 224x224 inputs."""

from __future__ import annotations

import pytest
import torch
from torchvision import models, transforms
from torchvision.transforms.v2 import functional as tvf

import cnnlab
from cnnlab.interop import load_torchvision_weights, torchvision_kwargs

# torchvision builder name, extra builder keywords, cnnlab name
FAMILIES = [
    ("resnet18", {}, "resnet18"),
    ("resnet34", {}, "resnet34"),
    ("resnet50", {}, "resnet50"),
    ("resnet101", {}, "resnet101"),
    ("resnet152", {}, "resnet152"),
    ("densenet121", {}, "densenet121"),
    ("densenet169", {}, "densenet169"),
    ("densenet201", {}, "densenet201"),
    ("vgg16", {}, "vgg16"),
    ("vgg19", {}, "vgg19"),
    ("vgg16_bn", {}, "vgg16_bn"),
    ("vgg19_bn", {}, "vgg19_bn"),
    ("mobilenet_v2", {}, "mobilenet_v2"),
    ("mobilenet_v3_small", {}, "mobilenet_v3_small"),
    ("mobilenet_v3_large", {}, "mobilenet_v3_large"),
    ("googlenet", {"aux_logits": False, "transform_input": False, "init_weights": True}, "googlenet"),
]


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)


@pytest.mark.parametrize("tv_name, tv_kwargs, name", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_torchvision_weights_give_torchvision_logits(tv_name, tv_kwargs, name):
    torch.manual_seed(0)
    reference = getattr(models, tv_name)(weights=None, **tv_kwargs).eval()
    randomise_bn(reference)
    model = cnnlab.create_model(name, **torchvision_kwargs(name)).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)
        before = (model(x) - expected).abs().max().item()
        load_torchvision_weights(model, reference.state_dict())
        diff = (model(x) - expected).abs().max().item()
    scale = expected.abs().max().item()
    print(
        f"\n{tv_name}: max |cnnlab - torchvision| = {diff:.3g} (max |logit| {scale:.3g}; before loading {before:.3g})"
    )
    assert diff <= 1e-4
    assert diff <= 1e-3 * scale < before


def test_padding_is_what_separates_the_flavours():
    """The same weights in the Keras-padded resnet18 give other numbers: the flavour matters."""
    torch.manual_seed(0)
    source = cnnlab.create_model("resnet18", **torchvision_kwargs("resnet18")).eval()
    keras_padded = cnnlab.create_model("resnet18", conv_bias=False, bn_eps=1e-5).eval()
    load_torchvision_weights(keras_padded, source.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (keras_padded(x) - source(x)).abs().max() > 1e-3
        # 36x36 meets the stride-2 convs at 9, 5 and 3: odd sizes, where 'same' pads 1 on each
        # side too, so there the flavours agree
        odd = torch.randn(1, 3, 36, 36)
        assert torch.allclose(keras_padded(odd), source(odd), atol=1e-4)


def test_mismatch_lists_the_first_tensors_and_changes_nothing():
    source = cnnlab.create_model("resnet34", **torchvision_kwargs("resnet34")).state_dict()
    model = cnnlab.create_model("resnet18", **torchvision_kwargs("resnet18"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as error:
        load_torchvision_weights(model, source)
    assert "stages.1.block0.conv1 (weight (128, 64, 3, 3)) <- stages.0.block2.conv1 (weight (64, 64, 3, 3))" in str(
        error.value
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(
        ValueError, match=r"head.fc \(weight \(10, 512\), bias \(10,\)\) <- head.fc \(weight \(1000, 512\)"
    ):
        load_torchvision_weights(
            cnnlab.create_model("resnet18", num_classes=10, **torchvision_kwargs("resnet18")),
            cnnlab.create_model("resnet18", **torchvision_kwargs("resnet18")).state_dict(),
        )


def test_headless_state_dict_needs_strict_false():
    source = {
        k: v
        for k, v in cnnlab.create_model("mobilenet_v2", **torchvision_kwargs("mobilenet_v2")).state_dict().items()
        if not k.startswith("head.")
    }
    model = cnnlab.create_model("mobilenet_v2", num_classes=4, **torchvision_kwargs("mobilenet_v2"))
    with pytest.raises(ValueError, match="strict=False"):
        load_torchvision_weights(model, source)
    load_torchvision_weights(model, source, strict=False)
    assert torch.equal(model.stem.conv.weight, source["stem.conv.weight"])


def test_unknown_flavour_is_named():
    with pytest.raises(ValueError, match="torchvision has no 'xception'"):
        torchvision_kwargs("xception")


def test_resized_crops_are_torchvisions():
    """The imagenet policy's crops against torchvision's own resized_crop, on the same boxes."""
    from cnnlab.data.augment import random_resized_boxes, resized_crops

    x = torch.rand(6, 3, 150, 180) * 255
    boxes = random_resized_boxes(6, 150, 180, torch.Generator().manual_seed(0))
    ours = resized_crops(x, boxes, (96, 96))
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        theirs = tvf.resized_crop(x[i], top, left, h, w, [96, 96], antialias=True)
        torch.testing.assert_close(ours[i], theirs, rtol=0, atol=1e-3)


def test_cached_framing_and_center_view_are_torchvisions_resize_and_center_crop():
    """--cache-size 64 with a 56-px input: the cached image is torchvision's Resize(64) of the
    original and evaluation's view its CenterCrop(56), pixel for pixel."""
    import numpy as np
    from PIL import Image

    from cnnlab.data.frames import center_views, resize_short_side

    rng = np.random.default_rng(0)
    for h, w in [(90, 150), (150, 91), (101, 203), (40, 70), (64, 64)]:
        original = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        frame = resize_short_side(original, 64)
        resized = transforms.Resize(64)(original)
        np.testing.assert_array_equal(np.asarray(frame), np.asarray(resized))
        theirs = np.asarray(transforms.CenterCrop(56)(resized))
        np.testing.assert_array_equal(center_views([np.asarray(frame)], (56, 56)).numpy()[0], theirs)


def test_batchnorm_without_running_statistics_is_a_misfit():
    """A BatchNorm keeping no running statistics (track_running_stats=False) has nothing to take
    torchvision's running_mean/var: a ValueError naming it, not an AttributeError."""
    source = cnnlab.create_model("resnet18", **torchvision_kwargs("resnet18")).state_dict()
    model = cnnlab.create_model("resnet18", **torchvision_kwargs("resnet18"))
    model.stem.bn = torch.nn.BatchNorm2d(64, eps=1e-5, track_running_stats=False)
    with pytest.raises(ValueError, match=r"stem.bn \(weight \(64,\), bias \(64,\)\) <- stem.bn \(weight \(64,\)"):
        load_torchvision_weights(model, source)
