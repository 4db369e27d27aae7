import inspect

import pytest
import torch

import cnnlab
from cnnlab.models import get_model_entry, register_model, registry
from cnnlab.models.registry import natural_key


def test_duplicate_names_are_refused(monkeypatch):
    # a private copy of the registry: the toy model must not leak into tests that walk the zoo
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_model(family="test")
    def _registry_test_model(num_classes=10, in_channels=3):
        return torch.nn.Linear(in_channels, num_classes)

    with pytest.raises(ValueError, match="already registered"):
        register_model(_registry_test_model)
    assert get_model_entry("_registry_test_model").family == "test"


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown model 'resnet5'; did you mean .*resnet50"):
        cnnlab.create_model("resnet5")


def test_unknown_argument_lists_accepted():
    with pytest.raises(ValueError, match=r"does not accept 'growth'; accepted arguments: .*growth_rate"):
        cnnlab.create_model("densenet_cifar", growth=12)


def test_list_models_pattern():
    names = cnnlab.list_models("densenet*")
    assert names and all(n.startswith("densenet") for n in names)
    assert cnnlab.list_models() == sorted(cnnlab.list_models(), key=natural_key)
    assert cnnlab.list_models("resnet*") == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


def test_builder_gives_the_factory_its_keywords(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    def _build(width: int, *, num_classes: int = 10, in_channels: int = 3, bias: bool = True) -> torch.nn.Linear:
        return torch.nn.Linear(in_channels * width, num_classes, bias=bias)

    @register_model(family="test", builder=_build)
    def _registry_test_variant(**kwargs) -> torch.nn.Linear:
        """A toy variant of width 2."""
        return _build(2, **kwargs)

    entry = get_model_entry("_registry_test_variant")
    assert entry.accepted_arguments() == ["num_classes", "in_channels", "bias"]
    parameters = inspect.signature(entry.factory).parameters.values()  # what help() and the docs show
    assert [(p.name, p.default, p.kind) for p in parameters] == [
        ("num_classes", 10, inspect.Parameter.KEYWORD_ONLY),
        ("in_channels", 3, inspect.Parameter.KEYWORD_ONLY),
        ("bias", True, inspect.Parameter.KEYWORD_ONLY),
    ]
    assert entry.description == "A toy variant of width 2." and entry.weights == ()
    assert cnnlab.create_model("_registry_test_variant", num_classes=4, bias=False).bias is None
    with pytest.raises(
        ValueError, match="does not accept 'width'; accepted arguments: num_classes, in_channels, bias$"
    ):
        cnnlab.create_model("_registry_test_variant", width=3)
    with pytest.raises(TypeError, match=r"takes its keywords from .*_build: define it as \(\*\*kwargs\)"):

        @register_model(builder=_build)
        def _registry_test_wrong(num_classes=10, **kwargs):
            return _build(2, num_classes=num_classes, **kwargs)

    assert "_registry_test_wrong" not in cnnlab.list_models()
