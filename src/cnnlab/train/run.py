"""Runs on disk: start one from names (model, dataset, preset), and reload a finished run for
evaluation or prediction. A run directory holds ``config.json`` (everything needed to
rebuild the model), ``last.pt`` / ``best.pt``, ``history.json`` / ``.csv`` and ``curves.png``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..data import DataSplits, load_splits
from ..io import atomic_write
from ..models import create_model
from .config import TrainConfig
from .history import History
from .trainer import evaluate, fit, load_checkpoint, resolve_device


def train_model(
    model_name: str,
    model_args: dict[str, Any],
    config: TrainConfig,
    out_dir: str | Path,
    dataset: str = "cifar10",
    data_dir: str | Path | None = None,
    val_split: float | None = None,
    limit_train: int | None = None,
    image_size: tuple[int, int] | None = None,
    resume: bool = False,
    quiet: bool = False,
    limit_val: int | None = None,
) -> tuple[History, DataSplits]:
    """Load and check the data first, then build the model (seeded) and ``fit`` it."""
    data = load_splits(dataset, data_dir, val_split, image_size, limit_train, config.seed, limit_val=limit_val)
    torch.manual_seed(config.seed)
    model = create_model(model_name, num_classes=len(data.classes), **model_args)
    info = run_info(model_name, model_args, data, dataset)
    return fit(model, data, config, out_dir, resume=resume, quiet=quiet, info=info), data


def run_info(model_name: str, model_args: dict[str, Any], data: DataSplits, dataset: str, **extra: Any) -> dict[str, Any]:
    """What a run records to be rebuilt later (``load_run``): the model, its keywords, the
    classes and image size it was trained on, and where the data came from; ``extra`` adds
    the caller's own entries."""
    return {
        "model": model_name,
        "model_args": model_args,
        "classes": data.classes,
        "image_size": list(data.train.images.shape[1:3]),
        "dataset": dataset,
        **extra,
    }


def _info(state: dict) -> dict[str, Any]:
    """The run info of a weights file (``info``) or of a training checkpoint (``history.info``)."""
    return state["info"] if "info" in state else state["history"]["info"]


@dataclass
class LoadedRun:
    model: nn.Module
    classes: list[str]
    image_size: tuple[int, int]
    info: dict[str, Any]


def load_run(path: str | Path, device: str = "auto", which: str = "best.pt") -> LoadedRun:
    """A trained model from a run directory (its ``best.pt``) or a checkpoint file."""
    path = Path(path)
    checkpoint = path / which if path.is_dir() else path
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}; give a run directory (with {which}) or a .pt file")
    state = load_checkpoint(checkpoint)
    info = _info(state)
    if "model" not in info:
        raise ValueError(f"{checkpoint} does not say which model it holds (no 'model' in its run info)")
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in info.get("model_args", {}).items()}
    model = create_model(info["model"], num_classes=len(info["classes"]), **args)
    model.load_state_dict(state["model"])
    model.to(resolve_device(device)).eval()
    return LoadedRun(model, info["classes"], tuple(info["image_size"]), info)


WEIGHTS_FORMAT = "cnnlab-weights/1"


def save_weights(path: str | Path, out: str | Path, which: str = "last.pt") -> Path:
    """The model of a run (``which`` checkpoint of a run directory, or a checkpoint file) without
    optimizer state: its weights and the run info that rebuilds it (``load_run`` reads both)."""
    path = Path(path)
    checkpoint = path / which if path.is_dir() else path
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}; give a run directory (with {which}) or a .pt file")
    state = load_checkpoint(checkpoint)
    info = _info(state)
    summary = state.get("summary") or state.get("history", {}).get("summary", {})
    weights = {"format": WEIGHTS_FORMAT, "model": state["model"], "info": info, "epoch": state.get("epoch"), "summary": summary}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: torch.save(weights, tmp))
    return out


def evaluate_run(
    path: str | Path,
    dataset: str = "cifar10",
    data_dir: str | Path | None = None,
    device: str = "auto",
    out_png: str | Path | None = None,
    tta: str = "none",
) -> dict[str, Any]:
    """Loss, accuracy, per-class accuracy and confusion matrix on the dataset's test split;
    ``tta="flip"`` adds ``accuracy_tta`` (softmax averaged with the mirrored image)."""
    run = load_run(path, device)
    data = load_splits(dataset, data_dir, image_size=run.image_size)
    if data.classes != run.classes:
        raise ValueError(f"the run was trained on classes {run.classes}, the data has {data.classes}")
    test = data.test if data.test is not None else data.val
    dev = next(run.model.parameters()).device
    x = torch.from_numpy(test.images).permute(0, 3, 1, 2).contiguous().to(dev)
    y = torch.from_numpy(test.labels).to(dev)
    loss, acc = evaluate(run.model, x, y)
    with torch.no_grad():
        predicted = torch.cat([run.model(x[i : i + 512].float() / 255).argmax(1) for i in range(0, len(x), 512)]).cpu().numpy()
    k = len(run.classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (test.labels, predicted), 1)
    per_class = {c: float(confusion[i, i] / max(1, confusion[i].sum())) for i, c in enumerate(run.classes)}
    result = {"images": len(test), "loss": loss, "accuracy": acc, "per_class_accuracy": per_class, "confusion": confusion.tolist()}
    if tta != "none":
        result["tta"] = tta
        result["loss_tta"], result["accuracy_tta"] = evaluate(run.model, x, y, tta=tta)
    if out_png is not None:
        _confusion_png(confusion, run.classes, Path(out_png))
        Path(out_png).with_suffix(".json").write_text(json.dumps(result, indent=1))
    return result


def _confusion_png(confusion: np.ndarray, classes: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6 + 0.3 * len(classes), 5 + 0.3 * len(classes)), dpi=110)
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    for (i, j), v in np.ndenumerate(confusion):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > confusion.max() / 2 else "black")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def predict_images(path: str | Path, images: Sequence[str | Path], device: str = "auto", top: int = 5) -> list[dict[str, Any]]:
    """Top-``top`` classes with probabilities for each image file."""
    from PIL import Image

    run = load_run(path, device)
    dev = next(run.model.parameters()).device
    results = []
    for image in images:
        try:
            with Image.open(image) as img:
                rgb = img.convert("RGB").resize((run.image_size[1], run.image_size[0]), Image.BILINEAR)
        except OSError as error:
            raise ValueError(f"cannot read image {image}: {error}") from None
        x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float().div(255).to(dev)
        with torch.no_grad():
            probs = run.model(x).softmax(dim=1)[0]
        values, index = probs.topk(min(top, len(run.classes)))
        results.append({"image": str(image), "top": [(run.classes[i], float(v)) for v, i in zip(values.tolist(), index.tolist())]})
    return results
