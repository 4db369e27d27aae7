"""Evaluation: loss and accuracy of a model on uint8 images (used by the trainer every epoch),
and of a trained run on its dataset's test split with per-class accuracy and a confusion
matrix (``cnnlab evaluate``). A run fine-tuned from published weights is fed as it trained: its
model normalises the [0, 1] images as its run info's ``preprocessing`` records (``load_run``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import DataConfig, locate
from ..figures import save_figure, subplots
from ..io import atomic_write_text
from ..models.preprocessing import input_preprocessing
from .config import TTAS
from .history import run_title
from .rundir import load_run


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 512,
    autocast=nullcontext,
    tta: str = "none",
    on_batch: Callable[[int], None] | None = None,
    predictions: list[torch.Tensor] | None = None,
    view: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on uint8 images ``x`` (rescaled by 1/255).

    ``tta="flip"`` averages the softmax of each image and of its horizontal mirror;
    ``on_batch(n)`` is told of every batch of ``n`` images done (a progress bar);
    ``predictions`` (a list) receives each batch's predicted classes; ``view`` changes each
    [0, 1] batch first (``augment.eval_view``: the imagenet policy's center crop).
    """
    model.eval()
    loss = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size].float() / 255.0, y[start : start + batch_size]
        if view is not None:
            xb = view(xb)
        with autocast():
            logits = model(xb).float()
            if tta == "flip":
                probs = 0.5 * (logits.softmax(dim=1) + model(xb.flip(3)).float().softmax(dim=1))
                logits = probs.clamp_min(1e-12).log()
        loss += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(dim=1) == yb).sum()
        if predictions is not None:
            predictions.append(logits.argmax(dim=1))
        if on_batch is not None:
            on_batch(len(yb))
    return loss.item() / len(x), correct.item() / len(x)


class _EvalProgress:
    """A transient progress bar over the evaluated images (rate, time left), shown on a terminal."""

    def __init__(self, show: bool, total: int, what: str) -> None:
        self.bar = None
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(stderr=True)
            self.bar = Progress(
                TextColumn(f"evaluating {what}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            )
            self.task = self.bar.add_task("evaluate", total=total)

    def __enter__(self) -> Callable[[int], None]:
        if self.bar is not None:
            self.bar.__enter__()
        return lambda n: self.bar.advance(self.task, n) if self.bar is not None else None

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _per_class(classes: list[str], labels: Any, predicted: Any) -> dict[str, Any]:
    """The confusion matrix and each class's accuracy and image count (a class without images has
    no accuracy, None, rather than 0%)."""
    k = len(classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    counts = confusion.sum(axis=1)
    return {
        "per_class_accuracy": {
            c: float(confusion[i, i] / counts[i]) if counts[i] else None for i, c in enumerate(classes)
        },
        "per_class_images": dict(zip(classes, counts.tolist())),
        "confusion": confusion.tolist(),
    }


def evaluate_run(
    path: str | Path,
    data: DataConfig | None = None,
    *,
    device: str = "auto",
    out_png: str | Path | None = None,
    tta: str = "none",
    batch_size: int = 512,
    limit: int | None = None,
    model: nn.Module | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Loss, accuracy, per-class accuracy and confusion matrix of a run (directory, checkpoint or
    weights file) on the test split of ``data`` (default: the data the run recorded, its
    validation split when it had no test set), read at the run's image size;
    ``tta="flip"`` adds ``accuracy_tta`` (softmax averaged with the mirrored image); ``limit``:
    a class-balanced subset of that many images (a quick look; default: ``data.limit_val``, the
    images the run validated on); ``progress``: a progress bar on stderr. ``out_png``: write the
    confusion matrix there and the result beside it as JSON (``save_evaluation``); what cannot be
    written raises ``EvaluationNotSaved``, which carries the result. The result names the
    checkpoint read and its epoch. ``model``: an instance to load the weights into, for a run of a
    model that is not in the registry (``load_run``)."""
    if tta not in TTAS:
        raise ValueError(f"tta must be one of {TTAS}, got {tta!r}")
    run = load_run(path, device, model=model)  # its model normalises its input as it trained, if it did
    preprocessing = input_preprocessing(run.model)
    data = data if data is not None else recorded_data(run.info)
    seed = run.info.get("data_seed", 0)
    splits = replace(data, limit_val=None).with_overrides(image_size=run.image_size).load(seed=seed)
    if splits.classes != run.classes:
        raise ValueError(f"the run was trained on classes {run.classes}, the data has {splits.classes}")
    split, test = ("test", splits.test) if splits.test is not None else ("validation", splits.val)
    total, subset = len(test), None
    if limit is not None:
        subset, test = "limit", test.limit(limit, seed=0)
    elif data.limit_val is not None and data.limit_val < total:  # as the run validated: the same images
        subset, test = "limit_val", test.limit(data.limit_val, seed=seed)
    loss, acc, predicted, flipped = _run_model(run, test, batch_size, tta, progress, split)
    result = {
        "split": split,
        "images": len(test),
        "loss": loss,
        "accuracy": acc,
        **_per_class(run.classes, test.labels, predicted),
        "checkpoint": str(run.checkpoint),
        "epoch": run.epoch,
        "subset": subset,
        "split_images": total,
        "title": f"{Path(path).resolve().name}: {run_title(run.info)}",
    }
    if tta != "none":
        result["tta"] = tta
        result["loss_tta"], result["accuracy_tta"] = flipped
    if preprocessing is not None:
        result["preprocessing"] = preprocessing.to_dict()
    if out_png is not None:
        written, failed = save_evaluation(result, out_png)
        if failed:
            raise EvaluationNotSaved(result, written, failed)
    return result


def _run_model(run, test, batch_size: int, tta: str, progress: bool, split: str):
    """(loss, accuracy, predicted classes, (loss, accuracy) with ``tta`` or None) of the run's model on ``test``."""
    dev = next(run.model.parameters()).device
    x = torch.from_numpy(np.asarray(test.images)).permute(0, 3, 1, 2).contiguous().to(dev)
    y = torch.from_numpy(test.labels).to(dev)
    view = run_view(run.info)
    flipped = None
    epoch = f" (epoch {run.epoch})" if run.epoch is not None else ""
    # the bar names the run folder and checkpoint; the full path is in the result
    what = f"{Path(run.checkpoint.parent.name, run.checkpoint.name)}{epoch}, {split} images"
    predicted: list[torch.Tensor] = []
    with _EvalProgress(progress, len(test) * (2 if tta != "none" else 1), what) as step:
        loss, acc = evaluate(run.model, x, y, batch_size, on_batch=step, predictions=predicted, view=view)
        if tta != "none":
            flipped = evaluate(run.model, x, y, batch_size, tta=tta, on_batch=step, view=view)
    return loss, acc, torch.cat(predicted).cpu().numpy(), flipped


class EvaluationNotSaved(OSError):
    """The evaluation ran, but some of its files could not be written: ``result`` holds the
    figures, ``written`` the files that were, ``failed`` one 'path (why)' per file that was not."""

    def __init__(self, result: dict[str, Any], written: list[Path], failed: list[str]) -> None:
        super().__init__(f"could not write {'; '.join(failed)}")
        self.result, self.written, self.failed = result, written, failed


def save_evaluation(result: dict[str, Any], out_png: str | Path) -> tuple[list[Path], list[str]]:
    """Write the confusion matrix of ``evaluate_run``'s result to ``out_png`` and the result beside
    it (``.json``), each on its own: (the files written, 'path (why)' for each that could not be)."""
    png = Path(out_png)
    accuracy = f"accuracy {result['accuracy']:.2%} on {result['images']:,} {result['split']} images"
    writes = {
        png: lambda: confusion_png(
            np.array(result["confusion"]),
            list(result["per_class_accuracy"]),
            png,
            title=f"{result.get('title', '')}\n{accuracy}".strip(),
        ),
        png.with_suffix(".json"): lambda: atomic_write_text(png.with_suffix(".json"), json.dumps(result, indent=1)),
    }
    written, failed = [], []
    for target, write in writes.items():
        try:
            write()
            written.append(target)
        except OSError as error:
            failed.append(f"{target} ({error.strerror or error})")
    return written, failed


def run_view(info: dict[str, Any]):
    """What a run's evaluation showed its model (the recorded ``eval_crop``), for evaluate and predict."""
    from ..data.augment import center_crop_view

    crop = info.get("eval_crop")
    return None if not crop else (lambda x: center_crop_view(x, crop))


def recorded_data(info: dict[str, Any], **overrides: Any) -> DataConfig:
    """The data a run was trained on, as its run info records it (dataset, where it was read,
    the split and subset options), with ``overrides`` (those not None) replacing fields. A
    ``val_split`` that would change what the run validated on is refused (``check_val_split``)."""
    if overrides.get("dataset") in (None, info.get("dataset")):
        check_val_split(info, overrides.get("val_split"))
    options = {k: v for k, v in (info.get("data") or {}).items() if k in DataConfig.__dataclass_fields__}
    options.setdefault("dataset", info.get("dataset", "cifar10"))
    if "val_split" not in options and str(info.get("validation", "")).startswith("split "):
        options["val_split"] = float(info["validation"].split()[1])  # runs recorded before the data options
    source = info.get("source")
    if source and Path(source).exists():
        options["data_dir"] = str(source)
    elif (found := locate(info.get("data_origin"))) is not None:
        options["data_dir"] = found  # the run's data by its checksum: the absolute source, or a decoded copy
    options["image_size"] = tuple(options["image_size"]) if options.get("image_size") else None
    options["limit_train"] = None  # evaluation reads every image of its split
    return DataConfig.from_dict(options).with_overrides(**overrides)


def check_val_split(info: dict[str, Any], val_split: float | None) -> None:
    """Refuse a ``val_split`` for a run's own data that would not evaluate what the run validated on:
    a run validated on the test set or a folder's val/ split, or on another fraction of train
    (the images beyond it were trained on)."""
    if val_split is None:
        return
    validation = str(info.get("validation", ""))
    where = {"test": "the test set", "val": "the image folder's val/ split"}.get(validation)
    if where is not None:
        raise ValueError(
            f"val_split={val_split:g}: the run was validated on {where}, not on a fraction of its training "
            "images, and evaluate reads that set; leave val_split out"
        )
    recorded = (info.get("data") or {}).get("val_split")
    if recorded is not None and recorded != val_split:
        raise ValueError(
            f"val_split={val_split:g}: the run validated on a fraction {recorded:g} of its training images and "
            "trained on the rest; another fraction would evaluate images it trained on. Leave val_split out"
        )


def confusion_png(confusion: np.ndarray, classes: Sequence[str], path: Path, title: str = "") -> Path:
    """The confusion matrix as a labelled heat map (true class by row, predicted by column);
    ``title``: which run, and its accuracy."""
    fig, ax = subplots(figsize=(6 + 0.3 * len(classes), 5 + 0.3 * len(classes)), dpi=110)
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title("Confusion matrix" + (f"\n{title}" if title else ""), fontsize=9)
    for (i, j), v in np.ndenumerate(confusion):
        ax.text(
            j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > confusion.max() / 2 else "black"
        )
    fig.tight_layout()
    return save_figure(fig, path)


def confusion_path(run_path: str | Path) -> Path:
    """Where ``cnnlab evaluate`` puts the confusion matrix: beside a run's checkpoints
    (``RUN/confusion.png``), or beside a weights file, named after it (``NAME-confusion.png``)."""
    path = Path(run_path)
    if path.is_dir():
        return path / "confusion.png"
    if path.name in ("last.pt", "best.pt"):
        return path.parent / "confusion.png"
    return path.with_name(f"{path.stem}-confusion.png")
