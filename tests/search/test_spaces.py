"""Search spaces turn a trial into a registered model's arguments; objectives score article 001's way."""

from __future__ import annotations

import itertools
import json

import optuna
import pytest

import cnnlab
from cnnlab.analysis.summary import summary
from cnnlab.cli.search import OBJECTIVE_NAMES, PRUNER_NAMES, SPACE_NAMES
from cnnlab.search import SPACES, Objective, get_space, rebuild
from cnnlab.search.objectives import OBJECTIVES, CostAwareMedianPruner, measure_latency
from cnnlab.search.spaces import architecture_key, model_args_from_json, model_args_to_json
from cnnlab.search.study import PRUNERS


def test_cli_names_match_the_library():
    assert SPACE_NAMES == tuple(SPACES) and OBJECTIVE_NAMES == OBJECTIVES and PRUNER_NAMES == PRUNERS


def test_modules_space_is_the_articles_27_and_rebuilds_exactly():
    space = get_space("modules")
    seen = set()
    for layers in itertools.product(("conv", "depthwise", "separable"), repeat=3):
        trial = optuna.trial.FixedTrial({f"layer{i}": kind for i, kind in enumerate(layers)})
        model_args = space.trial_model_args(trial)
        assert model_args == {"layers": layers}
        seen.add(architecture_key(space.model, model_args))
    assert len(seen) == 27 == space.space_size()
    # article 001's objective-B winner, rebuilt from a trial's stored model arguments
    model = rebuild(
        {
            "model": "modulenet_cifar",
            "model_args": model_args_to_json({"layers": ("separable", "separable", "depthwise")}),
        }
    )
    assert summary(model, (3, 32, 32)).total_params == 236_810


def test_modules_free_space_chooses_per_stage():
    space = get_space("modules-free")
    params = {f"s{s}_layer{i}": ("conv", "depthwise", "separable")[(s + i) % 3] for s in range(3) for i in range(3)}
    model_args = space.trial_model_args(optuna.trial.FixedTrial({**params, "kernel_size": 5, "width_multiplier": 0.5}))
    assert model_args["layers"] == (
        ("conv", "depthwise", "separable"),
        ("depthwise", "separable", "conv"),
        ("separable", "conv", "depthwise"),
    )
    model = cnnlab.create_model(space.model, **model_args)
    assert model.stages[0].layer0.conv.weight.shape[-1] == 5  # kernel 5
    assert model.stages[2].adjust.out_channels == 128  # 256 x 0.5
    assert (
        space.label(model_args)
        == "conv, depthwise, separable | depthwise, separable, conv | separable, conv, depthwise (k5, x0.5)"
    )
    # a given model argument is not searched
    given = {"kernel_size": 3, "width_multiplier": 1.0, "widths": (8, 16)}
    model_args = space.trial_model_args(
        optuna.trial.FixedTrial({k: v for k, v in params.items() if k[1] in "01"}), given
    )
    assert model_args["kernel_size"] == 3 and len(model_args["layers"]) == 2
    assert space.space_size(given) == 27**2
    assert space.space_size() == 27**3 * 2 * 3


def test_densenet_space_and_json_round_trip():
    space = get_space("densenet")
    model_args = space.trial_model_args(
        optuna.trial.FixedTrial({"growth_rate": 16, "blocks0": 1, "blocks1": 2, "blocks2": 4, "blocks3": 3})
    )
    assert model_args == {"growth_rate": 16, "blocks": (1, 2, 4, 3)}
    model = cnnlab.create_model(
        space.model, **model_args_from_json(json.loads(json.dumps(model_args_to_json(model_args))))
    )
    assert summary(model, (3, 32, 32)).total_params == 255_046  # article 000's k=16 [1,2,4,3]
    assert space.space_size({"growth_rate": 12, "max_blocks": (1, 2)}) == 2
    assert "max_blocks" not in space.trial_model_args(
        optuna.trial.FixedTrial({"blocks0": 1}), {"growth_rate": 12, "max_blocks": (1,)}
    )


def test_unknown_space():
    with pytest.raises(ValueError, match="unknown search space 'modulez'; spaces: modules, modules-free, densenet"):
        get_space("modulez")


def test_objective_b_reproduces_the_articles_score():
    # article 001: separable, separable, depthwise; 236,810 params; 80.67% -> score 0.2407
    assert Objective("error+params").values(0.8067, 236_810) == [pytest.approx(0.2407, abs=5e-5)]
    assert Objective("error+params", weight=0.1, scale=100_000).values(0.9, 50_000) == [pytest.approx(0.15)]
    assert Objective("error").values(0.75, None) == [pytest.approx(0.25)]
    assert Objective("error+latency").values(0.8, 20.0) == [pytest.approx(0.3)]  # 20 ms / 10 ms * 0.05
    assert Objective("pareto", cost="latency").values(0.8, 3.5) == [pytest.approx(0.2), 3.5]
    assert Objective("pareto").directions == ["minimize", "minimize"]


@pytest.mark.parametrize(
    "model_args, message",
    [
        ({"kind": "accuracy"}, "objective must be one of error, error[+]params"),
        ({"kind": "pareto", "cost": "flops"}, "cost must be one of params, latency, got 'flops'"),
        ({"weight": -1}, "penalty weight must be a non-negative number, got -1"),
        ({"scale": 0}, "penalty scale must be a positive number, got 0"),
        ({"latency_batch": 0}, "latency batch must be a positive int, got 0"),
    ],
)
def test_bad_objectives(model_args, message):
    with pytest.raises(ValueError, match=message):
        Objective(**model_args)


def test_cost_aware_pruner_compares_only_with_similar_cost():
    pruner = CostAwareMedianPruner(cost_band=2.0, min_neighbours=2)
    finished = [(100_000, [0.5, 0.6]), (150_000, [0.55, 0.7]), (1_000_000, [0.9, 0.95]), (2_000_000, [0.92, 0.96])]
    # neighbours of 120k within x2: 100k (0.50) and 150k (0.55), median 0.525; the 1M+ nets do not count
    assert pruner.should_prune(1, 0.52, 120_000, finished)
    assert not pruner.should_prune(1, 0.53, 120_000, finished)
    # a small net is never judged against the big ones: only one neighbour within x2 of 40k -> no verdict
    assert not pruner.should_prune(1, 0.1, 40_000, finished)
    # the big ones are judged against each other
    assert pruner.should_prune(2, 0.94, 1_500_000, finished)
    assert not pruner.should_prune(3, 0.1, 120_000, finished)  # nobody reached epoch 3


def test_latency_is_measured():
    model = cnnlab.create_model("modulenet_cifar", layers=("conv",) * 3, widths=(4, 8, 8))
    ms = measure_latency(model, (3, 16, 16), batch_size=2, warmup=1, repeats=3)
    assert 0 < ms < 5_000
