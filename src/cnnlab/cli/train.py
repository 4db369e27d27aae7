"""``cnnlab train``: train a model on CIFAR-10/100 or an image folder.

cnnlab train densenet_cifar --preset fast --epochs 8 --out runs/dn8
cnnlab train --resume runs/dn8                  # continue it: model, data and options from its config.json
cnnlab train --resume runs/dn8 --epochs 16      # extend the finished run
"""

from __future__ import annotations

import argparse

from . import options, resume


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on CIFAR-10/100 or an image folder; history, curves, checkpoints")
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        help="a registered model (cnnlab models lists them); with --resume DIR: the run's own",
    )
    options.add_model_args(p)
    options.add_data(p, size=True)
    options.add_preset(
        p,
        "start from a preset's training options and subset sizes (options given here override it; "
        "a shorter --epochs shortens the preset's warm-up in proportion)",
    )
    options.add_train(p)
    p.add_argument(
        "--channels-last", action=argparse.BooleanOptionalAction, default=None, help="NHWC memory format (default on)"
    )
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model (default off)")
    options.add_device(p)
    options.add_launch(p)
    options.add_run_output(p, "runs/MODEL")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..models.arguments import parse_model_args
    from ..train import run_training
    from ..train.rundir import default_run_dir

    if args.resume:
        model, model_args, data, train, out, info = _resumed(args)
    else:
        if args.model is None:
            raise ValueError("which model? give its name (cnnlab models lists them), or --resume DIR to continue a run")
        data, train, info = _configs(args)
        model, model_args, out = args.model, parse_model_args(args.arg), args.out or default_run_dir(args.model)
    args.run_dir = out  # what Ctrl-C's message names
    result = run_training(
        model,
        model_args,
        data=data,
        train=train,
        out_dir=out,
        resume=bool(args.resume),
        overwrite=args.overwrite,
        quiet=args.quiet,
        info=info,
        init=lambda net, splits: warn_batch(args.command, train, splits),
    )
    history, splits = result.history, result.data
    if not options.main_process():
        return 0  # under torchrun, rank 0 reports
    print(f"\n{model} on {splits.source}: {len(splits.train)} training images, validation = {splits.validation}")
    print(history.table())
    summary = history.summary()
    print(
        f"best val acc {summary['best_val_acc']:.2%} (epoch {summary['best_epoch']}); "
        f"{summary['seconds_per_epoch_median']:.1f} s/epoch (median), {summary['images_per_s_median']:.0f} img/s"
    )
    print(f"wrote {out}/history.json, history.csv, curves.png, last.pt, best.pt")
    return 0


def _configs(args: argparse.Namespace):
    """A new run's data and training options: the preset's (if any) with those given here."""
    from ..data import DataConfig
    from ..presets import get_preset
    from ..train import TrainConfig

    given = options.train_overrides(args, "channels_last", "compile", "sync_bn")
    if args.preset:
        preset = get_preset(args.preset)
        train, data = preset.train_config(**given), preset.data
    else:
        train, data = TrainConfig().with_overrides(**given), DataConfig()
    return data.with_overrides(**options.data_overrides(args)), train, {"preset": args.preset}


def _resumed(args: argparse.Namespace):
    """A run continued from its directory: everything from its config.json, the options given
    here checked against it."""
    from ..train.rundir import default_run_dir

    out = resume.run_directory(args, default_run_dir(args.model) if args.model else None)
    if out is None:
        raise ValueError("--resume needs the run directory: --resume DIR")
    record = resume.read_record(out, "train")
    given = {
        **resume.model_given(args, record),
        **resume.train_given(args, record, "channels_last", "compile", "sync_bn"),
        **resume.data_given(args, record),
    }
    if args.preset is not None:
        given["--preset"] = (args.preset, record.get("preset", args.preset))  # runs that do not record it: unchecked
    resume.check_given(out, given)
    train = resume.resumed_train(args, record)
    info = {"preset": record["preset"]} if "preset" in record else {}
    return record["model"], resume.model_args(record), resume.resumed_data(args, record), train, out, info


def warn_batch(command: str, train, splits) -> None:
    """Say it when one batch holds the whole training set (every epoch is then one step): on
    stdout, with the run's other lines (stderr holds a failure's one line)."""
    from ..train.distributed import world_from_env

    world = world_from_env()
    batch, n = train.batch_size * world.size, len(splits.train)
    if n < batch and world.main:
        per = f" ({train.batch_size} per process x {world.size})" if world.size > 1 else ""
        print(
            f"cnnlab {command}: warning: --batch-size {batch}{per} is larger than the {n} training images: "
            f"each epoch is one step of {n} images",
            flush=True,
        )
