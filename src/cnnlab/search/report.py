"""``cnnlab search report``: the article-style top-k table and the study's pictures.

One row per architecture (its duplicates folded in, its retries shown as one): rank, layer
types, score, params, best validation accuracy, state. Written next to the study:

* ``trials.csv`` / ``trials.json`` -- every architecture's row (the table's data);
* ``history.png`` -- score of each trial in order, with the best so far;
* ``accuracy_vs_params.png`` -- best validation accuracy against params, Pareto front drawn;
* ``importances.png`` / ``importances.json`` -- Optuna's parameter importances (its default evaluator).
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..figures import log_axis, save_figure, subplots
from ..io import atomic_write_text
from .spaces import stored_model_args
from .stored import read_storage, stored_study_names
from .study import DEFAULT_DB, SearchSettings, load_settings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATE_ORDER = {
    TrialState.COMPLETE: 0,
    TrialState.PRUNED: 1,
    TrialState.RUNNING: 2,
    TrialState.WAITING: 3,
    TrialState.FAIL: 4,
}


@dataclass
class Row:
    trial: int
    label: str
    state: str  # complete, pruned, running, failed
    values: list[float]  # objective value(s); a pruned trial's last reported score
    params: int | None
    val_acc: float | None  # best validation accuracy reached
    epochs: int
    latency_ms: float | None = None
    macs: int | None = None
    pareto: bool = (
        False  # on the front of (error, cost) among complete trials; cost: latency for latency objectives, else params
    )
    duplicates: int = 0  # times the sampler proposed it again
    attempts: int = 1  # 2+ when a dead worker's trial was retried
    resumed_from_epoch: int | None = None
    model: str = ""
    model_args: dict[str, Any] = field(default_factory=dict)
    rank: int = 0


def resolve(target: str, study_name: str | None = None) -> tuple[str, str, Path | None]:
    """(storage URL, study name, study directory or None) for a study directory or a storage URL."""
    path = Path(target)
    if "://" in target or target.startswith("journal:"):
        url, directory = target, None
    elif path.is_dir():
        if not (path / DEFAULT_DB).exists():
            raise FileNotFoundError(
                f"{path} holds no {DEFAULT_DB}; give the study directory, or the storage URL the study used"
            )
        url, directory = f"sqlite:///{(path / DEFAULT_DB).resolve()}", path
    else:
        raise FileNotFoundError(
            f"{target!r} is neither a study directory nor a storage URL (sqlite:///..., postgresql://..., journal:PATH)"
        )
    names = stored_study_names(url)  # read only: a mistyped URL or a file that is no study is said, never written
    if study_name is None:
        if len(names) != 1:
            raise ValueError(
                f"{target} holds {len(names)} studies ({', '.join(names) or 'none'}); choose one with `study_name`"
            )
        study_name = names[0]
    elif study_name not in names:
        raise ValueError(f"no study {study_name!r} in {target}; studies: {', '.join(names) or 'none'}")
    return url, study_name, directory


def open_report(
    target: str, study_name: str | None = None, out: str | Path | None = None
) -> tuple[optuna.Study, SearchSettings, Path]:
    """The study behind ``target`` (a study directory or a storage URL), its settings, and where
    its report goes: ``out``, else the study directory, else the study's own ``out`` setting."""
    url, name, directory = resolve(target, study_name)
    study = optuna.load_study(study_name=name, storage=read_storage(url))
    settings = load_settings(study)
    return study, settings, Path(out) if out else directory or Path(settings.out)


def _last_score(t: FrozenTrial) -> list[float]:
    if t.state == TrialState.COMPLETE:
        return list(t.values)
    if t.intermediate_values:
        return [t.intermediate_values[max(t.intermediate_values)]]
    return []


def rows(study: optuna.Study) -> list[Row]:
    """One row per architecture, ranked: complete by score (pareto: by error), then pruned by last score."""
    groups: dict[str, list[FrozenTrial]] = {}
    duplicates: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get("arch")
        if key is None:
            continue
        if t.user_attrs.get("dedup") == "duplicate":
            duplicates[key] = duplicates.get(key, 0) + 1
        elif t.user_attrs.get("dedup") == "owner":
            groups.setdefault(key, []).append(t)
    result = []
    for key, attempts in groups.items():
        t = min(attempts, key=lambda t: (STATE_ORDER.get(t.state, 9), -t.number))
        a = t.user_attrs
        curve = a.get("val_acc", [])
        result.append(
            Row(
                trial=t.number,
                label=a.get("label", "?"),
                state={
                    TrialState.COMPLETE: "complete",
                    TrialState.PRUNED: "pruned",
                    TrialState.RUNNING: "running",
                    TrialState.FAIL: "failed",
                    TrialState.WAITING: "queued",
                }[t.state],
                values=_last_score(t),
                params=a.get("params"),
                val_acc=a.get("best_val_acc", max(curve) if curve else None),
                epochs=a.get("epochs_done", 0),
                latency_ms=a.get("latency_ms"),
                macs=a.get("macs"),
                duplicates=duplicates.get(key, 0),
                attempts=len(attempts),
                resumed_from_epoch=a.get("resumed_from_epoch"),
                model=a.get("model", ""),
                model_args=stored_model_args(a),
            )
        )
    cost = _cost_attr(study)
    scored = [r for r in result if r.state == "complete" and getattr(r, cost) is not None and r.val_acc is not None]
    front = pareto_front([_point(r, cost) for r in scored])
    for r in scored:
        r.pareto = _point(r, cost) in front
    order = {"complete": 0, "pruned": 1, "running": 2, "queued": 3, "failed": 4}
    result.sort(key=lambda r: (order[r.state], r.values[0] if r.values else float("inf"), r.trial))
    for i, r in enumerate(result, 1):
        r.rank = i
    return result


def _cost_attr(study: optuna.Study) -> str:
    """The Row field the study's objective weighs accuracy against: latency_ms or params."""
    try:
        kind = load_settings(study).objective.cost_kind
    except Exception:  # noqa: BLE001 -- a study without cnnlab's settings: parameters
        kind = None
    return "latency_ms" if kind == "latency" else "params"


def _point(row: Row, cost: str) -> tuple[float, float]:
    """(cost, error) of a trial with an accuracy, as the Pareto front compares them."""
    assert row.val_acc is not None  # the callers keep only the trials with one
    return getattr(row, cost), 1 - row.val_acc


def pareto_front(points: list[tuple[float, float]]) -> set[tuple[float, float]]:
    """The points no other point beats in both coordinates (both minimised)."""
    return {p for p in points if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points)}


def table(study_rows: list[Row], settings: SearchSettings, top: int = 10) -> str:
    """The article's table: rank, layer types, score, params, accuracy, state; its ``top`` rows."""
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}")
    multi = settings.objective.multi
    score_head = ["error", settings.objective.names[1]] if multi else [settings.objective.names[0]]
    head = [
        "rank",
        "layers" if settings.space.startswith("modules") else "architecture",
        *score_head,
        "params",
        "val acc",
        "state",
    ]
    if settings.objective.cost_kind == "latency":
        head.insert(-1, "latency_ms")
    lines = []
    for r in study_rows[:top]:
        scores = [f"{v:.4f}" if i == 0 or not multi else f"{v:,.4g}" for i, v in enumerate(r.values)]
        scores += [""] * (len(score_head) - len(scores))
        state = r.state + (f" (epoch {r.epochs})" if r.state == "pruned" else "")
        state += " *front" if multi and r.pareto else ""
        state += f" (retried, resumed after epoch {r.resumed_from_epoch})" if r.resumed_from_epoch else ""
        row = [
            str(r.rank),
            r.label,
            *scores,
            f"{r.params:,}" if r.params is not None else "",
            f"{r.val_acc:.2%}" if r.val_acc is not None else "",
            state,
        ]
        if settings.objective.cost_kind == "latency":
            row.insert(-1, f"{r.latency_ms:.3f}" if r.latency_ms is not None else "")
        lines.append(row)
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    left = {1, len(head) - 1}

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([fmt(head), *(fmt(line) for line in lines)])


def summary_line(study: optuna.Study, study_rows: list[Row]) -> str:
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    dups = sum(t.user_attrs.get("dedup") == "duplicate" for t in trials)
    return (
        f"{len(trials)} trials: {count[TrialState.COMPLETE]} complete, {count[TrialState.PRUNED]} pruned, "
        f"{count[TrialState.FAIL]} failed, {count[TrialState.RUNNING]} running, {count[TrialState.WAITING]} queued; "
        f"{len(study_rows)} distinct architectures trained, {dups} duplicate proposals not trained again"
    )


def write_report(study: optuna.Study, out_dir: str | Path, study_rows: list[Row] | None = None) -> list[Path]:
    """trials.csv/json, history.png, accuracy_vs_params.png, importances.png/json into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    settings = load_settings(study)
    study_rows = rows(study) if study_rows is None else study_rows
    written = [
        atomic_write_text(
            out / "trials.json",
            json.dumps(
                {
                    "study": study.study_name,
                    "objective": settings.objective.describe(),
                    "settings": settings.to_dict(),
                    "architectures": [asdict(r) for r in study_rows],
                },
                indent=1,
            ),
        )
    ]
    buffer = io.StringIO()
    columns = [
        "rank",
        "trial",
        "label",
        "state",
        "values",
        "params",
        "val_acc",
        "epochs",
        "latency_ms",
        "macs",
        "pareto",
        "duplicates",
        "attempts",
        "resumed_from_epoch",
        "model",
        "model_args",
    ]
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for r in study_rows:
        d = asdict(r)
        d["values"] = ";".join(f"{v:.6g}" for v in r.values)
        d["model_args"] = json.dumps(r.model_args, sort_keys=True)
        writer.writerow([d[c] for c in columns])
    written.append(atomic_write_text(out / "trials.csv", buffer.getvalue()))
    importances = _importances(study)
    written.append(atomic_write_text(out / "importances.json", json.dumps(importances, indent=1)))

    written.append(save_figure(_history_figure(study, settings), out / "history.png"))
    written.append(save_figure(_front_figure(study_rows), out / "accuracy_vs_params.png"))
    if any(r.latency_ms for r in study_rows):  # a latency objective: its own front, against what it weighed
        written.append(save_figure(_front_figure(study_rows, "latency_ms"), out / "accuracy_vs_latency.png"))
    written.append(save_figure(_importance_figure(importances), out / "importances.png"))
    return written


def _importances(study: optuna.Study) -> dict[str, Any]:
    """Parameter importances for the (first) objective, or why there are none."""
    settings = load_settings(study)
    target = (lambda t: t.values[0]) if settings.objective.multi else None
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("dedup") == "owner"
    ]
    if len(complete) < 2 or len({tuple(t.values) for t in complete}) < 2:
        return {"importances": {}, "note": f"{len(complete)} complete architecture(s): too few to rank parameters"}
    try:
        with warnings.catch_warnings():  # Optuna's advice about targets is not for our users' terminal
            warnings.filterwarnings("ignore", module=r"optuna\.")
            values = optuna.importance.get_param_importances(study, target=target)
    except (RuntimeError, ValueError) as error:
        return {"importances": {}, "note": f"no importances: {error}"}
    return {
        "importances": dict(values),
        "note": f"Optuna's importance evaluator over {len(complete)} complete trials ({settings.objective.names[0]})",
    }


def _history_figure(study: optuna.Study, settings: SearchSettings) -> Figure:
    fig, ax = subplots(figsize=(8.5, 4), dpi=110)
    name = "error" if settings.objective.multi else settings.objective.names[0]
    done: list[tuple[int, float]] = []
    pruned: list[tuple[int, float]] = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("dedup") != "owner":
            continue
        score = _last_score(t)
        if score:
            (done if t.state == TrialState.COMPLETE else pruned).append((t.number, score[0]))
    if done:
        ax.scatter(*zip(*done), label="complete", color="C0", zorder=3)
        best, steps = float("inf"), []
        for n, v in sorted(done):
            best = min(best, v)
            steps.append((n, best))
        ax.step(*zip(*steps), where="post", color="C3", label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned), marker="x", color="C7", label="pruned (last report)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # trial numbers
    ax.set(xlabel="trial", ylabel=name, title=f"{study.study_name}: {settings.objective.describe()}")
    ax.grid(alpha=0.3)
    if done or pruned:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def _front_figure(study_rows: list[Row], cost: str = "params") -> Figure:
    """Accuracy against ``cost`` (params or latency_ms), the Pareto front drawn on that cost;
    the legend sits outside the axes, where it covers no point."""
    label = {"params": "parameters (Keras convention)", "latency_ms": "latency (ms per forward pass)"}[cost]
    fig, ax = subplots(figsize=(8.5, 4.5), dpi=110)
    complete = [r for r in study_rows if r.state == "complete" and getattr(r, cost) and r.val_acc is not None]
    others = [r for r in study_rows if r.state != "complete" and getattr(r, cost) and r.val_acc is not None]
    if complete:
        ax.scatter([getattr(r, cost) for r in complete], [r.val_acc for r in complete], label="complete", zorder=3)
        front = pareto_front([_point(r, cost) for r in complete])
        on_front = sorted((r for r in complete if _point(r, cost) in front), key=lambda r: getattr(r, cost))
        ax.step(
            [getattr(r, cost) for r in on_front],
            [r.val_acc for r in on_front],
            where="post",
            color="C3",
            label="Pareto front",
        )
        for r in on_front:
            ax.annotate(r.label, (getattr(r, cost), r.val_acc), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if others:
        ax.scatter(
            [getattr(r, cost) for r in others],
            [r.val_acc for r in others],
            marker="x",
            color="C7",
            label="pruned (acc so far)",
        )
    log_axis(ax)
    ax.set(xlabel=label, ylabel="best validation accuracy", title=f"Accuracy vs {label.split(' (')[0]}")
    ax.grid(alpha=0.3, which="both")
    if complete or others:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def _importance_figure(importances: dict[str, Any]) -> Figure:
    fig, ax = subplots(figsize=(6, 3.5), dpi=110)
    values = importances["importances"]
    if values:
        names = list(values)[::-1]
        ax.barh(names, [values[n] for n in names])
        ax.set(xlabel="importance", title="Parameter importances")
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, importances["note"], ha="center", va="center", wrap=True)
    fig.tight_layout()
    return fig
