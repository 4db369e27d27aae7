"""Every registered model keeps the zoo's contract (parametrised over the registry, so a new
model is checked the moment it is registered)."""

from __future__ import annotations

import inspect

import pytest
import torch

import cnnlab
from cnnlab.models import get_model_entry

MODELS = cnnlab.list_models()


def accepts(name: str, argument: str) -> bool:
    return argument in inspect.signature(get_model_entry(name).factory).parameters


@pytest.fixture(scope="module", autouse=True)
def _threads():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", MODELS)
def test_default_input_logits_and_features(name):
    entry = get_model_entry(name)
    model = cnnlab.create_model(name).eval()
    c, h, w = entry.input_size
    x = torch.randn(1, c, h, w)
    outputs = {}
    hooks = [
        model.get_submodule(info.module).register_forward_hook(
            lambda m, i, o, key=info.module: outputs.__setitem__(key, o)
        )
        for info in model.feature_info
    ]
    with torch.no_grad():
        logits = model(x)
    for hook in hooks:
        hook.remove()
    assert logits.shape == (1, model.num_classes)
    assert torch.isfinite(logits).all()
    assert len(model.feature_info) >= 1
    for info in model.feature_info:
        feature = outputs[info.module]
        assert feature.shape[1] == info.channels, info
        # 'valid' convolutions (Keras stems) shave a few pixels: 299 -> 149 -> ... -> 10 is reduction 32.
        for size, got in ((h, feature.shape[2]), (w, feature.shape[3])):
            assert abs(size / got - info.reduction) <= 0.1 * info.reduction, (info, tuple(feature.shape))
    reductions = [info.reduction for info in model.feature_info]
    assert reductions == sorted(reductions)
    with torch.no_grad():
        features = model.forward_features(x)
        assert model.forward_head(features, pre_logits=True).shape == (1, model.num_features)
        assert torch.equal(model.forward_head(features), logits)
    model.reset_classifier(7)
    with torch.no_grad():
        assert model(x).shape == (1, 7)


@pytest.mark.parametrize("name", MODELS)
def test_small_input_trains(name):
    """32x32 (with stem="cifar" where offered), one input channel: right shape, finite, and
    every parameter gets a gradient; ``in_channels`` reaches the first layer."""
    kwargs = {"stem": "cifar"} if accepts(name, "stem") else {}
    entry = get_model_entry(name)
    size = 32 if kwargs or entry.input_size[1] == 32 else entry.input_size[1]
    model = cnnlab.create_model(name, num_classes=10, in_channels=1, **kwargs).train()
    x = torch.randn(2, 1, size, size)
    logits = model(x)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=1).sum().backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    assert not missing, f"no (finite) gradient for {missing[:5]}"
