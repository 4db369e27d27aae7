"""--weights imagenet: which published file fits which flavour, the cache with its checksum,
and a download that fails quickly and clearly without network (never a hang)."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.interop import pretrained, torchvision_kwargs
from cnnlab.interop.pretrained import choose, load_pretrained

from .keras_reference import keras_logits, keras_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    return tmp_path / "weights"


def test_each_flavour_gets_its_framework():
    assert choose("resnet50").framework == "keras" and choose("resnet50").model_args == {"stride_on": "1x1"}
    assert choose("resnet50", torchvision_kwargs("resnet50")).filename == "resnet50-0676ba61.pth"
    assert choose("vgg16").framework == "keras" and choose("densenet121").framework == "keras"
    assert choose("googlenet", {"batch_norm": True}).filename == "googlenet-1378be20.pth"
    with pytest.raises(
        ValueError,
        match=r"are torchvision's; build it in torchvision's flavour "
        r"\(`model_args=\{'conv_bias': False, 'padding': 'symmetric', 'bn_eps': 1e-05\}`\)",
    ):
        choose("resnet18")
    with pytest.raises(ValueError, match="no published ImageNet weights for 'densenet_cifar'"):
        choose("densenet_cifar")


@pytest.mark.parametrize("host", ["weights.invalid", "10.255.255.1"])  # no such name; an address nobody answers
def test_no_network_fails_fast_and_says_what_to_do(cache, monkeypatch, host):
    entry = dataclasses.replace(
        pretrained.KERAS["mobilenet_v3_small"], url=f"https://{host}/w/weights_mobilenet_v3_small.h5"
    )
    monkeypatch.setitem(pretrained.KERAS, "mobilenet_v3_small", entry)
    start = time.monotonic()
    with pytest.raises(
        ValueError,
        match=f"cannot download the ImageNet weights https://{host}/.*put it at {cache}/weights_mobilenet_v3_small.h5",
    ):
        load_pretrained(cnnlab.create_model("mobilenet_v3_small"), "mobilenet_v3_small", timeout=2)
    assert time.monotonic() - start < 10
    assert not (cache / entry.filename).exists()


def test_cached_file_is_checked_then_loaded(cache, monkeypatch):
    reference = keras_model("MobileNetV3Small", 224)
    cache.mkdir(parents=True)
    entry = pretrained.KERAS["mobilenet_v3_small"]
    path = cache / entry.filename
    reference.save(path)  # a legacy .h5 under the published name, in place of the download
    monkeypatch.setitem(
        pretrained.KERAS,
        "mobilenet_v3_small",
        dataclasses.replace(entry, md5=hashlib.md5(path.read_bytes()).hexdigest()),
    )
    model = cnnlab.create_model("mobilenet_v3_small")
    assert load_pretrained(model, "mobilenet_v3_small") == f"imagenet:keras:{entry.filename}"
    x, expected = keras_logits(reference)
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    assert np.abs(got - expected).max() <= 1e-4
    factory = cnnlab.create_model("mobilenet_v3_small", pretrained=True)  # the same file through the factory
    assert factory.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in factory.state_dict().items())
    assert factory.pretrained_weights.preprocessing.mean == (0.5, 0.5, 0.5)  # Keras's [-1, 1] (its Rescaling layer)
    with open(path, "r+b") as f:  # one flipped byte
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ValueError, match="is not the published"):
        load_pretrained(model, "mobilenet_v3_small")
