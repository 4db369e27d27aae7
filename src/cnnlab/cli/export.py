"""``cnnlab export``: a trained run as ONNX (checked with onnxruntime) or as a weights-only .pt.

cnnlab export runs/ft --onnx model.onnx --input 3x224x224
cnnlab export runs/dn --weights densenet.pt
"""

from __future__ import annotations

import argparse

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a trained run to ONNX (checked with onnxruntime) or to a weights-only .pt"
    )
    p.add_argument(
        "run_path",
        metavar="RUN_DIR_OR_CHECKPOINT",
        help="a run directory (see --which), a checkpoint or a weights file",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--onnx", metavar="OUT.onnx", help="an ONNX file, checked with onnxruntime when installed")
    target.add_argument(
        "--weights",
        metavar="OUT.pt",
        help="the model's weights and what rebuilds it, no optimizer state (cnnlab evaluate/predict/finetune read it)",
    )
    p.add_argument(
        "--which",
        choices=["last.pt", "best.pt"],
        default=None,
        help="which checkpoint of a run directory (default: best.pt for --onnx, last.pt for --weights)",
    )
    p.add_argument(
        "--input",
        type=options.input_size,
        default=None,
        metavar="CxHxW",
        help="input shape (default: the run's image size)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="largest accepted |onnxruntime - PyTorch| logit difference (default 1e-4)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.weights:
        from ..train.rundir import save_weights, sha256

        path = save_weights(args.run_path, args.weights, **options.given(which=args.which))
        print(f"wrote {path} ({path.stat().st_size:,} bytes, sha256 {sha256(path)})")
        return 0
    from ..export import export_onnx

    report = export_onnx(
        args.run_path, args.onnx, args.input, **options.given(tolerance=args.tolerance, which=args.which)
    )
    c, h, w = report.input_shape
    print(
        f"wrote {report.path} from {report.checkpoint}"
        + (f" (epoch {report.epoch})" if report.epoch is not None else "")
        + f": input images (batch, {c}, {h}, {w}) float in [0, 1] -> logits"
    )
    print(
        f"onnxruntime vs PyTorch on {report.batch} random images: max |difference| {report.max_abs_diff:.3g} "
        f"(logits up to {report.max_abs_logit:.3g})"
    )
    return 0
