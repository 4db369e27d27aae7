"""Run a study case by case into one directory, resumably.

    result = reproduce("densenet", preset="quick", out_dir="runs/dn-quick")
    print(result.table())

Layout of ``out_dir``: ``plan.json`` (the study, preset and resolved training options),
``caseN/`` (one trainer run each: history, curves, checkpoints), and the reports written after
every case (``results.md``/``.csv``/``.json``, ``curves_caseN.png``, ``comparison.png``,
``accuracy_vs_cost.png``). Running the same command again skips finished cases and resumes an
interrupted one from its last checkpoint; a different plan in the same directory is refused.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from ..analysis.summary import model_summary
from ..data import DataSplits, load_splits
from ..io import atomic_write, atomic_write_text
from ..models import create_model
from ..train import History, TrainConfig, fit
from ..train.run import run_info
from ..train.trainer import resolve_device
from .presets import ReproducePreset, get_preset
from .report import Reproduction, Row, write_reports
from .studies import Case, Study, get_study


@dataclass(frozen=True)
class Plan:
    study: Study
    preset: ReproducePreset
    config: TrainConfig
    limit_train: int | None
    limit_val: int | None
    dataset: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study.name,
            "preset": self.preset.name,
            "train": self.config.to_dict(),
            "limit_train": self.limit_train,
            "limit_val": self.limit_val,
            "dataset": self.dataset,
        }

    def case_config(self, case: Case) -> TrainConfig:
        return self.config.with_overrides(augment=self.config.augment if case.augment else "none")


def make_plan(
    study: str,
    preset: str = "quick",
    epochs: int | None = None,
    limit_train: int | None = None,
    limit_val: int | None = None,
    device: str | None = None,
    dataset: str = "cifar10",
) -> Plan:
    p = get_preset(preset)
    for name, value in (("limit_train", limit_train), ("limit_val", limit_val)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be a positive number of images, got {value}")
    config = p.train.with_overrides(epochs=epochs, device=device)
    return Plan(
        get_study(study), p, config,
        limit_train if limit_train is not None else p.limit_train,
        limit_val if limit_val is not None else p.limit_val,
        dataset,
    )


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.machine()}, {torch.get_num_threads()} threads"


def _check_plan(out: Path, plan: Plan) -> None:
    path = out / "plan.json"
    wanted = plan.to_dict()
    if path.exists():
        found = json.loads(path.read_text())
        if {k: v for k, v in found.items() if k != "started"} != wanted:
            changed = sorted(
                k for k in set(found) | set(wanted)
                if k != "started" and found.get(k) != wanted.get(k)
            )
            detail = []
            for key in changed:
                if key == "train":
                    keys = sorted(k for k in wanted["train"] if found.get("train", {}).get(k) != wanted["train"][k])
                    detail.append(f"train options {', '.join(keys)}")
                else:
                    detail.append(f"{key} ({found.get(key)!r} there, {wanted.get(key)!r} now)")
            raise ValueError(
                f"{out} holds a reproduction with other settings: {'; '.join(detail)}. "
                "Rerun with the same options to resume it, or choose another --out"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**wanted, "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=1))


def _finished(case_dir: Path, epochs: int) -> History | None:
    path = case_dir / "history.json"
    if not path.exists():
        return None
    history = History.from_dict(json.loads(path.read_text()))
    return history if len(history.epochs) >= epochs and (case_dir / "last.pt").exists() else None


def reproduce(
    study: str,
    preset: str = "quick",
    out_dir: str | Path | None = None,
    cases: list[int] | None = None,
    epochs: int | None = None,
    limit_train: int | None = None,
    limit_val: int | None = None,
    device: str | None = None,
    dataset: str = "cifar10",
    data_dir: str | Path | None = None,
    quiet: bool = False,
    log: Callable[[str], None] = print,
) -> Reproduction:
    """Train every selected case of ``study`` under ``preset`` and write the reports."""
    plan = make_plan(study, preset, epochs, limit_train, limit_val, device, dataset)
    selected = plan.study.select(cases)
    out = Path(out_dir or Path("runs") / f"reproduce-{plan.study.name}-{plan.preset.name}")
    _check_plan(out, plan)
    data = load_splits(dataset, data_dir, None, None, plan.limit_train, plan.config.seed, limit_val=plan.limit_val)
    dev = resolve_device(plan.config.device)
    log(
        f"{plan.study.title}\npreset {plan.preset.name}: {plan.preset.description}\n"
        f"{len(selected)} case(s) on {device_name(dev)}; {len(data.train)} training images, "
        f"{len(data.val)} validation images ({data.validation}); writing {out}"
    )
    start = time.perf_counter()
    for i, case in enumerate(selected, 1):
        case_dir = out / f"case{case.number}"
        config = plan.case_config(case)
        if _finished(case_dir, config.epochs) is not None:
            log(f"[{i}/{len(selected)}] {case.label}: finished earlier, skipped")
        else:
            resume = (case_dir / "last.pt").exists()
            log(f"[{i}/{len(selected)}] {case.label}: {'resuming' if resume else 'training'} "
                f"({time.perf_counter() - start:.0f} s elapsed)")
            _train_case(case, config, data, dataset, case_dir, resume, quiet, device_name(dev))
        if (case_dir / "curves.png").exists():
            atomic_write(out / f"curves_case{case.number}.png", lambda tmp, src=case_dir / "curves.png": shutil.copyfile(src, tmp))
        result = collect(plan, out, data, dev)
        write_reports(result, out)
    log(f"done in {time.perf_counter() - start:.0f} s")
    return result


def _train_case(
    case: Case, config: TrainConfig, data: DataSplits, dataset: str, case_dir: Path, resume: bool, quiet: bool, dev_name: str
) -> History:
    torch.manual_seed(config.seed)
    model = create_model(case.model, num_classes=len(data.classes), **case.args)
    info = run_info(case.model, case.args, data, dataset, case=case.number, device_name=dev_name)
    info["target_val_acc"] = case.article.best_acc  # the history records when the article's figure was first reached
    return fit(model, data, config, case_dir, resume=resume, quiet=quiet, info=info)


def collect(plan: Plan, out: Path, data: DataSplits, device: torch.device) -> Reproduction:
    """Rows for every case of the study that has a history in ``out`` (finished or not)."""
    rows = []
    for case in plan.study.cases:
        path = out / f"case{case.number}" / "history.json"
        if not path.exists():
            continue
        history = History.from_dict(json.loads(path.read_text()))
        if not history.epochs:
            continue
        s = model_summary(case.model, (3, *data.train.images.shape[1:3]), num_classes=len(data.classes), **case.args)
        summary = history.summary()
        reached = next((e.epoch for e in history.epochs if e.val_acc >= case.article.best_acc), None)
        rows.append(Row(
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
            reached_article_at=reached,
            val_acc_curve=[e.val_acc for e in history.epochs],
        ))
    return Reproduction(
        study=plan.study, preset=plan.preset, config=plan.config, rows=rows,
        train_images=len(data.train), val_images=len(data.val), validation=data.validation,
        date=datetime.now().strftime("%Y-%m-%d"),
    )
