"""``cnnlab explain``: one convolution on tiny numbers, an output cell written out term by term."""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from . import options

LAYERS = ("conv2d", "depthwise", "separable", "transpose")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="compute one convolution on tiny numbers and write an output cell out term by term",
        description="Reproduces article 001's worked examples by default; options change the example. "
        "Sizes are N or H,W. Unset options keep the article's values.",
    )
    p.add_argument("layer", choices=LAYERS, help="which convolution to explain")
    p.add_argument(
        "--cell", type=options.cell, default=None, metavar="Y,X,C", help="output cell to write out (default 0,0,0)"
    )
    p.add_argument(
        "--input-size", type=options.pair, metavar="H,W", help="input height and width (default: the article's example)"
    )
    p.add_argument("--in-channels", type=int, metavar="C", help="input channels (default: the article's example)")
    p.add_argument("--filters", type=int, metavar="M", help="output channels (not for depthwise)")
    p.add_argument(
        "--kernel-size", type=options.pair, metavar="K", help="kernel size, N or H,W (default: the article's 3)"
    )
    p.add_argument("--strides", type=options.pair, metavar="S", help="strides, N or H,W (default: the article's)")
    p.add_argument(
        "--padding",
        choices=["valid", "same"],
        help="Keras padding; same pads the extra row/column at the bottom/right (default: the article's)",
    )
    p.add_argument("--dilation-rate", type=options.pair, metavar="D", help="dilation, N or H,W (default 1)")
    p.add_argument("--depth-multiplier", type=int, metavar="N", help="depthwise and separable only")
    p.add_argument("--output-padding", type=options.pair, metavar="P", help="transpose only")
    p.add_argument(
        "--png", default=None, metavar="FILE.png", help="also draw the cell as a picture: padding, window, output, sums"
    )
    p.add_argument(
        "--gif", default=None, metavar="FILE.gif", help="also animate every output cell in turn, one frame each"
    )
    p.add_argument(
        "--html",
        default=None,
        metavar="FILE.html",
        help="also write one offline page that steps through the cells (arrow keys, clicks) of this "
        "example and article 001's four",
    )
    p.add_argument("--bias", action="store_true", help="give the layer a bias")
    p.add_argument(
        "--fill",
        choices=["arange", "random"],
        help="arange: the article's 1, 2, 3, ... (default); random: small numbers",
    )
    p.add_argument("--seed", type=int, help="seed for --fill random (implies it)")
    p.add_argument("--json", action="store_true", help="print the same content as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.explain import explain, format_text

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
        fill=args.fill,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(e.to_dict(), indent=1))
    else:
        width = max(60, shutil.get_terminal_size((100, 24)).columns)
        print(format_text(e, width=width, times=_times_sign(), everything="--json"))
    written = []
    if args.png or args.gif:
        from ..analysis.explain.pictures import save_gif, save_png

        if args.png:
            written.append(save_png(e, args.png))
        if args.gif:
            written.append(save_gif(e, args.gif, progress=_Progress(f"cnnlab explain: drawing {args.gif}")))
    if args.html:
        from ..analysis.explain.page import save_html

        written.append(save_html(e, args.html))
    for path in written:  # on stderr under --json, which keeps stdout pure JSON
        print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr if args.json else sys.stdout)
    return 0


def _times_sign() -> str:
    """The article's '×' where the terminal can show it, '*' otherwise."""
    try:
        "×".encode(sys.stdout.encoding or "ascii")
        return "×"
    except (UnicodeEncodeError, LookupError):
        return "*"


class _Progress:
    """``frame N/TOTAL`` on stderr: updated in place on a terminal, else a line every tenth."""

    def __init__(self, what: str) -> None:
        self.what, self.tty, self.shown = what, sys.stderr.isatty(), 0

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            sys.stderr.write(f"\r{self.what}: frame {done}/{total}" + ("\n" if done == total else ""))
        elif done == total or done * 10 // total > self.shown:
            self.shown = done * 10 // total
            sys.stderr.write(f"{self.what}: frame {done}/{total}\n")
        sys.stderr.flush()
