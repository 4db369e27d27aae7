"""One way to run a training run, for every entry point (``cnnlab train``, ``reproduce``,
``finetune`` and each search trial): load and check the data, build the model from the
registry (seeded), record what rebuilds it, and ``fit``.

    run = run_training("densenet_cifar", {"growth_rate": 16}, data=DataConfig("cifar10"),
                       train=get_preset("fast").train, out_dir="runs/dn")
    print(run.history.summary()["best_val_acc"])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DataConfig, DataSplits
from ..data.augment import auto_policy
from ..models import create_model
from .config import TrainConfig
from .history import EpochRecord, History
from .rundir import run_info
from .tblog import require_tensorboard
from .trainer import fit


@dataclass
class TrainingRun:
    history: History
    data: DataSplits
    model: nn.Module
    out_dir: Path


def _new_model(model_name: str, model_args: dict[str, Any], classes: list[str], head_from_data: bool) -> nn.Module:
    """The model to train; with ``head_from_data`` one output per class (a ``num_classes`` in
    ``model_args`` must agree, and is taken out of them)."""
    given = model_args.pop("num_classes", None) if head_from_data else None
    if given is not None and given != len(classes):  # the head follows the data; a matching num_classes is accepted
        raise ValueError(
            f"num_classes={given} does not match the data's {len(classes)} classes ({', '.join(classes)}); "
            "leave it out: the head follows the data"
        )
    return create_model(model_name, num_classes=len(classes) if head_from_data else None, **model_args)


def run_training(
    model_name: str,
    model_args: Mapping[str, Any] | None = None,
    *,
    data: DataConfig,
    train: TrainConfig,
    out_dir: str | Path,
    splits: DataSplits | None = None,
    init: Callable[[nn.Module, DataSplits], None] | None = None,
    head_from_data: bool = True,
    info: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    on_epoch_start: Callable[[int], None] | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
) -> TrainingRun:
    """Train ``model_name(**model_args)`` on ``data`` following ``train`` into ``out_dir``.

    ``splits``: the data already loaded (a search worker loads it once for all its trials);
    else ``data`` is loaded here, before the model exists, so bad data fails first.
    ``head_from_data``: build the model with one output per class of the data (False: with the
    model's own head, e.g. to load pretrained weights; ``init`` then replaces it).
    ``init(model, splits)``: called on the new model before training (load weights, freeze,
    measure its cost). ``info``: extra entries for the run's records. The model's weights
    follow ``train.seed``; ``fit`` seeds shuffling and augmentation from it as well.
    """
    model_args = dict(model_args or {})
    if train.tensorboard:
        require_tensorboard()  # a missing package is said before the data is read
    splits = splits if splits is not None else data.load(seed=train.seed)
    if train.augment == "auto":  # imagenet for photos of 128 px and more, standard for CIFAR-sized images
        train = train.with_overrides(augment=auto_policy(*splits.train.images.shape[1:3]))
    torch.manual_seed(train.seed)
    model = _new_model(model_name, model_args, splits.classes, head_from_data)
    if init is not None:
        init(model, splits)
    # where it lies may change (data_digest checks what it is), and streaming changes the memory, not the run
    data_options = {k: v for k, v in data.to_dict().items() if k not in ("data_dir", "stream")}
    record = run_info(
        model_name, model_args, splits, data.dataset, data=data_options, data_seed=train.seed, **dict(info or {})
    )
    history = fit(
        model,
        splits,
        train,
        out_dir,
        resume=resume,
        overwrite=overwrite,
        quiet=quiet,
        info=record,
        on_epoch_start=on_epoch_start,
        on_epoch_end=on_epoch_end,
    )
    return TrainingRun(history, splits, model, Path(out_dir))
