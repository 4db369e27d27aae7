"""``--resume DIR``: continue a run from its directory alone.

A run directory's ``config.json`` holds everything the run was started with: the model and its
arguments, where the data came from and how it was split and limited, every training option (and
the preset, for runs that record it). ``cnnlab train --resume DIR`` (and ``finetune``) reads them
from there; an option given beside ``--resume`` must say what the run already does -- one that
differs is refused before any data is read, naming the flag, the run's value and the one given.
Only ``--epochs`` may differ (a larger one extends a finished run), and ``--data-dir``,
``--stream``, ``--quiet`` (where the data lies and how it is read change nothing of the run).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import options

# Options that may differ from the run's on a resume: they change where and how, not what.
FREE = {"epochs", "data_dir", "stream", "quiet", "out", "resume", "overwrite", "nproc", "tensorboard"}
# DataConfig fields a run records in its info's "data" (data_dir and stream are local choices)
DATA_FIELDS = ("dataset", "val_split", "image_size", "limit_train", "limit_val", "cache_size")


def run_directory(args: argparse.Namespace, default: Path | None) -> Path | None:
    """The directory ``--resume`` continues: ``--resume DIR``, else ``--out``, else ``default``.
    A bare ``--resume`` written before the model (``--resume MODEL --out DIR``) is taken as such."""
    if isinstance(args.resume, str):
        if args.model is None and not Path(args.resume).exists() and args.out is not None:
            args.model, args.resume = args.resume, True  # `cnnlab train --resume resnet18 --out runs/r18`
            return Path(args.out)
        if args.out is not None and Path(args.out) != Path(args.resume):
            raise ValueError(f"--resume {args.resume} and --out {args.out} name two directories; give one")
        return Path(args.resume)
    return Path(args.out) if args.out else default


def read_record(run_dir: Path, command: str) -> dict[str, Any]:
    """``run_dir/config.json``, checked to hold a run that can be continued."""
    if not run_dir.is_dir():
        raise FileNotFoundError(f"nothing to resume: {run_dir} is not a directory")
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"nothing to resume in {run_dir}: no config.json (a run directory holds config.json, "
            "last.pt, best.pt and the history)"
        )
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a run's record (not JSON: {error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("train"), dict) or "model" not in record:
        raise ValueError(f"{path} is not a run's record: it has no model and training options")
    if not (run_dir / "last.pt").is_file():
        raise FileNotFoundError(
            f"nothing to resume in {run_dir}: no epoch of it finished (no last.pt); start it again with its "
            f"original command (cnnlab {command} ... --out {run_dir} --overwrite)"
        )
    return record


def check_given(run_dir: Path, given: dict[str, tuple[Any, Any]]) -> None:
    """Refuse options given beside ``--resume`` that differ from the run's: ``given`` maps a flag
    to (the value given, the run's value); None as the value given means not given."""
    differ = [
        f"{flag} (the run: {_show(was)}, given: {_show(now)})"
        for flag, (now, was) in given.items()
        if now is not None and _plain(now) != _plain(was)
    ]
    if differ:
        raise ValueError(
            f"cannot resume {run_dir} with other options than it was started with: {'; '.join(differ)}. "
            f"Leave them out (cnnlab reads them from {run_dir / 'config.json'}), "
            "or pass --overwrite to start afresh there"
        )


def train_given(args: argparse.Namespace, record: dict[str, Any], *extra: str) -> dict[str, tuple[Any, Any]]:
    """The training options given on the command line against the run's."""
    train = record["train"]
    return {
        _flag(name): (value, train.get(name))
        for name, value in options.train_overrides(args, *extra).items()
        if name not in FREE
    }


def data_given(args: argparse.Namespace, record: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The data options given on the command line against the run's (runs that record them)."""
    data = record.get("data")
    if not isinstance(data, dict):
        return {}
    given = {k: v for k, v in options.data_overrides(args).items() if k in DATA_FIELDS}
    return {_flag(name): (value, data.get(name)) for name, value in given.items()}


def model_given(args: argparse.Namespace, record: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The model and its arguments (each ``--arg`` given) against the run's."""
    from ..models.arguments import parse_model_args

    recorded = record.get("model_args") or {}
    given: dict[str, tuple[Any, Any]] = {"model": (args.model, record["model"])}
    for key, value in parse_model_args(getattr(args, "arg", []) or []).items():
        given[f"--arg {key}"] = (value, recorded.get(key, "(not set)"))
    return given


def resumed_data(args: argparse.Namespace, record: dict[str, Any]):
    """The run's DataConfig: its dataset, split and limits, read where it was read (or from
    ``--data-dir``, which may point at a moved copy: the run's data digest checks it is the same)."""
    from ..train.evaluation import recorded_data

    data = recorded_data(record, data_dir=args.data_dir, stream=getattr(args, "stream", None))
    return replace(data, limit_train=(record.get("data") or {}).get("limit_train"))


def resumed_train(args: argparse.Namespace, record: dict[str, Any]):
    """The run's TrainConfig, with a new ``--epochs`` and ``--tensorboard`` if given (the trainer
    allows both to change on a resume: ``MAY_CHANGE_ON_RESUME``)."""
    from ..train import TrainConfig

    tensorboard = getattr(args, "tensorboard", None) or None  # store_true: False means not given
    return TrainConfig.from_dict(record["train"]).with_overrides(epochs=args.epochs, tensorboard=tensorboard)


def model_args(record: dict[str, Any]) -> dict[str, Any]:
    """The run's model arguments as the model takes them (JSON lists back to tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in (record.get("model_args") or {}).items()}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _plain(value: Any) -> Any:
    """Tuples as lists, as a value reads back from JSON."""
    return json.loads(json.dumps(value, default=str))


def _show(value: Any) -> str:
    plain = _plain(value)
    if isinstance(plain, list):
        return ",".join(map(str, plain))
    return "not set" if plain is None else str(plain)
