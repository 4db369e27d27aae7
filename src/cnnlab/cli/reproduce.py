"""``cnnlab reproduce EXPERIMENT``: rerun an article's experiment (one of its results tables).

cnnlab reproduce densenet --preset fast --cases 5,6 --out runs/dn
cnnlab reproduce --resume runs/dn          # continue it: experiment, preset, cases and options from its plan.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..reproduce.experiments import EXPERIMENTS
from . import options, resume


def _cases(text: str) -> list[int]:
    try:
        numbers = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cases takes case numbers like 2,3; got {text!r}") from None
    if not numbers:
        raise argparse.ArgumentTypeError("--cases is empty")
    return numbers


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="rerun an article's experiment (densenet: article 000's six cases; convtypes: article 001's three nets)",
        description="Train every case of an experiment (an article's results table) and write "
        "results.md/.csv/.json, curves_caseN.png, comparison.png "
        "and accuracy_vs_cost.png into --out. Rerunning the same command resumes: finished cases are skipped, "
        "an interrupted case continues from its checkpoint; --resume OUT does the same from the directory alone.",
    )
    p.add_argument(
        "experiment",
        nargs="?",
        default=None,
        choices=list(EXPERIMENTS),
        help="the experiment: densenet, article 000's six cases; convtypes, article 001's three nets "
        "(with --resume OUT: the plan's)",
    )
    options.add_preset(
        p,
        "article: the articles' protocol; fast: cnnlab's own options, a third of the epochs; "
        "quick: ~5 min on a 2-core CPU (default); smoke: 1 epoch on 500 images; a shorter --epochs "
        "shortens the preset's warm-up in proportion",
    )
    p.add_argument("--cases", type=_cases, default=None, metavar="N,N", help="only these cases (default: all)")
    options.add_train(p)  # any of the preset's training options, overridden
    options.add_data(p, val_split=False)
    options.add_device(p)
    options.add_launch(p)
    p.add_argument("--out", default=None, help="output directory (default runs/reproduce-EXPERIMENT-PRESET)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="OUT",
        help="continue the reproduction in OUT (or --out): experiment, preset, cases and options from "
        "OUT/plan.json; "
        "options given beside it must match them (--epochs may grow)",
    )
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import DataConfig
    from ..reproduce import reproduce
    from ..reproduce.runner import default_out

    if args.resume:
        experiment, preset, out, cases, train, data = _resumed(args)
    else:
        if args.experiment is None:
            raise ValueError(
                f"which experiment? one of {', '.join(EXPERIMENTS)}, or --resume OUT to continue a reproduction"
            )
        experiment, preset, cases = args.experiment, args.preset or "quick", args.cases
        out = Path(args.out or default_out(experiment, preset))
        train = {**options.train_overrides(args, "sync_bn"), "warmup_epochs": _warmup(args, preset, out)}
        data = DataConfig().with_overrides(**options.data_overrides(args))
    args.run_dir = out  # what Ctrl-C's message names
    _warn_batch(args.command, preset, train, data)
    result = reproduce(experiment, preset, out, cases=cases, quiet=args.quiet, data=data, **train)
    if not options.main_process():
        return 0  # under torchrun, rank 0 reports
    print()
    print(result.markdown())
    curves = ", ".join(f"curves_case{row.case.number}.png" for row in result.rows)
    print(f"wrote {out}/results.md, results.csv, results.json, comparison.png, accuracy_vs_cost.png, {curves}")
    return 0


def _warmup(args: argparse.Namespace, preset: str, out: Path) -> float | None:
    """The warm-up: given, else the one of the same reproduction already in ``out`` (so that a
    larger --epochs extends it), else the preset's, shortened with a shorter --epochs."""
    from ..presets import get_preset

    if args.warmup_epochs is None and (out / "plan.json").is_file():
        plan = _read_plan(out)
        if plan.get("experiment") == args.experiment and plan.get("preset") == preset:
            return plan.get("train", {}).get("warmup_epochs")
    return get_preset(preset).warmup_for(epochs=args.epochs, warmup_epochs=args.warmup_epochs)


def _read_plan(out: Path) -> dict[str, Any]:
    """``out/plan.json``, its keys as this version names them (an older version's "study": "experiment")."""
    from ..reproduce.runner import current_keys

    try:
        plan = json.loads((out / "plan.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{out / 'plan.json'} is not a reproduction's plan ({error})") from None
    plan = current_keys(plan) if isinstance(plan, dict) else plan
    if (
        not isinstance(plan, dict)
        or plan.get("experiment") not in EXPERIMENTS
        or not isinstance(plan.get("train"), dict)
    ):
        raise ValueError(f"{out / 'plan.json'} is not a reproduction's plan: no experiment and training options")
    return plan


def _resumed(args: argparse.Namespace):
    """A reproduction continued from its directory: everything from its plan.json."""
    from ..data import DataConfig
    from ..reproduce.runner import default_out

    out = (
        Path(args.resume)
        if isinstance(args.resume, str)
        else Path(args.out)
        if args.out
        else (default_out(args.experiment, args.preset or "quick") if args.experiment else None)
    )
    if out is None:
        raise ValueError("--resume needs the reproduction's directory: --resume OUT")
    if isinstance(args.resume, str) and args.out is not None and Path(args.out) != out:
        raise ValueError(f"--resume {args.resume} and --out {args.out} name two directories; give one")
    if not (out / "plan.json").is_file():
        raise FileNotFoundError(
            f"nothing to resume in {out}: no plan.json (a reproduction writes it once its data has loaded)"
        )
    plan = _read_plan(out)
    given = {
        "experiment": (args.experiment, plan["experiment"]),
        "--preset": (args.preset, plan.get("preset")),
        "--cases": (args.cases, plan.get("cases", args.cases)),
        **resume.train_given(args, plan, "sync_bn"),
        **{
            flag: (value, plan.get(name))
            for flag, name, value in (
                ("--dataset", "dataset", args.dataset),
                ("--limit-train", "limit_train", args.limit_train),
                ("--limit-val", "limit_val", args.limit_val),
            )
        },
    }
    resume.check_given(out, given)
    train = {**plan["train"], **options.given(epochs=args.epochs)}
    data = DataConfig(
        plan.get("dataset", "cifar10"),
        data_dir=args.data_dir,
        limit_train=plan.get("limit_train"),
        limit_val=plan.get("limit_val"),
    )
    return (
        plan["experiment"],
        plan["preset"],
        out,
        plan.get("cases") or args.cases,
        train,
        data,
    )  # plans before "cases": --cases


def _warn_batch(command: str, preset: str, train: dict[str, Any], data) -> None:
    """Say it when the training subset is smaller than one batch (each epoch is then one step)."""
    from ..presets import get_preset

    p = get_preset(preset)
    batch = train.get("batch_size") or p.train.batch_size
    limit = data.limit_train or p.data.limit_train
    if limit is not None and limit < batch and options.main_process():
        print(
            f"cnnlab {command}: warning: --batch-size {batch} is larger than the {limit} training images "
            f"(--limit-train): each epoch is one step of {limit} images",
            flush=True,
        )
