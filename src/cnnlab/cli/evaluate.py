"""``cnnlab evaluate`` and ``cnnlab predict``: use a trained run."""

from __future__ import annotations

import argparse

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="loss, accuracy, per-class accuracy and confusion matrix of a trained run")
    p.add_argument("run_path", metavar="RUN_DIR_OR_CHECKPOINT", help="a run directory (its best.pt), a checkpoint or a weights file")
    p.add_argument("--dataset", default=None, help="cifar10, cifar100, or a name for --data-dir's image folder "
                   "(default: the run's own data, as it recorded it)")
    p.add_argument("--data-dir", default=None, help="local copy: official archive, its folder, an image-folder tree or tar "
                   "(default: where the run read its data, if it is still there)")
    p.add_argument("--val-split", type=float, default=None,
                   help="evaluate on this fraction of train, as a run trained with --val-split did (default: the run's own)")
    p.add_argument("--batch-size", type=options.images("--batch-size"), default=None, help="images per step (default 512)")
    p.add_argument("--limit", type=options.images("--limit"), default=None, metavar="N",
                   help="a class-balanced subset of N images, for a quick look (default: all)")
    options.add_device(p)
    p.add_argument("--plot", default=None, metavar="OUT.png",
                   help="confusion matrix (default RUN_DIR/confusion.png, or NAME-confusion.png beside a weights file)")
    p.add_argument("--tta", choices=["none", "flip"], default=None, help="flip: also report accuracy with horizontal-flip test-time augmentation")
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("predict", help="top-5 classes of image files with a trained run")
    p.add_argument("run_path", metavar="RUN_DIR_OR_CHECKPOINT", help="a run directory (its best.pt), a checkpoint or a weights file")
    p.add_argument("images", nargs="+", help="image files")
    options.add_device(p)
    p.set_defaults(run=run_predict)


def run_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..train.evaluation import confusion_path, evaluate_run, recorded_data
    from ..train.rundir import load_run_info

    png = Path(args.plot) if args.plot else confusion_path(args.run_path)
    data = recorded_data(load_run_info(args.run_path), dataset=args.dataset, data_dir=args.data_dir, val_split=args.val_split)
    given = options.given(device=args.device, tta=args.tta, batch_size=args.batch_size, limit=args.limit)
    result = evaluate_run(args.run_path, data, out_png=png, progress=True, **given)
    print(f"{result['images']} {result['split']} images: loss {result['loss']:.4f}, accuracy {result['accuracy']:.2%}")
    if "accuracy_tta" in result:
        print(f"with {result['tta']} test-time augmentation: loss {result['loss_tta']:.4f}, accuracy {result['accuracy_tta']:.2%}")
    for name, acc in result["per_class_accuracy"].items():
        print(f"  {name:<16} {acc:7.2%}")
    print(f"wrote {png} and {png.with_suffix('.json')}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..train.prediction import predict_images

    for result in predict_images(args.run_path, args.images, **options.given(device=args.device)):
        print(result["image"])
        for name, p in result["top"]:
            print(f"  {p:7.2%}  {name}")
    return 0

