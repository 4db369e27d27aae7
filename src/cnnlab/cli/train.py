"""``cnnlab train``: train a model on CIFAR-10/100 or an image folder."""

from __future__ import annotations

import argparse

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on CIFAR-10/100 or an image folder; history, curves, checkpoints")
    p.add_argument("model", help="a registered model (cnnlab models lists them)")
    options.add_model_args(p)
    options.add_data(p, size=True)
    options.add_preset(p, "start from a preset's training options and subset sizes (options given here override it)")
    options.add_train(p)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None, help="NHWC memory format (default on)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model (default off)")
    options.add_device(p)
    options.add_launch(p)
    options.add_run_output(p, "runs/MODEL")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import DataConfig
    from ..models.arguments import parse_model_args
    from ..presets import get_preset
    from ..train import TrainConfig, run_training
    from ..train.rundir import default_run_dir

    preset = get_preset(args.preset) if args.preset else None
    train = (preset.train if preset else TrainConfig()).with_overrides(
        **options.train_overrides(args, "channels_last", "compile", "sync_bn")
    )
    data = (preset.data if preset else DataConfig()).with_overrides(**options.data_overrides(args))
    out = args.out or default_run_dir(args.model)
    result = run_training(
        args.model, parse_model_args(args.arg), data=data, train=train, out_dir=out, resume=args.resume,
        overwrite=args.overwrite, quiet=args.quiet,
    )
    history, splits = result.history, result.data
    if not options.main_process():
        return 0  # under torchrun, rank 0 reports
    print(f"\n{args.model} on {splits.source}: {len(splits.train)} training images, validation = {splits.validation}")
    print(history.table())
    summary = history.summary()
    print(
        f"best val acc {summary['best_val_acc']:.2%} (epoch {summary['best_epoch']}); "
        f"{summary['seconds_per_epoch_median']:.1f} s/epoch (median), {summary['images_per_s_median']:.0f} img/s"
    )
    print(f"wrote {out}/history.json, history.csv, curves.png, last.pt, best.pt")
    return 0
