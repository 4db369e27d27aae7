"""The ``cnnlab`` command. It only parses arguments and calls the library; one module per
command family, shared options in ``options``. Nothing in the library imports this package.

    cnnlab explain conv2d                         # article 001's Conv2D example
    cnnlab models 'resnet*'                       # the zoo: params, MACs, depth
    cnnlab summary densenet_cifar --arg growth_rate=32 --input 3x32x32
    cnnlab compare resnet50 mobilenet_v2 xception --plot cost.png
    cnnlab train densenet_cifar --preset fast --epochs 8
    cnnlab reproduce densenet --preset fast --cases 1
    cnnlab search modules --objective error+params --preset smoke
    cnnlab finetune mobilenet_v2 --weights imagenet --data-dir flowers/ --image-size 224
    cnnlab evaluate docs/weights/densenet-case1.pt --tta flip
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .. import __version__
from . import evaluate, explain, export, finetune, models, options, reproduce, search, train

COMMANDS = (explain, models, train, evaluate, reproduce, search, finetune, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description="A laboratory for CNN architectures.")
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of a failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


# Ctrl-C: what continues the work, per command (every checkpoint is written atomically).
CONTINUE = {
    "train": "rerun with --resume to continue from the last finished epoch",
    "finetune": "rerun with --resume to continue from the last finished epoch",
    "reproduce": "rerun the same command to continue: finished cases are kept, the interrupted one resumes",
    "search": "rerun the same command to continue the study",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "nproc", None):
            return options.launch(args, argv)
        return args.run(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        hint = CONTINUE.get(args.command, "nothing was lost")
        sys.stderr.write(f"\ncnnlab {args.command}: interrupted; {hint}\n")
        return 130
    except Exception as error:  # every failure: one line, exit status 2; --debug shows the traceback
        if args.debug:
            raise
        parser.exit(2, f"cnnlab {args.command}: error: {_one_line(error)}\n")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.strerror}: {error.filename}"
    # bad input, missing or damaged files, a full disk, cnnlab's own errors: the message says it all
    speaks = isinstance(error, (ValueError, OSError, LookupError)) or type(error).__module__.startswith("cnnlab")
    return text if speaks else f"{type(error).__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())
