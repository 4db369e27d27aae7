"""Run an experiment (an article's table) case by case into one directory, resumably.

    result = reproduce("densenet", preset="quick", out_dir="runs/dn-quick")
    print(result.table())

Layout of ``out_dir``: ``plan.json`` (the experiment, preset and resolved training options),
``caseN/`` (one trainer run each: history, curves, checkpoints), and the reports written after
every case (``results.md``/``.csv``/``.json``, ``curves_caseN.png``, ``comparison.png``,
``accuracy_vs_cost.png``). Running the same command again skips finished cases and resumes an
interrupted one from its last checkpoint; a different plan in the same directory is refused.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..analysis.summary import model_summary
from ..data import DataConfig, DataSplits
from ..device import device_name, resolve_device
from ..io import atomic_write, atomic_write_text
from ..presets import Preset, get_preset
from ..train import History, TrainConfig, run_training
from ..train.distributed import world_from_env
from ..train.state import MAY_CHANGE_ON_RESUME, OPTIONS_BEFORE_THEY_EXISTED
from .experiments import Case, Experiment, get_experiment
from .report import Reproduction, Row, write_reports

# keys of plan.json (and results.json) that older versions named otherwise: their name -> this version's
RENAMED_KEYS = {"study": "experiment"}


def current_keys(record: dict[str, Any]) -> dict[str, Any]:
    """A plan.json (or results.json) with its keys as this version names them: an older version's
    ``study`` is the ``experiment``."""
    return {RENAMED_KEYS.get(k, k): v for k, v in record.items()}


@dataclass(frozen=True)
class Plan:
    experiment: Experiment
    preset: Preset
    config: TrainConfig
    data: DataConfig

    def to_dict(self) -> dict[str, Any]:
        """What ``plan.json`` holds (the data's location is local, so it is not part of the plan)."""
        return {
            "experiment": self.experiment.name,
            "preset": self.preset.name,
            "train": self.config.to_dict(),
            "limit_train": self.data.limit_train,
            "limit_val": self.data.limit_val,
            "dataset": self.data.dataset,
        }

    def case_config(self, case: Case) -> TrainConfig:
        return self.config.with_overrides(augment=self.config.augment if case.augment else "none")


def make_plan(experiment: str, preset: str = "quick", *, data: DataConfig | None = None, **train: Any) -> Plan:
    """The experiment under ``preset``; ``train`` (TrainConfig fields such as ``epochs``, ``device``,
    ``augment``; None = the preset's) overrides its training options, and ``data``'s dataset,
    location and subset sizes (those it sets) its data."""
    p = get_preset(preset)
    data = data or DataConfig()
    if data.val_split is not None or data.image_size is not None:
        raise ValueError(
            "reproduce validates on the test set at the dataset's own size, as the articles did; "
            f"val_split and image_size cannot be set (got {data.val_split!r}, {data.image_size!r})"
        )
    data = p.data.with_overrides(
        dataset=data.dataset, data_dir=data.data_dir, limit_train=data.limit_train, limit_val=data.limit_val
    )
    return Plan(get_experiment(experiment), p, p.train.with_overrides(**train), data)


def _check_plan(out: Path, plan: Plan) -> None:
    """Refuse an output directory that holds a reproduction with other settings, naming them;
    only ``epochs`` may differ (finished cases then continue to the new number)."""
    path = out / "plan.json"
    if not path.exists():
        return
    found, wanted = current_keys(json.loads(path.read_text())), plan.to_dict()
    detail = []
    for key in sorted(
        k for k in set(found) | set(wanted) if k not in ("started", "cases") and found.get(k) != wanted.get(k)
    ):
        if key == "train":
            # a plan written before an option existed ran with that option's neutral value
            there = {**OPTIONS_BEFORE_THEY_EXISTED, **found.get("train", {})}
            keys = sorted(
                k for k in wanted["train"] if k not in MAY_CHANGE_ON_RESUME and there.get(k) != wanted["train"][k]
            )
            detail += [f"train options {', '.join(keys)}"] if keys else []
        else:
            detail.append(f"{key} ({found.get(key)!r} there, {wanted.get(key)!r} now)")
    if detail:
        raise ValueError(
            f"{out} holds a reproduction with other settings: {'; '.join(detail)}. "
            "Rerun with the same options to resume it (`epochs` may grow), or choose another `out_dir`"
        )


def _write_plan(out: Path, plan: Plan, cases: list[int]) -> None:
    """``plan.json``, once the data has loaded (a failed start leaves no directory behind), with
    the cases this command runs (what ``cnnlab reproduce --resume OUT`` continues)."""
    path = out / "plan.json"
    started = json.loads(path.read_text()).get("started") if path.exists() else None
    out.mkdir(parents=True, exist_ok=True)
    started = started or datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_text(path, json.dumps({**plan.to_dict(), "cases": cases, "started": started}, indent=1))


def _finished(case_dir: Path, epochs: int) -> History | None:
    path = case_dir / "history.json"
    if not path.exists():
        return None
    history = History.from_dict(json.loads(path.read_text()))
    return history if len(history.epochs) >= epochs and (case_dir / "last.pt").exists() else None


def reproduce(
    experiment: str,
    preset: str = "quick",
    out_dir: str | Path | None = None,
    *,
    cases: list[int] | None = None,
    data: DataConfig | None = None,
    quiet: bool = False,
    log: Callable[[str], None] = print,
    **train: Any,
) -> Reproduction:
    """Train every selected case of ``experiment`` under ``preset`` and write the reports; ``train``
    overrides the preset's training options (``epochs=20``, ``device="cuda"``, ...)."""
    plan = make_plan(experiment, preset, data=data, **train)
    main = world_from_env().main  # under torchrun, rank 0 alone reports and writes
    log = log if main else (lambda _: None)
    selected = plan.experiment.select(cases)
    out = Path(out_dir or default_out(plan.experiment.name, plan.preset.name))
    _check_plan(out, plan)
    splits = plan.data.load(seed=plan.config.seed)
    if main:
        _write_plan(out, plan, [case.number for case in selected])
    dev = resolve_device(plan.config.device)
    log(
        f"{plan.experiment.title}\npreset {plan.preset.name}: {plan.preset.description}\n"
        f"{len(selected)} case(s) on {device_name(dev)}; {len(splits.train)} training images, "
        f"{len(splits.val)} validation images ({splits.validation}); writing {out}"
    )
    start = time.perf_counter()
    for i, case in enumerate(selected, 1):
        case_dir = out / f"case{case.number}"
        _train_case(plan, case, case_dir, splits, dev, quiet, log, f"[{i}/{len(selected)}] {case.label}", start)
        if main and (case_dir / "curves.png").exists():
            atomic_write(out / f"curves_case{case.number}.png", partial(shutil.copyfile, case_dir / "curves.png"))
        result = collect(plan, out, splits, dev)
        if main:
            write_reports(result, out)
    log(f"done in {time.perf_counter() - start:.0f} s")
    return result


def _train_case(
    plan: Plan,
    case: Case,
    case_dir: Path,
    splits: DataSplits,
    dev: torch.device,
    quiet: bool,
    log: Callable[[str], None],
    label: str,
    start: float,
) -> None:
    """Train one case into ``case_dir`` (resumed from its ``last.pt``; skipped when finished)."""
    config = plan.case_config(case)
    if _finished(case_dir, config.epochs) is not None:
        log(f"{label}: finished earlier, skipped")
    else:
        resume = (case_dir / "last.pt").exists()
        log(f"{label}: {'resuming' if resume else 'training'} ({time.perf_counter() - start:.0f} s elapsed)")
        run_training(
            case.model,
            case.model_args,
            data=plan.data,
            train=config,
            out_dir=case_dir,
            splits=splits,
            resume=resume,
            quiet=quiet,
            # target_val_acc: the history records when the article's figure was first reached
            info={"case": case.number, "device_name": device_name(dev), "target_val_acc": case.article.best_acc},
        )


def default_out(experiment: str, preset: str) -> Path:
    """Where a reproduction writes when no directory is given: ``runs/reproduce-EXPERIMENT-PRESET``."""
    return Path("runs") / f"reproduce-{experiment}-{preset}"


def collect(plan: Plan, out: Path, data: DataSplits, device: torch.device) -> Reproduction:
    """Rows for every case of the experiment that has a history in ``out`` (finished or not)."""
    rows = []
    for case in plan.experiment.cases:
        path = out / f"case{case.number}" / "history.json"
        if not path.exists():
            continue
        history = History.from_dict(json.loads(path.read_text()))
        if not history.epochs:
            continue
        s = model_summary(
            case.model, (3, *data.train.images.shape[1:3]), num_classes=len(data.classes), **case.model_args
        )
        summary = history.summary()
        reached = next((e for e in history.epochs if e.val_acc >= case.article.best_acc), None)
        seconds = [e.seconds for e in history.epochs]
        rows.append(
            Row(
                case=case,
                augmentation=plan.case_config(case).augment,
                epochs=len(history.epochs),
                planned_epochs=plan.config.epochs,
                params=s.total_params,
                depth=s.depth,
                macs=s.macs,
                best_val_acc=summary["best_val_acc"],
                best_epoch=summary["best_epoch"],
                seconds_per_epoch=summary["seconds_per_epoch_article"],
                images_per_s=summary["images_per_s_median"],
                device=history.info.get("device_name") or history.info.get("device", str(device)),
                reached_article_at=reached.epoch if reached else None,
                val_acc_curve=[e.val_acc for e in history.epochs],
                best_val_acc_tta=summary.get("best_val_acc_tta"),
                reached_article_seconds=sum(seconds[: reached.epoch]) if reached else None,
                seconds=sum(seconds),
            )
        )
    return Reproduction(
        experiment=plan.experiment,
        preset=plan.preset,
        config=plan.config,
        rows=rows,
        train_images=len(data.train),
        val_images=len(data.val),
        validation=data.validation,
        date=datetime.now().strftime("%Y-%m-%d"),
        comparable=plan.data.limit_train is None and plan.data.limit_val is None,
    )
