"""One way for model configs to become JSON and back: a dataclass mixin with strict round-trips.

`to_dict` gives plain JSON values (tuples become lists); `from_dict` turns them back (lists
become tuples where the field is a tuple) and refuses keys the class does not know, naming the
key and where it came from. Fields missing from the dict take their defaults, so a checkpoint
written before a field existed still loads.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Self

from autofm.core.errors import CheckpointError


def _is_tuple_type(annotation: Any) -> bool:
    """True for `tuple[...]` and unions that contain one (e.g. `int | tuple[int, int]`)."""
    if annotation is tuple or typing.get_origin(annotation) is tuple:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_tuple_type(arg) for arg in typing.get_args(annotation))
    return False


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    return value


def _to_tuple(value: Any) -> Any:
    return tuple(_to_tuple(item) for item in value) if isinstance(value, list) else value


class ConfigMixin:
    """Mixed into a `@dataclass` config: `to_dict()` / `from_dict(values, source=...)`."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (tuples as lists)."""
        return {
            field.name: _to_json(getattr(self, field.name)) for field in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "the given dict") -> Self:
        """Rebuild from `to_dict`'s output; unknown keys raise CheckpointError naming `source`."""
        if not isinstance(values, dict):
            raise CheckpointError(
                f"{cls.__name__} in {source} must be a JSON object, got {type(values).__name__}"
            )
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise CheckpointError(
                f"{source} has {cls.__name__} key(s) {unknown} that this autofm does not know "
                f"(known: {sorted(fields)}); it was written by another version of autofm: "
                "upgrade autofm or retrain the model"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {
            name: _to_tuple(value) if _is_tuple_type(hints.get(name)) else value
            for name, value in values.items()
        }
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:  # a config class's own checks (ValidationError)
            raise CheckpointError(f"{source} holds an invalid {cls.__name__}: {err}") from err


def as_json(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples as lists): for comparing with stored JSON."""
    import json

    return json.loads(json.dumps(value))


def describe_difference(before: Any, now: Any) -> str:
    """'A, not B' for two JSON values; for two dicts, only the entries that differ
    ('key A, not B; …', up to three of them), values cut to 60 characters."""
    import json

    def brief(value: Any) -> str:
        text = json.dumps(value, default=str)
        return text if len(text) <= 60 else text[:57] + "..."

    if isinstance(before, dict) and isinstance(now, dict):
        keys = [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
        if len(keys) <= 3:
            return "; ".join(f"{k} {brief(before.get(k))}, not {brief(now.get(k))}" for k in keys)
    return f"{brief(before)}, not {brief(now)}"
