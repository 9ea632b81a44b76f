"""CLI output: one JSON object on stdout with --json, human-readable text otherwise."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from autofm.core.io import _json_default


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf: report them as null so every consumer can parse the output
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    return value


def emit(result: dict[str, Any], as_json: bool, human: str | None = None) -> None:
    """Print `result` as one JSON object (as_json) or `human` text (default: key: value lines)."""
    if as_json:
        sys.stdout.write(json.dumps(_clean(result), default=_json_default) + "\n")
    else:
        if human is None:
            human = "\n".join(f"{key}: {_format(value)}" for key, value in result.items())
        sys.stdout.write(human.rstrip("\n") + "\n")
    sys.stdout.flush()


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
