"""cnnlab finetune on small image folders cut from the shared CIFAR-10 copy: a backbone
pretrained on two classes (ship, horse) is fine-tuned on three others (airplane, frog, truck);
head-only epochs leave the backbone untouched, then the whole network trains; resume continues
the same run; cnnlab export writes an ONNX file that onnxruntime runs to the same logits."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.cli import main
from cnnlab.data import DataConfig, load_splits
from cnnlab.train import TrainConfig, fit, load_checkpoint
from cnnlab.transfer.finetune import finetune


def tune(model, weights, folder, out, config, limit_train=None, limit_val=None, **kwargs):
    """``finetune`` on an image folder, with the data options spelled as in the tests below."""
    data = DataConfig("folder", str(folder), limit_train=limit_train, limit_val=limit_val)
    return finetune(model, weights, out, data=data, train=config, **kwargs)


MODEL_ARGS = {"widths": (16, 32, 64)}


def cli(argv) -> int:
    """cnnlab's exit status (bad input exits 2 with one line on stderr)."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


@pytest.fixture(scope="module")
def pretrained(folders, tmp_path_factory):
    """A convtype_cifar run on the 'pretrain' classes. Its BatchNorm momentum is PyTorch's 0.1
    (not Keras's 0.99): 30 steps would otherwise leave the running statistics near their
    initial values and evaluation at chance, which is no backbone to transfer."""
    torch.manual_seed(0)
    data = load_splits("folder", folders["pretrain"])
    model = cnnlab.create_model("convtype_cifar", num_classes=2, **MODEL_ARGS)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1
    out = tmp_path_factory.mktemp("pretrain-run")
    info = {
        "model": "convtype_cifar",
        "model_args": MODEL_ARGS,
        "classes": data.classes,
        "image_size": [32, 32],
        "dataset": "pretrain",
    }
    fit(model, data, TrainConfig(epochs=2, batch_size=32, augment="standard"), out, quiet=True, info=info)
    return out


@pytest.fixture(scope="module")
def finetuned(folders, pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("finetune-run") / "ft"
    argv = [
        "finetune",
        "convtype_cifar",
        "--arg",
        "widths=16,32,64",
        "--weights",
        str(pretrained),
        "--data-dir",
        str(folders["target"]),
        "--epochs",
        "3",
        "--freeze-epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        str(out),
        "--quiet",
    ]
    assert cli(argv) == 0
    return out


def test_finetuning_rises_above_chance(finetuned):
    history = json.loads((finetuned / "history.json").read_text())
    for name in ("curves.png", "history.csv", "last.pt", "best.pt", "config.json"):
        assert (finetuned / name).is_file(), name
    epochs = history["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert history["info"]["classes"] == ["airplane", "frog", "truck"]
    assert history["info"]["weights"].startswith("cnnlab:") and history["info"]["freeze_epochs"] == 1
    assert max(e["val_acc"] for e in epochs) >= 0.5  # 3 balanced classes: chance is 1/3
    assert epochs[-1]["train_acc"] > epochs[0]["train_acc"]


def test_head_only_epochs_leave_the_backbone_untouched(folders, pretrained, tmp_path):
    source = load_checkpoint(pretrained / "best.pt")["model"]
    tune(
        "convtype_cifar",
        pretrained,
        folders["target"],
        tmp_path / "one",
        TrainConfig(epochs=1, batch_size=32),
        freeze_epochs=1,
        model_args=MODEL_ARGS,
        limit_train=60,
        quiet=True,
    )
    state = load_checkpoint(tmp_path / "one" / "last.pt")["model"]
    backbone = [k for k in source if not k.startswith("head.")]
    assert backbone and all(torch.equal(state[k], source[k]) for k in backbone)  # BN statistics too
    assert state["head.fc.weight"].shape == (3, 64)


def test_resume_crosses_the_phase_switch_like_an_uninterrupted_run(folders, pretrained, tmp_path):
    config = TrainConfig(epochs=2, batch_size=32)
    kwargs = {"freeze_epochs": 1, "model_args": MODEL_ARGS, "limit_train": 60, "limit_val": 30, "quiet": True}
    tune("convtype_cifar", pretrained, folders["target"], tmp_path / "straight", config, **kwargs)

    def stop_after_first(record):
        if record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune(
            "convtype_cifar",
            pretrained,
            folders["target"],
            tmp_path / "resumed",
            config,
            on_epoch_end=stop_after_first,
            **kwargs,
        )
    tune("convtype_cifar", pretrained, folders["target"], tmp_path / "resumed", config, resume=True, **kwargs)
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")["model"]
    first = load_checkpoint(pretrained / "best.pt")["model"]
    assert not torch.equal(resumed["stages.0.adjust.conv.weight"], first["stages.0.adjust.conv.weight"])  # phase 2 ran
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    with pytest.raises(ValueError, match="started with `freeze_epochs=1`, not 0"):
        tune(
            "convtype_cifar",
            pretrained,
            folders["target"],
            tmp_path / "resumed",
            config,
            resume=True,
            **{**kwargs, "freeze_epochs": 0},
        )


def test_bad_weights_and_freeze_epochs_are_named(folders, tmp_path, capsys):
    argv = ["finetune", "convtype_cifar", "--data-dir", str(folders["target"]), "--out", str(tmp_path / "x")]
    assert cli(argv + ["--weights", str(tmp_path / "nope.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "w.txt").write_text("x")
    assert cli(argv + ["--weights", str(tmp_path / "w.txt")]) == 2
    assert "unknown file type '.txt'" in capsys.readouterr().err
    assert cli(argv + ["--weights", "none", "--epochs", "2", "--freeze-epochs", "3"]) == 2
    assert "freeze_epochs must be an int in [0, epochs=2], got 3" in capsys.readouterr().err


def test_export_onnx_runs_in_onnxruntime_with_the_same_logits(finetuned, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import numpy as np
    import onnxruntime

    from cnnlab.train import load_run

    path = tmp_path / "model.onnx"
    assert cli(["export", str(finetuned), "--onnx", str(path), "--input", "3x32x32"]) == 0
    assert "max |difference|" in capsys.readouterr().out
    # our own check, on another batch size than the exporter's
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    (got,) = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        expected = load_run(finetuned, device="cpu").model(x).numpy()
    assert np.abs(got - expected).max() <= 1e-4 < np.abs(expected).max()
    assert cli(["export", str(finetuned), "--onnx", str(tmp_path / "b.onnx"), "--input", "1x32x32"]) == 2
    assert "takes 3 input channels, got input shape 1x32x32" in capsys.readouterr().err
    assert not (tmp_path / "b.onnx").exists()


def test_finetune_from_keras_and_torchvision_files(folders, tmp_path):
    """--weights with a Keras .weights.h5 and with a torchvision-layout .pth: the backbone holds
    those weights after head-only training (BatchNorm statistics included)."""
    import keras  # tests/conftest.py selects the torch backend

    from cnnlab.interop import torchvision_kwargs

    keras.utils.set_random_seed(0)
    reference = keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3))
    reference.save_weights(tmp_path / "v3.weights.h5")
    config = TrainConfig(epochs=1, batch_size=32)
    common = {"freeze_epochs": 1, "limit_train": 30, "limit_val": 30, "quiet": True}
    history = tune(
        "mobilenet_v3_small", tmp_path / "v3.weights.h5", folders["target"], tmp_path / "k", config, **common
    ).history
    assert history.info["weights"] == f"keras:{tmp_path / 'v3.weights.h5'}"
    state = load_checkpoint(tmp_path / "k" / "last.pt")["model"]
    kernel = reference.get_layer("conv").get_weights()[0]  # the stem conv, (3, 3, 3, 16)
    assert torch.equal(state["stem.conv.weight"], torch.from_numpy(kernel).permute(3, 2, 0, 1))

    kwargs = torchvision_kwargs("resnet18")
    source = cnnlab.create_model("resnet18", **kwargs).state_dict()
    torch.save(source, tmp_path / "r18.pth")
    tune("resnet18", tmp_path / "r18.pth", folders["target"], tmp_path / "t", config, model_args=kwargs, **common)
    state = load_checkpoint(tmp_path / "t" / "last.pt")["model"]
    assert all(torch.equal(state[k], v) for k, v in source.items() if not k.startswith("head."))


def test_a_model_without_a_classifier_to_replace_is_refused_first():
    """Fine-tuning replaces a zoo model's classifier: another model is refused before its weights
    load (it was an AttributeError on reset_classifier after loading them)."""
    from cnnlab.transfer.finetune import _Transfer

    transfer = _Transfer("convtype_cifar", None, {}, None, 0)
    with pytest.raises(ValueError, match="fine-tuning needs a zoo model .*got Linear"):
        transfer.init(nn.Linear(2, 2), splits=None)
