"""``cnnlab explain``: the article's four examples, and for arbitrary configurations a
written-out sum that is both complete and correct.

Correctness is checked independently of the explanation code with autograd: the derivative
of the chosen output cell with respect to each input cell must equal the weights that the
written-out sum attaches to that cell.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from cnnlab.analysis.explain import (
    ARTICLE_OUTPUTS,
    explain,
    explain_cell,
    format_text,
    make_config,
    run_example,
)
from cnnlab.cli import main


def test_conv2d_article_text():
    text = format_text(explain("conv2d"))
    assert "in 0: 0.1×1 + 0.3×7 + 0.5×13 + 0.7×19 + 0.9×25 + 1.1×31 + 1.3×37 + 1.5×43 + 1.7×49 = 274.5" in text
    assert "in 1: 0.2×4 + 0.4×10 + 0.6×16 + 0.8×22 + 1×28 + 1.2×34 + 1.4×40 + 1.6×46 + 1.8×52 = 324" in text
    assert "total: 274.5 + 324 = 598.5" in text
    assert "cnnlab computes:    598.5, 615.6, 632.7 (same)" in text


def test_depthwise_article_text():
    text = format_text(explain("depthwise", cell=(0, 0, 1)))
    assert "in 1: 0.2×2 + 0.4×4 + 0.6×6 + 0.8×8 + 1×10 + 1.2×12 + 1.4×14 + 1.6×16 + 1.8×18 = 114" in text


def test_separable_article_text():
    text = format_text(explain("separable", cell=(0, 0, 1)))
    assert "d0 = in 0: 0.1×1 + 0.2×2 + 0.3×3 + 0.4×4 + 0.5×5 + 0.6×6 + 0.7×7 + 0.8×8 + 0.9×9 = 28.5" in text
    assert "pointwise: 28.5×3 = 85.5" in text


def test_transpose_article_text():
    # The article: the top-left 1.4 is 0.1*1 + 0.2*2 + 0.3*3.
    e = explain("transpose")
    text = format_text(e)
    assert "total: 0.1 + 0.4 + 0.9 = 1.4" in text
    assert "cnnlab's are the same" in text
    np.testing.assert_allclose(e.output.reshape(-1), ARTICLE_OUTPUTS["transpose"], atol=1e-9)
    centre = explain("transpose", cell=(2, 2, 1))
    assert centre.value == pytest.approx(282.8)
    assert sum(len(s.terms) for _, sums in centre.steps for s in sums) == 12  # 4 inputs x 3 channels


@pytest.mark.parametrize("kind", ["conv2d", "depthwise", "separable", "transpose"])
def test_article_outputs(kind):
    e = explain(kind)
    assert e.config.is_article
    np.testing.assert_allclose(e.output.reshape(-1), ARTICLE_OUTPUTS[kind], atol=1e-9)


def expected_input_gradient(e) -> np.ndarray:
    """d output[cell] / d input, read off the explanation's terms."""
    grad = np.zeros_like(e.input)
    if e.config.kind == "separable":
        (_, depthwise), (_, (mix,)) = e.steps
        for k, s in enumerate(depthwise):
            channel = k // e.config.depth_multiplier
            for t in s.terms:
                grad[t.input_pos[0], t.input_pos[1], channel] += t.weight * mix.terms[k].weight
        return grad
    ((_, sums),) = e.steps
    for s in sums:
        channel = int(s.label.split()[1])
        for t in s.terms:
            grad[t.input_pos[0], t.input_pos[1], channel] += t.weight
    return grad


def random_options(kind: str, rng: np.random.Generator) -> dict:
    strides = int(rng.integers(1, 4))
    options = {
        "in_channels": int(rng.integers(1, 4)),
        "kernel_size": (int(rng.integers(1, 5)), int(rng.integers(1, 5))),
        "strides": strides,
        "padding": str(rng.choice(["valid", "same"])),
        "dilation_rate": int(rng.integers(1, 3)) if strides == 1 else 1,
        "use_bias": bool(rng.random() < 0.5),
        "fill": "random",
        "seed": int(rng.integers(0, 1000)),
    }
    k_eff = [(k - 1) * options["dilation_rate"] + 1 for k in options["kernel_size"]]
    options["input_size"] = tuple(int(rng.integers(k, k + 5)) for k in k_eff)
    if kind != "depthwise":
        options["filters"] = int(rng.integers(1, 4))
    if kind in ("depthwise", "separable"):
        options["depth_multiplier"] = int(rng.integers(1, 3))
    if kind == "transpose" and rng.random() < 0.5:
        options["output_padding"] = int(rng.integers(0, strides))
    return options


@pytest.mark.parametrize("kind", ["conv2d", "depthwise", "separable", "transpose"])
def test_every_cell_of_random_examples_is_written_out_correctly(kind):
    rng = np.random.default_rng(7)
    for _ in range(12):
        options = random_options(kind, rng)
        e0 = explain(kind, **options)
        x = torch.tensor(e0.input.transpose(2, 0, 1)[None], requires_grad=True)
        out = e0.layer(x)
        ho, wo, m = e0.output.shape
        for cell in [(y, xx, c) for y in range(ho) for xx in range(wo) for c in range(m)]:
            e = explain(kind, cell=cell, **options)
            # the terms add up to what the layer printed ...
            assert e.value == pytest.approx(e.layer_output, abs=1e-9)
            # ... and they are the right terms: their weights are the layer's input gradient.
            (grad,) = torch.autograd.grad(out[0, cell[2], cell[0], cell[1]], x, retain_graph=True)
            np.testing.assert_allclose(
                expected_input_gradient(e), grad[0].numpy().transpose(1, 2, 0), atol=1e-9, err_msg=f"{options} {cell}"
            )
            # every input cell the output depends on is marked in the printed input matrices
            assert e.marked_inputs[grad[0].numpy().transpose(1, 2, 0) != 0].all()


def test_padded_positions_are_counted():
    e = explain("conv2d", input_size=3, in_channels=1, filters=1, padding="same")
    ((_, (s,)),) = e.steps
    assert len(s.terms) == 4 and s.padded == 5  # top-left cell of a 3x3 'same' window
    assert "+ 5 padded zeros" in format_text(e)


def test_bad_options():
    with pytest.raises(ValueError, match=r"cell x must be in 0..0 for an output of shape \(1, 1, 3\) \(HWC\), got 1"):
        explain("conv2d", cell=(0, 1, 0))
    with pytest.raises(ValueError, match="filters does not apply to depthwise"):
        explain("depthwise", filters=3)
    with pytest.raises(ValueError, match="layer must be one of"):
        explain("pooling")
    with pytest.raises(ValueError, match="smaller than the kernel"):
        explain("conv2d", input_size=2)


def test_cli_text_and_json(capsys):
    assert main(["explain", "conv2d"]) == 0
    assert "total: 274.5 + 324 = 598.5" in capsys.readouterr().out
    assert main(["explain", "transpose", "--cell", "1,1,0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layer"] == "Conv2DTranspose" and data["example"] == "article 001"
    assert data["layer_output"] == pytest.approx(72.2)
    terms = [t for step in data["steps"] for s in step["sums"] for t in s["terms"]]
    assert sum(t["value"] * t["weight"] for t in terms) == pytest.approx(72.2)
    assert np.array(data["output"]).shape == (4, 4, 2)


def test_cli_custom_example_and_errors(capsys):
    assert main(["explain", "separable", "--in-channels", "2", "--depth-multiplier", "2", "--seed", "3", "--bias"]) == 0
    out = capsys.readouterr().out
    assert "custom example" in out and "mixes d0..d3" in out and "(matches the sum)" in out
    with pytest.raises(SystemExit) as info:
        main(["explain", "conv2d", "--cell", "5,0,0"])
    assert info.value.code == 2
    assert "cnnlab explain: error: cell y must be in 0..0" in capsys.readouterr().err


def test_console_entry_point_runs():
    """``python -m cnnlab`` (what the ``cnnlab`` script calls) prints the Conv2D explanation."""
    result = subprocess.run(
        [sys.executable, "-m", "cnnlab", "explain", "conv2d"], capture_output=True, text=True, check=True
    )
    assert "598.5" in result.stdout


def config_with(kind: str, strides: int, padding: str, rng: np.random.Generator) -> dict:
    """A random example of ``kind`` with the given strides and padding."""
    options = {**random_options(kind, rng), "strides": strides, "padding": padding}
    if strides > 1:
        options["dilation_rate"] = 1
    if kind == "transpose":
        options["output_padding"] = int(rng.integers(0, strides)) if rng.random() < 0.5 else None
    return options


def kernel_2d(e, s) -> np.ndarray:
    """The (kh, kw) kernel slice that sum ``s`` of explanation ``e`` multiplies its input channel by."""
    c, m = s.channel, e.cell[2]
    if e.config.kind == "conv2d":
        return e.weights["kernel"][:, :, c, m]
    if e.config.kind == "transpose":
        return e.weights["kernel"][:, :, m, c]
    return e.weights["depthwise_kernel"][:, :, c, s.multiplier]


def check_sum(s, e) -> None:
    """A sum's products and result, against the example's own input and weights."""
    for t in s.terms:
        assert t.product == t.value * t.weight and not t.padding
    assert s.result == pytest.approx(sum(t.product for t in s.terms), abs=1e-12)
    if s.channel is None:  # separable's pointwise mix reads the depthwise results, not the input
        return
    kernel = kernel_2d(e, s)
    for t in s.terms:
        assert t.value == e.input[t.input_pos[0], t.input_pos[1], s.channel] and t.weight == kernel[t.kernel_pos]
    (h, w), (kh, kw) = e.config.input_size, e.config.kernel_size
    for t in s.padding:  # taps on padding zeros: outside the input, value 0
        assert t.padding and t.value == 0 and not (0 <= t.input_pos[0] < h and 0 <= t.input_pos[1] < w)
        assert t.weight == kernel[t.kernel_pos]
    if e.config.kind != "transpose":  # a forward window has one tap per kernel cell, padding included
        assert [t.kernel_pos for t in s.window] == [(i, j) for i in range(kh) for j in range(kw)]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2, 3])
@pytest.mark.parametrize("kind", ["conv2d", "depthwise", "separable", "transpose"])
def test_computed_products_and_sums_equal_the_layer_output(kind, strides, padding):
    """The data a renderer reads (products, partial sums, total) rebuilds the layer's float64 output."""
    rng = np.random.default_rng(100 * strides + len(padding))
    for _ in range(3):
        run = run_example(make_config(kind, **config_with(kind, strides, padding, rng)))
        with torch.no_grad():  # the layer's own output, computed again
            x = torch.from_numpy(run.input.transpose(2, 0, 1))[None]
            produced = run.layer(x)[0].numpy().transpose(1, 2, 0)
        assert produced.dtype == np.float64
        ho, wo, m = produced.shape
        for cell in [(y, x, c) for y in range(ho) for x in range(wo) for c in range(m)]:
            e = explain_cell(run, cell)
            sums = [s for step in e.steps for s in step.sums]
            for s in sums:
                check_sum(s, e)
            if kind == "separable":
                (_, depthwise), (_, (mix,)) = e.steps
                assert [t.value for t in mix.terms] == [s.result for s in depthwise]
                assert [s.channel for s in depthwise] == [k // e.config.depth_multiplier for k in range(len(depthwise))]
                total = sum(t.product for t in mix.terms)
            else:
                if kind == "depthwise":
                    assert [s.channel for s in sums] == [cell[2] // e.config.depth_multiplier]
                total = sum(sum(t.product for t in s.terms) for s in sums)
            total += e.bias or 0.0
            assert total == pytest.approx(produced[cell], rel=1e-12, abs=1e-12)
            assert e.value == pytest.approx(total, rel=1e-12, abs=1e-12) and e.matches


def test_same_padding_marks_the_keras_extra_bottom_right_cells():
    """Keras 'same', 4x4 input, 3x3 kernel, stride 2: the one padded row/column is after the input."""
    run = run_example(make_config("conv2d", input_size=4, in_channels=1, filters=1, strides=2, padding="same"))
    assert run.input_padding == ((0, 1), (0, 1))
    ((_, (s,)),) = explain_cell(run, (1, 1, 0)).steps
    assert sorted(t.input_pos for t in s.padding) == [(2, 4), (3, 4), (4, 2), (4, 3), (4, 4)]
    assert [t.padding for t in s.window] == [False, False, True, False, False, True, True, True, True]
    ((_, (s,)),) = explain_cell(run, (0, 0, 0)).steps
    assert s.padded == 0  # nothing is padded before the input
    transpose = run_example(make_config("transpose", strides=2, padding="same", output_padding=1))
    assert transpose.output_crop == transpose.layer._crops and transpose.input_padding == ((0, 0), (0, 0))


def test_one_run_serves_every_cell_and_the_json_keeps_its_shape():
    run = run_example(make_config("conv2d", input_size=4, padding="same"))
    for cell in [(0, 0, 0), (3, 2, 1)]:
        again = explain("conv2d", cell=cell, input_size=4, padding="same")
        assert format_text(explain_cell(run, cell)) == format_text(again)
    data = explain_cell(run, (3, 3, 2)).to_dict()
    assert set(data["steps"][0]["sums"][0]) == {"label", "terms", "padded_terms", "result"}
    assert set(data["steps"][0]["sums"][0]["terms"][0]) == {"value", "weight", "input_pos", "kernel_pos"}
    assert data["steps"][0]["sums"][0]["padded_terms"] == 5 and data["article_output"] is None
    assert explain("conv2d").to_dict()["article_output"] == ARTICLE_OUTPUTS["conv2d"]


def test_a_layer_with_filters_needs_filters():
    """Only depthwise takes filters=None (its outputs are in_channels * depth_multiplier); any
    other kind built without filters is refused, not given None output channels."""
    from cnnlab.analysis.explain.examples import ExampleConfig, output_shape

    assert output_shape(ExampleConfig("depthwise", (3, 3), 2, None, (3, 3), depth_multiplier=2)) == (1, 1, 4)
    with pytest.raises(ValueError, match="filters must be set for a conv2d example"):
        output_shape(ExampleConfig("conv2d", (3, 3), 2, None, (3, 3)))
