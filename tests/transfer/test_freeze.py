"""freeze / unfreeze: which parameters train, and frozen BatchNorm statistics stay put."""

from __future__ import annotations

import pytest
import torch

import cnnlab
from cnnlab.transfer import freeze, frozen_parts, unfreeze


def train_step(model, x):
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    model(x).logsumexp(1).sum().backward()
    optimizer.step()


def test_freeze_backbone_trains_only_the_head():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet18", num_classes=3, stem="cifar")
    assert freeze(model) == ["stem", "stages.0", "stages.1", "stages.2", "stages.3"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_step(model, torch.randn(4, 3, 32, 32))
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"head.fc.weight", "head.fc.bias"}  # BN running statistics included: unchanged
    assert frozen_parts(model) == ["stem", "stages.0", "stages.1", "stages.2", "stages.3"]


def test_freeze_until_a_stage_and_bn_in_train_mode_when_asked():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet18", num_classes=3, stem="cifar")
    freeze(model, until="stage1", bn_eval=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_step(model, torch.randn(4, 3, 32, 32))
    changed = {
        k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("stages") else "")
        for k, v in model.state_dict().items()
        if not torch.equal(v, before[k])
    }
    # stem and stages 0-1: no weight moved, but their BN statistics did (bn_eval=False)
    assert not any(
        before[k].equal(v) is False
        for k, v in model.named_parameters()
        if k.startswith(("stem", "stages.0", "stages.1"))
    )
    assert changed == {"stem", "stages.0", "stages.1", "stages.2", "stages.3", "head"}
    assert model.stem.bn.training


def test_unfreeze_restores_training_everywhere():
    model = cnnlab.create_model("mobilenet_v2", num_classes=3)
    freeze(model)
    model.train()
    assert not model.stem.bn.training and model.head.training
    unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())
    assert model.stem.bn.training and frozen_parts(model) == []
    model.eval()
    assert not model.stem.bn.training


def test_bad_until_lists_the_choices():
    with pytest.raises(
        ValueError, match="until must be one of stem, stage0, stage1, stage2, stage3, backbone for ResNet, got 'stage9'"
    ):
        freeze(cnnlab.create_model("resnet18"), until="stage9")
    with pytest.raises(ValueError, match="needs a zoo model"):
        freeze(torch.nn.Linear(2, 2))
