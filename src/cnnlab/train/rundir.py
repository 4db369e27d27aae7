"""The run directory, cnnlab's on-disk format for a training run, and the files made from it.

A run directory holds ``config.json`` (the training options and the run info), ``last.pt`` /
``best.pt`` (training checkpoints: model, optimizer, schedule, random states, history),
``history.json`` / ``.csv``, ``curves.png`` and, once evaluated, ``confusion.png`` / ``.json``
(``RUN_FILES``: what ``prepare_run_directory`` protects, and clears with ``overwrite``). The run
info (``run_info``) is everything needed to rebuild the model later: its registry name and
keywords, the classes and the image size.
A weights file (``save_weights``, format ``cnnlab-weights/1``) is a checkpoint's model and run
info without optimizer state. ``load_run`` reads both. Every file is loaded with
``weights_only=True``: a checkpoint can never run code; a file that is something else (a bare
``state_dict``, a tensor) is named for what it is. No output is ever written over an input or
over a run's files (``check_output``).
"""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DataSplits
from ..device import resolve_device
from ..io import DiskFull, atomic_write, is_disk_full, no_space, not_a_file
from ..models import Preprocessing, create_model, normalize_input

WEIGHTS_FORMAT = "cnnlab-weights/1"

# Every file a run writes into its directory (the trainer, history, cnnlab evaluate): a directory
# holding any of them is refused without resume or overwrite, and overwrite removes them all.
RUN_FILES = (
    "last.pt",
    "best.pt",
    "config.json",
    "history.json",
    "history.csv",
    "curves.png",
    "confusion.png",
    "confusion.json",
    "tb",
)  # tb/: TensorBoard event files (train/tblog.py), a directory
EXPECTED = (
    "expected a run directory, a checkpoint from cnnlab train (last.pt, best.pt) or a weights file from `save_weights`"
)


def prepare_run_directory(out_dir: str | Path, resume: bool = False, overwrite: bool = False) -> list[str]:
    """Make ``out_dir`` ready for a run: refuse one holding any run file (``RUN_FILES``) unless
    ``resume`` (which needs its ``last.pt``) or ``overwrite`` (which removes them all, and only
    them); remove the temporary files of interrupted writes. Returns the run files removed."""
    out = Path(out_dir)
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: continue the run, or start afresh")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found and not (resume or overwrite):
        if "last.pt" in found:
            raise FileExistsError(
                f"{out} already holds a run ({', '.join(found)}); pass `resume=True` to continue it, "
                "`overwrite=True` to start afresh (removing those files), or choose another output directory"
            )
        raise FileExistsError(
            f"{out} already holds files of a run ({', '.join(found)}) and no last.pt to `resume` from; "
            "pass `overwrite=True` to start afresh (removing those files), or choose another output directory"
        )
    if resume and "last.pt" not in found:
        raise FileNotFoundError(f"nothing to resume: {out / 'last.pt'} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:  # temporary files of an interrupted atomic write (io.atomic_write)
        for path in out.glob(f".{name}.*"):
            path.unlink(missing_ok=True)
    removed = found if overwrite else []
    for name in removed:
        path = out / name
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return removed


def is_run_directory(directory: str | Path) -> bool:
    """Whether ``directory`` holds any file a run writes."""
    return any((Path(directory) / name).exists() for name in RUN_FILES)


def check_output(out: str | Path, source: str | Path, own: tuple[str, ...] = ()) -> Path:
    """Refuse an output path that is the input read (``source``, also through a link) or a run
    file of a run directory (``RUN_FILES`` but the caller's ``own`` ones), or a directory:
    cnnlab never writes over its inputs."""
    out = Path(out)
    if out.is_dir():
        raise not_a_file(out)
    reasons = []
    if out.resolve() == Path(source).resolve() or (out.exists() and os.path.samefile(out, source)):
        reasons.append(f"the input ({source})")
    if out.name in RUN_FILES and out.name not in own and is_run_directory(out.parent):
        reasons.append(f"a run file of the run directory {out.parent}")
    if reasons:
        raise ValueError(
            f"{out} is {' and '.join(reasons)}; cnnlab never writes over an input or a run's files: "
            "choose another output path"
        )
    return out


def run_info(
    model_name: str, model_args: dict[str, Any], splits: DataSplits, dataset: str, **extra: Any
) -> dict[str, Any]:
    """What a run records to be rebuilt later (``load_run``): the model, its keywords, the
    classes and image size it was trained on, and where the data came from; ``extra`` adds
    the caller's own entries."""
    return {
        "model": model_name,
        "model_args": model_args,
        "classes": splits.classes,
        "image_size": list(splits.train.images.shape[1:3]),
        "dataset": dataset,
        "data_origin": splits.record(),  # name, content checksum, absolute source and decoded copy (data.locate)
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
        # torch's zip writer reports a short write as "unexpected pos N vs M"
        if not (isinstance(error, DiskFull) or is_disk_full(error) or "unexpected pos" in str(error)):
            raise
        raise no_space(path, "free some space and resume") from None


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
        what = (
            "empty"
            if path.is_file() and path.stat().st_size == 0
            else f"damaged or not a checkpoint ({_first_line(error)})"
        )
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


def describe(state: Any) -> str:
    """What a loaded ``.pt`` file holds, in words: 'a bare state_dict of 48 tensors', 'a bare tensor
    of shape (3, 4)', 'a dict with keys a, b', 'a weights file (`save_weights`)'."""
    if isinstance(state, torch.Tensor):
        return f"a bare tensor of shape {tuple(state.shape)}"
    if not isinstance(state, dict):
        return f"a {type(state).__name__}" + (f" of {len(state)} items" if isinstance(state, (list, tuple)) else "")
    if state.get("format") == WEIGHTS_FORMAT:
        return "a weights file (`save_weights`)"
    if state and all(isinstance(v, torch.Tensor) for v in state.values()):
        return f"a bare state_dict of {len(state)} tensors"
    keys = sorted(map(str, state))
    return f"a dict with keys {', '.join(keys[:8])}{', ...' if len(keys) > 8 else ''}" if keys else "an empty dict"


def _info(state: Any, path: Path) -> dict[str, Any]:
    """The run info of a weights file (``info``) or of a training checkpoint (``history.info``);
    a file that is neither is refused, saying what it is."""
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        history = state.get("history")
        info = state["info"] if "info" in state else history.get("info") if isinstance(history, dict) else None
        if isinstance(info, dict):
            return info
    raise CheckpointError(f"{path} is {describe(state)}, not a cnnlab checkpoint or weights file; {EXPECTED}")


def checkpoint_file(path: str | Path, which: str | None = None, default: str = "best.pt") -> Path:
    """The checkpoint a path means: a run directory's ``which`` (default ``default``), or the file given."""
    path = Path(path)
    if which is not None and which not in ("last.pt", "best.pt"):
        raise ValueError(f"which must be last.pt or best.pt, got {which!r}")
    if path.is_dir():
        checkpoint = path / (which or default)
    elif which is not None and path.name != which:
        raise ValueError(
            f"which={which} chooses a checkpoint of a run directory, but {path} is a file: "
            f"give the run directory, or the checkpoint file itself"
        )
    else:
        checkpoint = path
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {checkpoint}; give a run directory (with {which or default}) or a .pt file; {EXPECTED}"
        )
    return checkpoint


@dataclass
class LoadedRun:
    model: nn.Module
    classes: list[str]
    image_size: tuple[int, int]
    info: dict[str, Any]
    checkpoint: Path | None = None  # the file read
    epoch: int | None = None  # the epochs trained when it was written


def load_run_info(path: str | Path, which: str | None = None) -> dict[str, Any]:
    """The run info of a run directory (its ``which``, default ``best.pt``), checkpoint or weights
    file (what ``run_info`` recorded)."""
    checkpoint = checkpoint_file(path, which, "best.pt")
    return _info(load_checkpoint(checkpoint), checkpoint)


def load_run(
    path: str | Path, device: str = "auto", which: str | None = None, model: nn.Module | None = None
) -> LoadedRun:
    """A trained model from a run directory (its ``which``, default ``best.pt``), a checkpoint or a weights file.

    The model is rebuilt from the registry name its run info records; a run of a model that is
    not in the registry (``fit`` on a model of your own) is loaded into ``model``, an instance
    built as the run's was (its weights are replaced by the checkpoint's). A run fine-tuned from
    published weights records their ``preprocessing``: the model normalises its input so again."""
    checkpoint = checkpoint_file(path, which, "best.pt")
    state = load_checkpoint(checkpoint)
    info = _info(state, checkpoint)
    missing = [key for key in ("classes", "image_size") + (() if model is not None else ("model",)) if key not in info]
    if missing:
        own = info.get("model_class")
        hint = (
            (
                f"; it was trained with fit() on a {own}, which is not in cnnlab's registry: "
                f"pass model=<a {own.rpartition('.')[2]} "
                "built as for that run> (load_run, evaluate_run, predict_images, export_onnx)"
            )
            if own and "model" in missing
            else ""
        )
        raise ValueError(
            f"{checkpoint} does not say how to rebuild its model "
            f"(no {', '.join(map(repr, missing))} in its run info){hint}"
        )
    name = info.get("model") if model is None else type(model).__name__
    if model is None:
        args: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in info.get("model_args", {}).items()
        }
        model = create_model(info["model"], num_classes=len(info["classes"]), **args)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise CheckpointError(
            f"{checkpoint}: its weights do not fit the {name} "
            f"{'given' if 'model' not in info else 'its run info names'} "
            f"({_first_line(error)})"
        ) from None
    if info.get("preprocessing"):  # fine-tuned from published weights: it normalises its input as it trained
        normalize_input(model, Preprocessing.from_dict(info["preprocessing"]))
    model.to(resolve_device(device)).eval()
    return LoadedRun(model, info["classes"], tuple(info["image_size"]), info, checkpoint, state.get("epoch"))


def save_weights(path: str | Path, out: str | Path, which: str | None = None) -> Path:
    """The model of a run (``which`` checkpoint of a run directory, default ``last.pt``, or a
    checkpoint file) without optimizer state: its weights and the run info that rebuilds it
    (``load_run`` reads both). ``out`` may not be the input nor a run's file (``check_output``)."""
    checkpoint = checkpoint_file(path, which, "last.pt")
    out = check_output(out, checkpoint)
    state = load_checkpoint(checkpoint)
    info = _info(state, checkpoint)
    summary = state.get("summary") or state.get("history", {}).get("summary", {})
    weights = {
        "format": WEIGHTS_FORMAT,
        "model": state["model"],
        "info": info,
        "epoch": state.get("epoch"),
        "summary": summary,
    }
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
