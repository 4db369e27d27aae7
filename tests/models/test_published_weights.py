"""The published weights' records (``cnnlab.models.weights``) and their preprocessing
(``cnnlab.models.preprocessing``): leaves the registry imports, never the reverse; every file
carries how its images were fed; a model normalises its [0, 1] input with it, once, without a
trace in its state dict."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.models import Preprocessing, get_model_entry, normalize_input
from cnnlab.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD, input_preprocessing

MODELS = Path(cnnlab.__file__).parent / "models"


def cnnlab_imports(path: Path) -> set[str]:
    """The cnnlab modules a file of cnnlab.models imports anywhere (functions and TYPE_CHECKING
    blocks too), as dotted names below cnnlab (``models.registry``, ``interop.pretrained``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if (node.module or "").startswith("cnnlab"):
                    found.add(node.module.removeprefix("cnnlab."))
                continue
            base = ["models"][: 2 - node.level]  # level 1: cnnlab.models, level 2: cnnlab
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {f"{target}.{a.name}" if not node.module else target for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("cnnlab.") for a in node.names if a.name.startswith("cnnlab")}
    return found


def test_the_weights_records_are_leaves_and_the_zoo_imports_nothing_above_it():
    assert cnnlab_imports(MODELS / "preprocessing.py") == set()
    assert cnnlab_imports(MODELS / "weights.py") == {"models.preprocessing"}
    assert "models.weights" in cnnlab_imports(MODELS / "registry.py")
    above = {"interop", "train", "transfer", "data", "analysis", "search", "reproduce", "cli"}
    for path in sorted(MODELS.glob("*.py")):
        outside = {m for m in cnnlab_imports(path) if m.split(".")[0] in above}
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_every_published_file_carries_its_preprocessing():
    seen = 0
    for name in cnnlab.list_models(pretrained=True):
        for entry in get_model_entry(name).weights:
            p = entry.preprocessing
            assert isinstance(p, Preprocessing) and entry.tag == entry.framework in ("keras", "torchvision")
            if entry.framework == "torchvision" and name != "googlenet":
                assert (p.input_size, p.resize, p.interpolation) == ((224, 224), 256, "bilinear")
                assert (p.mean, p.std, p.channels) == (IMAGENET_MEAN, IMAGENET_STD, "RGB")
            seen += 1
    # torchvision's files + Keras's, by family
    files = {"resnet": 5 + 3, "vgg": 8 + 2, "densenet": 3 + 3, "googlenet": 1, "mobilenet": 3 + 4, "xception": 1}
    assert seen == sum(files.values())
    assert get_model_entry("googlenet").weights[0].preprocessing.mean == (0.5, 0.5, 0.5)  # transform_input's [-1, 1]
    assert get_model_entry("vgg16").weights[1].preprocessing.channels == "BGR"  # Keras's caffe mode


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"input_size": (224,)}, "input_size must be \\(height, width\\) positive ints, got \\(224,\\)"),
        (
            {"resize": 200},
            "resize must be None or a shorter side of at least 224 \\(input_size \\(224, 224\\)\\), got 200",
        ),
        ({"mean": (0.5, 0.5)}, "mean and std must be 3 numbers"),
        ({"std": (1, 0, 1)}, "std positive; got mean=.*, std=\\(1, 0, 1\\)"),
        ({"channels": "GBR"}, "channels must be 'RGB' or 'BGR', got 'GBR'"),
        ({"interpolation": "lanczos"}, "interpolation must be one of nearest, bilinear, bicubic, got 'lanczos'"),
    ],
)
def test_bad_preprocessing_is_refused_naming_the_value(fields, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing(**fields)


def test_preprocessing_reads_back_from_a_run_record():
    p = Preprocessing(input_size=(299, 299), resize=None, mean=(0.5,) * 3, std=(0.5,) * 3, channels="BGR")
    assert Preprocessing.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert Preprocessing().crop_pct == 224 / 256 and p.crop_pct == 1.0
    with pytest.raises(ValueError, match="unknown preprocessing fields scale"):
        Preprocessing.from_dict({"scale": 2})


def test_normalize_subtracts_divides_then_orders_the_channels():
    x = torch.rand(2, 3, 4, 5)
    caffe = get_model_entry("resnet50").weights[1].preprocessing  # Keras: BGR pixels minus the ImageNet mean
    pixels = x * 255
    expected = torch.stack([pixels[:, 2] - 103.939, pixels[:, 1] - 116.779, pixels[:, 0] - 123.68], dim=1)
    assert torch.allclose(caffe.normalize(x), expected, atol=1e-3)
    tv = Preprocessing()
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    assert torch.allclose(tv.normalize(x[0]), (x[0] - mean) / std)


def test_a_model_normalises_its_input_once_and_its_checkpoints_do_not_change():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet18", num_classes=3).eval()
    keys = set(model.state_dict())
    x = torch.rand(1, 3, 32, 32)
    plain = copy.deepcopy(model)
    p = Preprocessing(mean=(0.2, 0.3, 0.4), std=(0.5, 0.6, 0.7))
    with torch.no_grad():
        expected = plain(p.normalize(x))
        normalize_input(model, p)
        assert torch.allclose(model(x), expected, atol=1e-6)
        normalize_input(model, p)  # again: replaced, not stacked
        assert torch.allclose(model(x), expected, atol=1e-6)
        # the stem's input is normalised: forward_features (and a features_only backbone) too
        assert torch.allclose(model.forward_features(x), plain.forward_features(p.normalize(x)), atol=1e-6)
        ema = copy.deepcopy(model)  # as the trainer's moving average copies it
        assert torch.allclose(ema(x), expected, atol=1e-6) and input_preprocessing(ema) == p
        ema.input_normalization.set(Preprocessing(mean=(0.0,) * 3, std=(1.0,) * 3))  # its own, not the model's
        assert torch.allclose(ema(x), plain(x), atol=1e-6) and torch.allclose(model(x), expected, atol=1e-6)
    assert set(model.state_dict()) == keys and input_preprocessing(model) == p
    assert "InputNormalization(mean=(0.2, 0.3, 0.4)" in repr(model)
    assert input_preprocessing(cnnlab.create_model("resnet18")) is None
