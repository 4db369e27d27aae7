"""cnnlab at home in a notebook: results render themselves as HTML (``_repr_html_``), and
``cnnlab.explain`` takes the command's options from Python."""

from __future__ import annotations

import base64
import json
import re

import cnnlab
from cnnlab.cli import main
from cnnlab.train.history import EpochRecord, History


def test_summary_renders_as_a_table():
    s = cnnlab.summary(cnnlab.create_model("convtype_cifar", conv="depthwise"), (3, 32, 32))
    page = s._repr_html_()
    assert page.count("<tr>") == len(s.rows) + 1  # header + one row per layer
    assert "Total params: 58,506" in page and "<table>" in page


def test_explain_from_python_matches_the_command(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # the command wraps at the terminal's width; str(e) at 100
    e = cnnlab.explain("conv2d", input_size=(4, 5), strides=2, padding="same", cell=(1, 2, 0))
    assert main(["explain", "conv2d", "--input-size", "4,5", "--strides", "2", "--padding", "same", "--cell", "1,2,0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(e.to_dict()))
    assert main(["explain", "conv2d", "--input-size", "4,5", "--strides", "2", "--padding", "same", "--cell", "1,2,0"]) == 0
    assert str(e) == capsys.readouterr().out.rstrip("\n")
    assert "598.5" in cnnlab.explain("conv2d")._repr_html_()  # the article's first output, shown in the page


def test_history_renders_curves_and_table():
    h = History({"tta": "flip"}, [EpochRecord(i, 1.0 / i, 0.5 + i / 10, 1.2 / i, 0.4 + i / 10, 0.1, 3.0, 100.0, 0.45 + i / 10)
                                  for i in (1, 2, 3)], {"model": "densenet_cifar"})
    page = h._repr_html_()
    png = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(png)[:4] == b"\x89PNG"
    assert page.count("<tr>") == 4 and "70.00%" in page  # epoch 3's validation accuracy
