"""``cnnlab explain``: what one convolution computes, on numbers small enough to check by hand.

Article 001 teaches Conv2D, DepthwiseConv2D, SeparableConv2D and Conv2DTranspose by filling
the weights and inputs with ``arange`` and writing one output cell out as a sum of products.
:func:`explain` does the same for any configuration: it builds the real cnnlab layer, runs
it (in float64, so the printed numbers are the exact sums), and writes the chosen output
cell term by term -- then checks that the terms add up to what the layer produced.

    >>> e = explain("conv2d")                      # the article's example
    >>> [round(v, 1) for v in e.output[0, 0]]
    [598.5, 615.6, 632.7]
    >>> print(format_text(e))                       # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from ..layers import padding as P
from ..layers.base import KerasConv2dBase, LayerCost, non_negative_pair, positive_int, positive_pair
from .textfmt import fmt_number, hstack_blocks, matrix_lines

KINDS = ("conv2d", "depthwise", "separable", "transpose")
FILLS = ("arange", "random")

# The article's four examples (SPEC.md, "Convolution arithmetic"): shapes, and the outputs
# article 001 prints for them (flattened HWC).
ARTICLE_EXAMPLES: dict[str, dict[str, Any]] = {
    "conv2d": {"input_size": (3, 3), "in_channels": 2, "filters": 3, "kernel_size": (3, 3)},
    "depthwise": {"input_size": (3, 3), "in_channels": 2, "filters": None, "kernel_size": (3, 3)},
    "separable": {"input_size": (3, 3), "in_channels": 1, "filters": 2, "kernel_size": (3, 3)},
    "transpose": {"input_size": (2, 2), "in_channels": 3, "filters": 2, "kernel_size": (3, 3)},
}
ARTICLE_OUTPUTS: dict[str, list[float]] = {
    "conv2d": [598.5, 615.6, 632.7],
    "depthwise": [96.9, 114.0],
    "separable": [57.0, 85.5],
    # HWC order of the 4x4x2 output (first channel 1.4, 8.2, ... second 3.2, 14.5, ...)
    "transpose": [
        v
        for pair in zip(
            [1.4, 8.2, 20.8, 21.2, 17.2, 72.2, 119.0, 94.6, 71.2, 212.6, 259.4, 181.0, 91.4, 231.4, 265.6, 165.2],
            [3.2, 14.5, 27.1, 25.7, 26.2, 95.6, 142.4, 109.0, 80.2, 236.0, 282.8, 195.4, 98.6, 248.5, 282.7, 175.1],
        )
        for v in pair
    ],
}


@dataclass(frozen=True)
class ExampleConfig:
    """Everything that defines an example: the layer's arguments, the input size, the values."""

    kind: str
    input_size: tuple[int, int]
    in_channels: int
    filters: int | None  # None for depthwise (its output channels are C * depth_multiplier)
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    dilation_rate: tuple[int, int] = (1, 1)
    depth_multiplier: int = 1
    output_padding: tuple[int, int] | None = None
    use_bias: bool = False
    fill: str = "arange"  # arange: the article's 1, 2, 3, ... ; random: small readable numbers
    seed: int = 0

    @property
    def is_article(self) -> bool:
        """True when this is exactly the article's example for the layer."""
        return self == make_config(self.kind)

    def layer_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "in_channels": self.in_channels,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
            "use_bias": self.use_bias,
        }
        if self.kind != "depthwise":
            kwargs["filters"] = self.filters
        if self.kind in ("depthwise", "separable"):
            kwargs["depth_multiplier"] = self.depth_multiplier
        if self.kind == "transpose":
            kwargs["output_padding"] = self.output_padding
        return kwargs


def make_config(kind: str, **options: Any) -> ExampleConfig:
    """The article's example for ``kind``, with any of ``options`` changed.

    Options left at ``None`` keep the article's value. Sizes may be ints or pairs.
    """
    if kind not in KINDS:
        raise ValueError(f"layer must be one of {KINDS}, got {kind!r}")
    values = {k: v for k, v in options.items() if v is not None}
    unknown = set(values) - set(ExampleConfig.__dataclass_fields__) - {"kind"}
    if unknown:
        raise ValueError(f"unknown explain option(s) {sorted(unknown)}; accepted: {sorted(ExampleConfig.__dataclass_fields__)}")
    merged = {**ARTICLE_EXAMPLES[kind], **values}
    if kind == "depthwise":
        if merged.get("filters") is not None:
            raise ValueError("filters does not apply to depthwise (its outputs are in_channels * depth_multiplier)")
    else:
        merged["filters"] = positive_int("filters", merged["filters"])
    for name in ("input_size", "kernel_size", "strides", "dilation_rate"):
        if name in merged:
            merged[name] = positive_pair(name, merged[name])
    if merged.get("output_padding") is not None:
        if kind != "transpose":
            raise ValueError("output_padding applies to transpose only")
        merged["output_padding"] = non_negative_pair("output_padding", merged["output_padding"])
    if merged.get("fill", "arange") not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {merged['fill']!r}")
    if merged.get("depth_multiplier", 1) != 1 and kind not in ("depthwise", "separable"):
        raise ValueError("depth_multiplier applies to depthwise and separable only")
    return ExampleConfig(kind=kind, **merged)


# ------------------------------------------------------------------------- the explanation
@dataclass
class Term:
    """One product ``value × weight`` of a written-out sum."""

    value: float
    weight: float
    input_pos: tuple[int, int] | None = None  # (y, x) of the input cell, when there is one
    kernel_pos: tuple[int, int] | None = None  # (i, j) inside the kernel


@dataclass
class Sum:
    """``label: a×b + c×d + … = result``; ``padded`` products read padding zeros and are left out."""

    label: str
    terms: list[Term]
    result: float
    padded: int = 0


@dataclass
class Explanation:
    config: ExampleConfig
    layer: KerasConv2dBase
    cost: LayerCost
    weights: dict[str, np.ndarray]  # Keras names and layouts
    input: np.ndarray  # (H, W, C)
    output: np.ndarray  # (Ho, Wo, M), as the layer computed it
    cell: tuple[int, int, int]
    steps: list[tuple[str, list[Sum]]]  # titled groups of sums, in order of computation
    total_parts: list[float]  # what the final line adds up (before the bias)
    bias: float | None
    value: float  # the written-out sum
    values_note: str  # how the numbers were made
    marked_inputs: np.ndarray = field(repr=False, default=None)  # (H, W, C) cells the cell reads

    @property
    def layer_output(self) -> float:
        y, x, c = self.cell
        return float(self.output[y, x, c])

    def to_dict(self) -> dict[str, Any]:
        """Everything :func:`format_text` prints, as JSON-ready data (arrays as nested lists)."""
        cfg = self.config
        y, x, c = self.cell
        return {
            "layer": self.layer.keras_class,
            "example": "article 001" if cfg.is_article else "custom",
            "config": {
                "input_size": list(cfg.input_size),
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.layer_kwargs().items()},
                "fill": cfg.fill,
                "seed": cfg.seed if cfg.fill == "random" else None,
            },
            "values": self.values_note,
            "params": self.cost.params,
            "macs": self.cost.macs,
            "macs_by_step": self.cost.macs_by_step,
            "weights": {name: array.tolist() for name, array in self.weights.items()},
            "input": self.input.tolist(),
            "input_layout": "HWC",
            "output": self.output.tolist(),
            "output_layout": "HWC",
            "cell": {"y": y, "x": x, "c": c},
            "steps": [
                {
                    "title": title,
                    "sums": [
                        {
                            "label": s.label,
                            "terms": [
                                {
                                    "value": t.value,
                                    "weight": t.weight,
                                    "input_pos": list(t.input_pos) if t.input_pos else None,
                                    "kernel_pos": list(t.kernel_pos) if t.kernel_pos else None,
                                }
                                for t in s.terms
                            ],
                            "padded_terms": s.padded,
                            "result": s.result,
                        }
                        for s in sums
                    ],
                }
                for title, sums in self.steps
            ],
            "total_parts": self.total_parts,
            "bias": self.bias,
            "value": self.value,
            "layer_output": self.layer_output,
            "article_output": ARTICLE_OUTPUTS[cfg.kind] if cfg.is_article else None,
        }


def explain(kind: str, cell: tuple[int, int, int] | None = None, **options: Any) -> Explanation:
    """Build the example layer, run it, and write output ``cell`` = (y, x, channel) out as sums.

    ``options`` are :class:`ExampleConfig` fields (``input_size``, ``in_channels``, ``filters``,
    ``kernel_size``, ``strides``, ``padding``, ``dilation_rate``, ``depth_multiplier``,
    ``output_padding``, ``use_bias``, ``fill``, ``seed``); unset ones keep the article's values.
    """
    config = make_config(kind, **options)
    layer, x, note = _build(config)
    with torch.no_grad():
        out = layer(torch.from_numpy(x.transpose(2, 0, 1))[None]).numpy()[0].transpose(1, 2, 0)
    cell = _check_cell(cell or (0, 0, 0), out.shape)
    weights = dict(zip(_keras_names(config.kind, config.use_bias), layer.get_keras_weights()))
    steps, parts, marked = _WRITERS[config.kind](config, layer, x, weights, cell)
    bias = float(weights["bias"][cell[2]]) if config.use_bias else None
    value = sum(parts) + (bias or 0.0)
    produced = float(out[cell])
    if abs(value - produced) > 1e-9 * max(1.0, abs(produced)):
        raise RuntimeError(f"written-out sum {value!r} differs from the layer's output {produced!r} at cell {cell}")
    return Explanation(
        config, layer, layer.cost((config.in_channels, *config.input_size)), weights, x, out, cell, steps, parts,
        bias, value, note, marked,
    )


def _keras_names(kind: str, use_bias: bool) -> list[str]:
    names = {"separable": ["depthwise_kernel", "pointwise_kernel"], "depthwise": ["depthwise_kernel"]}.get(
        kind, ["kernel"]
    )
    return names + (["bias"] if use_bias else [])


_LAYER_CLASSES = {"conv2d": Conv2D, "depthwise": DepthwiseConv2D, "separable": SeparableConv2D, "transpose": Conv2DTranspose}


def _build(config: ExampleConfig) -> tuple[KerasConv2dBase, np.ndarray, str]:
    """The float64 layer filled with the example's weights, the HWC input, and a note saying how."""
    layer = _LAYER_CLASSES[config.kind](**config.layer_kwargs(), dtype=torch.float64)
    h, w = config.input_size
    shapes = [tuple(a.shape) for a in layer.get_keras_weights()]
    names = _keras_names(config.kind, config.use_bias)
    if config.fill == "arange":
        x = np.arange(1, h * w * config.in_channels + 1, dtype=np.float64).reshape(h, w, config.in_channels) * 0.1
        # The article starts every kernel at 1, except the separable example's pointwise kernel (at 2).
        starts = [2 if name == "pointwise_kernel" else 1 for name in names]
        arrays = [np.arange(s, s + int(np.prod(shape)), dtype=np.float64).reshape(shape) for s, shape in zip(starts, shapes)]
        note = f"input = arange(1, {x.size + 1}).reshape{x.shape} * 0.1; " + "; ".join(
            f"{name} = arange({s}, {s + int(np.prod(shape))}).reshape{shape}" for name, s, shape in zip(names, starts, shapes)
        )
    else:
        rng = np.random.default_rng(config.seed)
        x = rng.integers(0, 10, size=(h, w, config.in_channels)).astype(np.float64) / 10
        arrays = [rng.integers(-3, 4, size=shape).astype(np.float64) for shape in shapes]
        note = f"random (seed {config.seed}): inputs in 0.0..0.9, weights and bias whole numbers in -3..3"
    layer.set_keras_weights(arrays)
    return layer, x, note + " (Keras layouts: input HWC, kernels as get_weights() gives them)"


def _check_cell(cell: tuple[int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(cell) != 3 or not all(isinstance(v, (int, np.integer)) for v in cell):
        raise ValueError(f"cell must be three ints (y, x, channel), got {cell!r}")
    for name, v, n in zip(("y", "x", "channel"), cell, shape):
        if not 0 <= v < n:
            raise ValueError(f"cell {name} must be in 0..{n - 1} for an output of shape {tuple(shape)} (HWC), got {v}")
    return tuple(int(v) for v in cell)  # type: ignore[return-value]


def _window(config: ExampleConfig, y: int, x: int):
    """(i, j, iy, ix, inside) for every kernel tap of forward-conv output (y, x)."""
    h, w = config.input_size
    (kh, kw), (sh, sw), (dh, dw) = config.kernel_size, config.strides, config.dilation_rate
    top = left = 0
    if config.padding == "same":
        top = P.same_padding(h, kh, sh, dh)[0]
        left = P.same_padding(w, kw, sw, dw)[0]
    for i in range(kh):
        for j in range(kw):
            iy, ix = y * sh + i * dh - top, x * sw + j * dw - left
            yield i, j, iy, ix, (0 <= iy < h and 0 <= ix < w)


def _window_sum(config, x, kernel_2d, channel, y, xx, label, marked) -> Sum:
    terms, padded = [], 0
    for i, j, iy, ix, inside in _window(config, y, xx):
        if not inside:
            padded += 1
            continue
        marked[iy, ix, channel] = True
        terms.append(Term(float(x[iy, ix, channel]), float(kernel_2d[i, j]), (iy, ix), (i, j)))
    return Sum(label, terms, sum(t.value * t.weight for t in terms), padded)


def _explain_conv2d(config, layer, x, weights, cell):
    y, xx, m = cell
    marked = np.zeros(x.shape, dtype=bool)
    sums = [
        _window_sum(config, x, weights["kernel"][:, :, c, m], c, y, xx, f"in {c}", marked)
        for c in range(config.in_channels)
    ]
    return [("sum over the window, one input channel at a time", sums)], [s.result for s in sums], marked


def _explain_depthwise(config, layer, x, weights, cell):
    y, xx, o = cell
    c, q = divmod(o, config.depth_multiplier)
    marked = np.zeros(x.shape, dtype=bool)
    label = f"in {c}" + (f" (multiplier {q})" if config.depth_multiplier > 1 else "")
    s = _window_sum(config, x, weights["depthwise_kernel"][:, :, c, q], c, y, xx, label, marked)
    return [(f"output channel {o} filters input channel {c} alone", [s])], [s.result], marked


def _explain_separable(config, layer, x, weights, cell):
    y, xx, m = cell
    marked = np.zeros(x.shape, dtype=bool)
    dm = config.depth_multiplier
    depthwise = [
        _window_sum(
            config, x, weights["depthwise_kernel"][:, :, k // dm, k % dm], k // dm, y, xx,
            f"d{k} = in {k // dm}" + (f" (multiplier {k % dm})" if dm > 1 else ""), marked,
        )
        for k in range(config.in_channels * dm)
    ]
    pointwise = weights["pointwise_kernel"][0, 0, :, m]
    mix = Sum("pointwise", [Term(s.result, float(pointwise[k])) for k, s in enumerate(depthwise)], 0.0)
    mix.result = sum(t.value * t.weight for t in mix.terms)
    steps = [
        ("step 1, depthwise: each channel filtered on its own", depthwise),
        (f"step 2, pointwise: a 1x1 convolution mixes {_span('d', len(depthwise))} into output channel {m}", [mix]),
    ]
    return steps, [mix.result], marked


def _span(prefix: str, count: int) -> str:
    return f"{prefix}0" if count == 1 else f"{prefix}0..{prefix}{count - 1}"


def _explain_transpose(config, layer, x, weights, cell):
    """Output (y, x) of a transposed conv gathers every input position (iy, ix) and kernel tap
    (i, j) with ``iy*s + i*d == y + crop`` -- each input value scatters a whole kernel."""
    y, xx, m = cell
    h, w = config.input_size
    (kh, kw), (sh, sw), (dh, dw) = config.kernel_size, config.strides, config.dilation_rate
    (top, _), (left, _) = layer._crops
    full_y, full_x = y + top, xx + left
    marked = np.zeros(x.shape, dtype=bool)
    taps = [
        (iy, ix, i, j)
        for iy in range(h)
        for ix in range(w)
        for i in range(kh)
        for j in range(kw)
        if iy * sh + i * dh == full_y and ix * sw + j * dw == full_x
    ]
    sums = []
    for c in range(config.in_channels):
        terms = [Term(float(x[iy, ix, c]), float(weights["kernel"][i, j, m, c]), (iy, ix), (i, j)) for iy, ix, i, j in taps]
        for iy, ix, _, _ in taps:
            marked[iy, ix, c] = True
        sums.append(Sum(f"in {c}", terms, sum(t.value * t.weight for t in terms)))
    title = "each input value scatters value × kernel; sum what lands here, one input channel at a time"
    return [(title, sums)], [s.result for s in sums], marked


_WRITERS = {
    "conv2d": _explain_conv2d,
    "depthwise": _explain_depthwise,
    "separable": _explain_separable,
    "transpose": _explain_transpose,
}


# ------------------------------------------------------------------------- text rendering
MAX_MATRICES = 12  # per group; the rest is summarised (the JSON has everything)


def format_text(e: Explanation, width: int = 100, times: str = "×") -> str:
    """The explanation as the article would write it: weights, inputs, outputs, then the sum."""
    cfg, (y, xx, m) = e.config, e.cell
    h, w = cfg.input_size
    ho, wo, mo = e.output.shape
    lines = [
        f"{e.layer.keras_class} -- {'the article 001 example' if cfg.is_article else 'custom example'}",
        f"  {e.layer.__class__.__name__}({e.layer.extra_repr()})",
        f"  input {h}x{w}x{cfg.in_channels} (HxWxC) -> output {ho}x{wo}x{mo}; "
        f"{e.cost.params:,} parameters, {e.cost.macs:,} multiply-adds"
        + (f" ({', '.join(f'{k} {v:,}' for k, v in e.cost.macs_by_step.items())})" if len(e.cost.macs_by_step) > 1 else ""),
        f"  values: {e.values_note}",
        "",
    ]
    lines += _weight_section(e, width)
    title = f"Input channels ([ ] marks the cells output[{y}, {xx}, {m}] reads)"
    lines += _matrix_section(title, [(f"in {c}", e.input[:, :, c], e.marked_inputs[:, :, c]) for c in range(cfg.in_channels)], width)
    lines += _matrix_section(
        "Output channels (computed by the layer)", [(f"out {o}", e.output[:, :, o], None) for o in range(mo)], width
    )
    lines.append(f"output[y={y}, x={xx}, c={m}]:")
    for step_title, sums in e.steps:
        lines.append(f"  {step_title}")
        for s in sums:
            lines.append("    " + _format_sum(s, times))
    parts = [_factor(p) if i else fmt_number(p) for i, p in enumerate(e.total_parts)]
    if e.bias is not None:
        parts.append(f"bias {_factor(e.bias)}")
    if len(parts) > 1:
        lines.append(f"  total: {' + '.join(parts)} = {fmt_number(e.value)}")
    lines.append(f"  layer output: {fmt_number(e.layer_output)} ({'matches' if abs(e.value - e.layer_output) < 1e-9 * max(1, abs(e.value)) else 'DIFFERS from'} the sum)")
    if cfg.is_article:
        article = np.asarray(ARTICLE_OUTPUTS[cfg.kind])
        ours = e.output.reshape(-1)
        verdict = "same" if np.allclose(ours, article, atol=1e-6) else "DIFFERENT"
        if article.size <= 4:
            lines.append(f"  article 001 prints: {', '.join(fmt_number(v) for v in article)}")
            lines.append(f"  cnnlab computes:    {', '.join(fmt_number(v) for v in ours)} ({verdict})")
        else:
            lines.append(
                f"  article 001 prints all {article.size} outputs; cnnlab's are the {verdict} "
                f"(largest difference {fmt_number(float(np.abs(ours - article).max()))})"
            )
    return "\n".join(lines)


def _factor(v: float) -> str:
    """A number inside an expression: negatives in parentheses."""
    text = fmt_number(v)
    return f"({text})" if text.startswith("-") else text


def _format_sum(s: Sum, times: str) -> str:
    if not s.terms:
        body = "0 (no input position reaches this cell)"
    else:
        body = " + ".join(f"{_factor(t.value)}{times}{_factor(t.weight)}" for t in s.terms)
    extra = f" + {s.padded} padded zero{'s' if s.padded > 1 else ''}" if s.padded else ""
    return f"{s.label}: {body}{extra} = {fmt_number(s.result)}"


def _weight_section(e: Explanation, width: int) -> list[str]:
    cfg, (_, _, m) = e.config, e.cell
    kh, kw = cfg.kernel_size
    out: list[str] = []
    if cfg.kind == "conv2d":
        k = e.weights["kernel"]
        blocks = [(f"in {c} -> out {o}" + (" *" if o == m else ""), k[:, :, c, o], None) for c in range(k.shape[2]) for o in range(k.shape[3])]
        out += _matrix_section(f"Kernel: one {kh}x{kw} matrix kernel[:, :, in, out] per input/output channel pair (* used)", blocks, width)
    elif cfg.kind == "transpose":
        k = e.weights["kernel"]
        blocks = [(f"in {c} -> out {o}" + (" *" if o == m else ""), k[:, :, o, c], None) for c in range(k.shape[3]) for o in range(k.shape[2])]
        out += _matrix_section(f"Kernel: one {kh}x{kw} matrix kernel[:, :, out, in] per input/output channel pair (* used)", blocks, width)
    else:
        k = e.weights["depthwise_kernel"]
        dm = cfg.depth_multiplier
        blocks = [(f"in {c}" + (f" x{q}" if dm > 1 else ""), k[:, :, c, q], None) for c in range(k.shape[2]) for q in range(dm)]
        out += _matrix_section(f"Depthwise kernel: one {kh}x{kw} matrix depthwise_kernel[:, :, in, multiplier] per input channel", blocks, width)
        if cfg.kind == "separable":
            p = e.weights["pointwise_kernel"][0, 0]
            out += _matrix_section(
                "Pointwise kernel: pointwise_kernel[0, 0, d, out] (rows d = depthwise outputs, columns = output channels)",
                [("", p, None)], width,
            )
    if "bias" in e.weights:
        out += _matrix_section("Bias", [("", e.weights["bias"][None, :], None)], width)
    return out


def _matrix_section(title: str, blocks: list[tuple[str, np.ndarray, np.ndarray | None]], width: int) -> list[str]:
    shown = blocks[:MAX_MATRICES]
    rendered = [[label, *matrix_lines(matrix, marked)] if label else matrix_lines(matrix, marked) for label, matrix, marked in shown]
    lines = [title, *("  " + line if line else line for line in hstack_blocks(rendered, width=width - 2))]
    if len(blocks) > len(shown):
        lines.insert(-1, f"  ... and {len(blocks) - len(shown)} more (all of them with --json)")
    return lines
