"""The ``cnnlab`` command. Thin: it parses arguments and calls the library.

    cnnlab explain conv2d                         # article 001's Conv2D example
    cnnlab explain transpose --cell 1,2,0         # another output cell
    cnnlab explain separable --in-channels 2 --depth-multiplier 2 --seed 3
    cnnlab explain conv2d --input-size 5,5 --strides 2 --padding same --json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from . import __version__


def _ints(text: str, count: tuple[int, ...], what: str) -> tuple[int, ...] | int:
    """Parse ``"3"`` or ``"3,5"`` (or ``"1,2,0"``) into ints; ``count`` lists accepted lengths."""
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be {' or '.join(map(str, count))} comma-separated ints, got {text!r}")
    if len(values) not in count:
        raise argparse.ArgumentTypeError(f"{what} must be {' or '.join(map(str, count))} comma-separated ints, got {text!r}")
    return values[0] if len(values) == 1 else values


def _size(text: str):
    return _ints(text, (1, 2), "a size")


def _cell(text: str):
    return _ints(text, (3,), "--cell (y,x,channel)")


def _add_explain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="compute one convolution on tiny numbers and write an output cell out term by term",
        description="Reproduces article 001's worked examples by default; options change the example. "
        "Sizes are N or H,W. Unset options keep the article's values.",
    )
    p.add_argument("layer", choices=["conv2d", "depthwise", "separable", "transpose"])
    p.add_argument("--cell", type=_cell, default=None, metavar="Y,X,C", help="output cell to write out (default 0,0,0)")
    p.add_argument("--input-size", type=_size, metavar="H,W")
    p.add_argument("--in-channels", type=int, metavar="C")
    p.add_argument("--filters", type=int, metavar="M", help="output channels (not for depthwise)")
    p.add_argument("--kernel-size", type=_size, metavar="K")
    p.add_argument("--strides", type=_size, metavar="S")
    p.add_argument("--padding", choices=["valid", "same"])
    p.add_argument("--dilation-rate", type=_size, metavar="D")
    p.add_argument("--depth-multiplier", type=int, metavar="N", help="depthwise and separable only")
    p.add_argument("--output-padding", type=_size, metavar="P", help="transpose only")
    p.add_argument("--bias", action="store_true", help="give the layer a bias")
    p.add_argument("--fill", choices=["arange", "random"], help="arange: the article's 1, 2, 3, ... (default); random: small numbers")
    p.add_argument("--seed", type=int, help="seed for --fill random (implies it)")
    p.add_argument("--json", action="store_true", help="print the same content as JSON")
    p.set_defaults(run=_run_explain)


def _run_explain(args: argparse.Namespace) -> int:
    from .analysis.explain import explain, format_text

    fill = args.fill or ("random" if args.seed is not None else None)
    e = explain(
        args.layer,
        cell=args.cell,
        input_size=args.input_size,
        in_channels=args.in_channels,
        filters=args.filters,
        kernel_size=args.kernel_size,
        strides=args.strides,
        padding=args.padding,
        dilation_rate=args.dilation_rate,
        depth_multiplier=args.depth_multiplier,
        output_padding=args.output_padding,
        use_bias=True if args.bias else None,
        fill=fill,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(e.to_dict(), indent=1))
    else:
        print(format_text(e, width=_terminal_width(), times=_times_sign()))
    return 0


def _terminal_width() -> int:
    import shutil

    return max(60, shutil.get_terminal_size((100, 24)).columns)


def _times_sign() -> str:
    """The article's '×' where the terminal can show it, 'x' otherwise."""
    try:
        "×".encode(sys.stdout.encoding or "ascii")
        return "×"
    except (UnicodeEncodeError, LookupError):
        return "*"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description="A laboratory for CNN architectures.")
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_explain(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:  # bad user input: one clear line, no traceback
        parser.exit(2, f"cnnlab {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
