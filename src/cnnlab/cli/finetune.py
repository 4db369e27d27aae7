"""``cnnlab finetune``: fine-tune a pretrained model on an image folder.

    cnnlab finetune mobilenet_v2 --weights imagenet --data-dir flowers/ --image-size 224 --epochs 10 --freeze-epochs 3
    cnnlab finetune resnet18 --arg stem=cifar --weights runs/r18 --data-dir pets.tar --val-split 0.2
    cnnlab finetune resnet50 --weights imagenet --data-dir photos/ --cache-size 256 --image-size 224
"""

from __future__ import annotations

import argparse

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a pretrained model on an image folder: new head, head-only epochs, then the whole network",
        description="The image folder holds train/<class>/* and val/<class>/* (or test/<class>/*), or class folders "
        "with --val-split. The run directory is an ordinary training run: history, curves, checkpoints, --resume. "
        "Unset training options take the `finetune` preset's values (5 epochs, Adam 1e-3, random-resized crop + flip from 128 px, else pad-crop-flip).",
    )
    p.add_argument("model", help="a registered model (cnnlab models lists them)")
    p.add_argument("--weights", required=True, metavar="PATH|imagenet|none",
                   help="'imagenet' (published weights, cached), a Keras .h5/.weights.h5, a cnnlab run or .pt, "
                        "a torchvision .pth state dict, or 'none' (random initialisation)")
    p.add_argument("--data-dir", required=True, help="image folder (directory or tar)")
    options.add_image_options(p)
    p.add_argument("--freeze-epochs", type=int, default=None, metavar="M", help="train only the new head for the first M epochs (default 1)")
    options.add_model_args(p, "model keyword, e.g. stride_on=1x1")
    p.add_argument("--stride-on", choices=["1x1", "3x3"], default=None,
                   help="ResNet from a weights-only Keras file: where its stride sits (keras.applications: 1x1)")
    options.add_train(p, ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "augment", "bn_momentum", "seed"))
    options.add_device(p)
    options.add_launch(p)
    p.add_argument("--val-split", type=float, default=None, help="validate on this fraction of train")
    options.add_limits(p)
    options.add_run_output(p, "runs/finetune-MODEL")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import DataConfig
    from ..models.arguments import parse_model_args
    from ..presets import get_preset
    from ..train.rundir import default_run_dir
    from ..transfer.finetune import finetune

    train = get_preset("finetune").train.with_overrides(**options.train_overrides(args, "sync_bn"))
    data = DataConfig("folder").with_overrides(**options.data_overrides(args))
    out = args.out or default_run_dir(args.model, "finetune")
    result = finetune(
        args.model, None if args.weights == "none" else args.weights, out, data=data, train=train,
        model_args=parse_model_args(args.arg), resume=args.resume, overwrite=args.overwrite,
        quiet=args.quiet, **options.given(freeze_epochs=args.freeze_epochs, stride_on=args.stride_on),
    )
    if not options.main_process():
        return 0  # under torchrun, rank 0 reports
    history, splits = result.history, result.data
    freeze_epochs = history.info["freeze_epochs"]
    print(f"\n{args.model} fine-tuned on {splits.source}: {len(splits.train)} training images, {len(splits.classes)} classes, "
          f"validation = {splits.validation}; head only for {freeze_epochs} epoch(s), then the whole network")
    print(history.table())
    summary = history.summary()
    print(f"best val acc {summary['best_val_acc']:.2%} (epoch {summary['best_epoch']})")
    print(f"wrote {out}/history.json, history.csv, curves.png, last.pt, best.pt")
    return 0
