"""``cnnlab reproduce STUDY``: the command-line face of ``cnnlab.reproduce``."""

from __future__ import annotations

import argparse

from ..cli import add_limit_options

STUDY_NAMES = ("densenet", "convtypes")  # kept in step with studies.STUDIES by a test
PRESET_NAMES = ("article", "fast", "quick", "smoke")


def _cases(text: str) -> list[int]:
    try:
        numbers = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cases takes case numbers like 2,3; got {text!r}")
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
    p.add_argument("study", choices=STUDY_NAMES)
    p.add_argument("--preset", default="quick", choices=PRESET_NAMES,
                   help="article: the articles' protocol; fast: our recipe in a third of the epochs; "
                   "quick: ~5 min on a 2-core CPU; smoke: 1 epoch on 500 images (default: quick)")
    p.add_argument("--cases", type=_cases, default=None, metavar="N,N", help="only these cases (default: all)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    add_limit_options(p)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--data-dir", default=None, help="local copy: official archive, its folder, an image-folder tree or tar")
    p.add_argument("--out", default=None, help="output directory (default runs/reproduce-STUDY-PRESET)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from . import reproduce

    result = reproduce(
        args.study, args.preset, args.out, args.cases, args.epochs, args.limit_train, args.limit_val,
        args.device, args.dataset, args.data_dir, args.quiet,
    )
    out = args.out or f"runs/reproduce-{args.study}-{args.preset}"
    print()
    print(result.markdown())
    print(f"wrote {out}/results.md, results.csv, results.json, comparison.png, accuracy_vs_cost.png, curves_caseN.png")
    return 0
