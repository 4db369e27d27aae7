"""`cnnlab.inspect`: Grad-CAM equals Captum's LayerGradCam, every explained cell equals the model's
own activation (float64, all three forward conv types, stride 2 and Keras's asymmetric 'same'),
and the inspection object keeps what it computed on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam
from PIL import Image

import cnnlab
from cnnlab.analysis.inspection import Inspection, inspect
from cnnlab.analysis.inspection.capture import EXPLAINED
from cnnlab.analysis.inspection.page import read_page_data


def _random_statistics(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A random zoo model whose BatchNorms do something (a fresh one's are the identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def _captum(inspection: Inspection, target: int, layer: str) -> np.ndarray:
    """Captum's Grad-CAM after the same ReLU, resizing and division by the peak."""
    module = dict(inspection.model.named_modules())[layer]
    gradcam = LayerGradCam(inspection.model, module)
    attribution = gradcam.attribute(inspection.input, target=target, relu_attributions=True)
    up = LayerAttribution.interpolate(attribution, tuple(inspection.input.shape[-2:]), "bilinear")[0, 0].detach()
    return (up / up.max()).numpy() if up.max() > 0 else torch.zeros_like(up).numpy()


@pytest.mark.parametrize(
    "name,size,layer",
    [("resnet18", 224, "stages.3"), ("mobilenet_v2", 224, "final"), ("densenet_cifar", 32, "stages.3")],
)
def test_gradcam_equals_captums_layergradcam(name, size, layer, photo):
    torch.manual_seed(0)
    model = _random_statistics(cnnlab.create_model(name))
    inspection = inspect(model, photo(size, size), image_size=size)
    assert inspection.layer == layer  # the last convolutional stage, named so anyone can repeat this
    assert tuple(inspection.input.shape) == (1, 3, size, size)
    others = [int(i) for i in np.argsort(-inspection.probabilities)[[1, 4]]]  # the 2nd and 5th most likely too
    for target in [inspection.predicted, *others]:
        ours = inspection.gradcam(target)
        assert ours.shape == (size, size) and ours.max() == pytest.approx(1.0) and ours.min() >= 0
        difference = np.abs(ours - _captum(inspection, target, layer)).max()
        assert difference <= 1e-5, (name, target, difference)
        print(f"{name}: Grad-CAM of class {target} at {layer}, largest difference from Captum {difference:.2e}")
    inner = "stages.2"  # another layer, asked for by name
    assert np.abs(inspection.gradcam(others[0], layer=inner) - _captum(inspection, others[0], inner)).max() <= 1e-5


def _check_units(inspection: Inspection, cells_per_unit: int = 3) -> list[str]:
    """Explain corner and random cells of every unit; each must equal the model's value (float64)."""
    rng = np.random.default_rng(1)
    kinds = []
    for unit in inspection.units:
        shown = inspection.features[unit.last]
        c, h, w = shown.shape
        picks = [(0, 0, 0), (h - 1, w - 1, c - 1)] + [
            (int(rng.integers(h)), int(rng.integers(w)), int(rng.integers(c))) for _ in range(cells_per_unit - 2)
        ]
        for cell in picks:
            e = inspection.explain(unit.conv, cell)
            assert e.conv.matches  # the written-out sum is the float64 copy's output ...
            assert e.matches, str(e)  # ... and after BatchNorm and activation, the model's own value
            assert abs(e.value - shown[cell[2], cell[0], cell[1]]) <= 1e-10
        module = inspection.by_name[unit.conv].module
        kinds.append(f"{EXPLAINED[module.keras_class]}/s{module.strides[0]}/{module.padding}")
    return kinds


@pytest.mark.parametrize(
    "name,args,size",
    [
        ("convtype_cifar", {"conv": "conv", "widths": (8, 16)}, 12),
        ("convtype_cifar", {"conv": "depthwise", "widths": (8, 16)}, 12),
        ("convtype_cifar", {"conv": "separable", "widths": (8, 16)}, 12),
        ("resnet18", {}, 64),  # 7x7/2 'valid' after ZeroPad, 3x3/2 'same' (asymmetric: pads bottom/right), 1x1/2
        ("mobilenet_v2", {"alpha": 0.35}, 64),  # stem 3x3/2 'same', depthwise 'valid' after CorrectPad
        ("densenet_cifar", {}, 16),
    ],
)
def test_every_explained_cell_is_the_models_activation_in_float64(name, args, size, photo):
    torch.manual_seed(1)
    model = _random_statistics(cnnlab.create_model(name, **args)).double()
    inspection = inspect(model, photo(size + 3, size - 2), image_size=size)
    assert inspection.input.dtype == torch.float64
    kinds = _check_units(inspection)
    assert kinds, "the model has no unit to explain"
    if name == "resnet18":
        assert {"conv2d/s2/same", "conv2d/s2/valid", "conv2d/s1/same"} <= set(kinds)
        conv = inspection.explain_run("stages.1.block0.conv1")
        assert conv.input_padding == ((0, 1), (0, 1))  # Keras: the odd row and column at the bottom/right
    if name == "mobilenet_v2":
        assert {"conv2d/s2/same", "depthwise/s2/valid", "depthwise/s1/same"} <= set(kinds)
    if name == "convtype_cifar":
        assert f"{args['conv'].replace('conv', 'conv2d')}/s1/same" in kinds


def test_explained_cell_in_float32_matches_within_rounding(photo):
    run = cnnlab.train.load_run("docs/weights/densenet-case3.pt", "cpu")
    inspection = inspect(run, photo(32, 32))
    e = inspection.explain("stages.1.layer0.conv1", (5, 7, 3))  # the BN and ReLU that follow it too
    assert e.bn is not None and e.act is not None and e.matches and e.conv.matches
    assert "the model computed" in str(e) and "stages.1.layer0.bn2" in str(e)
    with pytest.raises(ValueError, match="cell y must be in 0..15"):
        inspection.explain("stages.1.layer0.conv1", (16, 0, 0))
    with pytest.raises(
        ValueError, match="'stages.1.transition.pool' is not a Conv2D.*convolutions near it: stages.1.transition.conv"
    ):
        inspection.explain("stages.1.transition.pool", (0, 0, 0))
    with pytest.raises(ValueError, match="unknown layer 'stages.1.layer0.pool'.*nearest module names: stages.1.layer0"):
        inspection.explain("stages.1.layer0.pool", (0, 0, 0))


def test_the_inspection_object(photo):
    run = cnnlab.train.load_run("docs/weights/densenet-case3.pt", "cpu")
    inspection = inspect(run, photo(32, 32))
    assert inspection.probabilities.shape == (10,) and inspection.probabilities.sum() == pytest.approx(1.0)
    with torch.no_grad():  # .input is what the model saw: the same probabilities again
        again = run.model(inspection.input).softmax(1)[0].double().numpy()
    np.testing.assert_allclose(again, inspection.probabilities, rtol=1e-6, atol=1e-7)
    assert inspection.layer == "stages.3" and inspection.features["stages.3"].shape == (182, 4, 4)
    assert "stem.conv" in inspection.features and inspection.features["stem.conv"].shape == (16, 32, 32)
    assert inspection.gradcam("cat").shape == (32, 32)
    assert np.array_equal(inspection.gradcam(3), inspection.gradcam("cat"))
    concat = next(s for s in inspection.stages if s.name == "stages.2.layer1")
    assert concat.sources == [
        (0, 44, "stages.2.transition.pool"),
        (44, 76, "stages.2.layer0.conv2"),
        (76, 108, "stages.2.layer1.conv2"),
    ]  # what the DenseNet layer joins
    text = str(inspection)
    assert text.startswith("densenet_cifar (docs/weights/densenet-case3.pt) on array")
    assert "Grad-CAM layer: stages.3" in text
    assert repr(inspection).startswith("<Inspection of densenet_cifar")
    order = inspection.channel_order("stem.conv")
    means = inspection.features["stem.conv"].mean(axis=(1, 2))
    assert list(means[order]) == sorted(means, reverse=True)
    assert inspection.first_filters().shape == (16, 1, 1, 3)


def test_notebook_view_escapes_every_name(photo):
    torch.manual_seed(0)
    model = cnnlab.create_model("convtype_cifar", num_classes=2, widths=(4, 8))
    inspection = inspect(model, photo(20, 20), classes=["<script>alert(1)</script>", "b&c"], image_size=16)
    page = inspection._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "b&amp;c" in page
    assert page.count("data:image/png;base64,") == 2  # the input and its Grad-CAM


def test_images_as_paths_pil_and_arrays_agree_and_changes_are_said(tmp_path, photo):
    torch.manual_seed(0)
    model = cnnlab.create_model("convtype_cifar", widths=(4, 8)).eval()
    picture = photo(16, 16)
    Image.fromarray(picture).save(tmp_path / "p.png")
    a = inspect(model, tmp_path / "p.png", image_size=16)
    b = inspect(model, Image.fromarray(picture), image_size=16)
    c = inspect(model, picture, image_size=16)
    assert np.array_equal(a.probabilities, b.probabilities) and np.array_equal(b.probabilities, c.probabilities)
    model.train()  # inspected as evaluation runs it, and left as it was
    trained = inspect(model, picture, image_size=16)
    assert np.array_equal(trained.probabilities, c.probabilities) and all(m.training for m in model.modules())
    assert np.array_equal(trained.gradcam(), c.gradcam())
    assert a.notes == [] and a.image_name == str(tmp_path / "p.png")
    gray = inspect(model, picture[:, :, 0], image_size=16)
    assert any("grayscale image converted to RGB" in n for n in gray.notes)
    assert np.array_equal(gray.input[0, 0], gray.input[0, 2])
    far = inspect(model, photo(100, 140), image_size=16)
    assert any("140x100 (WxH) is far from the model's 16x16 input: resized to 16x16" in n for n in far.notes)
    alpha = inspect(model, np.dstack([picture, np.full((16, 16), 9, np.uint8)]), image_size=16)
    assert any("alpha channel" in n for n in alpha.notes)
    zoo = inspect("convtype_cifar", picture)
    assert any("random weights" in n for n in zoo.notes) and zoo.subject.name == "convtype_cifar (random weights)"


def test_a_plain_torch_model_on_one_channel(tmp_path, photo):
    """Any module: torch's own Conv2d is shown (not explained), a gray model reads gray images."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(6, 2),
    )
    with pytest.raises(ValueError, match="classes must be given"):
        inspect(model, photo(16, 16))
    inspection = inspect(model, photo(16, 16), classes=["no", "yes"])
    assert any("converted to grayscale (the model reads 1 channel)" in n for n in inspection.notes)
    assert [(s.name, s.kind) for s in inspection.stages] == [("0", "conv"), ("2", "pool"), ("3", "conv")]
    assert inspection.layer == "3" and inspection.units == [] and inspection.first_filters() is None
    assert inspection.gradcam("yes").shape == (16, 16) and "data:image/png" in inspection._repr_html_()
    assert read_page_data(inspection.save_html(tmp_path / "p.html").read_text())["stages"][0]["explain"] is None
    with pytest.raises(ValueError, match="'0' is not a Conv2D, DepthwiseConv2D or SeparableConv2D"):
        inspection.explain("0", (0, 0, 0))


def test_bad_input_is_refused_with_what_was_expected(tmp_path, photo):
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet18", num_classes=3)
    picture = photo(32, 32)
    nearest = r"unknown layer 'stages.3.block7' in ResNet; nearest module names: stages.3.block1, stages.3.block0"
    with pytest.raises(ValueError, match=nearest):
        inspect(model, picture, layer="stages.3.block7")
    with pytest.raises(ValueError, match="unknown layer 'nowhere'.*stem, stages, head"):
        inspect(model, picture, layer="nowhere")
    with pytest.raises(ValueError, match=r"layer 'head.fc' writes \(1, 3\), not a feature map"):
        inspect(model, picture, layer="head.fc").gradcam()
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        inspect(model, tmp_path / "broken.png")
    with pytest.raises(FileNotFoundError, match="no such image file"):
        inspect(model, tmp_path / "missing.png")
    with pytest.raises(ValueError, match="must be uint8"):
        inspect(model, picture.astype(np.float32))
    with pytest.raises(ValueError, match=r"class 'zebra' is not one of the model's classes \(class 0, class 1, cl"):
        inspect(model, picture).gradcam("zebra")
    with pytest.raises(ValueError, match="classes: 2 names given for a model with 3 classes"):
        inspect(model, picture, classes=["a", "b"])
    with pytest.raises(ValueError, match="unknown model 'resnet19'; did you mean"):
        inspect("resnet19", picture)
