"""`cnnlab explain --png/--gif`: one frame per output cell, drawn from the layer's own float64
numbers, small files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.analysis.explain import explain, explain_cell, make_config, run_example, scatter
from cnnlab.analysis.explain.pictures import cells, frames, save_gif, save_png
from cnnlab.cli import main

KINDS = ("conv2d", "depthwise", "separable", "transpose")


@pytest.mark.parametrize("kind", KINDS)
def test_frames_follow_the_layer_cell_by_cell(kind):
    rng = np.random.default_rng(KINDS.index(kind))
    for strides in (1, 2, 3):
        padding = ("valid", "same")[int(rng.integers(2))]
        size = (int(rng.integers(3, 6)), int(rng.integers(3, 6)))
        run = run_example(
            make_config(kind, input_size=size, strides=strides, padding=padding, in_channels=2, seed=strides)
        )
        order = list(cells(run))
        assert len(order) == run.output.size and len(set(order)) == len(order)
        if strides == 1:  # render one configuration per kind (rendering is the slow part)
            shown = list(frames(run))
            assert [e.cell for e, _ in shown] == order
            for e, _ in shown:  # the numbers of every frame are the layer's output, in float64
                assert e.value == pytest.approx(float(run.output[e.cell]), rel=1e-12, abs=1e-12)
            first = explain(
                kind, cell=(0, 0, 0), input_size=size, strides=strides, padding=padding, in_channels=2, seed=strides
            )
            np.testing.assert_array_equal(shown[0][0].marked_inputs, first.marked_inputs)  # as the text mode marks


def test_gif_has_one_frame_per_cell_and_stays_small(tmp_path):
    for kind in KINDS:  # the article's four examples; the transpose scatters, one frame per input position
        run = run_example(make_config(kind))
        path = save_gif(run, tmp_path / f"{kind}.gif")
        with Image.open(path) as gif:
            assert gif.n_frames == (run.input.shape[0] * run.input.shape[1] if kind == "transpose" else run.output.size)
        assert path.stat().st_size < 2 * 2**20


def test_transpose_scatter_lands_where_the_text_mode_reads():
    """Each input position's frame outlines exactly the output cells whose written-out sums read it,
    and the scattered sums, cropped (plus bias), are the layer's output (scatter() checks that)."""
    rng = np.random.default_rng(5)
    for strides in (1, 2, 3):
        for padding in ("valid", "same"):
            op = int(rng.integers(0, strides)) if padding == "valid" and strides > 1 else None
            run = run_example(
                make_config(
                    "transpose",
                    input_size=(int(rng.integers(2, 4)), int(rng.integers(2, 4))),
                    strides=strides,
                    padding=padding,
                    output_padding=op,
                    use_bias=True,
                    in_channels=2,
                    filters=2,
                    seed=strides,
                )
            )
            sr = scatter(run)
            (r0, r1), (c0, c1) = sr.output_window
            assert sr.steps[-1].canvas[r0:r1, c0:c1].shape[:2] == run.output.shape[:2]
            for step in sr.steps:
                iy, ix = step.input_pos
                landed = {(r - r0, c - c0) for _, _, r, c in step.taps if r0 <= r < r1 and c0 <= c < c1}
                read_by = {
                    (y, x) for y, x, m in cells(run) if m == 0 and explain_cell(run, (y, x, 0)).marked_inputs[iy, ix, 0]
                }
                assert landed == read_by
    with pytest.raises(ValueError, match="only a transposed convolution"):
        scatter(run_example(make_config("conv2d")))


def test_cli_png_and_gif(tmp_path, capsys):
    assert (
        main(
            [
                "explain",
                "conv2d",
                "--input-size",
                "4,5",
                "--strides",
                "2",
                "--padding",
                "same",
                "--png",
                str(tmp_path / "c.png"),
                "--gif",
                str(tmp_path / "c.gif"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "wrote" in out and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    with Image.open(tmp_path / "c.gif") as gif:
        assert gif.n_frames == 2 * 3 * 3
    assert save_png(explain("transpose", cell=(1, 1, 0)), tmp_path / "t.png").stat().st_size > 0
