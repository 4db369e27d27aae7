"""`cnnlab explain` refuses, before computing, an example too large to write out or a GIF too
large to draw (each with its estimated size), shows the GIF's progress, and every page embeds
its data so that no name can break out of the data's <script> element."""

from __future__ import annotations

import itertools
import re

import pytest
from PIL import Image
from torch import nn

from cnnlab.analysis.explain import make_config, run_example
from cnnlab.analysis.explain.examples import MAX_NUMBERS, count_numbers, output_shape
from cnnlab.analysis.explain.page import read_page_data, render_page
from cnnlab.analysis.explain.pictures import MAX_GIF_BYTES, estimate_gif, save_gif
from cnnlab.analysis.summary import summary
from cnnlab.analysis.summary_page import read_page_data as read_summary_data
from cnnlab.analysis.summary_page import render_page as render_summary
from cnnlab.cli import main

# Keras takes strides or dilation, not both
SHAPES = [
    (kind, padding, strides, dilation)
    for kind, padding, (strides, dilation) in itertools.product(
        ("conv2d", "depthwise", "separable", "transpose"), ("valid", "same"), ((1, 1), (2, 1), (1, 2))
    )
]


@pytest.mark.parametrize("kind, padding, strides, dilation", SHAPES)
def test_the_size_is_known_before_the_layer_runs(kind, padding, strides, dilation):
    config = make_config(
        kind, input_size=(7, 6), padding=padding, strides=strides, dilation_rate=dilation, use_bias=True
    )
    run = run_example(config)
    assert output_shape(config) == run.output.shape
    counts = count_numbers(config)
    assert counts["input"] == run.input.size and counts["output"] == run.output.size
    assert counts["weights"] == sum(w.size for w in run.weights.values())


def test_an_example_too_large_to_write_out_is_refused_with_its_size(capsys):
    with pytest.raises(
        ValueError,
        match=r"input 2000x2000x2, output 1998x1998x3 and 54 weights are 19,976,066 numbers "
        r"\(about 914\.4 MiB of memory to print\), more than explain's 1,000,000",
    ):
        run_example(make_config("conv2d", input_size=2000))
    assert sum(count_numbers(make_config("conv2d", input_size=400)).values()) < MAX_NUMBERS  # still allowed
    with pytest.raises(SystemExit):
        main(["explain", "separable", "--in-channels", "3000", "--filters", "1000"])
    assert "3,027,000 weights are 3,055,000 numbers" in capsys.readouterr().err


def test_gif_shows_progress_and_its_estimate_holds(tmp_path):
    config = make_config("conv2d", input_size=(2, 3), in_channels=1, filters=1, kernel_size=2)  # 2 output cells
    run = run_example(config)
    calls = []
    path = save_gif(run, tmp_path / "a.gif", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)] and Image.open(path).n_frames == 2
    estimate = estimate_gif(run)
    assert estimate.frames == 2 and 0.5 < estimate.bytes / path.stat().st_size < 2


def test_cli_gif_progress_on_stderr(tmp_path, capsys):
    assert (
        main(
            [
                "explain",
                "conv2d",
                "--input-size",
                "2,3",
                "--in-channels",
                "1",
                "--filters",
                "1",
                "--kernel-size",
                "2",
                "--gif",
                str(tmp_path / "b.gif"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert f"cnnlab explain: drawing {tmp_path / 'b.gif'}: frame 2/2" in err


def test_a_huge_gif_is_refused_before_it_is_drawn(tmp_path, capsys, monkeypatch):
    from cnnlab.analysis.explain import pictures

    drawn = []
    monkeypatch.setattr(pictures, "frame_figure", lambda *a, **k: drawn.append(1))
    with pytest.raises(SystemExit):
        main(["explain", "conv2d", "--input-size", "60", "--gif", str(tmp_path / "big.gif")])
    err = capsys.readouterr().err
    assert re.search(
        r"the GIF would be too large: 10,092 frames, at least 57\.7 MiB \(one frame per output cell\), "
        rf"more than {MAX_GIF_BYTES // 2**20} MiB",
        err,
    ), err
    assert drawn == [] and not (tmp_path / "big.gif").exists()


NAMES = ("<!--<script>", "</script><script>alert(1)</script>", "a&b>c")


def test_summary_page_data_survives_script_and_comment_names():
    model = nn.Sequential()
    for name in NAMES:
        model.add_module(name, nn.Conv2d(3, 3, 1))
    s = summary(model, (3, 8, 8), name="<!--<script>")
    text = render_summary(s)
    start = text.index(">", text.index('id="cnnlab-summary"')) + 1
    embedded = text[start : text.index("</script>", start)]  # where an HTML parser ends the element
    assert not set("<>&") & set(embedded)  # no comment opener, no tag: the parser stays in plain script data
    data = read_summary_data(text)
    assert [r["name"] for r in data["rows"]] == list(NAMES) and data["model"] == "<!--<script>"
    assert "<title>cnnlab summary: &lt;!--&lt;script&gt;</title>" in text


def test_explain_page_data_is_escaped_too():
    text = render_page([run_example(make_config("conv2d"))], title="<!--<script>")
    start = text.index(">", text.index('id="cnnlab-data"')) + 1
    assert not set("<>&") & set(text[start : text.index("</script>", start)])
    assert read_page_data(text)["examples"][0]["kind"] == "conv2d"
