"""Fine-tune a pretrained zoo model on an image folder: a new head, head-only training for
``freeze_epochs`` epochs, then the whole network, with the trainer's history, curves,
checkpoints and exact resume.

    cnnlab finetune mobilenet_v2 --weights mobilenet_v2.h5 --data-dir flowers/ --epochs 10 --freeze-epochs 3

The run directory is an ordinary training run (``cnnlab evaluate``, ``predict`` and ``export``
read it); its ``config.json`` also records where the weights came from and the phase switch.
With the published weights (``weights="imagenet"``) the model normalises its [0, 1] input as
they were trained (``cnnlab.models.normalize_input``), and the run records that preprocessing
(``preprocessing`` in its run info), which ``evaluate`` and ``predict`` apply again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DataConfig, DataSplits
from ..models import CnnModel, Preprocessing, normalize_input
from ..presets import get_preset
from ..train import TrainConfig, TrainingRun, load_checkpoint, run_training
from .freezing import freeze, unfreeze

KERAS_SUFFIXES = (".h5", ".hdf5")
TORCH_SUFFIXES = (".pt", ".pth")


def load_weights(
    model: nn.Module,
    weights: str | Path,
    model_name: str = "",
    stride_on: str | None = None,
    model_args: dict[str, Any] | None = None,
) -> str:
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
        raise FileNotFoundError(
            f"`weights={str(weights)!r}`: no such file (expected 'imagenet', a .h5 / .weights.h5 Keras file, "
            f"a .pt cnnlab checkpoint or run directory, or a .pth torchvision state dict)"
        )
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
    raise ValueError(
        f"`weights={str(weights)!r}`: unknown file type {path.suffix!r}; expected .h5 / .weights.h5 (Keras), "
        f".pt (cnnlab checkpoint) or .pth (torchvision state dict)"
    )


def _load_backbone(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """A cnnlab checkpoint's weights, all but the classifier (whose class count may differ)."""
    ours = model.state_dict()
    backbone = {k: v for k, v in state.items() if not k.startswith("head.fc.")}
    wrong = [
        (k, tuple(v.shape), tuple(ours[k].shape)) for k, v in backbone.items() if k in ours and v.shape != ours[k].shape
    ]
    missing = [k for k in ours if not k.startswith("head.fc.") and k not in backbone]
    unexpected = [k for k in backbone if k not in ours]
    if wrong or missing or unexpected:
        lines = [f"{k}: checkpoint {a}, model {b}" for k, a, b in wrong[:5]]
        lines += [f"{k}: not in the checkpoint" for k in missing[:5]] + [
            f"{k}: not in the model" for k in unexpected[:5]
        ]
        raise ValueError(f"the weights in {path} do not fit {type(model).__name__}:\n  " + "\n  ".join(lines))
    model.load_state_dict(backbone, strict=False)


def imagenet_flavour(model_name: str, model_args: dict[str, Any]) -> dict[str, Any]:
    """``model_args`` with the keywords that build ``model_name`` in the flavour of its published
    ImageNet weights (keras.applications' where cnnlab has them, else torchvision's: resnet18 gets
    ``conv_bias=False, padding="symmetric", bn_eps=1e-05``), as ``cnnlab.create_model(pretrained=True)``
    builds it. A keyword that contradicts the published file is refused here, before any data is read."""
    from ..interop.pretrained import weights_for

    return weights_for(model_name, True, model_args)[1]


def published_preprocessing(model_name: str, model_args: dict[str, Any]) -> Preprocessing:
    """The preprocessing of the published file ``model_name`` built with ``model_args`` loads."""
    from ..interop.pretrained import choose

    return choose(model_name, model_args).preprocessing


class _Transfer:
    """The fine-tuning of one model: load the weights, put a new head on, and switch from
    head-only training (epochs 1..freeze_epochs) to the whole network."""

    def __init__(
        self,
        model_name: str,
        weights,
        model_args: dict[str, Any],
        stride_on: str | None,
        freeze_epochs: int,
        on_data: Callable[[DataSplits], None] | None = None,
        preprocessing: Preprocessing | None = None,
    ) -> None:
        self.model_name, self.weights, self.model_args, self.stride_on = model_name, weights, model_args, stride_on
        self.freeze_epochs, self.on_data = freeze_epochs, on_data
        self.info: dict[str, Any] = {"freeze_epochs": freeze_epochs}
        self.model: nn.Module | None = None
        if str(weights) == "imagenet":  # fed as the published weights were trained
            preprocessing = published_preprocessing(model_name, model_args)
        self.preprocessing = preprocessing
        if preprocessing is not None:
            self.info["preprocessing"] = preprocessing.to_dict()

    def init(self, model: nn.Module, splits: DataSplits) -> None:
        if not isinstance(model, CnnModel):
            raise ValueError(f"fine-tuning needs a zoo model (it replaces the classifier), got {type(model).__name__}")
        if self.on_data is not None:
            self.on_data(splits)
        if self.weights is None:
            self.info["weights"] = "none (random initialisation)"
        else:
            self.info["weights"] = load_weights(model, self.weights, self.model_name, self.stride_on, self.model_args)
        model.reset_classifier(len(splits.classes))
        if self.preprocessing is not None:
            normalize_input(model, self.preprocessing)
        self.model = model

    def on_epoch_start(self, epoch: int) -> None:
        assert self.model is not None  # the pipeline calls init (which sets it) before the first epoch
        if epoch <= self.freeze_epochs:
            freeze(self.model, "backbone")
        else:
            unfreeze(self.model)


def finetune(
    model_name: str,
    weights: str | Path | None,
    out_dir: str | Path,
    *,
    data: DataConfig,
    train: TrainConfig | None = None,
    freeze_epochs: int = 1,
    model_args: dict[str, Any] | None = None,
    stride_on: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    on_epoch_end=None,
    on_data: Callable[[DataSplits], None] | None = None,
) -> TrainingRun:
    """Build ``model_name`` with ``weights`` (None: random initialisation), give it a head for the
    classes of ``data`` (an image folder) and train it in two phases: the head alone for
    ``freeze_epochs`` epochs, then the whole network. ``train`` defaults to the ``finetune`` preset.
    ``weights="imagenet"`` builds the model in the published file's flavour (``imagenet_flavour``);
    ``on_data(splits)`` is called once the data is loaded, before the model is trained."""
    train = train if train is not None else get_preset("finetune").train
    if isinstance(freeze_epochs, bool) or not isinstance(freeze_epochs, int) or not 0 <= freeze_epochs <= train.epochs:
        raise ValueError(f"freeze_epochs must be an int in [0, epochs={train.epochs}], got {freeze_epochs!r}")
    if data.data_dir is None:
        raise ValueError("finetune needs the image folder: `data_dir`, a directory or a tar")
    model_args = dict(model_args or {})
    if str(weights) == "imagenet":  # built as the published weights were trained (resnet18: torchvision's flavour)
        model_args = imagenet_flavour(model_name, model_args)
    out = Path(out_dir)
    preprocessing = None
    if resume and (out / "last.pt").is_file():
        earlier = load_checkpoint(out / "last.pt")["history"]["info"]
        if earlier.get("freeze_epochs") != freeze_epochs:
            raise ValueError(
                f"cannot resume {out}: it was started with `freeze_epochs={earlier.get('freeze_epochs')!r}`, "
                f"not {freeze_epochs}"
            )
        weights = None  # the checkpoint holds every weight: nothing to download or read again
        if earlier.get("preprocessing"):  # and the input normalisation it trained with
            preprocessing = Preprocessing.from_dict(earlier["preprocessing"])
    transfer = _Transfer(model_name, weights, model_args, stride_on, freeze_epochs, on_data, preprocessing)
    return run_training(
        model_name,
        model_args,
        data=data,
        train=train,
        out_dir=out,
        head_from_data=False,
        init=transfer.init,
        info=transfer.info,
        resume=resume,
        overwrite=overwrite,
        quiet=quiet,
        on_epoch_start=transfer.on_epoch_start,
        on_epoch_end=on_epoch_end,
    )
