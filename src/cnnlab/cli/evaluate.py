"""``cnnlab evaluate``: a trained run on its data (``cnnlab predict``: ``predict``)."""

from __future__ import annotations

import argparse

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="loss, accuracy, per-class accuracy and confusion matrix of a trained run")
    p.add_argument(
        "run_path",
        metavar="RUN_DIR_OR_CHECKPOINT",
        help="a run directory (its best.pt), a checkpoint or a weights file",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="cifar10, cifar100, or a name for --data-dir's image folder "
        "(default: the run's own data, as it recorded it)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="local copy: official archive, its folder, an image-folder tree or tar "
        "(default: where the run read its data, if it is still there)",
    )
    p.add_argument(
        "--val-split",
        type=float,
        default=None,
        help="evaluate on this fraction of train, as a run trained with --val-split did (default: the run's own; "
        "refused where it would change what the run validated on)",
    )
    p.add_argument(
        "--batch-size", type=options.images("--batch-size"), default=None, help="images per step (default 512)"
    )
    subset = p.add_mutually_exclusive_group()
    subset.add_argument(
        "--limit",
        type=options.images("--limit"),
        default=None,
        metavar="N",
        help="a class-balanced subset of N images, for a quick look (default: as many as the run "
        "validated on, its --limit-val, else all)",
    )
    subset.add_argument(
        "--all",
        action="store_true",
        help="every image of the split, also when the run validated on fewer (--limit-val)",
    )
    options.add_device(p)
    p.add_argument(
        "--plot",
        default=None,
        metavar="OUT.png",
        help="confusion matrix (default RUN_DIR/confusion.png, or NAME-confusion.png beside a weights file)",
    )
    p.add_argument(
        "--tta",
        choices=["none", "flip"],
        default=None,
        help="flip: also report accuracy with horizontal-flip test-time augmentation",
    )
    p.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from ..train.evaluation import confusion_path, evaluate_run, recorded_data, save_evaluation
    from ..train.rundir import check_output, checkpoint_file, load_run_info

    png = Path(args.plot) if args.plot else confusion_path(args.run_path)
    for out in (png, png.with_suffix(".json")):  # never over the run's checkpoints, config or history
        check_output(out, checkpoint_file(args.run_path), own=("confusion.png", "confusion.json"))
    data = recorded_data(
        load_run_info(args.run_path), dataset=args.dataset, data_dir=args.data_dir, val_split=args.val_split
    )
    if args.all:
        data = replace(data, limit_val=None)
    given = options.given(device=args.device, tta=args.tta, batch_size=args.batch_size, limit=args.limit)
    result = evaluate_run(args.run_path, data, progress=True, **given)
    print_evaluation(result)
    written, failed = save_evaluation(result, png)
    if written:
        print(f"wrote {' and '.join(map(str, written))}")
    if failed:  # the figures are printed: say what is missing, and where it could go
        raise OSError(
            f"could not write {'; '.join(failed)}; the figures above are complete: "
            "pass --plot OTHER.png to write them elsewhere"
        )
    return 0


def print_evaluation(result: dict) -> None:
    subset = {"limit_val": f" (the run's limit_val; --all for all {result['split_images']})"}.get(result["subset"], "")
    print(
        f"{result['images']} {result['split']} images{subset}: "
        f"loss {result['loss']:.4f}, accuracy {result['accuracy']:.2%}"
    )
    if "accuracy_tta" in result:
        print(
            f"with {result['tta']} test-time augmentation: "
            f"loss {result['loss_tta']:.4f}, accuracy {result['accuracy_tta']:.2%}"
        )
    for name, acc in result["per_class_accuracy"].items():
        print(f"  {name:<16} {'no images' if acc is None else f'{acc:7.2%}'}")
    epoch = f" (epoch {result['epoch']})" if result["epoch"] is not None else ""
    print(f"checkpoint {result['checkpoint']}{epoch}")
    if result.get("preprocessing"):  # a run fine-tuned from published weights
        p = result["preprocessing"]
        mean, std = (", ".join(f"{v:.4g}" for v in p[k]) for k in ("mean", "std"))
        print(f"input normalised as its published weights were trained: mean ({mean}), std ({std}), {p['channels']}")
