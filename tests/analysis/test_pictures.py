"""`cnnlab explain --png/--gif`: one frame per output cell, drawn from the layer's own float64
numbers, small files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.analysis.explain import explain, make_config, run_example
from cnnlab.analysis.explain.pictures import cells, frames, save_gif, save_png
from cnnlab.cli import main

KINDS = ("conv2d", "depthwise", "separable", "transpose")


@pytest.mark.parametrize("kind", KINDS)
def test_frames_follow_the_layer_cell_by_cell(kind):
    rng = np.random.default_rng(KINDS.index(kind))
    for strides in (1, 2, 3):
        padding = ("valid", "same")[int(rng.integers(2))]
        size = (int(rng.integers(3, 6)), int(rng.integers(3, 6)))
        run = run_example(make_config(kind, input_size=size, strides=strides, padding=padding, in_channels=2, seed=strides))
        order = list(cells(run))
        assert len(order) == run.output.size and len(set(order)) == len(order)
        if strides == 1:  # render one configuration per kind (rendering is the slow part)
            shown = list(frames(run))
            assert [e.cell for e, _ in shown] == order
            for e, _ in shown:  # the numbers of every frame are the layer's output, in float64
                assert e.value == pytest.approx(float(run.output[e.cell]), rel=1e-12, abs=1e-12)
            first = explain(kind, cell=(0, 0, 0), input_size=size, strides=strides, padding=padding, in_channels=2, seed=strides)
            np.testing.assert_array_equal(shown[0][0].marked_inputs, first.marked_inputs)  # as the text mode marks


def test_gif_has_one_frame_per_cell_and_stays_small(tmp_path):
    for kind in KINDS:  # the article's four examples
        run = run_example(make_config(kind))
        path = save_gif(run, tmp_path / f"{kind}.gif")
        with Image.open(path) as gif:
            assert gif.n_frames == run.output.size
        assert path.stat().st_size < 2 * 2**20


def test_cli_png_and_gif(tmp_path, capsys):
    assert main(["explain", "conv2d", "--input-size", "4,5", "--strides", "2", "--padding", "same",
                 "--png", str(tmp_path / "c.png"), "--gif", str(tmp_path / "c.gif")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    with Image.open(tmp_path / "c.gif") as gif:
        assert gif.n_frames == 2 * 3 * 3
    assert save_png(explain("transpose", cell=(1, 1, 0)), tmp_path / "t.png").stat().st_size > 0
