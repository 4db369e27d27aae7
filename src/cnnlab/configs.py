"""What the frozen option dataclasses (``TrainConfig``, ``DataConfig``) share: a plain dict for
JSON and checkpoints, a strict way back, and copies with some fields replaced."""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from typing import Any, TypeVar

C = TypeVar("C", bound="Options")


class Options:
    """Mixin for a frozen dataclass of options; ``what`` names them in errors."""

    what = "option"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.what}(s) {unknown}; accepted: {sorted(known)}")
        return cls(**data)

    def with_overrides(self: C, **overrides: Any) -> C:
        """A copy with the options that are not None replaced."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[type-var]
