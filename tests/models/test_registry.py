import pytest
import torch

import cnnlab
from cnnlab.models import get_model_entry, register_model, registry


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
    assert cnnlab.list_models() == sorted(cnnlab.list_models())
