"""`cnnlab search SPACE` and `cnnlab search report DIR` end to end, and bad input refused early."""

from __future__ import annotations

import pytest

from cnnlab.cli import main


@pytest.mark.slow
def test_search_then_report(folder, data_cache, tmp_path, capsys):
    out = tmp_path / "study"
    args = [
        "search",
        "modules",
        "--objective",
        "error+params",
        "--preset",
        "smoke",
        "--trials",
        "3",
        "--epochs",
        "1",
        "--arg",
        "widths=4,8,8",
        "--dataset",
        "quadrants",
        "--data-dir",
        str(folder),
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "search modules (1 - max(val_acc) + params / 250000 * 0.05): 3 trials of 1 epoch(s), 160 training" in printed
    assert "rank  layers" in printed and "wall time" in printed

    assert main(["search", "report", str(out), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    assert lines[header].split() == ["rank", "layers", "score", "params", "val", "acc", "state"]
    ranked = lines[header + 1 : header + 3]
    assert [line.split()[0] for line in ranked] == ["1", "2"] and not lines[header + 3].startswith("   3")
    for name in ("history.png", "accuracy_vs_params.png", "importances.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert (out / "trials.csv").exists() and (out / "trials.json").exists()

    with pytest.raises(SystemExit):  # the study exists: continuing it is explicit
        main(args)
    assert "pass --resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "modules", "--trials", "0"], "trials must be a positive int, got 0"),
        (["search", "modules", "--arg", "depth=3"], "modulenet_cifar does not accept 'depth'"),
        (["search", "modules", "--objective", "pareto", "--pruner", "hyperband"], "cannot prune a multi-objective"),
        (["search", "modules", "--penalty-scale", "-5"], "penalty scale must be a positive number, got -5.0"),
        (["search", "modules", "--limit-train", "0"], "--limit-train must be a positive number of images, got 0"),
        (["search", "modules", "somewhere"], "only `cnnlab search report` takes a study directory"),
        (["search", "report"], "needs the study directory or storage URL"),
        (["search", "report", "/nonexistent/study"], "is neither a study directory nor a storage URL"),
        (
            ["search", "modules", "--storage", "nowhere.db", "--preset", "smoke", "--dataset", "quadrants"],
            "storage must be an SQLAlchemy URL",
        ),
    ],
)
def test_bad_input_is_one_clear_line(args, message, capsys, folder, data_cache, tmp_path):
    if "--dataset" in args:
        args = args + ["--data-dir", str(folder), "--out", str(tmp_path / "s")]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
