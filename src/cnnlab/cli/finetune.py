"""``cnnlab finetune``: fine-tune a pretrained model on an image folder.

cnnlab finetune mobilenet_v2 --weights imagenet --data-dir flowers/ --image-size 224 --epochs 10 --freeze-epochs 3
cnnlab finetune resnet18 --arg stem=cifar --weights runs/r18 --data-dir pets.tar --val-split 0.2
cnnlab finetune resnet50 --weights imagenet --data-dir photos/ --cache-size 256 --image-size 224
cnnlab finetune --resume runs/finetune-resnet50      # continue it from its config.json
"""

from __future__ import annotations

import argparse

from ..presets import get_preset
from . import options, resume

TRAIN = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "augment", "bn_momentum", "seed")


def register(sub: argparse._SubParsersAction) -> None:
    defaults = get_preset("finetune").train
    p = sub.add_parser(
        "finetune",
        help="fine-tune a pretrained model on an image folder: new head, head-only epochs, then the whole network",
        description="The image folder holds train/<class>/* and val/<class>/* (or test/<class>/*), or class folders "
        "with --val-split. The run directory is an ordinary training run: history, curves, checkpoints, --resume. "
        f"Unset training options take the `finetune` preset's values ({defaults.epochs} epochs, batch "
        f"{defaults.batch_size}, {defaults.optimizer} {defaults.lr:g}, augmentation {defaults.augment}: random-resized "
        "crop + flip from 128 px, else pad-crop-flip). --weights imagenet builds the model in the published weights' "
        "flavour (resnet18: torchvision's) and feeds it images normalised as they were trained (their mean/std, "
        "recorded in the run: evaluate and predict apply it too).",
    )
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        help="a registered model (cnnlab models lists them); with --resume DIR: the run's own",
    )
    p.add_argument(
        "--weights",
        default=None,
        metavar="PATH|imagenet|none",
        help="required: 'imagenet' (published weights, cached), a Keras .h5/.weights.h5, a cnnlab run or .pt, "
        "a torchvision .pth state dict, or 'none' (random initialisation)",
    )
    p.add_argument("--data-dir", default=None, help="required: the image folder (directory or tar)")
    options.add_image_options(p)
    p.add_argument(
        "--freeze-epochs",
        type=int,
        default=None,
        metavar="M",
        help="train only the new head for the first M epochs (default 1)",
    )
    options.add_model_args(p, "model keyword, e.g. stride_on=1x1")
    p.add_argument(
        "--stride-on",
        choices=["1x1", "3x3"],
        default=None,
        help="ResNet from a weights-only Keras file: where its stride sits (keras.applications: 1x1)",
    )
    options.add_train(p, TRAIN, defaults=defaults)
    options.add_device(p)
    options.add_launch(p)
    p.add_argument("--val-split", type=float, default=None, help="validate on this fraction of train")
    options.add_limits(p)
    options.add_run_output(p, "runs/finetune-MODEL")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..models.arguments import parse_model_args
    from ..train.rundir import default_run_dir
    from ..transfer.finetune import finetune
    from .train import warn_batch

    if args.resume:
        model, weights, model_args, data, train, out, kept = _resumed(args)
    else:
        missing = [
            flag
            for flag, value in (("a model", args.model), ("--weights", args.weights), ("--data-dir", args.data_dir))
            if value is None
        ]
        if missing:
            raise ValueError(f"finetune needs {', '.join(missing)} (or --resume DIR to continue a run)")
        model, weights, model_args, out = (
            args.model,
            args.weights,
            parse_model_args(args.arg),
            args.out or default_run_dir(args.model, "finetune"),
        )
        data, train = _configs(args)
        kept = options.given(freeze_epochs=args.freeze_epochs, stride_on=args.stride_on)
    args.run_dir = out  # what Ctrl-C's message names
    result = finetune(
        model,
        None if weights == "none" else weights,
        out,
        data=data,
        train=train,
        model_args=model_args,
        resume=bool(args.resume),
        overwrite=args.overwrite,
        quiet=args.quiet,
        on_data=lambda splits: warn_batch(args.command, train, splits),
        **kept,
    )
    if not options.main_process():
        return 0  # under torchrun, rank 0 reports
    history, splits = result.history, result.data
    freeze_epochs = history.info["freeze_epochs"]
    print(
        f"\n{model} fine-tuned on {splits.source}: {len(splits.train)} training images, {len(splits.classes)} classes, "
        f"validation = {splits.validation}; head only for {freeze_epochs} epoch(s), then the whole network"
    )
    print(history.table())
    summary = history.summary()
    print(f"best val acc {summary['best_val_acc']:.2%} (epoch {summary['best_epoch']})")
    print(f"wrote {out}/history.json, history.csv, curves.png, last.pt, best.pt")
    return 0


def _configs(args: argparse.Namespace):
    from ..data import DataConfig

    train = get_preset("finetune").train_config(**options.train_overrides(args, "sync_bn"))
    return DataConfig("folder").with_overrides(**options.data_overrides(args)), train


def _resumed(args: argparse.Namespace):
    """A fine-tuning continued from its directory: everything from its config.json."""
    from ..train.rundir import default_run_dir

    out = resume.run_directory(args, default_run_dir(args.model, "finetune") if args.model else None)
    if out is None:
        raise ValueError("--resume needs the run directory: --resume DIR")
    record = resume.read_record(out, "finetune")
    given = {
        **resume.model_given(args, record),
        **resume.train_given(args, record, "sync_bn"),
        **resume.data_given(args, record),
        "--freeze-epochs": (args.freeze_epochs, record.get("freeze_epochs")),
    }
    resume.check_given(out, given)
    if args.weights is not None and not _same_weights(args.weights, str(record.get("weights", ""))):
        raise ValueError(
            f"cannot resume {out} with --weights {args.weights}: it was started from {record.get('weights')}. "
            "Leave --weights out (the checkpoint holds every weight), or pass --overwrite to start afresh there"
        )
    kept = {"freeze_epochs": record.get("freeze_epochs", 1)}
    return (
        record["model"],
        None,
        resume.model_args(record),
        resume.resumed_data(args, record),
        resume.resumed_train(args, record),
        out,
        kept,
    )


def _same_weights(given: str, recorded: str) -> bool:
    """Whether ``--weights`` names what the run recorded it started from."""
    if given in ("imagenet", "none"):
        return recorded.startswith(given)
    return given.rstrip("/") in recorded
