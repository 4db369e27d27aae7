"""Export a trained run to ONNX, verified by running the file with onnxruntime.

    cnnlab export runs/r18 --onnx r18.onnx               # input size from the run
    cnnlab export runs/r18/last.pt --onnx r18.onnx --input 3x64x64

The ONNX graph takes what the run's model takes: float32 NCHW images scaled to [0, 1]
(``images``, any batch size) and returns ``logits``. The file is written atomically and only
kept when onnxruntime's outputs on random inputs match PyTorch's within ``tolerance``; it is
never written over an input or a run's files.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .io import atomic_write


@dataclass(frozen=True)
class ExportReport:
    path: Path
    input_shape: tuple[int, int, int]  # (C, H, W)
    max_abs_diff: float  # onnxruntime vs PyTorch on the check batch
    max_abs_logit: float  # scale of PyTorch's logits on that batch (the difference is relative to it)
    batch: int
    checkpoint: Path | None = None  # the file exported
    epoch: int | None = None  # its epochs trained


def _runtime():
    try:
        import onnxruntime
    except ImportError:
        raise ValueError("verifying an ONNX export needs onnxruntime: pip install 'cnnlab[onnx]'") from None
    return onnxruntime


def export_onnx(
    run_path: str | Path,
    onnx_path: str | Path,
    input_shape: Sequence[int] | None = None,
    tolerance: float = 1e-4,
    batch: int = 2,
    seed: int = 0,
    which: str | None = None,
    model: torch.nn.Module | None = None,
) -> ExportReport:
    """Write the model of a run directory (its ``which`` checkpoint, default ``best.pt``) or of a
    checkpoint or weights file as ONNX, and check it with onnxruntime; ``model``: an instance to load
    the weights into, for a model not in the registry (``load_run``)."""
    from .train.rundir import check_output, load_run

    _check_numbers(tolerance, batch)
    run = load_run(run_path, device="cpu", which=which, model=model)
    assert run.checkpoint is not None  # load_run names the file it read
    out = check_output(onnx_path, run.checkpoint)
    model = run.model.float().eval()
    shape = _input_shape(model, run.image_size, input_shape)
    runtime = _runtime()
    example = torch.rand(1, *shape)

    def write(tmp: str) -> None:
        with redirect_stdout(io.StringIO()), warnings.catch_warnings():  # progress lines; tracer notes on int(shape)
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                tmp,
                input_names=["images"],
                output_names=["logits"],
                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
                dynamo=False,
            )
        session = runtime.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        x = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(["logits"], {"images": x.numpy()})
        diff = float(np.abs(got - expected).max())
        if not np.isfinite(diff) or diff > tolerance:
            raise ValueError(
                f"onnxruntime's logits differ from PyTorch's by {diff:.3g} (> {tolerance:g}); {out} not written"
            )
        report.update(diff=diff, scale=float(np.abs(expected).max()))

    report: dict[str, float] = {}
    atomic_write(out, write)
    return ExportReport(out, shape, report["diff"], report["scale"], batch, run.checkpoint, run.epoch)


def _check_numbers(tolerance: float, batch: int) -> None:
    """``export_onnx``'s tolerance and batch, refused before anything is loaded or written."""
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not (math.isfinite(tolerance) and tolerance >= 0)
    ):
        raise ValueError(
            f"tolerance must be a finite number >= 0 (the largest accepted logit difference), got {tolerance!r}"
        )
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")


def _input_shape(
    model: torch.nn.Module, image_size: Sequence[int], input_shape: Sequence[int] | None
) -> tuple[int, int, int]:
    """C x H x W of the example input: ``input_shape``, or the model's channels at the run's image size."""
    in_channels = _in_channels(model)
    shape = (in_channels, *image_size) if input_shape is None else tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input shape must be C x H x W positive ints, e.g. 3x32x32, got {input_shape!r}")
    if shape[0] != in_channels:
        raise ValueError(f"the model takes {in_channels} input channels, got input shape {'x'.join(map(str, shape))}")
    return shape


def _in_channels(model: torch.nn.Module) -> int:
    from .layers.base import KerasConv2dBase

    first = next((m for m in model.modules() if isinstance(m, (KerasConv2dBase, torch.nn.Conv2d))), None)
    if first is None:
        raise ValueError(f"cannot tell the input channels of {type(model).__name__}")
    return first.in_channels
