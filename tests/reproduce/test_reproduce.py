"""`cnnlab reproduce`: the experiments match SPEC.md, smoke runs write the tables and figures, and
an interrupted reproduction resumes (finished cases skipped, a running case from its checkpoint).

The runs use the real CIFAR-10 copy in ../shared/datasets (decoded once into the cache): the
command looks there by itself, the library where $CNNLAB_DATA_PATH says."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import cnnlab.train.pipeline as pipeline
from cnnlab.analysis.summary import model_summary
from cnnlab.cli import main
from cnnlab.data import DataConfig
from cnnlab.presets import PRESETS
from cnnlab.reproduce import EXPERIMENTS, reproduce

from ..fake_cifar import fake_cifar10

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"

# SPEC.md, "Simplified CIFAR DenseNet" and "Conv-type comparison nets": (params, depth)
SPEC_DENSENET = {
    1: (255_046, 25),
    2: (255_046, 25),
    3: (505_200, 25),
    4: (599_536, 43),
    5: (1_104_186, 63),
    6: (3_316_848, 121),
}
SPEC_CONVTYPES = {1: ("conv", 1_598_730), 2: ("depthwise", 58_506), 3: ("separable", 230_538)}


@pytest.fixture(autouse=True)
def shared_datasets(monkeypatch):
    """The library finds CIFAR-10 where it is told: this checkout's ../shared/datasets."""
    monkeypatch.setenv("CNNLAB_DATA_PATH", str(SHARED))


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def choices(command: str, option: str) -> list[str]:
    """The choices ``cnnlab COMMAND`` offers for ``option`` (a flag or a positional's name)."""
    from cnnlab.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    return next(a for a in sub._actions if option in a.option_strings or a.dest == option).choices


def test_experiments_and_cli_choices_agree_with_spec():
    assert set(choices("reproduce", "experiment")) == set(EXPERIMENTS)
    assert set(choices("reproduce", "--preset")) == set(PRESETS)
    for case in EXPERIMENTS["densenet"].cases:
        s = model_summary(case.model, (3, 32, 32), **case.model_args)
        assert (s.total_params, s.depth) == SPEC_DENSENET[case.number] == (case.article.params, case.article.depth)
        assert case.augment == (case.number != 1)
    for case in EXPERIMENTS["convtypes"].cases:
        conv, params = SPEC_CONVTYPES[case.number]
        assert case.model_args == {"conv": conv}
        assert model_summary(case.model, (3, 32, 32), **case.model_args).total_params == params == case.article.params
    # the fast preset keeps its promise of at most a third of the article's epochs
    assert PRESETS["fast"].train.epochs * 3 <= PRESETS["article"].train.epochs


@pytest.fixture(scope="module")
def densenet_smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("dn") / "smoke"
    assert main(["reproduce", "densenet", "--preset", "smoke", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    return out


@pytest.mark.slow
def test_densenet_smoke_writes_the_article_table(densenet_smoke, capsys):
    out = densenet_smoke
    table = rows(out)
    assert [int(r["no"]) for r in table] == [1, 2, 3, 4, 5, 6]
    for r in table:
        assert (int(r["params"]), int(r["depth"])) == SPEC_DENSENET[int(r["no"])]
        assert r["augmentation"] == ("none" if r["no"] == "1" else "keras")
        assert int(r["epochs"]) == 1 and 0 <= float(r["best_val_acc"]) <= 1
        assert float(r["seconds_per_epoch"]) > 0 and float(r["images_per_s"]) > 0 and int(r["macs"]) > 0
        assert abs(float(r["acc_difference"]) - (float(r["best_val_acc"]) - float(r["article_best_acc"]))) < 1e-5
    assert [float(r["article_best_acc"]) for r in table] == [0.779, 0.838, 0.859, 0.874, 0.890, 0.909]
    names = {"results.md", "results.csv", "results.json", "comparison.png", "accuracy_vs_cost.png", "plan.json"}
    names |= {f"curves_case{i}.png" for i in range(1, 7)}
    assert names <= {p.name for p in out.iterdir()}
    assert all((out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names if n.endswith(".png"))
    result = json.loads((out / "results.json").read_text())
    assert result["preset"] == "smoke" and result["train_images"] == 500 and result["validation"] == "test"
    md = (out / "results.md").read_text()
    assert "not comparable" in md and md.count("\n| ") == 7  # header + six rows
    # the trainer's own history of each case is there too
    history = json.loads((out / "case6" / "history.json").read_text())
    assert history["info"]["model_args"] == {"growth_rate": 16, "blocks": [6, 12, 24, 16]}


@pytest.mark.slow
def test_rerun_skips_finished_cases(densenet_smoke, capsys):
    before = {i: (densenet_smoke / f"case{i}" / "last.pt").stat().st_mtime_ns for i in range(1, 7)}
    result = reproduce("densenet", "smoke", densenet_smoke, device="cpu", quiet=True)
    assert len(result.rows) == 6
    assert capsys.readouterr().out.count("finished earlier, skipped") == 6
    assert before == {i: (densenet_smoke / f"case{i}" / "last.pt").stat().st_mtime_ns for i in range(1, 7)}


@pytest.mark.slow
def test_other_settings_in_the_same_directory_are_refused(densenet_smoke):
    with pytest.raises(
        ValueError, match=r"other settings: train options lr.*same options to resume it \(`epochs` may grow\)"
    ):
        reproduce("densenet", "smoke", densenet_smoke, lr=0.5, device="cpu")
    with pytest.raises(
        ValueError, match=r"experiment 'densenet' has cases \[1, 2, 3, 4, 5, 6\]; unknown case\(s\) \[7\]"
    ):
        reproduce("densenet", "smoke", densenet_smoke, cases=[7])


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_convtypes_interrupted_and_resumed(tmp_path, monkeypatch, capsys):
    """Killed during case 2's second epoch: the rerun skips case 1, resumes case 2 from its
    epoch-1 checkpoint (same epoch-1 record), then trains case 3."""
    out = tmp_path / "ct"
    real_fit = pipeline.fit

    def fit_interrupted_in_case2(model, data, config, out_dir, **kw):
        if Path(out_dir).name == "case2":

            def stop(record):
                if record.epoch == 1:
                    raise Interrupted

            kw["on_epoch_end"] = stop
        return real_fit(model, data, config, out_dir, **kw)

    monkeypatch.setattr(pipeline, "fit", fit_interrupted_in_case2)  # every case trains through run_training
    with pytest.raises(Interrupted):
        reproduce("convtypes", "smoke", out, epochs=2, data=DataConfig(limit_train=200), device="cpu", quiet=True)
    assert [int(r["no"]) for r in rows(out)] == [1]  # case 1's results were written before case 2 started
    epoch1 = json.loads((out / "case2" / "history.json").read_text())["epochs"]
    case1_mtime = (out / "case1" / "last.pt").stat().st_mtime_ns
    assert len(epoch1) == 1
    capsys.readouterr()

    monkeypatch.setattr(pipeline, "fit", real_fit)
    assert (
        main(
            [
                "reproduce",
                "convtypes",
                "--preset",
                "smoke",
                "--epochs",
                "2",
                "--limit-train",
                "200",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    log = capsys.readouterr().out
    assert "case 1: convtype_cifar (conv=conv): finished earlier, skipped" in log
    assert "case 2: convtype_cifar (conv=depthwise): resuming" in log
    assert "case 3: convtype_cifar (conv=separable): training" in log
    assert (out / "case1" / "last.pt").stat().st_mtime_ns == case1_mtime
    history = json.loads((out / "case2" / "history.json").read_text())["epochs"]
    assert len(history) == 2 and history[0] == epoch1[0]
    table = rows(out)
    assert [(int(r["no"]), r["conv"], int(r["params"])) for r in table] == [(n, *SPEC_CONVTYPES[n]) for n in (1, 2, 3)]
    assert all(int(r["epochs"]) == 2 for r in table)
    assert "| 2 | depthwise | keras | 2 | 58,506 |" in log  # the printed table


def test_cli_rejects_bad_cases(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "densenet", "--cases", "two"])
    assert exit_info.value.code == 2
    assert "--cases takes case numbers like 2,3; got 'two'" in capsys.readouterr().err


def test_a_failed_start_leaves_no_directory(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="does not exist"):
        reproduce("convtypes", "smoke", out, data=DataConfig(data_dir=str(tmp_path / "missing")), device="cpu")
    assert not out.exists()


def test_a_plan_written_before_the_newer_training_options_still_resumes(tmp_path):
    """A reproduction started before --ema, --mixup, ... existed holds no such keys in plan.json:
    it trained with their neutral values, so resuming it (with a larger --epochs) is allowed;
    a real difference is still refused."""
    import json

    import pytest

    from cnnlab.reproduce.runner import _check_plan, make_plan

    newer = (
        "early_stop",
        "early_stop_metric",
        "min_delta",
        "clip_grad",
        "mixup",
        "cutmix",
        "accumulate",
        "ema",
        "tensorboard",
    )
    old = make_plan("densenet", "fast").to_dict()
    old["train"] = {k: v for k, v in old["train"].items() if k not in newer}
    (tmp_path / "plan.json").write_text(json.dumps(old))
    _check_plan(tmp_path, make_plan("densenet", "fast", epochs=40))  # only epochs grew
    with pytest.raises(ValueError, match="train options ema"):
        _check_plan(tmp_path, make_plan("densenet", "fast", ema=0.999))


@pytest.mark.slow
def test_a_reproduction_of_an_older_version_resumes(tmp_path, monkeypatch, capsys):
    """ "study" meant an Optuna study and an article's table; the table is an experiment now.
    plan.json and results.json say "experiment"; a directory whose files say "study" (written
    before) still resumes, by --resume OUT and by the same command."""
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    data, out = fake_cifar10(tmp_path / "cifar"), tmp_path / "rep"
    command = [
        "reproduce",
        "convtypes",
        "--preset",
        "smoke",
        "--cases",
        "1",
        "--limit-train",
        "20",
        "--limit-val",
        "10",
        "--batch-size",
        "10",
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--quiet",
        "--device",
        "cpu",
    ]
    assert main([*command, "--epochs", "1"]) == 0
    for name in ("plan.json", "results.json"):
        written = json.loads((out / name).read_text())
        assert written["experiment"] == "convtypes" and "study" not in written
        older = {("study" if k == "experiment" else k): v for k, v in written.items()}
        (out / name).write_text(json.dumps(older, indent=1))
    assert main(["reproduce", "--resume", str(out), "--epochs", "2", "--data-dir", str(data), "--quiet"]) == 0
    assert len(json.loads((out / "case1" / "history.json").read_text())["epochs"]) == 2
    assert json.loads((out / "plan.json").read_text())["experiment"] == "convtypes"
    plan = json.loads((out / "plan.json").read_text())
    (out / "plan.json").write_text(json.dumps({("study" if k == "experiment" else k): v for k, v in plan.items()}))
    assert main([*command, "--epochs", "3"]) == 0  # the same command continues it
    assert len(json.loads((out / "case1" / "history.json").read_text())["epochs"]) == 3
    assert "not comparable to the article's" in (out / "results.md").read_text()  # 20 images, not the article's 50,000
    capsys.readouterr()
