"""Search spaces: one function per space turns an Optuna trial into a registered model's arguments.

    space = get_space("modules")
    model_args = space.trial_model_args(trial)      # {"layers": ("separable", "separable", "depthwise")}
    model = create_model(space.model, **model_args)  # the same call rebuilds a found architecture

Model arguments given to the search (``SearchSettings.model_args``; ``cnnlab search ... --arg
widths=16,32,64``) go to the model unchanged, and a searched argument that is given is not
searched (``kernel_size=3`` turns the free space's kernel choice off). ``FixedTrial(frozen.params)``
replays a stored trial through the same function.

Spaces (article 001's module search and its generalisations):

==============  =================  ==========================================================
space           model              searched
==============  =================  ==========================================================
modules         modulenet_cifar    layer0..2 in {conv, depthwise, separable}, all stages (27)
modules-free    modulenet_cifar    s{stage}_layer{i} per stage (27**3), kernel_size {3, 5},
                                   width_multiplier {0.5, 0.75, 1.0}
densenet        densenet_cifar     growth_rate {12, 16, 24, 32}, blocks{i} in 1..(6, 12, 24, 16)
==============  =================  ==========================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CONV_CHOICES = ("conv", "depthwise", "separable")
KERNEL_CHOICES = (3, 5)
WIDTH_MULTIPLIERS = (0.5, 0.75, 1.0)
GROWTH_RATES = (12, 16, 24, 32)
DENSE_MAX_BLOCKS = (6, 12, 24, 16)  # article 000's largest setting, [6, 12, 24, 16]


def _modules(trial, given: dict[str, Any]) -> dict[str, Any]:
    if "layers" in given:
        return {}
    return {"layers": tuple(trial.suggest_categorical(f"layer{i}", CONV_CHOICES) for i in range(3))}


def _modules_free(trial, given: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if "layers" not in given:
        stages = len(given.get("widths", (64, 128, 256)))
        params["layers"] = tuple(
            tuple(trial.suggest_categorical(f"s{s}_layer{i}", CONV_CHOICES) for i in range(3)) for s in range(stages)
        )
    if "kernel_size" not in given:
        params["kernel_size"] = trial.suggest_categorical("kernel_size", KERNEL_CHOICES)
    if "width_multiplier" not in given:
        params["width_multiplier"] = trial.suggest_categorical("width_multiplier", WIDTH_MULTIPLIERS)
    return params


def _densenet(trial, given: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if "growth_rate" not in given:
        params["growth_rate"] = trial.suggest_categorical("growth_rate", GROWTH_RATES)
    if "blocks" not in given:
        limits = given.get("max_blocks", DENSE_MAX_BLOCKS)
        params["blocks"] = tuple(trial.suggest_int(f"blocks{i}", 1, int(top)) for i, top in enumerate(limits))
    return params


def _count_modules(given: dict[str, Any]) -> int:
    return 1 if "layers" in given else 27


def _count_modules_free(given: dict[str, Any]) -> int:
    n = 1 if "layers" in given else 27 ** len(given.get("widths", (64, 128, 256)))
    n *= 1 if "kernel_size" in given else len(KERNEL_CHOICES)
    return n * (1 if "width_multiplier" in given else len(WIDTH_MULTIPLIERS))


def _count_densenet(given: dict[str, Any]) -> int:
    n = 1 if "growth_rate" in given else len(GROWTH_RATES)
    if "blocks" not in given:
        for top in given.get("max_blocks", DENSE_MAX_BLOCKS):
            n *= int(top)
    return n


def _label_modules(model_args: dict[str, Any]) -> str:
    layers = model_args.get("layers", ())
    if layers and not isinstance(layers[0], str):  # per stage
        text = " | ".join(", ".join(stage) for stage in layers)
    else:
        text = ", ".join(layers)
    extras = []
    if model_args.get("kernel_size", 3) != 3:
        extras.append(f"k{model_args['kernel_size']}")
    if model_args.get("width_multiplier", 1.0) != 1.0:
        extras.append(f"x{model_args['width_multiplier']:g}")
    return text + (f" ({', '.join(extras)})" if extras else "")


def _label_densenet(model_args: dict[str, Any]) -> str:
    return f"k={model_args.get('growth_rate', 16)} blocks={list(model_args.get('blocks', (1, 2, 4, 3)))}"


class _Sample:
    """A stand-in trial answering every suggestion with its first (or last) choice."""

    def __init__(self, last: bool) -> None:
        self.last = last

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return choices[-1] if self.last else choices[0]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return high if self.last else low


@dataclass(frozen=True)
class SearchSpace:
    name: str
    model: str  # registered model the arguments are for
    suggest: Callable[[Any, dict[str, Any]], dict[str, Any]]  # (trial, given model_args) -> searched model arguments
    label: Callable[[dict[str, Any]], str]  # model_args -> "separable, separable, depthwise"
    count: Callable[[dict[str, Any]], int]  # given model_args -> number of distinct architectures
    smoke_model_args: dict[str, Any] = field(default_factory=dict)  # what the smoke preset gives to stay small
    description: str = ""

    def trial_model_args(self, trial, model_args: dict[str, Any] | None = None) -> dict[str, Any]:
        """The arguments of ``create_model(self.model, **model_args)`` for this trial: the given
        ``model_args`` (not searched) and the searched ones.

        Searching-only knobs (``max_blocks``) are not model arguments and are left out.
        """
        given = dict(model_args or {})
        searched = self.suggest(trial, given)
        given.pop("max_blocks", None)
        return {**given, **searched}

    def check_model_args(self, model_args: dict[str, Any] | None = None) -> None:
        """Build the model with the given ``model_args`` and the first and the last choice of every
        searched one, on PyTorch's meta device (no memory, no weights): a given argument the model
        refuses fails here, in one line naming it, not in every trial of a study."""
        given = dict(model_args or {})
        error = self._build_error(given)
        if error is None:
            return
        # name the argument(s) at fault: those that fail alone, else all of them together
        culprits = [k for k in given if self._build_error({k: given[k]}) is not None] or list(given)
        shown = ", ".join(f"{k}={given[k]!r}" for k in culprits)
        plural = "s" if len(culprits) > 1 else ""
        verb = "do" if len(culprits) > 1 else "does"
        raise ValueError(f"fixed model argument{plural} {shown} {verb} not build {self.model}: {error}")

    def _build_error(self, given: dict[str, Any]) -> str | None:
        import torch

        from ..models import create_model

        for last in (False, True):
            try:
                model_args = self.trial_model_args(_Sample(last), given)
                with torch.device("meta"):
                    create_model(self.model, **model_args)
            except Exception as error:  # noqa: BLE001 -- whatever the factory says is the message
                return " ".join(str(error).split()) or type(error).__name__
        return None

    def space_size(self, model_args: dict[str, Any] | None = None) -> int:
        """How many distinct architectures the sampler can propose (lets a study stop when all are done)."""
        return self.count(model_args or {})


SPACES: dict[str, SearchSpace] = {
    s.name: s
    for s in (
        SearchSpace(
            "modules",
            "modulenet_cifar",
            _modules,
            _label_modules,
            _count_modules,
            {"widths": (8, 16, 32)},
            "article 001: the three layers of every module, shared by all stages",
        ),
        SearchSpace(
            "modules-free",
            "modulenet_cifar",
            _modules_free,
            _label_modules,
            _count_modules_free,
            {"widths": (8, 16, 32)},
            "per-stage layer types, kernel size 3/5, width multiplier",
        ),
        SearchSpace(
            "densenet",
            "densenet_cifar",
            _densenet,
            _label_densenet,
            _count_densenet,
            {"bottleneck_width": 32, "max_blocks": (2, 2, 2, 2)},
            "article 000's DenseNetSimple: growth rate and blocks per stage",
        ),
    )
}


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; spaces: {', '.join(SPACES)}")
    return SPACES[name]


def _plain(value: Any) -> Any:
    """JSON-ready: tuples become lists (so a key is the same whichever form a keyword came in)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items())}
    return value


def model_args_to_json(model_args: dict[str, Any]) -> dict[str, Any]:
    """Model arguments as JSON stores them (tuples as lists)."""
    return _plain(model_args)


def model_args_from_json(model_args: dict[str, Any]) -> dict[str, Any]:
    """Lists back to tuples, as the factories are documented with."""

    def tup(v: Any) -> Any:
        return tuple(tup(x) for x in v) if isinstance(v, list) else v

    return {k: tup(v) for k, v in model_args.items()}


def stored_model_args(user_attrs: dict[str, Any]) -> dict[str, Any]:
    """A trial's model arguments as its user attributes hold them (JSON): ``model_args``, or
    ``model_kwargs`` in studies of older versions."""
    return user_attrs.get("model_args", user_attrs.get("model_kwargs", {}))


def architecture_key(model: str, model_args: dict[str, Any]) -> str:
    """A canonical string for one architecture: equal keys, equal networks."""
    return json.dumps({"model": model, **_plain(model_args)}, sort_keys=True, separators=(",", ":"))
