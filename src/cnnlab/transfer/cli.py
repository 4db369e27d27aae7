"""``cnnlab finetune`` and ``cnnlab export``: parse, then call :mod:`cnnlab.transfer.finetune`
and :mod:`cnnlab.export` (heavy imports happen inside the run functions).

    cnnlab finetune mobilenet_v2 --weights imagenet --data-dir flowers/ --image-size 224 --epochs 10 --freeze-epochs 3
    cnnlab finetune resnet18 --arg stem=cifar --weights runs/r18 --data-dir pets.tar --val-split 0.2
    cnnlab export runs/ft --onnx model.onnx --input 3x224x224
"""

from __future__ import annotations

import argparse

from ..cli import _image_size, _input_size, add_limit_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a pretrained model on an image folder: new head, head-only epochs, then the whole network",
        description="The image folder holds train/<class>/* and val/<class>/* (or test/<class>/*), or class folders "
        "with --val-split. The run directory is an ordinary training run: history, curves, checkpoints, --resume.",
    )
    p.add_argument("model")
    p.add_argument("--weights", required=True, metavar="PATH|imagenet|none",
                   help="'imagenet' (published weights, cached), a Keras .h5/.weights.h5, a cnnlab run or .pt, "
                        "a torchvision .pth state dict, or 'none' (random initialisation)")
    p.add_argument("--data-dir", required=True, help="image folder (directory or tar)")
    p.add_argument("--image-size", type=_image_size, default=None, metavar="N|H,W", help="resize images (e.g. 224)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--freeze-epochs", type=int, default=1, metavar="M", help="train only the new head for the first M epochs")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="model keyword, e.g. stride_on=1x1")
    p.add_argument("--stride-on", choices=["1x1", "3x3"], default=None,
                   help="ResNet from a weights-only Keras file: where its stride sits (keras.applications: 1x1)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"])
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["constant", "cosine", "onecycle"])
    p.add_argument("--augment", choices=["keras", "standard", "none"], default="standard")
    p.add_argument("--bn-momentum", type=float, default=None,
                   help="BatchNorm momentum once unfrozen, Keras convention (default: the model's, 0.99)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    p.add_argument("--val-split", type=float, default=None, help="validate on this fraction of train")
    add_limit_options(p)
    p.add_argument("--out", default=None, help="run directory (default runs/finetune-MODEL)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    p.set_defaults(run=_run_finetune)

    p = sub.add_parser("export", help="export a trained run to ONNX (checked with onnxruntime) or to a weights-only .pt")
    p.add_argument("run_path", metavar="RUN_DIR_OR_CHECKPOINT")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--onnx", metavar="OUT.onnx")
    target.add_argument("--weights", metavar="OUT.pt",
                        help="the model's weights and what rebuilds it, no optimizer state (cnnlab evaluate/predict/finetune read it)")
    p.add_argument("--which", choices=["last.pt", "best.pt"], default="last.pt", help="--weights from a run directory: which checkpoint")
    p.add_argument("--input", type=_input_size, default=None, metavar="CxHxW", help="input shape (default: the run's image size)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted |onnxruntime - PyTorch| logit difference")
    p.set_defaults(run=_run_export)


def _run_finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..analysis.compare import parse_args_list
    from ..train import TrainConfig
    from .finetune import finetune

    config = TrainConfig(epochs=args.epochs).with_overrides(
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
        schedule=args.schedule, augment=args.augment, seed=args.seed, device=args.device, bn_momentum=args.bn_momentum,
    )
    out = Path(args.out or Path("runs") / f"finetune-{args.model}")
    weights = None if args.weights == "none" else args.weights
    history, data = finetune(
        args.model, weights, args.data_dir, out, config, args.freeze_epochs, args.image_size,
        parse_args_list(args.arg), args.val_split, args.limit_train, args.limit_val, args.resume, args.quiet,
        args.stride_on,
    )
    print(f"\n{args.model} fine-tuned on {data.source}: {len(data.train)} training images, {len(data.classes)} classes, "
          f"validation = {data.validation}; head only for {args.freeze_epochs} epoch(s), then the whole network")
    print(history.table())
    summary = history.summary()
    print(f"best val acc {summary['best_val_acc']:.2%} (epoch {summary['best_epoch']})")
    print(f"wrote {out}/history.json, history.csv, curves.png, last.pt, best.pt")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    if args.weights:
        import hashlib

        from ..train.run import save_weights

        path = save_weights(args.run_path, args.weights, args.which)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"wrote {path} ({path.stat().st_size:,} bytes, sha256 {digest})")
        return 0
    from ..export import export_onnx

    report = export_onnx(args.run_path, args.onnx, args.input, tolerance=args.tolerance)
    c, h, w = report.input_shape
    print(f"wrote {report.path}: input images (batch, {c}, {h}, {w}) float in [0, 1] -> logits")
    print(f"onnxruntime vs PyTorch on {report.batch} random images: max |difference| {report.max_abs_diff:.3g} "
          f"(logits up to {report.max_abs_logit:.3g})")
    return 0
