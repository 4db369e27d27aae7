"""Fine-tune a pretrained zoo model on an image folder: a new head, head-only training for
``freeze_epochs`` epochs, then the whole network, with the trainer's history, curves,
checkpoints and exact resume.

    cnnlab finetune mobilenet_v2 --weights mobilenet_v2.h5 --data-dir flowers/ --epochs 10 --freeze-epochs 3

The run directory is an ordinary training run (``cnnlab evaluate``, ``predict`` and ``export``
read it); its ``config.json`` also records where the weights came from and the phase switch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DataSplits, load_splits
from ..models import create_model
from ..train import History, TrainConfig, fit, load_checkpoint
from ..train.run import run_info
from .freeze import freeze, unfreeze

KERAS_SUFFIXES = (".h5", ".hdf5")
TORCH_SUFFIXES = (".pt", ".pth")


def load_weights(model: nn.Module, weights: str | Path, model_name: str = "", stride_on: str | None = None,
                 model_args: dict[str, Any] | None = None) -> str:
    """Load ``weights`` into ``model`` (its head may not fit: it is replaced afterwards anyway).

    ``weights``: ``"imagenet"`` (published weights, downloaded and cached), a Keras ``.h5`` /
    ``.weights.h5`` file, a cnnlab checkpoint (``.pt`` from a run, or a run directory), or a
    torchvision state dict (``.pth``). Returns a short description for the run's records.
    """
    if str(weights) == "imagenet":
        from ..interop.pretrained import load_pretrained

        return load_pretrained(model, model_name, model_args)
    path = Path(weights).expanduser()
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"--weights {weights}: no such file (expected 'imagenet', a .h5 / .weights.h5 Keras file, "
                                f"a .pt cnnlab checkpoint or run directory, or a .pth torchvision state dict)")
    if path.name.endswith(KERAS_SUFFIXES):
        from ..interop import load_keras_weights

        load_keras_weights(model, path, strict=False, stride_on=stride_on)
        return f"keras:{path}"
    if path.suffix in TORCH_SUFFIXES:
        state = load_checkpoint(path)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            _load_backbone(model, state["model"], path)
            return f"cnnlab:{path}"
        from ..interop.torchvision import load_torchvision_weights

        load_torchvision_weights(model, state, strict=False)
        return f"torchvision:{path}"
    raise ValueError(f"--weights {weights}: unknown file type {path.suffix!r}; expected .h5 / .weights.h5 (Keras), "
                     f".pt (cnnlab checkpoint) or .pth (torchvision state dict)")


def _load_backbone(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """A cnnlab checkpoint's weights, all but the classifier (whose class count may differ)."""
    ours = model.state_dict()
    backbone = {k: v for k, v in state.items() if not k.startswith("head.fc.")}
    wrong = [(k, tuple(v.shape), tuple(ours[k].shape)) for k, v in backbone.items() if k in ours and v.shape != ours[k].shape]
    missing = [k for k in ours if not k.startswith("head.fc.") and k not in backbone]
    unexpected = [k for k in backbone if k not in ours]
    if wrong or missing or unexpected:
        lines = [f"{k}: checkpoint {a}, model {b}" for k, a, b in wrong[:5]]
        lines += [f"{k}: not in the checkpoint" for k in missing[:5]] + [f"{k}: not in the model" for k in unexpected[:5]]
        raise ValueError(f"the weights in {path} do not fit {type(model).__name__}:\n  " + "\n  ".join(lines))
    model.load_state_dict(backbone, strict=False)


def phase_switch(model: nn.Module, freeze_epochs: int):
    """``on_epoch_start`` callback: head only for epochs 1..freeze_epochs, then everything."""

    def switch(epoch: int) -> None:
        if epoch <= freeze_epochs:
            freeze(model, "backbone")
        else:
            unfreeze(model)

    return switch


def finetune(
    model_name: str,
    weights: str | Path | None,
    data_dir: str | Path,
    out_dir: str | Path,
    config: TrainConfig,
    freeze_epochs: int = 1,
    image_size: tuple[int, int] | None = None,
    model_args: dict[str, Any] | None = None,
    val_split: float | None = None,
    limit_train: int | None = None,
    limit_val: int | None = None,
    resume: bool = False,
    quiet: bool = False,
    stride_on: str | None = None,
    on_epoch_end=None,
) -> tuple[History, DataSplits]:
    """Load the image folder, build ``model_name`` with ``weights`` (None: random
    initialisation), give it a head for the folder's classes and train it in two phases."""
    if isinstance(freeze_epochs, bool) or not isinstance(freeze_epochs, int) or not 0 <= freeze_epochs <= config.epochs:
        raise ValueError(f"freeze_epochs must be an int in [0, epochs={config.epochs}], got {freeze_epochs!r}")
    model_args = dict(model_args or {})
    data = load_splits("folder", data_dir, val_split, image_size, limit_train, config.seed, limit_val=limit_val)
    torch.manual_seed(config.seed)
    model = create_model(model_name, **model_args)
    source = "none (random initialisation)" if weights is None else load_weights(model, weights, model_name, stride_on, model_args)
    model.reset_classifier(len(data.classes))
    info = run_info(model_name, model_args, data, str(data_dir), weights=source, freeze_epochs=freeze_epochs)
    out = Path(out_dir)
    if resume and (out / "last.pt").is_file():
        earlier = load_checkpoint(out / "last.pt")["history"]["info"].get("freeze_epochs")
        if earlier != freeze_epochs:
            raise ValueError(f"cannot resume {out}: it was started with --freeze-epochs {earlier}, not {freeze_epochs}")
    history = fit(model, data, config, out, resume=resume, quiet=quiet, info=info,
                  on_epoch_end=on_epoch_end, on_epoch_start=phase_switch(model, freeze_epochs))
    return history, data
