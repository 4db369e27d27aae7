"""One registry for every architecture: ``register_model``, ``list_models``, ``create_model``.

    >>> import cnnlab
    >>> cnnlab.list_models("resnet*")[:2]
    ['resnet18', 'resnet34']
    >>> model = cnnlab.create_model("densenet_cifar", growth_rate=32)
    >>> cnnlab.list_models(pretrained=True)[:3]      # those with published weights
    ['densenet121', 'densenet169', 'densenet201']

A family of variants shares one builder whose keyword-only parameters are the keywords every
variant accepts; a variant is then one line (as in timm)::

    def _resnet(depth: int, *, num_classes: int = 1000, stem: str = "imagenet", ...) -> ResNet: ...

    @register_model(builder=_resnet)
    def resnet18(**kwargs) -> ResNet:
        "ResNet-18 (He et al., CVPR 2016), basic blocks 2-2-2-2 ..."
        return _resnet(18, **kwargs)

The factory's signature is then the builder's keywords (``inspect.signature(resnet18)`` shows
them with their defaults), and so are its accepted arguments.

A factory's published weights (``register_model(weights=...)``, :mod:`.weights`) are loaded by
``cnnlab.create_model(name, pretrained=True)`` (:mod:`cnnlab.interop.pretrained`, which adds the
download and the file formats to this module's ``create_model``).
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .weights import Published


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about a factory."""

    name: str
    factory: Callable[..., nn.Module]
    family: str
    input_size: tuple[int, int, int]  # default (C, H, W) the architecture was designed for
    description: str
    weights: tuple[Published, ...] = ()  # published ImageNet weights (cnnlab.interop.pretrained)

    def accepted_arguments(self) -> list[str]:
        """The keywords the factory takes (a family builder's, for ``register_model(builder=...)``)."""
        return [p for p in inspect.signature(self.factory).parameters if p != "kwargs"]


_REGISTRY: dict[str, ModelEntry] = {}


def _builder_signature(factory: Callable[..., nn.Module], builder: Callable[..., nn.Module]) -> inspect.Signature:
    """The factory's signature taken from ``builder``: its keyword-only parameters (the others
    are the variant's, e.g. ResNet's depth, which the factory passes itself)."""
    own = inspect.signature(factory)
    if any(p.kind is not p.VAR_KEYWORD for p in own.parameters.values()):
        raise TypeError(
            f"{factory.__qualname__} takes its keywords from {builder.__qualname__}: define it as (**kwargs)"
        )
    keywords = [p for p in inspect.signature(builder).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return own.replace(parameters=keywords)


def register_model(
    fn: Callable[..., nn.Module] | None = None,
    *,
    family: str | None = None,
    input_size: tuple[int, int, int] = (3, 224, 224),
    builder: Callable[..., nn.Module] | None = None,
    weights: tuple[Published, ...] = (),
):
    """Register a model factory under its function name (decorator, with or without arguments).

    ``family`` defaults to the factory's module name (``cnnlab.models.resnet`` -> ``resnet``).
    ``builder``: the family's builder whose keyword-only parameters the factory, written as
    ``(**kwargs)``, accepts (see the module docstring). ``weights``: the model's published
    ImageNet weight files (:mod:`cnnlab.models.weights`).
    Registering a name twice is an error: the registry never silently replaces a model.
    """

    def decorate(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = factory.__name__
        if name in _REGISTRY:
            other = _REGISTRY[name].factory
            raise ValueError(f"model {name!r} is already registered (by {other.__module__}.{other.__qualname__})")
        if builder is not None:
            factory.__signature__ = _builder_signature(factory, builder)  # type: ignore[attr-defined]
        doc = inspect.getdoc(factory) or ""
        _REGISTRY[name] = ModelEntry(
            name,
            factory,
            family or factory.__module__.rsplit(".", 1)[-1],
            tuple(input_size),  # type: ignore[arg-type]
            doc.splitlines()[0] if doc else "",
            tuple(weights),
        )
        return factory

    return decorate(fn) if fn is not None else decorate


def natural_key(name: str) -> tuple:
    """Sort key that reads numbers as numbers: resnet18 < resnet34 < resnet101."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def list_models(pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Names of registered models in natural order (resnet18 before resnet101), optionally
    filtered by an fnmatch ``pattern``; ``pretrained=True``: only those with published weights
    (``cnnlab.create_model(name, pretrained=True)`` loads them)."""
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be True or False, got {pretrained!r}")
    names = sorted((n for n, e in _REGISTRY.items() if e.weights or not pretrained), key=natural_key)
    return names if pattern is None else [n for n in names if fnmatch.fnmatch(n, pattern)]


def published(framework: str) -> dict[str, Published]:
    """The registered models with published weights of ``framework``, by name."""
    return {
        name: weights for name in list_models() for weights in _REGISTRY[name].weights if weights.framework == framework
    }


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; ValueError listing close matches when there is none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known models: {', '.join(sorted(_REGISTRY))}"
        raise ValueError(f"unknown model {name!r}{hint}") from None


def create_model(
    name: str,
    num_classes: int | None = None,
    in_channels: int = 3,
    features_only: bool = False,
    out_indices: Any = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model. ``num_classes=None`` keeps the model's default (1000 for
    ImageNet families, 10 for the CIFAR nets); other keywords go to the factory, which must
    accept them (an unknown keyword lists the accepted ones).

    ``features_only=True`` returns a backbone instead (:class:`~cnnlab.models.features.FeatureExtractor`):
    its forward gives the feature maps of the stages in ``out_indices`` (default: all), and its
    ``feature_info`` describes them.
    """
    if not isinstance(features_only, bool):
        raise ValueError(f"features_only must be True or False, got {features_only!r}")
    if out_indices is not None and not features_only:
        raise ValueError(
            f"out_indices={out_indices!r} needs features_only=True (it picks the stages a backbone returns)"
        )
    if features_only:
        from .features import FeatureExtractor

        return FeatureExtractor(create_model(name, num_classes, in_channels, **kwargs), out_indices)
    entry = get_model_entry(name)
    if "pretrained" in kwargs:  # the weights need the download and the file formats (a layer above the zoo)
        raise ValueError(
            f"pretrained={kwargs['pretrained']!r}: this create_model builds architectures only; "
            f"cnnlab.create_model({name!r}, pretrained=...) also loads published weights"
        )
    accepted = entry.accepted_arguments()
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name} does not accept {', '.join(map(repr, unknown))}; accepted arguments: {', '.join(accepted)}"
        )
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return entry.factory(in_channels=in_channels, **kwargs)
