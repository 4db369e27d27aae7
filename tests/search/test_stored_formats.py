"""One kind of option object per concern, one name per concept (issue 27): a search's settings
hold a ``DataConfig`` and the ``model_args``; a preset holds training and data options only (the
search's trial count lives in the search). What older versions stored -- settings with the data
fields flat and the model arguments as ``fixed``, trials' ``model_kwargs``, trial-options.json's
flat keys -- is still read: an old study is joined, resumed and reported."""

from __future__ import annotations

import csv
import json
from dataclasses import fields

import optuna
import pytest

from cnnlab.data import DataConfig
from cnnlab.presets import PRESETS, Preset
from cnnlab.search import Objective, SearchSettings, rebuild
from cnnlab.search.guards import TRIALS_RECORD, check_trials_dir, record_trials_dir
from cnnlab.search.report import rows, write_report
from cnnlab.search.study import SETTINGS_ATTR, default_storage, open_study
from cnnlab.train import TrainConfig

TRAIN = TrainConfig(epochs=1, batch_size=32, lr=3e-3, augment="none", device="cpu", seed=0)
ARGS = {"widths": (4, 8, 8)}


def old_settings(out: str) -> dict:
    """A study's settings as cnnlab stored them before issue 27 (user attribute ``cnnlab``)."""
    return {
        "space": "modules",
        "objective": {"kind": "error", "weight": 0.05, "scale": None, "cost": "params", "latency_batch": 1},
        "train": TRAIN.to_dict(),
        "fixed": {"widths": [4, 8, 8]},
        "trials": 3,
        "pruner": "median",
        "dataset": "cifar10",
        "data_dir": "/elsewhere/cifar10",
        "limit_train": 100,
        "limit_val": 50,
        "val_split": None,
        "out": out,
        "heartbeat": 10,
        "grace": None,
        "max_retry": 3,
    }


def new_settings(out: str, **changes) -> SearchSettings:
    given = {
        "space": "modules",
        "objective": Objective("error"),
        "train": TRAIN,
        "model_args": ARGS,
        "trials": 3,
        "data": DataConfig(limit_train=100, limit_val=50),
        "out": out,
    }
    return SearchSettings(**{**given, **changes})


def test_settings_hold_a_data_config_and_the_model_args(tmp_path):
    s = new_settings(str(tmp_path))
    assert s.data == DataConfig(limit_train=100, limit_val=50) and s.model_args == ARGS
    stored = s.to_dict()
    assert stored["data"] == DataConfig(limit_train=100, limit_val=50).to_dict()
    assert stored["model_args"] == {"widths": [4, 8, 8]}
    assert not {"fixed", "dataset", "data_dir", "limit_train", "limit_val", "val_split"} & set(stored)
    assert SearchSettings.from_dict(json.loads(json.dumps(stored))) == s
    with pytest.raises(ValueError, match="image_size cannot be set"):
        new_settings(str(tmp_path), data=DataConfig(image_size=(64, 64)))


def test_settings_stored_by_older_versions_are_read(tmp_path):
    old = SearchSettings.from_dict(old_settings(str(tmp_path)))
    assert old.model_args == ARGS
    assert old.data == DataConfig(data_dir="/elsewhere/cifar10", limit_train=100, limit_val=50)
    assert old.differences(new_settings(str(tmp_path))) == []  # where the data lies is each machine's own
    assert old.differences(new_settings(str(tmp_path), model_args={"widths": (4, 8, 16)})) == ["model_args"]
    more = new_settings(str(tmp_path), data=DataConfig(limit_train=200, limit_val=50))
    assert old.differences(more) == ["data.limit_train"]


def test_a_preset_holds_training_and_data_options_only():
    assert [f.name for f in fields(Preset)] == ["name", "description", "train", "data"]
    assert SearchSettings.from_preset("smoke").trials == 6 and SearchSettings.from_preset("article").trials == 50
    assert SearchSettings.from_preset("smoke", trials=2).trials == 2
    smoke = SearchSettings.from_preset("smoke", data=DataConfig(limit_val=20), model_args={"widths": (4, 8, 8)})
    assert smoke.data == DataConfig(limit_train=PRESETS["smoke"].data.limit_train, limit_val=20)
    assert smoke.model_args["widths"] == (4, 8, 8)


def test_an_old_study_is_joined_resumed_and_reported(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    storage = default_storage(out)
    study = optuna.create_study(storage=storage, study_name="modules-error")
    study.set_user_attr(SETTINGS_ATTR, {**old_settings(str(out)), "data_dir": None})
    kwargs = {"widths": [4, 8, 8], "layers": ["conv", "depthwise", "separable"]}
    study.add_trial(
        optuna.trial.create_trial(
            value=0.5,
            user_attrs={
                "arch": "a",
                "dedup": "owner",
                "label": "conv-depthwise-separable",
                "model": "modulenet_cifar",
                "model_kwargs": kwargs,
                "params": 1234,
                "best_val_acc": 0.5,
                "val_acc": [0.5],
                "epochs_done": 1,
            },
        )
    )
    s = new_settings(str(out))
    open_study(s, storage, "modules-error", resume=True, explicit_storage=False, for_workers=False)  # same settings
    with pytest.raises(ValueError, match=r"other settings \(data.limit_val: study 50, here 60\)"):
        open_study(
            new_settings(str(out), data=DataConfig(limit_train=100, limit_val=60)),
            storage,
            "modules-error",
            resume=True,
            explicit_storage=False,
            for_workers=False,
        )
    study = optuna.load_study(study_name="modules-error", storage=storage)
    assert rows(study)[0].model_args == kwargs
    assert rebuild(study.trials[0], num_classes=4) is not None  # create_model(**model_kwargs) of an old trial
    write_report(study, tmp_path / "report")
    with open(tmp_path / "report" / "trials.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert json.loads(row["model_args"]) == kwargs and "model_kwargs" not in row
    stored = json.loads((tmp_path / "report" / "trials.json").read_text())["settings"]
    assert stored["model_args"] == {"widths": [4, 8, 8]} and stored["data"]["limit_train"] == 100


def test_trial_options_written_by_older_versions_are_read(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    train = {f"train.{k}": v for k, v in sorted(TRAIN.to_dict().items()) if k != "device"}
    old = {"dataset": "cifar10", "limit_train": 100, "limit_val": 50, "val_split": None}
    (out / TRIALS_RECORD).write_text(json.dumps({"study": "first", "run": {**train, **old}}))
    check_trials_dir(new_settings(str(out)), "second")  # the same options: its runs may be shared
    with pytest.raises(ValueError, match=r"data.limit_train: 100 there, 200 here"):
        check_trials_dir(new_settings(str(out), data=DataConfig(limit_train=200, limit_val=50)), "second")
    (out / TRIALS_RECORD).unlink()
    record_trials_dir(new_settings(str(out)), "first")
    run = json.loads((out / TRIALS_RECORD).read_text())["run"]
    assert run["data.limit_train"] == 100 and "limit_train" not in run
