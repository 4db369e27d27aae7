"""A model's keyword arguments written as text, the way the command line and model specs give
them: ``growth_rate=16``, ``blocks=1,2,4,3``, ``densenet_cifar:growth_rate=32:blocks=2,4,8,5``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def parse_value(text: str) -> Any:
    """A command-line value: int, float, true/false/none, a comma-separated tuple of those, or a string."""
    if "," in text:
        return tuple(parse_value(part) for part in text.split(",") if part != "")
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_model_args(items: Sequence[str]) -> dict[str, Any]:
    """``["growth_rate=16", "blocks=1,2,4,3"]`` -> ``{"growth_rate": 16, "blocks": (1, 2, 4, 3)}``."""
    model_args = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"model arguments look like name=value, got {item!r}")
        model_args[key] = parse_value(value)
    return model_args


def parse_model_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"densenet_cifar:growth_rate=32:blocks=2,4,8,5"`` -> name and keyword arguments."""
    name, *items = spec.split(":")
    return name, parse_model_args(items)
