"""The ``cnnlab`` command. Thin: it parses arguments and calls the library.

    cnnlab explain conv2d                         # article 001's Conv2D example
    cnnlab explain transpose --cell 1,2,0         # another output cell
    cnnlab explain separable --in-channels 2 --depth-multiplier 2 --seed 3
    cnnlab explain conv2d --input-size 5,5 --strides 2 --padding same --json
    cnnlab models 'resnet*'                       # the zoo: params, MACs, depth
    cnnlab summary densenet_cifar --arg growth_rate=32 --input 3x32x32
    cnnlab compare resnet50 mobilenet_v2 xception --plot cost.png
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


def _image_size(text: str) -> tuple[int, int]:
    """``--image-size``: N (square) or H,W, positive, always as (H, W) for the image loaders."""
    values = _ints(text, (1, 2), "--image-size")
    h, w = (values, values) if isinstance(values, int) else values
    if min(h, w) < 1:
        raise argparse.ArgumentTypeError(f"--image-size must be N or H,W positive ints, got {text!r}")
    return (h, w)


def add_limit_options(p: argparse.ArgumentParser) -> None:
    """``--limit-train`` / ``--limit-val``, the same for every command that trains."""
    p.add_argument("--limit-train", type=int, default=None, metavar="N", help="class-balanced subset of N training images")
    p.add_argument("--limit-val", type=int, default=None, metavar="N", help="class-balanced subset of N validation images")


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


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the zoo: family, parameters, MACs and depth at each model's default input")
    p.add_argument("pattern", nargs="?", default=None, help="fnmatch pattern, e.g. 'resnet*'")
    p.set_defaults(run=_run_models)

    p = sub.add_parser("summary", help="Keras-style layer table of one model with its parameter and cost totals")
    p.add_argument("name")
    p.add_argument("--input", type=_input_size, default=None, metavar="CxHxW", help="default: the model's own")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="model keyword, e.g. blocks=1,2,4,3")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true")
    fmt.add_argument("--json", action="store_true")
    p.set_defaults(run=_run_summary)

    p = sub.add_parser("compare", help="models side by side; --plot saves MACs vs parameters as PNG (+ CSV, JSON)")
    p.add_argument("specs", nargs="+", metavar="NAME[:KEY=VALUE...]")
    p.add_argument("--input", type=_input_size, default=None, metavar="CxHxW")
    p.add_argument("--plot", default=None, metavar="OUT.png")
    p.set_defaults(run=_run_compare)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on CIFAR-10/100 or an image folder; history, curves, checkpoints")
    p.add_argument("model")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="model keyword, e.g. growth_rate=32")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100, or a name for --data-dir's image folder")
    p.add_argument("--data-dir", default=None, help="local copy: official archive, its folder, an image-folder tree or tar")
    p.add_argument("--preset", default=None, help="start from a preset (article, smoke)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"])
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["constant", "cosine", "onecycle"])
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--augment", choices=["keras", "standard", "none"])
    p.add_argument("--cutout", type=int)
    p.add_argument("--bn-momentum", type=float, help="BatchNorm momentum, Keras convention (default 0.9, PyTorch's 0.1; the article preset: Keras's 0.99)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16", "auto"], help="auto: bf16 where the device computes it natively")
    p.add_argument("--tta", choices=["none", "flip"], help="also measure flip test-time augmentation each epoch")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None, help="NHWC memory format (default on)")
    p.add_argument("--compile", action="store_true", default=None)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    add_limit_options(p)
    p.add_argument("--val-split", type=float, default=None, help="validate on this fraction of train (default: the test set)")
    p.add_argument("--image-size", type=_image_size, default=None, metavar="N|H,W", help="resize image-folder images")
    p.add_argument("--out", default=None, help="run directory (default runs/MODEL)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    p.set_defaults(run=_run_train)

    p = sub.add_parser("evaluate", help="loss, accuracy, per-class accuracy and confusion matrix of a trained run")
    p.add_argument("run_path", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="confusion matrix (default RUN_DIR/confusion.png)")
    p.add_argument("--tta", choices=["none", "flip"], default="none", help="flip: also report accuracy with horizontal-flip test-time augmentation")
    p.set_defaults(run=_run_evaluate)

    p = sub.add_parser("predict", help="top-5 classes of image files with a trained run")
    p.add_argument("run_path", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("images", nargs="+")
    p.add_argument("--device", default="auto")
    p.set_defaults(run=_run_predict)


def _run_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .analysis.compare import parse_args_list
    from .train import TrainConfig, preset
    from .train.run import train_model

    base = preset(args.preset) if args.preset else TrainConfig()
    config = base.with_overrides(
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing, augment=args.augment, cutout=args.cutout, precision=args.precision,
        channels_last=args.channels_last, compile=args.compile, seed=args.seed, device=args.device,
        bn_momentum=args.bn_momentum, tta=args.tta,
    )
    out = Path(args.out or Path("runs") / args.model)
    history, data = train_model(
        args.model, parse_args_list(args.arg), config, out, args.dataset, args.data_dir, args.val_split,
        args.limit_train, args.image_size, args.resume, args.quiet, args.limit_val,
    )
    print(f"\n{args.model} on {data.source}: {len(data.train)} training images, validation = {data.validation}")
    print(history.table())
    summary = history.summary()
    print(
        f"best val acc {summary['best_val_acc']:.2%} (epoch {summary['best_epoch']}); "
        f"{summary['seconds_per_epoch_median']:.1f} s/epoch (median), {summary['images_per_s_median']:.0f} img/s"
    )
    print(f"wrote {out}/history.json, history.csv, curves.png, last.pt, best.pt")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .train.run import evaluate_run

    path = Path(args.run_path)
    if args.plot:
        png = Path(args.plot)
    elif path.is_dir() or path.name in ("last.pt", "best.pt"):  # a run: beside its checkpoints
        png = (path if path.is_dir() else path.parent) / "confusion.png"
    else:  # a weights file: beside it, named after it
        png = path.with_name(f"{path.stem}-confusion.png")
    result = evaluate_run(args.run_path, args.dataset, args.data_dir, args.device, png, tta=args.tta)
    print(f"{result['images']} test images: loss {result['loss']:.4f}, accuracy {result['accuracy']:.2%}")
    if "accuracy_tta" in result:
        print(f"with {result['tta']} test-time augmentation: loss {result['loss_tta']:.4f}, accuracy {result['accuracy_tta']:.2%}")
    for name, acc in result["per_class_accuracy"].items():
        print(f"  {name:<16} {acc:7.2%}")
    print(f"wrote {png} and {png.with_suffix('.json')}")
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from .train.run import predict_images

    for result in predict_images(args.run_path, args.images, args.device):
        print(result["image"])
        for name, p in result["top"]:
            print(f"  {p:7.2%}  {name}")
    return 0


def _input_size(text: str):
    from .analysis.summary import parse_input_size

    try:
        return parse_input_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))


def _run_models(args: argparse.Namespace) -> int:
    from .analysis.summary import human, model_summary
    from .models import get_model_entry, list_models

    names = list_models(args.pattern)
    if not names:
        raise ValueError(f"no model matches {args.pattern!r}; see `cnnlab models`")
    rows = []
    for name in names:
        entry = get_model_entry(name)
        s = model_summary(name)
        size = "x".join(map(str, entry.input_size))
        rows.append((name, entry.family, f"{s.total_params:,}", human(s.macs), str(s.depth), size, entry.description))
    header = ("model", "family", "params", "MACs", "depth", "input", "description")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    right = {2, 3, 4}
    for row in [header, *rows]:
        print("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    print(f"\n{len(rows)} models; params in the Keras convention (BatchNorm statistics included).")
    return 0


def _run_summary(args: argparse.Namespace) -> int:
    from .analysis.compare import parse_args_list
    from .analysis.summary import model_summary

    s = model_summary(args.name, args.input, **parse_args_list(args.arg))
    print(s.to_json() if args.json else s.to_markdown() if args.markdown else s)
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    from .analysis.compare import compare

    result = compare(args.specs, args.input)
    print(result.table())
    if args.plot:
        for path in result.save(args.plot):
            print(f"wrote {path}")
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
    _add_models(sub)
    _add_train(sub)
    # Each later command family registers itself here with one line:
    from .reproduce.cli import register as register_reproduce  # issue 5

    register_reproduce(sub)
    from .search.cli import register as register_search  # issue 6

    register_search(sub)
    from .transfer.cli import register as register_transfer  # issue 7 (finetune, export)

    register_transfer(sub)
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
