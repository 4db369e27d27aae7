"""The arithmetic of an explanation, in float64: build the example layer, run it, and write
one output cell out as the sums of products the layer computed.

:func:`run_example` does the part no cell changes (a :class:`~.data.LayerRun`);
:func:`explain_cell` writes one cell out from it, so a renderer that wants many cells runs
the layer once. :func:`explain` does both, and checks that the terms add up to the layer's
output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from ...layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from ...layers import padding as P
from ...layers.base import KerasConv2dBase
from .data import ArticleCheck, LayerRun, Pads, Scatter, ScatterRun, Step, Sum, Term
from .examples import ARTICLE_OUTPUTS, ExampleConfig, check_cell, check_size, make_config
from .explanation import Explanation

_LAYER_CLASSES = {
    "conv2d": Conv2D,
    "depthwise": DepthwiseConv2D,
    "separable": SeparableConv2D,
    "transpose": Conv2DTranspose,
}
_NO_PADS: Pads = ((0, 0), (0, 0))

Cell = tuple[int, int, int]
# A writer's answer: the steps, the parts of the total (before the bias), the input cells read.
Written = tuple[list[Step], list[float], np.ndarray]


def explain(kind: str, cell: Cell | None = None, **options: Any) -> Explanation:
    """Build the example layer, run it, and write output ``cell`` = (y, x, channel) out as sums.

    ``options`` are :class:`ExampleConfig` fields (``input_size``, ``in_channels``, ``filters``,
    ``kernel_size``, ``strides``, ``padding``, ``dilation_rate``, ``depth_multiplier``,
    ``output_padding``, ``use_bias``, ``fill``, ``seed``); unset ones keep the article's values.
    """
    return explain_cell(run_example(make_config(kind, **options)), cell or (0, 0, 0))


def run_example(config: ExampleConfig) -> LayerRun:
    """The example's float64 layer with its numbers filled in, run once on its input (an example
    too large to write out is refused first, with its size: ``check_size``)."""
    check_size(config)
    layer, x, note = _build(config)
    with torch.no_grad():
        out = layer(torch.from_numpy(x.transpose(2, 0, 1))[None]).numpy()[0].transpose(1, 2, 0)
    weights = dict(zip(config.keras_weight_names(), layer.get_keras_weights()))
    return LayerRun(
        config=config,
        layer=layer,
        cost=layer.cost((config.in_channels, *config.input_size)),
        weights=weights,
        input=x,
        output=out,
        values_note=note,
        input_padding=_input_padding(config),
        output_crop=layer._crops if isinstance(layer, Conv2DTranspose) else _NO_PADS,  # kind "transpose"
        article=_article_check(config, out),
    )


def explain_cell(run: LayerRun, cell: Cell) -> Explanation:
    """Output ``cell`` of ``run`` written out term by term; raises if the terms miss the output."""
    cell = check_cell(cell, run.output.shape)
    config = run.config
    steps, parts, marked = _WRITERS[config.kind](run, cell)
    bias = float(run.weights["bias"][cell[2]]) if config.use_bias else None
    value = sum(parts) + (bias or 0.0)
    produced = float(run.output[cell])
    if abs(value - produced) > 1e-9 * max(1.0, abs(produced)):
        raise RuntimeError(f"written-out sum {value!r} differs from the layer's output {produced!r} at cell {cell}")
    shared = {f.name: getattr(run, f.name) for f in fields(LayerRun)}
    return Explanation(
        **shared, cell=cell, steps=steps, total_parts=parts, bias=bias, value=value, marked_inputs=marked
    )


def scatter(run: LayerRun) -> ScatterRun:
    """A transposed convolution as it is defined: every input position adds value × kernel
    into the output window it lands on, one position at a time; 'same' then crops the full
    scatter and output_padding widens it. Raises if the cropped sum (plus bias) misses the layer."""
    cfg = run.config
    if cfg.kind != "transpose":
        raise ValueError(f"only a transposed convolution scatters; this example is {cfg.kind!r}")
    h, w = cfg.input_size
    (kh, kw), (sh, sw), (dh, dw) = cfg.kernel_size, cfg.strides, cfg.dilation_rate
    (top, bottom), (left, right) = run.output_crop
    full = ((h - 1) * sh + (kh - 1) * dh + 1, (w - 1) * sw + (kw - 1) * dw + 1)
    r0, c0 = min(0, top), min(0, left)  # the canvas starts where the output or the scatter does
    rows, cols = max(full[0], full[0] - bottom) - r0, max(full[1], full[1] - right) - c0
    kernel = run.weights["kernel"]  # (kh, kw, M, C)
    canvas = np.zeros((rows, cols, kernel.shape[2]))
    steps = []
    for iy in range(h):
        for ix in range(w):
            values = run.input[iy, ix]
            contribution = np.einsum("ijmc,c->ijm", kernel, values)
            taps = [(i, j, iy * sh + i * dh - r0, ix * sw + j * dw - c0) for i in range(kh) for j in range(kw)]
            for i, j, r, c in taps:
                canvas[r, c] += contribution[i, j]
            steps.append(Scatter((iy, ix), values.copy(), taps, contribution, canvas.copy()))
    window = ((top - r0, full[0] - bottom - r0), (left - c0, full[1] - right - c0))
    out = canvas[window[0][0] : window[0][1], window[1][0] : window[1][1]]
    if cfg.use_bias:
        out = out + run.weights["bias"]
    if out.shape != run.output.shape or not np.allclose(out, run.output, rtol=1e-12, atol=1e-9):
        raise RuntimeError("the scattered sums differ from the layer's output")
    return ScatterRun(run, steps, (-r0, -c0), window, full)


# ------------------------------------------------------------------------- the layer and its numbers
def _build(config: ExampleConfig) -> tuple[KerasConv2dBase, np.ndarray, str]:
    """The float64 layer filled with the example's weights, the HWC input, and a note saying how."""
    layer = _LAYER_CLASSES[config.kind](**config.layer_kwargs(), dtype=torch.float64)
    h, w = config.input_size
    shapes = [tuple(a.shape) for a in layer.get_keras_weights()]
    names = config.keras_weight_names()
    if config.fill == "arange":
        x = np.arange(1, h * w * config.in_channels + 1, dtype=np.float64).reshape(h, w, config.in_channels) * 0.1
        # The article starts every kernel at 1, except the separable example's pointwise kernel (at 2).
        starts = [2 if name == "pointwise_kernel" else 1 for name in names]
        sizes = [int(np.prod(shape)) for shape in shapes]
        arrays = [np.arange(s, s + n, dtype=np.float64).reshape(shape) for s, n, shape in zip(starts, sizes, shapes)]
        note = f"input = arange(1, {x.size + 1}).reshape{x.shape} * 0.1; " + "; ".join(
            f"{name} = arange({s}, {s + n}).reshape{shape}" for name, s, n, shape in zip(names, starts, sizes, shapes)
        )
    else:
        rng = np.random.default_rng(config.seed)
        x = rng.integers(0, 10, size=(h, w, config.in_channels)).astype(np.float64) / 10
        arrays = [rng.integers(-3, 4, size=shape).astype(np.float64) for shape in shapes]
        note = f"random (seed {config.seed}): inputs in 0.0..0.9, weights and bias whole numbers in -3..3"
    layer.set_keras_weights(arrays)
    return layer, x, note + " (Keras layouts: input HWC, kernels as get_weights() gives them)"


def _input_padding(config: ExampleConfig) -> Pads:
    """Keras's (top, bottom), (left, right) zeros around a forward convolution's input."""
    if config.padding != "same" or config.kind == "transpose":
        return _NO_PADS
    (h, w), (kh, kw), (sh, sw), (dh, dw) = config.input_size, config.kernel_size, config.strides, config.dilation_rate
    return P.same_padding(h, kh, sh, dh), P.same_padding(w, kw, sw, dw)


def _article_check(config: ExampleConfig, out: np.ndarray) -> ArticleCheck | None:
    if not config.is_article:
        return None
    article = np.asarray(ARTICLE_OUTPUTS[config.kind])
    ours = out.reshape(-1)
    return ArticleCheck(
        printed=ARTICLE_OUTPUTS[config.kind],
        computed=ours.tolist(),
        same=bool(np.allclose(ours, article, atol=1e-6)),
        largest_difference=float(np.abs(ours - article).max()),
    )


# ------------------------------------------------------------------------- sums of products
def _sum(label: str, terms: list[Term], **details: Any) -> Sum:
    return Sum(label, terms, sum(t.product for t in terms), **details)


def _channel_label(channel: int, multiplier: int, depth_multiplier: int) -> str:
    return f"in {channel}" + (f" (multiplier {multiplier})" if depth_multiplier > 1 else "")


def _window(run: LayerRun, y: int, x: int) -> Iterator[tuple[int, int, int, int, bool]]:
    """(i, j, iy, ix, inside) for every kernel tap of forward-conv output (y, x)."""
    cfg = run.config
    h, w = cfg.input_size
    (kh, kw), (sh, sw), (dh, dw) = cfg.kernel_size, cfg.strides, cfg.dilation_rate
    (top, _), (left, _) = run.input_padding
    for i in range(kh):
        for j in range(kw):
            iy, ix = y * sh + i * dh - top, x * sw + j * dw - left
            yield i, j, iy, ix, (0 <= iy < h and 0 <= ix < w)


def _window_sum(
    run: LayerRun,
    kernel_2d: np.ndarray,
    channel: int,
    cell: Cell,
    label: str,
    marked: np.ndarray,
    multiplier: int | None = None,
) -> Sum:
    """Input ``channel``'s window under output ``cell`` times ``kernel_2d``; marks the cells read."""
    terms, padding = [], []
    for i, j, iy, ix, inside in _window(run, cell[0], cell[1]):
        weight = float(kernel_2d[i, j])
        if not inside:
            padding.append(Term(0.0, weight, (iy, ix), (i, j), padding=True))
            continue
        marked[iy, ix, channel] = True
        terms.append(Term(float(run.input[iy, ix, channel]), weight, (iy, ix), (i, j)))
    return _sum(label, terms, padding=padding, channel=channel, multiplier=multiplier)


def _explain_conv2d(run: LayerRun, cell: Cell) -> Written:
    marked = np.zeros(run.input.shape, dtype=bool)
    kernel = run.weights["kernel"]
    sums = [
        _window_sum(run, kernel[:, :, c, cell[2]], c, cell, f"in {c}", marked) for c in range(run.config.in_channels)
    ]
    return [Step("sum over the window, one input channel at a time", sums)], [s.result for s in sums], marked


def _explain_depthwise(run: LayerRun, cell: Cell) -> Written:
    o, dm = cell[2], run.config.depth_multiplier
    c, q = divmod(o, dm)  # output channel o filters input channel c with multiplier q
    marked = np.zeros(run.input.shape, dtype=bool)
    s = _window_sum(run, run.weights["depthwise_kernel"][:, :, c, q], c, cell, _channel_label(c, q, dm), marked, q)
    return [Step(f"output channel {o} filters input channel {c} alone", [s])], [s.result], marked


def _explain_separable(run: LayerRun, cell: Cell) -> Written:
    m, dm = cell[2], run.config.depth_multiplier
    marked = np.zeros(run.input.shape, dtype=bool)
    kernel = run.weights["depthwise_kernel"]
    depthwise = []
    for k in range(run.config.in_channels * dm):
        c, q = divmod(k, dm)  # depthwise output k filters input channel c with multiplier q
        label = f"d{k} = " + _channel_label(c, q, dm)
        depthwise.append(_window_sum(run, kernel[:, :, c, q], c, cell, label, marked, q))
    pointwise = run.weights["pointwise_kernel"][0, 0, :, m]
    mix = _sum("pointwise", [Term(s.result, float(pointwise[k])) for k, s in enumerate(depthwise)])
    steps = [
        Step("step 1, depthwise: each channel filtered on its own", depthwise),
        Step(f"step 2, pointwise: a 1x1 convolution mixes {_span('d', len(depthwise))} into output channel {m}", [mix]),
    ]
    return steps, [mix.result], marked


def _span(prefix: str, count: int) -> str:
    return f"{prefix}0" if count == 1 else f"{prefix}0..{prefix}{count - 1}"


def _explain_transpose(run: LayerRun, cell: Cell) -> Written:
    """Output (y, x) of a transposed conv gathers every input position (iy, ix) and kernel tap
    (i, j) with ``iy*s + i*d == y + crop`` -- each input value scatters a whole kernel."""
    cfg, (y, xx, m) = run.config, cell
    h, w = cfg.input_size
    (kh, kw), (sh, sw), (dh, dw) = cfg.kernel_size, cfg.strides, cfg.dilation_rate
    (top, _), (left, _) = run.output_crop
    full_y, full_x = y + top, xx + left
    marked = np.zeros(run.input.shape, dtype=bool)
    taps = [
        (iy, ix, i, j)
        for iy in range(h)
        for ix in range(w)
        for i in range(kh)
        for j in range(kw)
        if iy * sh + i * dh == full_y and ix * sw + j * dw == full_x
    ]
    sums = []
    kernel = run.weights["kernel"][:, :, m, :]  # (kh, kw, in) for output channel m
    for c in range(cfg.in_channels):
        terms = [Term(float(run.input[iy, ix, c]), float(kernel[i, j, c]), (iy, ix), (i, j)) for iy, ix, i, j in taps]
        for iy, ix, _, _ in taps:
            marked[iy, ix, c] = True
        sums.append(_sum(f"in {c}", terms, channel=c))
    title = "each input value scatters value × kernel; sum what lands here, one input channel at a time"
    return [Step(title, sums)], [s.result for s in sums], marked


_WRITERS: dict[str, Callable[[LayerRun, Cell], Written]] = {
    "conv2d": _explain_conv2d,
    "depthwise": _explain_depthwise,
    "separable": _explain_separable,
    "transpose": _explain_transpose,
}
