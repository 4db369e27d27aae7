"""Published weights through the factory: ``cnnlab.create_model(name, pretrained=...)`` and
``cnnlab.list_models(pretrained=True)``, each file's preprocessing against torchvision's
``weights.transforms()`` and Keras's ``preprocess_input``, and a run fine-tuned from published
weights evaluated and predicted on images normalised as those weights expect.

No network: a "published" file is a torchvision state dict with random weights written here,
and its registry entry points at it with a ``file://`` URL (the download path runs as for https).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image
from torchvision import models as tv_models

import cnnlab
from cnnlab.cli import main
from cnnlab.data import DataConfig
from cnnlab.export import export_onnx
from cnnlab.interop import pretrained, torchvision_kwargs
from cnnlab.models import get_model_entry
from cnnlab.models.preprocessing import input_preprocessing
from cnnlab.models.weights import KERAS_URL
from cnnlab.train import TrainConfig, load_checkpoint
from cnnlab.train.evaluation import evaluate_run
from cnnlab.train.prediction import predict_images
from cnnlab.transfer.finetune import finetune, imagenet_flavour

from ..images import image_folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache" / "weights"


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Convolutions at Kaiming's scale and BatchNorm statistics away from (0, 1), so that the
    logits depend on the input (torchvision's GoogLeNet initialisation leaves them near constant)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=g)
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)


def publish(monkeypatch, tmp_path, name: str, reference: torch.nn.Module) -> pretrained.Published:
    """``reference``'s state dict as ``name``'s published torchvision file, served from a file:// URL."""
    path = tmp_path / "server" / pretrained.TORCHVISION[name].filename
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(reference.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entry = dataclasses.replace(pretrained.TORCHVISION[name], url=path.as_uri(), sha256_prefix=digest[:8])
    monkeypatch.setitem(pretrained.TORCHVISION, name, entry)
    return entry


def photo(width: int = 300, height: int = 260, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


EXPECTED_PRETRAINED = {
    "densenet121",
    "densenet169",
    "densenet201",
    "googlenet",
    "mobilenet",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "xception",
}


def test_list_models_pretrained_lists_exactly_the_models_with_published_weights():
    names = cnnlab.list_models(pretrained=True)
    assert set(names) == EXPECTED_PRETRAINED and len(names) == len(EXPECTED_PRETRAINED)
    assert names == [n for n in cnnlab.list_models() if n in EXPECTED_PRETRAINED]  # the registry's natural order
    assert {n for n in cnnlab.list_models() if get_model_entry(n).weights} == EXPECTED_PRETRAINED
    resnets = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert cnnlab.list_models("resnet*", pretrained=True) == resnets
    assert cnnlab.list_models("*cifar*", pretrained=True) == [] and cnnlab.list_models("*cifar*")
    with pytest.raises(TypeError, match="pretrained must be True or False, got 'yes'"):
        cnnlab.list_models(pretrained="yes")


def test_unknown_tag_names_the_choices_before_anything_is_fetched(cache):
    with pytest.raises(
        ValueError,
        match="pretrained='imagenet': resnet50 has published weights tagged 'keras', "
        "'torchvision'; pass one of those tags, True",
    ):
        cnnlab.create_model("resnet50", pretrained="imagenet")
    with pytest.raises(ValueError, match="pretrained='keras': resnet18 has published weights tagged 'torchvision'"):
        cnnlab.create_model("resnet18", pretrained="keras")
    with pytest.raises(ValueError, match="no published ImageNet weights for 'densenet_cifar'; models with them: dense"):
        cnnlab.create_model("densenet_cifar", pretrained=True)
    with pytest.raises(
        ValueError,
        match="the torchvision weights of resnet18 are for conv_bias=False, "
        "padding='symmetric', bn_eps=1e-05; padding='keras' was given",
    ):
        cnnlab.create_model("resnet18", pretrained=True, padding="keras")
    with pytest.raises(ValueError, match="in_channels=1: published weights take RGB images"):
        cnnlab.create_model("resnet18", in_channels=1, pretrained=True)
    with pytest.raises(ValueError, match="architectures only; cnnlab.create_model\\('resnet18', pretrained=...\\)"):
        cnnlab.models.create_model("resnet18", pretrained=True)
    assert not cache.exists()


@pytest.mark.parametrize("pretrained_as, old_args", [(True, None), ("torchvision", "torchvision")])
def test_create_model_pretrained_gives_the_weights_of_the_old_path(
    cache, monkeypatch, tmp_path, pretrained_as, old_args
):
    """True and a tag load what ``load_pretrained`` into a model built by ``imagenet_flavour`` (or
    with torchvision's keywords) loads: googlenet has torchvision's file only, and mobilenet_v3_small
    both (its tag 'torchvision' builds torchvision's flavour)."""
    name = "googlenet" if pretrained_as is True else "mobilenet_v3_small"
    torch.manual_seed(0)
    entry = publish(
        monkeypatch,
        tmp_path,
        name,
        getattr(tv_models, name)(
            weights=None, **({"aux_logits": False, "init_weights": True} if name == "googlenet" else {})
        ),
    )
    args = imagenet_flavour(name, {}) if old_args is None else torchvision_kwargs(name)
    old = cnnlab.models.create_model(name, **args)
    assert pretrained.load_pretrained(old, name, args) == f"imagenet:torchvision:{entry.filename}"
    model = cnnlab.create_model(name, pretrained=pretrained_as)
    assert (cache / entry.filename).is_file()  # downloaded from its URL into the cache
    ours, theirs = model.state_dict(), old.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert model.pretrained_weights == entry and model.input_normalization.preprocessing == entry.preprocessing

    head = cnnlab.create_model(name, 10, pretrained=pretrained_as)  # a new head, the same backbone
    assert head.num_classes == 10
    assert all(torch.equal(head.state_dict()[k], v) for k, v in ours.items() if "head.fc" not in k)
    backbone = cnnlab.create_model(name, pretrained=pretrained_as, features_only=True, out_indices=(0,))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():  # the backbone normalises its input as the whole model does
        assert torch.allclose(backbone.eval()(x)[0], model.eval().stages[0](model.stem(x)), atol=1e-6)


def test_torchvision_weights_carry_torchvisions_transforms():
    """Each torchvision file's preprocessing frames and normalises a photo as its torchvision
    weights' ``transforms()`` do (resize 256 bilinear, center crop 224, ImageNet mean/std)."""
    image = photo()
    for name in ("resnet50", "densenet121", "vgg16", "mobilenet_v3_large"):
        preprocessing = pretrained.TORCHVISION[name].preprocessing
        expected = tv_models.get_model_weights(name).IMAGENET1K_V1.transforms()(image)
        got = preprocessing.normalize(preprocessing.transform(image))
        assert got.shape == expected.shape == (3, 224, 224)
        assert torch.allclose(got, expected, atol=1e-6), name


def test_googlenet_with_torchvision_weights_gives_torchvisions_logits(cache, monkeypatch, tmp_path):
    """torchvision's GoogLeNet weights expect transform_input=True, which cnnlab does not build:
    cnnlab's model fed the [0, 1] photo gives the logits torchvision's gives on its transforms()."""
    torch.manual_seed(0)
    reference = tv_models.googlenet(weights=None, aux_logits=False, transform_input=True, init_weights=True).eval()
    randomise(reference)
    publish(monkeypatch, tmp_path, "googlenet", reference)
    model = cnnlab.create_model("googlenet", pretrained=True).eval()
    image = photo()
    with torch.no_grad():
        expected = reference(tv_models.GoogLeNet_Weights.IMAGENET1K_V1.transforms()(image)[None])
        got = model(model.pretrained_weights.preprocessing.transform(image)[None])
        model.input_normalization.set(pretrained.TORCHVISION["resnet50"].preprocessing)  # ImageNet mean/std instead
        wrong = model(model.pretrained_weights.preprocessing.transform(image)[None])
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() <= 1e-4 * max(1.0, scale)
    assert (wrong - expected).abs().max().item() > 1e-2 * scale  # the normalisation is what makes them agree


def test_keras_weights_carry_keras_preprocess_input():
    """Each Keras file's normalisation is its keras.applications module's ``preprocess_input``
    (MobileNetV3's passes pixels on to the Rescaling layer its model starts with)."""
    import importlib

    import keras

    x = np.random.default_rng(2).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    for name in cnnlab.list_models(pretrained=True):
        entry = pretrained.KERAS.get(name)
        if entry is None:
            continue
        module = entry.url.removeprefix(KERAS_URL).split("/")[0]  # keras.applications' module of the file
        if module == "mobilenet_v3":
            expected = np.asarray(keras.layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)(x))
        else:
            expected = importlib.import_module(f"keras.applications.{module}").preprocess_input(x.copy())
        got = entry.preprocessing.normalize(torch.from_numpy(x / 255).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        assert np.allclose(got, np.asarray(expected), atol=1e-3), name
    assert pretrained.KERAS["xception"].preprocessing.input_size == (299, 299)


class FirstConvInput:
    """Records what the first convolution of a model receives (after any input normalisation),
    without the zero padding a layer before it may add (``size``: the images' height and width)."""

    def __init__(self, model: torch.nn.Module, size: int) -> None:
        conv = next(
            m for m in model.modules() if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() == 4
        )
        self.seen: list[torch.Tensor] = []
        self.size = size
        conv.register_forward_pre_hook(self.record)

    def record(self, module, args) -> None:
        x = args[0].detach()
        pad = (x.shape[-1] - self.size) // 2
        self.seen.append(x[..., pad : pad + self.size, pad : pad + self.size].clone())


def test_a_run_finetuned_from_published_weights_is_fed_as_they_expect(cache, monkeypatch, tmp_path, capsys):
    """finetune --weights imagenet records the file's preprocessing; evaluate and predict then give
    the model the images normalised with the torchvision weights' own mean and std."""
    torch.manual_seed(0)
    reference = tv_models.mobilenet_v3_small(weights=None)
    randomise(reference)
    entry = publish(monkeypatch, tmp_path, "mobilenet_v3_small", reference)
    folder = image_folder(tmp_path / "photos", per_class=4, size=32, splits=("train", "val"))
    out = tmp_path / "run"
    args = {"padding": "symmetric"}  # torchvision's flavour: its file
    finetune(
        "mobilenet_v3_small",
        "imagenet",
        out,
        data=DataConfig("folder", str(folder)),
        model_args=args,
        quiet=True,
        train=TrainConfig(epochs=1, batch_size=8),
    )
    meta = tv_models.MobileNet_V3_Small_Weights.IMAGENET1K_V1.transforms()
    mean, std = np.array(meta.mean), np.array(meta.std)
    config = json.loads((out / "config.json").read_text())
    assert config["preprocessing"]["mean"] == list(mean) and config["preprocessing"]["std"] == list(std)

    def expected(path) -> np.ndarray:  # (3, H, W), normalised here with torchvision's figures
        return ((np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255 - mean) / std).transpose(2, 0, 1)

    image = folder / "val" / "light" / "2.png"
    model = cnnlab.models.create_model("mobilenet_v3_small", num_classes=2, **args)
    spy = FirstConvInput(model, 32)
    predict_images(out, [image], model=model)
    assert np.allclose(spy.seen[0][0].numpy(), expected(image), atol=1e-5)

    model = cnnlab.models.create_model("mobilenet_v3_small", num_classes=2, **args)
    spy = FirstConvInput(model, 32)
    result = evaluate_run(out, model=model)
    assert result["preprocessing"] == config["preprocessing"]
    seen = torch.cat(spy.seen).numpy()  # every validation image (one colour each), in the split's order
    wanted = np.stack([expected(f) for f in sorted((folder / "val").rglob("*.png"))])
    assert seen.shape == wanted.shape
    assert np.allclose(np.sort(seen.mean(axis=(2, 3)), axis=0), np.sort(wanted.mean(axis=(2, 3)), axis=0), atol=1e-5)
    assert np.allclose(seen, seen.mean(axis=(2, 3), keepdims=True), atol=1e-5)  # uniform images stay uniform

    assert main(["evaluate", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "input normalised as its published weights were trained: mean (0.485, 0.456, 0.406)" in printed

    # the ONNX export takes [0, 1] images too: the normalisation is in its graph
    export_onnx(out, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    plain = cnnlab.models.create_model("mobilenet_v3_small", num_classes=2, **args).eval()
    plain.load_state_dict(load_checkpoint(out / "best.pt")["model"])
    with torch.no_grad():
        expected = plain(((x.double() - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]).float())
        unnormalised = plain(x)
    (got,) = session.run(["logits"], {"images": x.numpy()})
    assert np.abs(got - expected.numpy()).max() <= 1e-4 < np.abs(got - unnormalised.numpy()).max()

    # a resumed fine-tuning trains on normalised images again, without fetching the weights again
    (cache / entry.filename).unlink()
    run = finetune(
        "mobilenet_v3_small",
        "imagenet",
        out,
        data=DataConfig("folder", str(folder)),
        model_args=args,
        quiet=True,
        train=TrainConfig(epochs=2, batch_size=8),
        resume=True,
    )
    assert input_preprocessing(run.model) == entry.preprocessing and not (cache / entry.filename).exists()
