"""cnnlab.interop.load_keras_weights against keras.applications: every family Keras has,
built with ``weights=None`` (nothing is downloaded), BatchNorm statistics randomised so that a
wrong epsilon or a swapped mean/variance cannot hide, then the same logits on random 224x224
inputs (eval mode). Files: Keras 3 ``.weights.h5`` and legacy ``.h5`` round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.interop import load_keras_weights

from .keras_reference import keras_logits, keras_model

# keras.applications name, cnnlab name, cnnlab keywords
FAMILIES = [
    ("VGG16", "vgg16", {}),
    ("VGG19", "vgg19", {}),
    ("ResNet50", "resnet50", {"stride_on": "1x1"}),
    ("ResNet101", "resnet101", {"stride_on": "1x1"}),
    ("ResNet152", "resnet152", {"stride_on": "1x1"}),
    ("MobileNet", "mobilenet", {}),
    ("MobileNetV2", "mobilenet_v2", {}),
    ("MobileNetV3Small", "mobilenet_v3_small", {}),
    ("MobileNetV3Large", "mobilenet_v3_large", {}),
    ("DenseNet121", "densenet121", {}),
    ("DenseNet169", "densenet169", {}),
    ("DenseNet201", "densenet201", {}),
    ("Xception", "xception", {}),
]


def compare(model, x: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(max abs difference of the logits, max abs Keras logit)."""
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max()), float(np.abs(expected).max())


@pytest.mark.parametrize("keras_name, name, kwargs", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_keras_model_weights_give_keras_logits(keras_name, name, kwargs):
    reference = keras_model(keras_name)
    x, expected = keras_logits(reference)
    model = cnnlab.create_model(name, **kwargs)
    before, _ = compare(model, x, expected)
    loaded = load_keras_weights(model, reference)
    assert len(loaded) == sum(1 for layer in reference.layers if layer.get_weights())
    diff, scale = compare(model, x, expected)
    print(f"\n{keras_name}: max |cnnlab - keras| = {diff:.3g} (max |logit| {scale:.3g}; before loading {before:.3g})")
    assert diff <= 1e-4
    assert diff <= 1e-3 * scale < before  # the logits are not ~0, and loading changed them


@pytest.mark.parametrize(
    "keras_name, name, kwargs, size, suffix",
    [
        ("ResNet50", "resnet50", {"stride_on": "1x1"}, 64, ".weights.h5"),
        ("ResNet50", "resnet50", {"stride_on": "1x1"}, 64, ".h5"),
        ("MobileNetV2", "mobilenet_v2", {}, 96, ".weights.h5"),
        ("MobileNetV2", "mobilenet_v2", {}, 96, ".h5"),
        ("Xception", "xception", {}, 96, ".weights.h5"),
    ],
)
def test_keras_files_give_keras_logits(tmp_path, keras_name, name, kwargs, size, suffix):
    """``model.save_weights`` (Keras 3 layout, layers named by class and numbered) and the legacy
    full-model ``.h5`` (ordered layer names, configurations) load the same weights."""
    reference = keras_model(keras_name, size)
    path = tmp_path / f"model{suffix}"
    if suffix == ".h5":
        reference.save(path)
    else:
        reference.save_weights(path)
    model = cnnlab.create_model(name, **kwargs)
    load_keras_weights(model, path, stride_on=kwargs.get("stride_on"))
    diff, scale = compare(model, *keras_logits(reference, size, batch=2))
    assert diff <= 1e-4 and diff <= 1e-3 * scale


def test_resnet_layers_are_ordered_by_name_in_named_files(tmp_path):
    """Keras 2 files (the published ImageNet weights among them) may list a block's shortcut
    elsewhere than Keras 3 does; a legacy .h5 whose layer list is reversed still loads right."""
    import h5py

    reference = keras_model("ResNet50", 64)
    path = tmp_path / "r50.h5"
    reference.save(path)
    with h5py.File(path, "r+") as f:
        names = list(f["model_weights"].attrs["layer_names"])
        f["model_weights"].attrs["layer_names"] = names[::-1]
    model = cnnlab.create_model("resnet50", stride_on="1x1")
    load_keras_weights(model, path)
    diff, scale = compare(model, *keras_logits(reference, 64))
    assert diff <= 1e-4 and diff <= 1e-3 * scale


@pytest.fixture(scope="module")
def keras_resnet50():
    return keras_model("ResNet50", 64)


def test_resnet_stride_placement_is_refused_not_guessed(tmp_path, keras_resnet50):
    # a model object says where its stride is: our default (article, 3x3) is refused by name
    with pytest.raises(ValueError, match=r"strides=\(1, 1\) but Keras's conv3_block1_1_conv has strides=\(2, 2\)"):
        load_keras_weights(cnnlab.create_model("resnet50"), keras_resnet50)
    # a weights-only file cannot: the caller must say it
    path = tmp_path / "r50.weights.h5"
    keras_resnet50.save_weights(path)
    with pytest.raises(ValueError, match="stride_on='1x1'"):
        load_keras_weights(cnnlab.create_model("resnet50", stride_on="1x1"), path)
    with pytest.raises(ValueError, match="build it with stride_on='1x1'"):
        load_keras_weights(cnnlab.create_model("resnet50"), path, stride_on="1x1")


def test_mismatch_lists_the_first_tensors_and_changes_nothing(keras_resnet50):
    model = cnnlab.create_model("resnet50", stride_on="1x1", num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as error:
        load_keras_weights(model, keras_resnet50)
    message = str(error.value)
    assert "head.fc (weight (10, 2048), bias (10,)) <- predictions ((2048, 1000), (1000,))" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(
        ValueError, match=r"stages.2.block6.conv1 \(weight \(256, 1024, 1, 1\), bias \(256,\)\) <- conv5_block1_1_conv"
    ):
        load_keras_weights(cnnlab.create_model("resnet101", stride_on="1x1"), keras_resnet50)


def test_no_top_source_loads_the_backbone_with_strict_false():
    reference = keras_model("MobileNetV2", 96, include_top=False, pooling="avg", classifier_activation="softmax")
    model = cnnlab.create_model("mobilenet_v2", num_classes=5)
    with pytest.raises(ValueError, match="strict=False"):
        load_keras_weights(model, reference)
    head = model.head.fc.weight.clone()
    load_keras_weights(model, reference, strict=False)
    assert torch.equal(model.head.fc.weight, head)
    x = np.random.default_rng(2).normal(size=(1, 96, 96, 3)).astype("float32")
    expected = np.asarray(reference(x, training=False).detach().cpu())
    with torch.no_grad():
        got = model.eval().forward_head(
            model.forward_features(torch.from_numpy(x).permute(0, 3, 1, 2)), pre_logits=True
        )
    assert np.abs(got.numpy() - expected).max() <= 1e-4


def test_bad_sources_are_named(tmp_path):
    model = cnnlab.create_model("mobilenet_v3_small")
    with pytest.raises(FileNotFoundError, match="no Keras weights file"):
        load_keras_weights(model, tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        load_keras_weights(model, bad)
    with pytest.raises(ValueError, match="must be a Keras model or the path"):
        load_keras_weights(model, 42)


def test_batchnorm_without_affine_weights_is_a_misfit_and_changes_nothing():
    """A BatchNorm2d(affine=False) has no tensors for Keras's gamma and beta: a ValueError naming it,
    raised before anything is copied (it was an AttributeError after the layers before it had loaded)."""

    class BatchNormalization:  # a Keras layer as the loader reads one
        def __init__(self, name: str) -> None:
            self.name = name

        def get_weights(self) -> list[np.ndarray]:
            return [np.full(4, 2.0, np.float32)] * 4

        def get_config(self) -> dict:
            return {"epsilon": 1e-5}

    class KerasModel:
        name = "two_bn"
        layers = [BatchNormalization("bn_a"), BatchNormalization("bn_b")]

        def get_weights(self) -> list[np.ndarray]:
            return [w for layer in self.layers for w in layer.get_weights()]

    model = torch.nn.Sequential(torch.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4, affine=False))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"1 \(\) <- bn_b .*has no affine weights \(affine=False\)"):
        load_keras_weights(model, KerasModel())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
