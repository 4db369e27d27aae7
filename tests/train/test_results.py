"""What the results issue added to training: BatchNorm statistics that keep up in short runs,
flip test-time augmentation, when a target accuracy was first reached, precision ``auto``,
and weights-only files that ``evaluate`` reads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.data import ImageDataset, make_splits
from cnnlab.train import TrainConfig, evaluate, fit, load_checkpoint
from cnnlab.train.history import EpochRecord, History
from cnnlab.train.precision import resolve_precision


def colour_data(n=480, size=16, classes=4, seed=0):
    """Classes told apart by their mean colour, with noise: a few steps learn them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    palette = rng.integers(40, 215, (classes, 3))
    images = np.clip(palette[labels][:, None, None, :] + rng.normal(0, 30, (n, size, size, 3)), 0, 255).astype(np.uint8)
    data = ImageDataset(images, labels.astype(np.int64), [f"c{i}" for i in range(classes)])
    return make_splits(
        data, ImageDataset(images[:128].copy(), labels[:128].astype(np.int64), data.classes), source="synthetic"
    )


def accuracy(model, x, y, train_mode: bool) -> float:
    model.train(train_mode)
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def short_run(tmp_path, **overrides):
    torch.manual_seed(0)
    model = cnnlab.create_model("densenet_cifar", num_classes=4, growth_rate=8, blocks=(1, 1))
    data = colour_data()
    config = TrainConfig(
        epochs=1, batch_size=32, lr=3e-3, augment="none", device="cpu", channels_last=False
    ).with_overrides(**overrides)
    fit(model, data, config, tmp_path, quiet=True)
    x = torch.from_numpy(data.train.images[:256]).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(data.train.labels[:256])
    return accuracy(model, x, y, train_mode=True), accuracy(model, x, y, train_mode=False)


def test_precise_batchnorm_keeps_eval_close_to_train(tmp_path):
    # 15 steps. By default the statistics are recomputed over training images after the epoch,
    # so eval mode scores what train mode (batch statistics) scores.
    train_mode, eval_mode = short_run(tmp_path / "default")
    assert train_mode > 0.6  # it learnt something
    assert abs(train_mode - eval_mode) < 0.1
    # Without it, Keras's momentum 0.99 (and even PyTorch's 0.1) leave the moving statistics far
    # behind weights that move this fast, and eval collapses.
    for name, momentum in (("keras", 0.99), ("torch", 0.9)):
        moving_train, moving_eval = short_run(tmp_path / name, bn_momentum=momentum, precise_bn=0)
        assert moving_train - moving_eval > 0.2
    saved = json.loads((tmp_path / "keras" / "history.json").read_text())
    assert saved["info"]["batchnorm_momentum"] == [0.99]  # the history says what BatchNorm did
    assert saved["config"]["precise_bn"] == 0
    assert json.loads((tmp_path / "default" / "history.json").read_text())["config"]["precise_bn"] == 1024


def test_precise_batchnorm_leaves_frozen_layers_alone():
    from cnnlab.train.batchnorm import precise_batchnorm
    from cnnlab.transfer import freeze

    torch.manual_seed(0)
    model = cnnlab.create_model("convtype_cifar", num_classes=2, conv="separable", widths=(8, 16))
    freeze(model, "backbone")
    frozen = {n: b.clone() for n, b in model.named_buffers() if n.startswith("stages.")}
    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    precise_batchnorm(model, images, batch_size=16)
    assert all(torch.equal(b, frozen[n]) for n, b in model.named_buffers() if n in frozen)
    model = cnnlab.create_model("convtype_cifar", num_classes=2, conv="separable", widths=(8, 16))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    seen = []
    norms[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    momentum = norms[0].momentum
    assert precise_batchnorm(model, images, batch_size=16) == len(norms)  # every BatchNorm layer otherwise
    inputs = torch.cat(seen)  # the first layer's statistics are exactly those of its inputs
    assert len(inputs) == 64 and norms[0].momentum == momentum and not model.training
    torch.testing.assert_close(norms[0].running_mean, inputs.mean((0, 2, 3)))
    per_batch_var = torch.stack([b.var((0, 2, 3), unbiased=True) for b in seen])
    torch.testing.assert_close(norms[0].running_var, per_batch_var.mean(0))


def test_article_presets_keep_keras_batchnorm():
    from cnnlab.presets import get_preset

    assert TrainConfig().precise_bn > 0
    config = get_preset("article").train  # one preset for train, reproduce and search
    assert config.bn_momentum == 0.99 and config.precise_bn == 0


def test_flip_tta_is_the_mean_of_both_softmaxes():
    torch.manual_seed(1)
    model = cnnlab.create_model("convtype_cifar", num_classes=3, conv="separable", widths=(8, 16)).eval()
    x = torch.randint(0, 256, (20, 3, 16, 16), dtype=torch.uint8)
    y = torch.randint(0, 3, (20,))
    loss, acc = evaluate(model, x, y, batch_size=7, tta="flip")
    with torch.no_grad():
        xf = x.float() / 255
        probs = 0.5 * (model(xf).softmax(1) + model(xf.flip(3)).softmax(1))
    assert acc == pytest.approx((probs.argmax(1) == y).float().mean().item())
    assert loss == pytest.approx(torch.nn.functional.nll_loss(probs.log(), y).item(), rel=1e-5)
    plain = evaluate(model, x, y, batch_size=7)
    with torch.no_grad():
        assert plain[1] == pytest.approx((model(xf).argmax(1) == y).float().mean().item())


def test_history_records_tta_and_when_the_target_was_reached(tmp_path):
    data = colour_data(n=192)
    torch.manual_seed(0)
    model = cnnlab.create_model("convtype_cifar", num_classes=4, conv="separable", widths=(8, 16))
    config = TrainConfig(epochs=2, batch_size=32, lr=3e-3, augment="none", device="cpu", tta="flip")
    history = fit(model, data, config, tmp_path, quiet=True, info={"target_val_acc": 0.0})
    assert all(e.val_acc_tta is not None for e in history.epochs)
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["summary"]["reached_target"] == {
        "epoch": 1,
        "seconds": round(history.epochs[0].seconds, 1),
        "val_acc": history.epochs[0].val_acc,
    }
    assert "val_acc_tta" in (tmp_path / "history.csv").read_text().splitlines()[0]

    h = History(
        {},
        [
            EpochRecord(i, 0, 0, 0, acc, 0, 10.0, 0, tta)
            for i, (acc, tta) in enumerate([(0.5, 0.55), (0.7, 0.78), (0.8, 0.81)], 1)
        ],
        info={"target_val_acc": 0.75},
    )
    s = h.summary()
    assert s["reached_target"] == {"epoch": 3, "seconds": 30.0, "val_acc": 0.8}
    assert s["reached_target_tta"] == {"epoch": 2, "seconds": 20.0, "val_acc": 0.78}
    assert s["best_val_acc_tta"] == 0.81 and s["best_epoch_tta"] == 3
    assert History({}, h.epochs[:1], info={"target_val_acc": 0.75}).summary()["reached_target"] is None


def test_precision_auto(monkeypatch, tmp_path):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    flags = open("/proc/cpuinfo").read().split()
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="int8")
    with pytest.raises(ValueError, match="tta"):
        TrainConfig(tta="crop")


def test_weights_file_round_trip_through_the_cli(folder, tmp_path, capsys):
    root = folder
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "convtype_cifar",
                "--arg",
                "conv=separable",
                "--arg",
                "widths=8,16",
                "--dataset",
                "shapes",
                "--data-dir",
                str(root),
                "--epochs",
                "2",
                "--batch-size",
                "16",
                "--augment",
                "none",
                "--tta",
                "flip",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    weights = tmp_path / "w" / "shapes.pt"
    assert main(["export", str(out), "--weights", str(weights)]) == 0
    assert "sha256" in capsys.readouterr().out
    saved = load_checkpoint(weights)
    assert set(saved) == {"format", "model", "info", "epoch", "summary"} and saved["epoch"] == 2  # no optimizer state
    assert weights.stat().st_size < (out / "last.pt").stat().st_size

    args = ["--dataset", "shapes", "--data-dir", str(root), "--device", "cpu", "--tta", "flip"]
    assert main(["evaluate", str(out / "last.pt"), *args]) == 0
    from_run = capsys.readouterr().out
    assert main(["evaluate", str(weights), *args]) == 0
    from_weights = capsys.readouterr().out
    assert from_run.splitlines()[:2] == from_weights.splitlines()[:2]  # same loss and accuracy, plain and flipped
    assert "flip test-time augmentation" in from_weights
    assert (tmp_path / "w" / "shapes-confusion.png").exists()  # beside the weights file, not in a run directory
