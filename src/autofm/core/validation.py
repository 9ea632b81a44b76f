"""Input checks at the boundary, with messages that name the input and say what to do."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from autofm.core.errors import ValidationError


def check_array(
    values,
    name: str = "X",
    *,
    ndim: int | Sequence[int] | None = None,
    allow_nan: bool = False,
    min_rows: int = 1,
    dtype=np.float64,
) -> np.ndarray:
    """Convert to a numeric ndarray and check dimensions, emptiness and finiteness."""
    try:
        array = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValidationError(
            f"{name} must be numeric; could not convert it ({err}). Encode string columns first."
        ) from err
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if array.ndim not in allowed:
            raise ValidationError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {array.shape}"
            )
    if array.ndim == 0 or array.shape[0] < min_rows:
        rows = 0 if array.ndim == 0 else array.shape[0]
        raise ValidationError(f"{name} has {rows} rows; at least {min_rows} needed")
    if array.size == 0:
        raise ValidationError(f"{name} is empty (shape {array.shape})")
    if np.issubdtype(array.dtype, np.floating):
        check_finite(array, name, allow_nan=allow_nan)
    return array


def check_finite(array: np.ndarray, name: str = "X", *, allow_nan: bool = False) -> None:
    """Raise ValidationError if `array` holds inf (always) or NaN (unless allowed)."""
    array = np.asarray(array)
    if np.isinf(array).any():
        count = int(np.isinf(array).sum())
        raise ValidationError(f"{name} contains {count} infinite value(s); remove or clip them")
    if not allow_nan and np.isnan(array).any():
        count = int(np.isnan(array).sum())
        raise ValidationError(
            f"{name} contains {count} NaN value(s); impute or drop them before calling"
        )


def check_consistent_length(**arrays) -> int:
    """All arrays have the same first dimension; return it."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{n} has {k}" for n, k in lengths.items())
        raise ValidationError(f"inputs have different numbers of rows: {described}")
    return next(iter(lengths.values()))


def check_columns(frame: pd.DataFrame, columns: Iterable[str], what: str = "table") -> None:
    """Every name in `columns` is a column of `frame`."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, list(frame.columns)[:20]))
        raise ValidationError(f"{what} has no column(s) {missing}; available columns: {available}")


def check_positive_int(value, name: str) -> int:
    """`value` is an integer ≥ 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def number_requirement(minimum: float | None, exclusive: bool, integer: bool) -> str:
    """How `check_number` words its bounds, e.g. "an integer ≥ 1", "a finite number > 0"."""
    text = "an integer" if integer else "a finite number"
    if minimum is not None:
        text += f" {'>' if exclusive else '≥'} {minimum:g}"
    return text


def check_number(
    value,
    name: str,
    *,
    minimum: float | None = None,
    exclusive: bool = False,
    integer: bool = False,
) -> float | int:
    """`value` is a finite number (an integer if `integer`) ≥ `minimum` (> if `exclusive`);
    return it as a plain int or float."""
    is_integer = isinstance(value, int | np.integer) and not isinstance(value, bool)
    is_real = is_integer or isinstance(value, float | np.floating)
    ok = is_integer if integer else is_real and bool(np.isfinite(value))
    if ok and minimum is not None:
        ok = value > minimum if exclusive else value >= minimum
    if not ok:
        shown = value.item() if isinstance(value, np.generic) else value
        requirement = number_requirement(minimum, exclusive, integer)
        raise ValidationError(f"{name} must be {requirement}, got {shown!r}")
    return int(value) if integer else float(value)
