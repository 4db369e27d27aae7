"""``cnnlab reproduce STUDY``: rerun an article's experiment."""

from __future__ import annotations

import argparse

from ..reproduce.studies import STUDIES
from . import options


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
        description="Train every case of a study and write results.md/.csv/.json, curves_caseN.png, comparison.png "
        "and accuracy_vs_cost.png into --out. Rerunning the same command resumes: finished cases are skipped, "
        "an interrupted case continues from its checkpoint.",
    )
    p.add_argument("study", choices=list(STUDIES), help="densenet: article 000's six cases; convtypes: article 001's three nets")
    options.add_preset(p, "article: the articles' protocol; fast: our recipe in a third of the epochs; "
                       "quick: ~5 min on a 2-core CPU (default); smoke: 1 epoch on 500 images")
    p.add_argument("--cases", type=_cases, default=None, metavar="N,N", help="only these cases (default: all)")
    options.add_train(p)  # any of the preset's training options, overridden
    options.add_data(p, val_split=False)
    options.add_device(p)
    options.add_launch(p)
    p.add_argument("--out", default=None, help="output directory (default runs/reproduce-STUDY-PRESET)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import DataConfig
    from ..reproduce import reproduce
    from ..reproduce.runner import default_out

    preset = args.preset or "quick"
    out = args.out or default_out(args.study, preset)
    result = reproduce(
        args.study, preset, out, cases=args.cases, quiet=args.quiet,
        data=DataConfig().with_overrides(**options.data_overrides(args)), **options.train_overrides(args, "sync_bn"),
    )
    if not options.main_process():
        return 0  # under torchrun, rank 0 reports
    print()
    print(result.markdown())
    curves = ", ".join(f"curves_case{row.case.number}.png" for row in result.rows)
    print(f"wrote {out}/results.md, results.csv, results.json, comparison.png, accuracy_vs_cost.png, {curves}")
    return 0
