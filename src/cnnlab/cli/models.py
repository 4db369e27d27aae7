"""``cnnlab models``, ``cnnlab summary`` and ``cnnlab compare``: the zoo and what each model costs."""

from __future__ import annotations

import argparse

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        aliases=["list"],
        help="list the zoo: family, parameters, MACs and depth at each model's default input (cnnlab list: the same)",
    )
    p.add_argument("pattern", nargs="?", default=None, help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="only the models with published ImageNet weights, and which (create_model(name, pretrained=True))",
    )
    p.set_defaults(run=run_models)

    p = sub.add_parser("summary", help="Keras-style layer table of one model with its parameter and cost totals")
    p.add_argument("name", help="a registered model (cnnlab models lists them)")
    p.add_argument("--input", type=options.input_size, default=None, metavar="CxHxW", help="default: the model's own")
    options.add_model_args(p, "model argument, e.g. blocks=1,2,4,3")
    p.add_argument(
        "--depth",
        type=int,
        default=None,
        metavar="N",
        help="one row per module at most N levels deep, its parts summed (default: every layer)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    fmt.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--html",
        default=None,
        metavar="FILE.html",
        help="also write an offline page: the ledger as a sortable table, the cost per stage as bars",
    )
    p.set_defaults(run=run_summary)

    p = sub.add_parser("compare", help="models side by side; --plot saves MACs vs parameters as PNG (+ CSV, JSON)")
    p.add_argument(
        "specs",
        nargs="+",
        metavar="MODEL[:NAME=VALUE...]",
        help="models; arguments for one model after its name (densenet_cifar:growth_rate=32)",
    )
    options.add_model_args(p, "model argument for every model, as in the other commands (num_classes=10)")
    p.add_argument(
        "--input",
        type=options.input_size,
        default=None,
        metavar="CxHxW",
        help="one input size for all (default: each model's own)",
    )
    p.add_argument(
        "--plot", default=None, metavar="OUT.png", help="MACs against parameters as PNG, with OUT.csv and OUT.json"
    )
    p.set_defaults(run=run_compare)


def run_models(args: argparse.Namespace) -> int:
    from ..analysis.zoo import zoo_table

    print(zoo_table(args.pattern, pretrained=args.pretrained))
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from ..analysis.summary import model_summary
    from ..models.arguments import parse_model_args

    s = model_summary(args.name, args.input, depth=args.depth, **parse_model_args(args.arg))
    print(s.to_json() if args.json else s.to_markdown() if args.markdown else s)
    if args.html:
        import sys

        from ..analysis.summary_page import save_html

        path = save_html(s, args.html)
        print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr if args.json else sys.stdout)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from ..analysis.compare import compare
    from ..models.arguments import parse_model_args

    result = compare(args.specs, args.input, parse_model_args(args.arg))
    print(result.table())
    if args.plot:
        for path in result.save(args.plot):
            print(f"wrote {path}")
    return 0
