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
                "--cell",
                "1,2,0",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(e.to_dict()))
    assert (
        main(["explain", "conv2d", "--input-size", "4,5", "--strides", "2", "--padding", "same", "--cell", "1,2,0"])
        == 0
    )
    assert str(e) == capsys.readouterr().out.rstrip("\n")
    assert "598.5" in cnnlab.explain("conv2d")._repr_html_()  # the article's first output, shown in the page


def test_history_renders_curves_and_table():
    h = History(
        {"tta": "flip"},
        [
            EpochRecord(i, 1.0 / i, 0.5 + i / 10, 1.2 / i, 0.4 + i / 10, 0.1, 3.0, 100.0, 0.45 + i / 10)
            for i in (1, 2, 3)
        ],
        {"model": "densenet_cifar"},
    )
    page = h._repr_html_()
    png = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(png)[:4] == b"\x89PNG"
    assert page.count("<tr>") == 4 and "70.00%" in page  # epoch 3's validation accuracy


def test_the_readmes_colab_cells_run(tmp_path, monkeypatch):
    """The README's Colab cells, less `pip`, on 256 CIFAR-10 images for one epoch on the CPU."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    start = readme.index("On Colab (where article 000 ran)")
    blocks = re.findall(r"```python\n(.*?)```", readme[start : start + 3000], flags=re.S)[:3]
    code = "\n".join(line for block in blocks for line in block.splitlines() if not line.startswith("!"))
    small = {
        'DataConfig("cifar10")': f'DataConfig("cifar10", {str(root.parent / "shared" / "datasets")!r}, limit_train=256, limit_val=128)',  # noqa: E501 (a table row / command line kept whole)
        'epochs=5, device="cuda"': 'epochs=1, warmup_epochs=0, device="cpu", batch_size=64',
    }
    for big, few in small.items():
        assert big in code, f"the README's Colab cells no longer say {big}"
        code = code.replace(big, few)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md (Colab cells)", "exec"), scope)
    assert scope["model"] is not None and "separable" in str(cnnlab.explain("separable")).lower()
    history = scope["run"].history
    assert len(history.epochs) == 1 and "<img" in history._repr_html_()
    assert (tmp_path / "runs" / "colab" / "history.json").is_file()
