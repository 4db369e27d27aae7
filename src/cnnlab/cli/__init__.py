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
from . import evaluate, explain, export, finetune, models, reproduce, search, train

COMMANDS = (explain, models, train, evaluate, reproduce, search, finetune, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description="A laboratory for CNN architectures.")
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:  # bad input: one clear line, no traceback
        parser.exit(2, f"cnnlab {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
