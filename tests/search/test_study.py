"""Whole searches in this process on small data: every objective, deduplication, study rules, report."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from cnnlab.search import Objective, SearchSettings, rebuild
from cnnlab.search.report import rows, table, write_report
from cnnlab.search.run import run_search
from cnnlab.train import TrainConfig

TRAIN = TrainConfig(epochs=2, batch_size=32, lr=3e-3, augment="none", device="cpu", seed=0)
TINY = {"widths": (4, 8, 8)}


def settings(tmp_path, objective="error", space="modules", trials=3, model_args=TINY, **kwargs):
    return SearchSettings(
        space=space,
        objective=Objective(objective, **kwargs.pop("objective_kwargs", {})),
        train=TRAIN,
        model_args=model_args,
        trials=trials,
        out=str(tmp_path / "study"),
        heartbeat=2,
        **kwargs,
    )


def owners(study):
    return [t for t in study.get_trials() if t.user_attrs.get("dedup") == "owner"]


@pytest.mark.parametrize(
    "objective, objective_kwargs",
    [
        ("error", {}),
        ("error+params", {"weight": 0.1, "scale": 1000.0}),
        ("error+latency", {"scale": 1.0}),
        ("pareto", {"cost": "params"}),
    ],
)
def test_smoke_study_with_each_objective(tmp_path, splits, objective, objective_kwargs):
    s = settings(tmp_path, objective, objective_kwargs=objective_kwargs)
    result = run_search(s, quiet=True, data=splits)
    study = result.load()
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) >= 3 and not study.get_trials(states=(TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING))
    assert len(study.directions) == (2 if objective == "pareto" else 1)
    for t in owners(study):
        a = t.user_attrs
        assert len(a["val_acc"]) == a["epochs_done"] and 1 <= a["epochs_done"] <= 2
        assert a["model_args"]["widths"] == [4, 8, 8] and "model_kwargs" not in a  # one name for the model's arguments
        if t.state != TrialState.COMPLETE:
            continue
        assert a["best_val_acc"] == max(a["val_acc"])
        error = 1 - a["best_val_acc"]
        if objective == "error":
            assert t.value == pytest.approx(error)
        elif objective == "error+params":
            assert t.value == pytest.approx(error + a["params"] / 1000.0 * 0.1)
        elif objective == "error+latency":
            assert a["latency_ms"] > 0 and a["latency_device"] == "cpu"
            assert t.value == pytest.approx(error + a["latency_ms"] / 1.0 * 0.05)
        else:
            assert t.values == [pytest.approx(error), a["params"]]
        # single objective: the pruner saw the (penalised) score of every epoch
        if objective != "pareto":
            assert sorted(t.intermediate_values) == [1, 2] and t.intermediate_values[2] == pytest.approx(t.value)
        # the architecture is rebuilt with create_model(name, **kwargs): same parameter count
        from cnnlab.analysis.summary import summary

        assert summary(rebuild(t, num_classes=4), (3, 16, 16)).total_params == a["params"]
    text = table(rows(study), s)
    assert text.splitlines()[0].split()[:2] == ["rank", "layers"] and len(text.splitlines()) == 1 + len(rows(study))


def test_an_architecture_is_never_trained_twice(tmp_path, splits):
    s = settings(tmp_path, trials=4, model_args=TINY)
    run_search(s, quiet=True, data=splits)  # creates the study and 4 trials...
    study = optuna.load_study(study_name="modules-error", storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")
    first = owners(study)[0]
    for _ in range(2):  # ...then the sampler "proposes" an evaluated architecture twice more
        study.enqueue_trial(first.params)
    run_search(s.__class__(**{**s.__dict__, "trials": 6}), resume=True, quiet=True, data=splits)
    study = optuna.load_study(study_name="modules-error", storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")
    trials = study.get_trials()
    dups = [t for t in trials if t.user_attrs.get("dedup") == "duplicate"]
    assert len(dups) >= 2 and {t.user_attrs["duplicate_of"] for t in dups[:2]} == {first.number}
    for t in dups:  # not trained: no epochs of its own, and the owner's score reused
        assert "epochs_done" not in t.user_attrs
        if t.state == TrialState.COMPLETE:
            assert t.value == study.trials[t.user_attrs["duplicate_of"]].value
    keys = [t.user_attrs["arch"] for t in owners(study)]
    assert len(keys) == len(set(keys))  # one owner per architecture
    runs = list((tmp_path / "study" / "trials").iterdir())
    assert len(runs) == len(keys)  # one run directory per trained architecture, each trained once
    for run in runs:
        assert [e["epoch"] for e in json.loads((run / "history.json").read_text())["epochs"]] in ([1], [1, 2])


def test_study_stops_when_the_space_is_exhausted(tmp_path, splits):
    # densenet with the growth rate fixed and blocks (1, 1..2): two architectures in all
    given = {"growth_rate": 4, "bottleneck_width": 8, "max_blocks": (1, 2)}
    s = settings(tmp_path, space="densenet", trials=12, model_args=given)
    study = run_search(s, quiet=True, data=splits).load()
    keys = {t.user_attrs["arch"] for t in owners(study)}
    assert len(keys) == 2 and len(owners(study)) == 2
    assert len(study.get_trials()) < 12  # stopped early: nothing left to learn


def test_existing_study_needs_resume_and_same_settings(tmp_path, splits):
    s = settings(tmp_path, trials=1)
    run_search(s, quiet=True, data=splits)
    with pytest.raises(FileExistsError, match="already holds study 'modules-error'; pass `resume=True`"):
        run_search(s, quiet=True, data=splits)
    other = settings(tmp_path, trials=1, model_args={"widths": (4, 8, 16)})
    with pytest.raises(ValueError, match=r"started with other settings \(model_args: study .*'widths': \[4, 8, 8\]"):
        run_search(other, resume=True, quiet=True, data=splits)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        run_search(settings(tmp_path / "elsewhere"), resume=True, quiet=True, data=splits)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"trials": 0}, "trials must be a positive int, got 0"),
        ({"pruner": "asha"}, "pruner must be one of median, hyperband, none, got 'asha'"),
        ({"model_args": {"depth": 3}}, "modulenet_cifar does not accept 'depth'"),
        ({"objective": "pareto", "pruner": "hyperband"}, "hyperband' cannot prune a multi-objective"),
    ],
)
def test_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        settings(tmp_path, **kwargs)


def test_hyperband_pruner_runs(tmp_path, splits):
    study = run_search(settings(tmp_path, trials=4, pruner="hyperband"), quiet=True, data=splits).load()
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) >= 4


def test_report_files(tmp_path, splits):
    s = settings(tmp_path, "error+params", trials=4, objective_kwargs={"scale": 1000.0})
    study = run_search(s, quiet=True, data=splits).load()
    written = write_report(study, tmp_path / "report")
    names = {p.name for p in written}
    assert names == {
        "trials.json",
        "trials.csv",
        "importances.json",
        "history.png",
        "accuracy_vs_params.png",
        "importances.png",
    }
    for p in written:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "report" / "trials.json").read_text())
    archs = data["architectures"]
    assert [a["rank"] for a in archs] == list(range(1, len(archs) + 1))
    complete = [a for a in archs if a["state"] == "complete"]
    assert [a["values"][0] for a in complete] == sorted(a["values"][0] for a in complete)
    front = [a for a in complete if a["pareto"]]
    assert front and all(
        not (b["params"] <= a["params"] and b["val_acc"] >= a["val_acc"] and b != a) or b["pareto"]
        for a in front
        for b in complete
    )
    assert len((tmp_path / "report" / "trials.csv").read_text().splitlines()) == len(archs) + 1
