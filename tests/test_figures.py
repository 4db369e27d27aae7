"""The figure helper: PNGs written whole, and library plots that leave the caller's matplotlib alone
(no backend switch, no pyplot figures left open)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest
from PIL import Image

from cnnlab.figures import new_figure, save_figure, subplots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

# Library files (relative to src/cnnlab) still allowed to use pyplot / matplotlib.use until they
# draw with cnnlab.figures. Temporary: delete each entry once its file is converted (or gone);
# the set should end up empty.
PYPLOT_ALLOWED: set[str] = set()  # library files allowed pyplot / matplotlib.use: none

USE_CALL = re.compile(r"\bmatplotlib\s*\.\s*use\s*\(")
PYPLOT_IMPORT = re.compile(
    r"^\s*(import\s+matplotlib\.pyplot\b|from\s+matplotlib\.pyplot\s+import\b|from\s+matplotlib\s+import\s+.*\bpyplot\b)",
    re.MULTILINE,
)


@pytest.fixture
def foreign_backend():
    """Run with a non-Agg backend selected, as a notebook or GUI user would have, then put back the original."""
    import matplotlib.pyplot as plt

    original = matplotlib.get_backend()
    plt.close("all")
    matplotlib.use("svg")
    try:
        yield "svg"
    finally:
        plt.close("all")
        matplotlib.use(original)


def test_save_figure_writes_a_whole_png_and_no_temporary(tmp_path):
    fig, ax = subplots(figsize=(4, 3), dpi=50)
    ax.plot([0, 1, 2], [1, 0, 1], label="line")
    ax.legend()
    path = tmp_path / "out" / "plot.png"
    assert save_figure(fig, path) == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (200, 150)  # figsize * dpi
    assert [p.name for p in path.parent.iterdir()] == ["plot.png"]  # the temporary was renamed, none left


def test_new_figure_belongs_to_no_pyplot_registry(foreign_backend, tmp_path):
    import matplotlib.pyplot as plt

    fig = new_figure(figsize=(2, 2), dpi=40)
    fig.subplots().plot([0, 1])
    save_figure(fig, tmp_path / "a.png")
    assert plt.get_fignums() == []
    assert matplotlib.get_backend() == foreign_backend


def test_history_curves_leave_backend_and_pyplot_alone(foreign_backend, tmp_path):
    import matplotlib.pyplot as plt

    from cnnlab.train.history import EpochRecord, History

    history = History(
        {"epochs": 2},
        [
            EpochRecord(1, 1.2, 0.40, 1.1, 0.45, 1e-3, 3.0, 100.0),
            EpochRecord(2, 0.9, 0.60, 1.0, 0.55, 5e-4, 3.1, 105.0),
        ],
        {"model": "densenet_cifar", "validation": "val"},
    )
    written = history.save(tmp_path)
    curves = tmp_path / "curves.png"
    assert curves in written
    assert curves.read_bytes()[:8] == PNG_SIGNATURE
    assert matplotlib.get_backend() == foreign_backend
    assert plt.get_fignums() == []


def test_compare_plot_leaves_backend_and_pyplot_alone(foreign_backend, tmp_path):
    import matplotlib.pyplot as plt

    from cnnlab.analysis.compare import compare

    png = tmp_path / "cost.png"
    written = compare(["densenet_cifar", "convtype_cifar"]).save(png)
    assert written == [png, png.with_suffix(".csv"), png.with_suffix(".json")]
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert matplotlib.get_backend() == foreign_backend
    assert plt.get_fignums() == []


def test_no_library_file_switches_backend_or_imports_pyplot():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        name = path.relative_to(SRC).as_posix()
        if name in PYPLOT_ALLOWED:
            continue
        text = path.read_text(encoding="utf-8")
        if USE_CALL.search(text) or PYPLOT_IMPORT.search(text):
            offenders.append(name)
    assert offenders == [], f"draw with cnnlab.figures instead of pyplot / matplotlib.use: {offenders}"
