"""The ``cnnlab`` command. It only parses arguments and calls the library; one module per
command family, shared options in ``options``. Nothing in the library imports this package.

    cnnlab explain conv2d                         # article 001's Conv2D example
    cnnlab models 'resnet*'                       # the zoo: params, MACs, depth (also: cnnlab list)
    cnnlab summary densenet_cifar --arg growth_rate=32 --input 3x32x32
    cnnlab compare resnet50 mobilenet_v2 xception --plot cost.png
    cnnlab train densenet_cifar --preset fast --epochs 8 --out runs/dn8
    cnnlab train --resume runs/dn8                # continue it, from its directory alone
    cnnlab reproduce densenet --preset fast --cases 1
    cnnlab search modules --objective error+params --preset smoke
    cnnlab finetune mobilenet_v2 --weights imagenet --data-dir flowers/ --image-size 224
    cnnlab evaluate docs/weights/densenet-case1.pt --tta flip
    cnnlab predict runs/dn8 photos/ --top-k 3 --json

Every failure is one line on stderr and exit status 2 (``--debug`` adds the traceback before
it); Ctrl-C exits 130 and says how to continue.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..version import __version__
from . import evaluate, explain, export, finetune, inspect, models, options, predict, reproduce, search, train
from .datasets import looking_in_the_checkout
from .flags import in_flags

COMMANDS = (explain, models, train, evaluate, predict, inspect, reproduce, search, finetune, export)
# the commands that train: their CPU runs have glibc keep freed memory (cnnlab/train/host.py)
TRAINING = ("train", "reproduce", "search", "finetune")

# Library warnings cnnlab triggers that say nothing to do about (the output stays the lines it promises):
# matplotlib drawing a class name its font lacks a glyph for (the figure is written with a box
# in its place), and torch reading a checkpoint written with another pickle protocol (it reads
# it, or fails: cnnlab then says what the file is).
QUIET_WARNINGS = (
    (r"Glyph \d+ .* missing from (current )?font", UserWarning),
    (r"Detected pickle protocol \d+ in the checkpoint", UserWarning),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description="A laboratory for CNN architectures.")
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of a failure (the exit status stays 2)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = negative_values(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    args.started = time.time()
    if args.command in TRAINING:
        from ..train.host import tune_allocator

        tune_allocator()  # CNNLAB_MALLOC_TUNING=0 says no
    try:
        with warnings.catch_warnings(), looking_in_the_checkout():  # CIFAR-10 from ../shared/datasets, if there
            for message, category in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            if getattr(args, "nproc", None):
                return options.launch(args, argv)
            return args.run(args)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"\ncnnlab {args.command}: interrupted; {continue_hint(args)}\n")
        return 130
    except Exception as error:  # every failure: one line, exit status 2; --debug shows the traceback first
        if args.debug:
            traceback.print_exc()
        parser.exit(2, f"cnnlab {args.command}: error: {_one_line(error)}\n")


def negative_values(argv: list[str]) -> list[str]:
    """``--cell -1,0,0`` or ``--lr -1e-3``: a value that starts with a minus sign is the option's
    value, not an option (argparse takes only plain negative numbers so), so that the command
    says what is wrong with it instead of "expected one argument"."""
    out: list[str] = []
    for item in argv:
        if out and re.fullmatch(r"-\.?\d[\d.,xXeE+-]*", item) and re.fullmatch(r"--[a-z][a-z0-9-]*", out[-1]):
            out[-1] = f"{out[-1]}={item}"
        else:
            out.append(item)
    return out


def continue_hint(args: argparse.Namespace) -> str:
    """What continues the work after Ctrl-C (every checkpoint is written atomically): --resume
    only where a finished epoch was saved, else the same command again."""
    run_dir = getattr(args, "run_dir", None)
    if args.command in ("train", "finetune"):
        last = Path(run_dir, "last.pt") if run_dir is not None else None
        if last is not None and last.is_file() and (args.resume or last.stat().st_mtime >= args.started):
            return f"continue from the last finished epoch with: cnnlab {args.command} --resume {run_dir}"
        return "no epoch had finished, so there is nothing to resume: rerun the same command to start again"
    if args.command == "reproduce":
        if run_dir is not None and Path(run_dir, "plan.json").is_file():
            return (
                f"continue with: cnnlab reproduce --resume {run_dir} (or the same command): finished cases are "
                "kept, the interrupted one resumes from its last finished epoch"
            )
        return "nothing was started yet: rerun the same command"
    if args.command == "search":
        if getattr(args, "space", None) == "report":
            return "nothing was lost: a report only reads"
        return (
            "nothing was lost: rerun the same command with --resume to continue the study "
            "(without --resume if it had not been created yet)"
        )
    return "nothing was lost"


def _one_line(error: BaseException) -> str:
    """The error in one line, the library's parameters said as this command's flags (``flags.in_flags``)."""
    text = in_flags(" ".join(str(error).split())) or type(error).__name__
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = in_flags(f"{error.strerror}: {error.filename}")
    # bad input, missing or damaged files, a full disk, cnnlab's own errors: the message says it all
    speaks = isinstance(error, (ValueError, OSError, LookupError)) or type(error).__module__.startswith("cnnlab")
    return text if speaks else f"{type(error).__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())
