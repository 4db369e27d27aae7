"""The run directory, cnnlab's on-disk format for a training run, and the files made from it.

A run directory holds ``config.json`` (the training options and the run info), ``last.pt`` /
``best.pt`` (training checkpoints: model, optimizer, schedule, random states, history),
``history.json`` / ``.csv`` and ``curves.png``. The run info (``run_info``) is everything needed
to rebuild the model later: its registry name and keywords, the classes and the image size.
A weights file (``save_weights``, format ``cnnlab-weights/1``) is a checkpoint's model and run
info without optimizer state. ``load_run`` reads both. Every file is loaded with
``weights_only=True``: a checkpoint can never run code.
"""

from __future__ import annotations

import errno
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DataSplits
from ..device import resolve_device
from ..io import atomic_write
from ..models import create_model

WEIGHTS_FORMAT = "cnnlab-weights/1"


def run_info(model_name: str, model_args: dict[str, Any], splits: DataSplits, dataset: str, **extra: Any) -> dict[str, Any]:
    """What a run records to be rebuilt later (``load_run``): the model, its keywords, the
    classes and image size it was trained on, and where the data came from; ``extra`` adds
    the caller's own entries."""
    return {
        "model": model_name,
        "model_args": model_args,
        "classes": splits.classes,
        "image_size": list(splits.train.images.shape[1:3]),
        "dataset": dataset,
        **extra,
    }


class CheckpointError(ValueError):
    """A checkpoint file is damaged, empty, or holds more than tensors and plain data."""


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write a checkpoint atomically: a crash mid-write leaves the previous file, never half of one.
    A full disk is reported as such (torch says only ``unexpected pos``)."""
    try:
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    except (OSError, RuntimeError) as error:
        if not _disk_full(error):
            raise
        free = shutil.disk_usage(Path(path).parent).free
        raise OSError(errno.ENOSPC, f"no space left on device writing {path} ({free / 2**20:.1f} MiB free); "
                      "free some space and resume") from None


def _disk_full(error: BaseException) -> bool:
    # torch's zip writer reports a short write as "unexpected pos N vs M"
    return getattr(error, "errno", None) == errno.ENOSPC or "unexpected pos" in str(error) or "No space left" in str(error)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A cnnlab checkpoint, loaded without unpickling code (``weights_only=True``). A damaged or
    hostile file raises ``CheckpointError`` saying so, and whether the run's other checkpoint is intact."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"refused {path}: it holds Python objects other than tensors and plain data, and cnnlab never "
            "unpickles code (torch.load weights_only=True); do not load it with weights_only=False unless you trust it"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        what = "empty" if path.is_file() and path.stat().st_size == 0 else f"damaged or not a checkpoint ({_first_line(error)})"
        raise CheckpointError(f"{path} is {what}{_sibling_status(path)}") from None


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _sibling_status(path: Path) -> str:
    """Whether the other checkpoint of the run (best.pt beside last.pt, or the reverse) loads."""
    other = {"last.pt": "best.pt", "best.pt": "last.pt"}.get(path.name)
    if other is None or not (path.parent / other).is_file():
        return ""
    try:
        epoch = torch.load(path.parent / other, map_location="cpu", weights_only=True).get("epoch")
        return f"; {other} beside it is intact (epoch {epoch})"
    except Exception:  # noqa: BLE001 -- any failure means: not intact
        return f"; {other} beside it is damaged too"


def _info(state: dict) -> dict[str, Any]:
    """The run info of a weights file (``info``) or of a training checkpoint (``history.info``)."""
    return state["info"] if "info" in state else state["history"]["info"]


def _checkpoint_path(path: str | Path, which: str) -> Path:
    path = Path(path)
    checkpoint = path / which if path.is_dir() else path
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}; give a run directory (with {which}) or a .pt file")
    return checkpoint


@dataclass
class LoadedRun:
    model: nn.Module
    classes: list[str]
    image_size: tuple[int, int]
    info: dict[str, Any]


def load_run_info(path: str | Path, which: str = "best.pt") -> dict[str, Any]:
    """The run info of a run directory, checkpoint or weights file (what ``run_info`` recorded)."""
    return _info(load_checkpoint(_checkpoint_path(path, which)))


def load_run(path: str | Path, device: str = "auto", which: str = "best.pt") -> LoadedRun:
    """A trained model from a run directory (its ``best.pt``), a checkpoint or a weights file."""
    checkpoint = _checkpoint_path(path, which)
    state = load_checkpoint(checkpoint)
    info = _info(state)
    if "model" not in info:
        raise ValueError(f"{checkpoint} does not say which model it holds (no 'model' in its run info)")
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in info.get("model_args", {}).items()}
    model = create_model(info["model"], num_classes=len(info["classes"]), **args)
    model.load_state_dict(state["model"])
    model.to(resolve_device(device)).eval()
    return LoadedRun(model, info["classes"], tuple(info["image_size"]), info)


def save_weights(path: str | Path, out: str | Path, which: str = "last.pt") -> Path:
    """The model of a run (``which`` checkpoint of a run directory, or a checkpoint file) without
    optimizer state: its weights and the run info that rebuilds it (``load_run`` reads both)."""
    state = load_checkpoint(_checkpoint_path(path, which))
    summary = state.get("summary") or state.get("history", {}).get("summary", {})
    weights = {"format": WEIGHTS_FORMAT, "model": state["model"], "info": _info(state), "epoch": state.get("epoch"), "summary": summary}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, weights)
    return out


def default_run_dir(model_name: str, kind: str = "") -> Path:
    """Where a run writes when no directory is given: ``runs/MODEL`` (``runs/KIND-MODEL``)."""
    return Path("runs") / (f"{kind}-{model_name}" if kind else model_name)


def sha256(path: str | Path) -> str:
    """The file's SHA-256, as published beside committed weights (``docs/results.md``)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
