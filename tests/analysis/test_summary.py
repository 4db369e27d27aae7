"""The ledger: parameters in both conventions, MACs against fvcore, depth, connections."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import cnnlab
from cnnlab.analysis.summary import model_summary, summary
from cnnlab.cli import main
from cnnlab.models import get_model_entry

from ..models.counts import keras_param_counts

MODELS = cnnlab.list_models()


def fvcore_macs(model: torch.nn.Module, input_size) -> int:
    """fvcore's conv + linear operator counts (fvcore's "flops" are multiply-adds)."""
    from fvcore.nn import FlopCountAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model.eval(), torch.zeros(1, *input_size))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = analysis.by_operator()
    return sum(v for k, v in by_op.items() if k in ("conv", "linear", "addmm", "matmul"))


@pytest.mark.parametrize("name", MODELS)
def test_macs_agree_with_fvcore_and_meta_equals_real(name):
    entry = get_model_entry(name)
    model = cnnlab.create_model(name)
    real = summary(model, entry.input_size)
    expected = fvcore_macs(model, entry.input_size)
    assert abs(real.macs - expected) <= 0.005 * expected, (real.macs, expected)
    meta = model_summary(name)  # the CLI's shape-only path gives the same ledger
    assert (meta.macs, meta.total_params, meta.depth, meta.activation_bytes) == (
        real.macs,
        real.total_params,
        real.depth,
        real.activation_bytes,
    )
    total, trainable = keras_param_counts(model)
    assert (real.total_params, real.trainable_params) == (total, trainable)
    assert real.non_trainable_params == total - trainable
    assert real.torch_params == sum(p.numel() for p in model.parameters())


def test_matches_the_keras_model_of_article_001():
    """The article's own Keras code for the separable net: same totals, same number of weight
    layers, and per-layer parameters in the same order."""
    import keras
    from keras import layers

    def block(x, ch):
        for _ in range(2):
            x = layers.SeparableConv2D(ch, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        return x

    inputs = layers.Input((32, 32, 3))
    x = inputs
    for i, ch in enumerate((64, 128, 256)):
        if i:
            x = layers.AveragePooling2D(2)(x)
        x = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(ch, 1)(x)))
        x = block(x, ch)
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    reference = keras.Model(inputs, outputs)

    s = summary(cnnlab.create_model("convtype_cifar", conv="separable"), (3, 32, 32))
    trainable = sum(int(w.numpy().size) for w in reference.trainable_weights)
    assert (s.total_params, s.trainable_params) == (reference.count_params(), trainable)
    keras_params = [layer.count_params() for layer in reference.layers if layer.count_params()]
    assert [r.params for r in s.rows if r.params] == keras_params
    assert s.depth == 10


def test_depth_and_branches():
    s = model_summary("modulenet_cifar")
    assert s.depth == 13  # 3 stages x (1x1 + 3 layers) + dense
    assert s.rows[0].inputs == ["input"]
    assert s.rows[-1].name == "head.fc" and s.rows[-1].depth == 13


def test_frozen_parameters_are_non_trainable():
    model = cnnlab.create_model("convtype_cifar", conv="depthwise")
    for p in model.stages[0].parameters():
        p.requires_grad_(False)
    s = summary(model, (3, 32, 32))
    frozen = sum(p.numel() for p in model.stages[0].parameters())
    assert s.trainable_params == 58_506 - 2 * 1_344 - frozen  # BN statistics: 2 x (64+64+64 + 128*3 + 256*3)
    assert s.total_params == 58_506


def test_activation_bytes_and_output():
    s = model_summary("convtype_cifar")
    assert s.output_shape == (10,)
    assert s.activation_bytes == 4 * sum(torch.Size(r.output_shape).numel() for r in s.rows)
    assert s.flops == 2 * s.macs


def test_text_markdown_json():
    s = model_summary("convtype_cifar", conv="separable")
    text = str(s)
    assert "stages.0.layer0.conv (SeparableConv2D)" in text
    assert (
        "Total params: 230,538" in text
        and "Trainable params: 227,850" in text
        and "Non-trainable params: 2,688" in text
    )
    assert "| stages.0.layer0.conv | SeparableConv2D | (64, 32, 32) | 4,736 |" in s.to_markdown()
    data = json.loads(s.to_json())
    assert data["total_params"] == 230_538 and data["flops"] == 2 * data["macs"]


def test_bad_input_size():
    with pytest.raises(ValueError, match=r"input_size must be \(C, H, W\)"):
        summary(cnnlab.create_model("convtype_cifar"), (32, 32))
    with pytest.raises(ValueError, match=r"input_size must be \(C, H, W\)"):
        summary(cnnlab.create_model("convtype_cifar"), (2, 3, 32, 32))  # a batch of two is not one input


def test_a_batch_of_one_is_one_input():
    from cnnlab.analysis.summary import parse_input_size

    model = cnnlab.create_model("convtype_cifar")
    assert summary(model, (1, 3, 32, 32)).macs == summary(model, (3, 32, 32)).macs
    assert parse_input_size("1x3x32x32") == (3, 32, 32) == parse_input_size("32")


def test_cli_models_summary_compare(capsys, tmp_path):
    assert main(["models", "*_cifar"]) == 0
    out = capsys.readouterr().out
    assert "convtype_cifar" in out and "1,598,730" in out
    assert main(["summary", "modulenet_cifar", "--arg", "layers=separable,separable,depthwise", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 236_810
    png = tmp_path / "cost.png"
    assert main(["compare", "convtype_cifar:conv=conv", "convtype_cifar:conv=depthwise", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "58,506" in out and "1,598,730" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "cost.csv").read_text().startswith("model,input,total_params")
    assert json.loads((tmp_path / "cost.json").read_text())[1]["total_params"] == 58_506


def test_cli_errors(capsys):
    with pytest.raises(SystemExit):
        main(["summary", "resnet5"])
    assert "unknown model 'resnet5'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["summary", "densenet_cifar", "--arg", "growth"])
    assert "name=value" in capsys.readouterr().err


def test_depth_collapses_rows_and_keeps_the_totals():
    model = cnnlab.create_model("densenet_cifar")
    full, top = summary(model, (3, 32, 32)), summary(model, (3, 32, 32), depth=1)
    assert [r.name for r in top.rows] == ["stem", "stages", "head"]
    assert [r.type for r in top.rows] == ["Sequential", "Sequential", "ClassifierHead"]
    assert sum(r.params for r in top.rows) == top.total_params == full.total_params
    assert sum(r.macs for r in top.rows) == sum(r.macs for r in full.rows) and top.macs == full.macs
    assert top.rows[1].inputs == ["stem"] and top.rows[2].inputs == ["stages"]
    assert top.rows[1].output_shape == (92, 4, 4)  # the stage's concatenation, not its last conv
    assert len(summary(model, (3, 32, 32), depth=2).rows) > 3
    with pytest.raises(ValueError, match="depth must be a positive int"):
        summary(model, (3, 32, 32), depth=0)


def test_compare_takes_arg_for_every_model(capsys):
    assert main(["compare", "convtype_cifar", "convtype_cifar:num_classes=5", "--arg", "num_classes=100"]) == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:3]}
    ten, hundred = 1_598_730, 1_598_730 + 90 * 257  # the head grows by 90 outputs of 256 inputs + bias
    assert rows == {"convtype_cifar": f"{hundred:,}", "convtype_cifar:num_classes=5": f"{ten - 5 * 257:,}"}


def test_cli_models_pretrained_lists_the_published_weights(capsys):
    assert main(["models", "mobilenet*", "--pretrained"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:] if line.strip()}
    # keras.applications publishes MobileNet v1; torchvision does not
    assert rows["mobilenet"].endswith("keras") and rows["mobilenet_v2"].endswith("keras, torchvision")
    with pytest.raises(SystemExit) as exit:  # the article nets have no published weights
        main(["models", "*_cifar", "--pretrained"])
    assert exit.value.code == 2
    assert "no model with published weights matches '*_cifar'" in capsys.readouterr().err
