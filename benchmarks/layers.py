"""What Keras semantics cost: cnnlab's four convolutions next to PyTorch's own modules and
next to the Keras 3 layers (torch backend) that compute the same numbers.

    .venv/bin/python benchmarks/layers.py [--batch 32] [--size 32] [--threads 2]

Each row times the same work three ways in one run and prints the ratios (absolute times
drift on shared machines; ratios are what we quote in docs/benchmarks.md):

- ``torch``: the closest plain PyTorch module. Where Keras's window differs from anything
  PyTorch's padding arguments can express (``same`` with stride 2 pads bottom/right only),
  this is the symmetric-padding module of the same size: the cost of being exact.
- ``keras``: the Keras 3 layer, NHWC, same weights -- the peer with identical semantics.

Forward passes in inference mode; ``fwd+bwd`` adds the backward pass of a training step.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import date

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch
from torch import nn
from torch.utils import benchmark

from cnnlab.layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D


def cases(c: int):
    """(name, cnnlab layer, torch module, keras layer factory, input channels)."""
    import keras

    return [
        (
            "Conv2D 3x3 s1 same",
            Conv2D(c, c, 3, 1, "same"),
            nn.Conv2d(c, c, 3, 1, 1),
            lambda: keras.layers.Conv2D(c, 3, 1, "same"),
            c,
        ),
        (
            "Conv2D 3x3 s2 same (asym. pad)",
            Conv2D(c, 2 * c, 3, 2, "same"),
            nn.Conv2d(c, 2 * c, 3, 2, 1),
            lambda: keras.layers.Conv2D(2 * c, 3, 2, "same"),
            c,
        ),
        (
            "DepthwiseConv2D 3x3 s1 same",
            DepthwiseConv2D(c, 3, 1, "same"),
            nn.Conv2d(c, c, 3, 1, 1, groups=c),
            lambda: keras.layers.DepthwiseConv2D(3, 1, "same"),
            c,
        ),
        (
            "SeparableConv2D 3x3 s1 same",
            SeparableConv2D(c, 2 * c, 3, 1, "same"),
            nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False), nn.Conv2d(c, 2 * c, 1)),
            lambda: keras.layers.SeparableConv2D(2 * c, 3, 1, "same"),
            c,
        ),
        (
            "Conv2DTranspose 3x3 s2 same",
            Conv2DTranspose(c, c // 2, 3, 2, "same"),
            nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1),
            lambda: keras.layers.Conv2DTranspose(c // 2, 3, 2, "same"),
            c,
        ),
    ]


def time_it(fn, min_run_time: float) -> float:
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-run-time", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# {date.today()}  {platform.processor() or platform.machine()}  "
        f"torch {torch.__version__}  threads {args.threads}"
    )
    print(f"# input {args.batch}x{args.channels}x{args.size}x{args.size}, float32, CPU; median times in ms")
    print("| layer | pass | cnnlab | torch | keras | cnnlab/torch | cnnlab/keras |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name, ours, plain, make_keras, c in cases(args.channels):
        x = torch.from_numpy(rng.standard_normal((args.batch, c, args.size, args.size)).astype(np.float32))
        x_nhwc = x.permute(0, 2, 3, 1).contiguous()
        theirs = make_keras()
        theirs.build((None, args.size, args.size, c))
        theirs.set_weights(ours.get_keras_weights())
        with torch.no_grad():  # same numbers, or the comparison means nothing
            np.testing.assert_allclose(
                ours(x).numpy(), np.asarray(theirs(x_nhwc).detach()).transpose(0, 3, 1, 2), atol=1e-4
            )
        for label in ("forward", "fwd+bwd"):
            xg = x.clone().requires_grad_(label == "fwd+bwd")
            xk = x_nhwc.clone().requires_grad_(label == "fwd+bwd")

            def run(module, inp, label=label):
                if label == "forward":

                    def forward():
                        with torch.inference_mode():
                            module(inp)

                    return forward
                return lambda: module(inp).sum().backward()

            t_ours = time_it(run(ours, xg), args.min_run_time)
            t_plain = time_it(run(plain, xg), args.min_run_time)
            t_keras = time_it(run(theirs, xk), args.min_run_time)
            print(
                f"| {name} | {label} | {t_ours * 1e3:.2f} | {t_plain * 1e3:.2f} | {t_keras * 1e3:.2f} "
                f"| {t_ours / t_plain:.2f} | {t_ours / t_keras:.2f} |"
            )


if __name__ == "__main__":
    main()
