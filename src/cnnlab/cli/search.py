"""``cnnlab search``: run an architecture search, or report on one.

cnnlab search modules --objective error+params --preset smoke          # about a minute on a CPU
cnnlab search modules --objective error+params --epochs 20 --workers 2 --out runs/search/b
cnnlab search modules-free --objective pareto --cost latency --storage postgresql://me@db/optuna --study free
cnnlab search report runs/search/b --top 5
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import traceback

from . import options

# the choices, without importing optuna for `cnnlab --help` (checked against the library's tables by a test)
SPACE_NAMES = ("modules", "modules-free", "densenet")
OBJECTIVE_NAMES = ("error", "error+params", "error+latency", "pareto")
PRUNER_NAMES = ("median", "hyperband", "none")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="architecture search with Optuna (spaces: modules, modules-free, densenet); "
        "`search report DIR` for results",
        usage="cnnlab search SPACE [options]\n       cnnlab search report STUDY_DIR_OR_URL [--study NAME] [--top K]",
        description="Search block configurations with Optuna: pruning every epoch, duplicate architectures never "
        "trained twice, any Optuna storage, local and remote workers, resumable. `cnnlab search report` prints the "
        "top-k table and writes history, accuracy-vs-params and importance plots.",
    )
    p.add_argument(
        "space", choices=[*SPACE_NAMES, "report"], metavar="SPACE", help=f"{', '.join(SPACE_NAMES)}, or report"
    )
    p.add_argument(
        "target", nargs="?", default=None, metavar="STUDY_DIR_OR_URL", help="report only: the study to report on"
    )
    p.add_argument(
        "--objective",
        choices=OBJECTIVE_NAMES,
        default=None,
        help="error (article A, default), error+params (article B), error+latency, pareto (error and a cost)",
    )
    p.add_argument(
        "--cost", choices=["params", "latency"], default=None, help="pareto's second objective (default params)"
    )
    p.add_argument(
        "--penalty-weight",
        type=float,
        default=None,
        help="penalty per --penalty-scale of cost (article B: 0.05, the default)",
    )
    p.add_argument(
        "--penalty-scale", type=float, default=None, help="cost per penalty weight (default 250000 params or 10 ms)"
    )
    p.add_argument("--latency-batch", type=int, default=None, help="images per timed forward pass (default 1)")
    p.add_argument("--pruner", choices=PRUNER_NAMES, default=None, help="default median")
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="finished trials before the study stops (default 50; 6 with --preset smoke)",
    )
    options.add_preset(p, "article (default) or smoke; any preset's training options and subset sizes")
    options.add_model_args(
        p, "model argument, not searched (a searched one given here is fixed), e.g. widths=32,64,128"
    )
    options.add_data(p)
    options.add_train(p, ("bn_momentum", "epochs", "batch_size", "lr", "augment", "precision", "seed"))
    options.add_device(p)
    p.add_argument(
        "--out", default=None, help="study directory (default runs/search/SPACE-OBJECTIVE); report: where to write"
    )
    p.add_argument("--study", default=None, help="study name (default SPACE-OBJECTIVE)")
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL shared by workers (postgresql://..., journal:PATH); default: an SQLite file in --out",
    )
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--resume", action="store_true", help="continue a stopped study, retrying its interrupted trials")
    p.add_argument(
        "--heartbeat", type=int, default=None, help="seconds between heartbeats of a running trial (default 10)"
    )
    p.add_argument(
        "--grace", type=int, default=None, help="seconds without heartbeat before a trial is retried (default 3x)"
    )
    p.add_argument(
        "--top", type=options.at_least("--top", 1, "a positive number of rows"), default=10, help="rows of the table"
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.space == "report":
        return run_report(args)
    if args.target is not None:
        raise ValueError(f"unexpected argument {args.target!r}: only `cnnlab search report` takes a study directory")
    return run_search_command(args)


def settings_from_args(args: argparse.Namespace):
    """SearchSettings from the command line; every value is checked by the library, before any training."""
    from ..data import DataConfig
    from ..models.arguments import parse_model_args
    from ..search.objectives import Objective
    from ..search.study import SearchSettings

    objective = Objective(
        args.objective or "error",
        **options.given(
            weight=args.penalty_weight,
            scale=args.penalty_scale,
            cost=args.cost,
            latency_batch=args.latency_batch,
        ),
    )
    return SearchSettings.from_preset(
        args.preset or "article",
        space=args.space,
        objective=objective,
        train=options.train_overrides(args),
        data=DataConfig().with_overrides(**options.data_overrides(args)),
        model_args=parse_model_args(args.arg),
        trials=args.trials,
        **options.given(pruner=args.pruner, out=args.out, heartbeat=args.heartbeat, grace=args.grace),
    )


def run_search_command(args: argparse.Namespace) -> int:
    """The search; Ctrl-C or SIGTERM ends it with one line saying how to continue (exit 130 or 143)."""
    settings = settings_from_args(args)
    received: list[int] = []
    try:
        with _sigterm_as_interrupt(received):
            return _search(args, settings)
    except KeyboardInterrupt as stop:
        if args.debug:
            traceback.print_exc()
        # the signal: the search's workers pass it on (KeyboardInterrupt(signum)); else ours, or Ctrl-C's
        signum = (
            stop.args[0] if stop.args and isinstance(stop.args[0], int) else received[0] if received else signal.SIGINT
        )
        by = " by SIGTERM" if signum == signal.SIGTERM else ""
        sys.stderr.write(f"\ncnnlab search: interrupted{by}; {_resume_hint(args, settings)}\n")
        return 128 + signum


@contextlib.contextmanager
def _sigterm_as_interrupt(received: list[int]):
    """SIGTERM (a scheduler, `kill`) stops the search as Ctrl-C does: the running trial is recorded as
    interrupted, files being written are finished or left as they were."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _resume_hint(args: argparse.Namespace, settings) -> str:
    from ..search.run import default_study_name
    from ..search.stored import stored_study_names
    from ..search.study import default_storage

    name = args.study or default_study_name(settings)
    with contextlib.suppress(Exception):  # read only: an interrupted search never creates its study here
        if name in stored_study_names(args.storage or default_storage(settings.out)):
            return (
                f"rerun the same command with --resume to continue study {name!r} "
                "(finished trials are kept, the interrupted one runs again)"
            )
    return "the study was not created yet; rerun the same command"


def _search(args: argparse.Namespace, settings) -> int:
    from ..search.report import rows, summary_line, table, write_report
    from ..search.run import prepare_search, run_search

    data = prepare_search(
        settings, args.study
    )  # a bad --arg, a missing GPU or bad data fails here, before the study exists
    print(
        f"search {settings.space} ({settings.objective.describe()}): "
        f"{settings.trials} trials of {settings.train.epochs} "
        f"epoch(s), {len(data.train)} training / {len(data.val)} validation images, pruner {settings.pruner}, "
        f"{args.workers} local worker(s); study in {settings.out}"
    )
    result = run_search(
        settings,
        storage=args.storage,
        study_name=args.study,
        workers=args.workers,
        resume=args.resume,
        quiet=args.quiet,
        data=data if args.workers == 1 else None,
    )
    if result.queued_retries:
        print(f"resumed: retried interrupted trial(s) {result.queued_retries}")
    study = result.load()
    study_rows = rows(study)
    print(table(study_rows, settings, args.top))
    print(summary_line(study, study_rows))
    written = write_report(study, result.out, study_rows)
    print(f"{result.seconds:.1f} s wall time; wrote {', '.join(p.name for p in written)} to {result.out}")
    if result.dead_workers:  # the others finished the study: the report stands, the loss is said
        print(
            f"note: worker(s) {', '.join(result.dead_workers)} stopped with an error (see {result.out}/logs); "
            "the other workers finished the study"
        )
    return 0


def run_report(args: argparse.Namespace) -> int:
    from ..search.report import open_report, rows, summary_line, table, write_report

    if args.target is None:
        raise ValueError("cnnlab search report needs the study directory or storage URL")
    study, settings, out = open_report(args.target, args.study, args.out)
    study_rows = rows(study)
    print(
        f"study {study.study_name}: {settings.space}, objective {settings.objective.describe()}, "
        f"{settings.train.epochs} epoch(s) a trial"
    )
    print(table(study_rows, settings, args.top))
    print(summary_line(study, study_rows))
    written = write_report(study, out, study_rows)
    print(f"wrote {', '.join(p.name for p in written)} to {out}")
    return 0
