"""``cnnlab search``: run an architecture search, or report on one.

    cnnlab search modules --objective error+params --preset smoke          # about a minute on a CPU
    cnnlab search modules --objective error+params --epochs 20 --workers 2 --out runs/search/b
    cnnlab search modules-free --objective pareto --cost latency --storage postgresql://me@db/optuna --study free
    cnnlab search report runs/search/b --top 5

Heavy imports (torch, optuna) happen inside the run functions: ``cnnlab --help`` stays fast.
"""

from __future__ import annotations

import argparse

from ..cli import add_limit_options

SPACE_NAMES = ("modules", "modules-free", "densenet")  # checked against spaces.SPACES by the tests
OBJECTIVE_NAMES = ("error", "error+params", "error+latency", "pareto")
PRESETS = {
    # the article's protocol: 50 trials of 100 epochs on all of CIFAR-10, validated on the test set
    "article": {"trials": 50, "limit_train": None, "limit_val": None, "epochs": 100},
    # about a minute on a laptop CPU: 6 trials of 1 epoch on 1,000 images, small widths
    "smoke": {"trials": 6, "limit_train": 1000, "limit_val": 200, "epochs": 1},
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="architecture search with Optuna (spaces: modules, modules-free, densenet); `search report DIR` for results",
        usage="cnnlab search SPACE [options]\n       cnnlab search report STUDY_DIR_OR_URL [--study NAME] [--top K]",
        description="Search block configurations with Optuna: pruning every epoch, duplicate architectures never "
        "trained twice, any Optuna storage, local and remote workers, resumable. `cnnlab search report` prints the "
        "top-k table and writes history, accuracy-vs-params and importance plots.",
    )
    p.add_argument("space", choices=[*SPACE_NAMES, "report"], metavar="SPACE", help=f"{', '.join(SPACE_NAMES)}, or report")
    p.add_argument("target", nargs="?", default=None, metavar="STUDY_DIR_OR_URL", help="report only: the study to report on")
    p.add_argument("--objective", choices=OBJECTIVE_NAMES, default="error",
                   help="error (article A), error+params (article B), error+latency, pareto (error and a cost)")
    p.add_argument("--cost", choices=["params", "latency"], default="params", help="pareto's second objective")
    p.add_argument("--penalty-weight", type=float, default=0.05, help="penalty per --penalty-scale of cost (article B: 0.05)")
    p.add_argument("--penalty-scale", type=float, default=None, help="cost per penalty weight (default 250000 params or 10 ms)")
    p.add_argument("--latency-batch", type=int, default=1, help="images per timed forward pass")
    p.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median")
    p.add_argument("--trials", type=int, default=None, help="finished trials before the study stops (default 50; smoke 6)")
    p.add_argument("--preset", choices=list(PRESETS), default=None, help="article (default) or smoke")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="fixed model keyword, e.g. widths=32,64,128")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--data-dir", default=None)
    add_limit_options(p)
    p.add_argument("--val-split", type=float, default=None, help="validate on this fraction of train (default: the test set)")
    p.add_argument("--bn-momentum", type=float, default=None, help="BatchNorm momentum, Keras convention (as cnnlab train)")
    p.add_argument("--epochs", type=int, help="epochs per trial (default 100; smoke 1)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--augment", choices=["keras", "standard", "none"])
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    p.add_argument("--out", default=None, help="study directory (default runs/search/SPACE-OBJECTIVE); report: where to write")
    p.add_argument("--study", default=None, help="study name (default SPACE-OBJECTIVE)")
    p.add_argument("--storage", default=None, help="Optuna storage URL shared by workers (postgresql://..., journal:PATH); "
                   "default: an SQLite file in --out")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--resume", action="store_true", help="continue a stopped study, retrying its interrupted trials")
    p.add_argument("--heartbeat", type=int, default=10, help="seconds between heartbeats of a running trial")
    p.add_argument("--grace", type=int, default=None, help="seconds without heartbeat before a trial is retried (default 3x)")
    p.add_argument("--top", type=int, default=10, help="rows of the table")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.space == "report":
        return run_report(args)
    if args.target is not None:
        raise ValueError(f"unexpected argument {args.target!r}: only `cnnlab search report` takes a study directory")
    return run_search_command(args)


def settings_from_args(args: argparse.Namespace):
    """SearchSettings from the command line; every value is checked here, before any training."""
    from ..analysis.compare import parse_args_list
    from ..train import preset
    from .objectives import Objective
    from .spaces import get_space
    from .study import SearchSettings

    space = get_space(args.space)
    name = args.preset or "article"
    extra = PRESETS[name]
    base = preset(name)
    if name == "smoke":  # a few dozen steps: BatchNorm statistics must follow fast, or validation sees the init
        base = base.with_overrides(bn_momentum=0.8, epochs=extra["epochs"])
    train = base.with_overrides(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, augment=args.augment, precision=args.precision,
        seed=args.seed, device=args.device, bn_momentum=args.bn_momentum,
    )
    fixed = {**(space.smoke_fixed if name == "smoke" else {}), **parse_args_list(args.arg)}
    objective = Objective(args.objective, args.penalty_weight, args.penalty_scale, args.cost, args.latency_batch)
    for option in ("limit_train", "limit_val"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ValueError(f"--{option.replace('_', '-')} must be a positive number of images, got {value}")
    return SearchSettings(
        space=args.space, objective=objective, train=train, fixed=fixed,
        trials=args.trials if args.trials is not None else extra["trials"], pruner=args.pruner,
        dataset=args.dataset, data_dir=args.data_dir,
        limit_train=args.limit_train if args.limit_train is not None else extra["limit_train"],
        limit_val=args.limit_val if args.limit_val is not None else extra["limit_val"],
        val_split=args.val_split, out=args.out or f"runs/search/{args.space}-{args.objective}",
        heartbeat=args.heartbeat, grace=args.grace,
    )


def run_search_command(args: argparse.Namespace) -> int:
    from ..train.trainer import resolve_device
    from .report import rows, summary_line, table, write_report
    from .run import run_search
    from .worker import load_data

    settings = settings_from_args(args)
    resolve_device(settings.train.device)  # a missing GPU is an error now, not in every trial
    data = load_data(settings)  # bad dataset options fail here, before the study exists
    print(
        f"search {settings.space} ({settings.objective.describe()}): {settings.trials} trials of {settings.train.epochs} "
        f"epoch(s), {len(data.train)} training / {len(data.val)} validation images, pruner {settings.pruner}, "
        f"{args.workers} local worker(s); study in {settings.out}"
    )
    result = run_search(
        settings, storage=args.storage, study_name=args.study, workers=args.workers, resume=args.resume,
        quiet=args.quiet, data=data if args.workers == 1 else None,
    )
    if result.queued_retries:
        print(f"resumed: retried interrupted trial(s) {result.queued_retries}")
    study = result.load()
    study_rows = rows(study)
    print(table(study_rows, settings, args.top))
    print(summary_line(study, study_rows))
    written = write_report(study, result.out, study_rows)
    print(f"{result.seconds:.1f} s wall time; wrote {', '.join(p.name for p in written)} to {result.out}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    import optuna

    from .report import resolve, rows, summary_line, table, write_report
    from .study import load_settings, open_storage

    if args.target is None:
        raise ValueError("cnnlab search report needs the study directory or storage URL")
    url, name, directory = resolve(args.target, args.study)
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    settings = load_settings(study)
    out = Path(args.out) if args.out else directory or Path(settings.out)
    study_rows = rows(study)
    print(f"study {name}: {settings.space}, objective {settings.objective.describe()}, {settings.train.epochs} epoch(s) a trial")
    print(table(study_rows, settings, args.top))
    print(summary_line(study, study_rows))
    written = write_report(study, out, study_rows)
    print(f"wrote {', '.join(p.name for p in written)} to {out}")
    return 0
