"""One Markdown row per run for docs/results.md, read from the runs' own history.json.

    .venv/bin/python scripts/results_rows.py docs/runs/densenet-case4 docs/runs/convtypes-depthwise ...

Columns: preset, precision, epochs, best plain accuracy (its epoch), final plain accuracy, best
flip TTA, the first epoch at the article's figure with the wall time the history measured to
its end and the quiet estimate (that epoch x the median s/epoch of the quiet epochs, those within
15% of the fastest: the wall time includes any epoch slowed by the test suite or paused with
SIGSTOP), the article's figure and GPU time (100 epochs x its s/epoch), the median quiet s/epoch
and images/s. ``PATH:PRESET`` names the preset the run used.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from cnnlab.reproduce.experiments import get_experiment


def article_row(info: dict) -> tuple[str, float | None, float | None]:
    """The row's name, the article's accuracy and its GPU seconds per epoch."""
    experiment = "densenet" if info["model"] == "densenet_cifar" else "convtypes"
    case = next(c for c in get_experiment(experiment).cases if c.number == info.get("case"))
    name = (
        f"article 000 case {case.number}" if experiment == "densenet" else f"article 001 {case.model_args['conv']} net"
    )
    return name, case.article.best_acc, case.article.seconds_per_epoch


def row(run: Path, preset: str) -> str:
    history = json.loads((run / "history.json").read_text())
    info, epochs = history["info"], history["epochs"]
    name, target, gpu_s = article_row(info)
    accs = [e["val_acc"] for e in epochs]
    best = max(range(len(accs)), key=accs.__getitem__)
    tta = max((e.get("val_acc_tta") or 0.0) for e in epochs)
    fastest = min(e["seconds"] for e in epochs)
    quiet = [e for e in epochs if e["seconds"] <= 1.15 * fastest]
    median = statistics.median(e["seconds"] for e in quiet)
    images = statistics.median(e["images_per_s"] for e in quiet)
    reached = next((i for i, a in enumerate(accs) if a >= target - 1e-9), None)
    if reached is None:
        at = "not reached"
    else:
        wall = sum(e["seconds"] for e in epochs[: reached + 1]) / 60
        at = f"epoch {reached + 1}: {wall:.0f} min wall, {(reached + 1) * median / 60:.0f} min quiet"
    gpu = f"{100 * gpu_s / 3600:.1f} h" if gpu_s else "not given"
    return (
        f"| {name} | `{preset}` | {info.get('precision')} | {len(epochs)} | {100 * accs[best]:.2f}% (ep. {best + 1}) | "
        f"{100 * accs[-1]:.2f}% | {100 * tta:.2f}% | {at} | {100 * target:.2f}% | {gpu} | {median:.0f} | {images:.0f} |"
    )


if __name__ == "__main__":
    print(
        "| row | preset | precision | epochs | best plain | final plain | best flip TTA | article's figure first reached | article | article GPU time | quiet s/epoch (median) | quiet img/s (median) |"  # noqa: E501 (a table row / command line kept whole)
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        path, _, preset = arg.partition(":")
        print(row(Path(path), preset or "?"))
