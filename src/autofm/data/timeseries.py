"""Time series in long format (`unique_id, ds, y`), as statsforecast and the Nixtla tools use."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.core.io import read_json
from autofm.core.validation import check_columns
from autofm.data.tables import read_table

LONG_COLUMNS = ("unique_id", "ds", "y")

# season length per pandas frequency alias (after stripping anchors such as "-DEC")
_SEASON_LENGTH = {
    "min": 60, "T": 60, "h": 24, "H": 24, "D": 7, "B": 5, "W": 52,
    "MS": 12, "ME": 12, "M": 12, "QS": 4, "QE": 4, "Q": 4, "YS": 1, "YE": 1, "Y": 1, "A": 1, "AS": 1,
}  # fmt: skip


def validate_long(frame: pd.DataFrame, *, allow_nan: bool = False) -> pd.DataFrame:
    """Check a long frame and return it sorted by (unique_id, ds) with a fresh index.

    Raises ValidationError on missing columns, duplicated timestamps, non-numeric or infinite y,
    and NaN in y unless `allow_nan`. A categorical unique_id becomes plain values (grouping by
    categories would also yield the unused ones, as empty series).
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError("time series must be a DataFrame with columns unique_id, ds, y")
    check_columns(frame, LONG_COLUMNS, "time-series frame")
    if frame.empty:
        raise ValidationError("time-series frame has no rows")
    if not pd.api.types.is_numeric_dtype(frame["y"]):
        raise ValidationError("column y must be numeric")
    y = frame["y"].to_numpy(dtype=float)
    if np.isinf(y).any():
        raise ValidationError(f"column y has {int(np.isinf(y).sum())} infinite values")
    if not allow_nan and np.isnan(y).any():
        raise ValidationError(f"column y has {int(np.isnan(y).sum())} NaN values")
    duplicated = frame.duplicated(subset=["unique_id", "ds"])
    if duplicated.any():
        unique_id, ds = frame.loc[duplicated, ["unique_id", "ds"]].iloc[0].tolist()
        raise ValidationError(
            f"{int(duplicated.sum())} duplicated (unique_id, ds) pairs, first ({unique_id}, {ds}); "
            "aggregate duplicates before forecasting"
        )
    if isinstance(frame["unique_id"].dtype, pd.CategoricalDtype):
        ids = frame["unique_id"]
        frame = frame.assign(unique_id=ids.astype(ids.cat.categories.dtype))
    return frame.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def infer_freq(frame: pd.DataFrame) -> str | None:
    """The frequency alias of the first series whose timestamps have one (`series_freq`), or None
    (integer or irregular `ds`)."""
    if not pd.api.types.is_datetime64_any_dtype(frame["ds"]):
        return None
    for _, group in frame.groupby("unique_id", sort=False):
        freq = series_freq(pd.DatetimeIndex(group["ds"].sort_values()))
        if freq is not None:
            return freq
    return None


def series_freq(index: pd.DatetimeIndex) -> str | None:
    """The frequency alias of one series' timestamps (None if irregular or < 3 points)."""
    if len(index) < 3:
        return None
    with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(index)
    return normalise_freq(freq) if freq else None


def normalise_freq(freq: str | None) -> str | None:
    """A pandas offset alias in its current spelling ('H' → 'h'), or None ('' and 'unknown' too)."""
    if freq in (None, "", "unknown"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return to_offset(_modern_alias(freq)).freqstr
    except ValueError as err:
        raise ValidationError(
            f"unknown frequency {freq!r}; give a pandas offset alias such as h, D, W, MS, QS, YS"
        ) from err


# aliases pandas 2 deprecated and pandas 3 rejects, as found in older data (M4's meta says "H")
_LEGACY_ALIASES = {"H": "h", "T": "min", "S": "s", "L": "ms", "U": "us", "N": "ns", "BH": "bh"}


def _modern_alias(freq: str) -> str:
    match = re.fullmatch(r"(\d*)([A-Za-z]+)(-.*)?", freq)
    if match is None:
        return freq
    count, base, anchor = match.groups()
    return f"{count}{_LEGACY_ALIASES.get(base, base)}{anchor or ''}"


def season_length(freq: str | None) -> int:
    """Usual season length for a frequency alias (1 when unknown)."""
    if not freq:
        return 1
    base = freq.split("-")[0].lstrip("0123456789")
    return _SEASON_LENGTH.get(base, 1)


def train_test_split(frame: pd.DataFrame, h: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the last `h` points of each series as the test window."""
    if h < 1:
        raise ValidationError(f"horizon h must be ≥ 1, got {h}")
    frame = validate_long(frame, allow_nan=True)
    position_from_end = frame.groupby("unique_id").cumcount(ascending=False)
    short = frame.groupby("unique_id").size()
    if (short <= h).any():
        raise ValidationError(
            f"{int((short <= h).sum())} series have ≤ h={h} points; need more than h to split"
        )
    return frame[position_from_end >= h].reset_index(drop=True), frame[
        position_from_end < h
    ].reset_index(drop=True)


def rolling_windows(frame: pd.DataFrame, h: int, n_windows: int, step: int | None = None):
    """Yield (train, test) pairs for `n_windows` back-tests ending `step` points apart."""
    frame = validate_long(frame, allow_nan=True)
    step = step or h
    for window in range(n_windows - 1, -1, -1):
        cut = frame.groupby("unique_id").cumcount(ascending=False) >= window * step
        yield train_test_split(frame[cut], h)


def load_timeseries_folder(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(train, test, meta) from a folder in the shared layout: train.csv, test.csv, meta.json."""
    folder = Path(path)
    missing = [n for n in ("train.csv", "test.csv", "meta.json") if not (folder / n).is_file()]
    if missing:
        raise DataNotFoundError(
            f"{folder} is not a time-series folder: missing {', '.join(missing)} "
            "(expected train.csv, test.csv in long format and meta.json)"
        )
    meta = read_json(folder / "meta.json", "time-series meta file", keys=("horizon",))
    parts = []
    for name in ("train.csv", "test.csv"):
        frame = read_table(folder / name, what="time-series")
        check_columns(frame, LONG_COLUMNS, str(folder / name))
        frame["unique_id"] = frame["unique_id"].astype(str)
        if meta.get("freq", "unknown") not in (
            "unknown",
            None,
        ) and not pd.api.types.is_numeric_dtype(frame["ds"]):
            frame["ds"] = pd.to_datetime(frame["ds"])
        parts.append(validate_long(frame))
    meta.setdefault("season_length", season_length(meta.get("freq")))
    return parts[0], parts[1], meta


_MONTHS_PER_STEP = {"MonthBegin": 1, "QuarterBegin": 3, "YearBegin": 12}


def regular_dates(start, periods: int, freq: str, unit: str = "ns") -> pd.DatetimeIndex:
    """`pd.date_range(start, periods=periods, freq=freq, unit=unit)`, vectorised where it can be.

    pandas builds month-based ranges one date at a time (≈ 5 µs each; a forecast over many
    monthly series spent a third of its time there). Fixed-length steps (hours, days…) and
    month/quarter/year starts, from a time-zone-naive start on the offset that the unit holds
    exactly, are computed with numpy; anything else (time zones, business days, month ends…)
    goes to pd.date_range, which also raises where the range leaves the unit's bounds.
    """
    offset = pd.tseries.frequencies.to_offset(freq)
    start = pd.Timestamp(start)
    if periods < 1 or start.tz is not None or not offset.is_on_offset(start):
        return pd.date_range(start, periods=periods, freq=offset, unit=unit)
    try:
        exact = start.as_unit(unit) == start
        last = pd.Timestamp(start.as_unit(unit)) + (periods - 1) * offset  # bounds-checked
    except (OverflowError, ValueError):
        exact = False
    if exact:
        steps = np.arange(periods)
        first = np.datetime64(start.as_unit(unit).asm8)
        values = None
        if isinstance(offset, pd.offsets.Tick) or type(offset).__name__ == "Day":
            step = pd.Timedelta(offset).as_unit("ns").value
            scale = pd.Timedelta(1, unit).as_unit("ns").value
            if step % scale == 0:
                values = first + steps * np.timedelta64(step // scale, unit)
        months = _MONTHS_PER_STEP.get(type(offset).__name__)
        if months is not None and start == start.normalize():
            values = (first.astype("datetime64[M]") + steps * (months * offset.n)).astype(
                first.dtype
            )
        if values is not None and values[-1] == np.datetime64(last.as_unit(unit).asm8):
            return pd.DatetimeIndex(values)
    return pd.date_range(start, periods=periods, freq=offset, unit=unit)


def calendar_ending(end: pd.Timestamp, n_before: int, h: int, freq: str) -> pd.DatetimeIndex:
    """The `n_before` dates at `freq` ending at `end` and the `h` after it (second resolution)."""
    if end.tz is not None:  # days cross DST changes: pandas steps in wall time
        window = pd.date_range(end=end, periods=n_before, freq=freq, unit="s")
        return window.append(pd.date_range(end, periods=h + 1, freq=freq, unit="s")[1:])
    return regular_dates(
        end.as_unit("s") - (n_before - 1) * to_offset(freq), n_before + h, freq, "s"
    )


def series_calendar(
    unique_id, index: pd.DatetimeIndex, freq: str, n_context: int, h: int, cache: dict | None = None
) -> pd.DatetimeIndex:
    """The `n_context` dates ending at a series' last timestamp and the `h` after it (second
    resolution); ValidationError naming `unique_id` if the timestamps `index` are not regular at
    `freq`. Series that end on the same timestamp share one index through `cache` (a dict kept
    for one `n_context` and `h`)."""
    cache = {} if cache is None else cache
    try:
        if (index[-1], freq) not in cache:
            cache[index[-1], freq] = calendar_ending(index[-1], n_context, h, freq)
        dates = cache[index[-1], freq]
        if index.tz is not None:  # days cross DST changes: pandas steps in wall time
            expected = pd.date_range(index[0], periods=len(index), freq=freq)
        elif len(index) <= n_context:
            expected = dates[n_context - len(index) : n_context]
        else:
            expected = regular_dates(index[0], len(index), freq, "s")
    except ValueError as err:  # e.g. a sub-second step at second resolution
        raise ValidationError(
            f"series {unique_id!r}: cannot build dates at freq {freq!r} ({err})"
        ) from err
    if len(expected) != len(index) or not (index == expected).all():
        raise ValidationError(
            f"series {unique_id!r} has timestamps that are not regular at freq "
            f"{freq!r}; fill gaps with NaN rows or pass the right freq"
        )
    # checked before forecasting, not when the forecasts' dates are written
    if dates[-1].tz_localize(None) > pd.Timestamp.max:
        raise ValidationError(
            f"series {unique_id!r}: {h} steps at freq {freq!r} after {index[-1]} end after "
            f"{pd.Timestamp.max.date()}, the last date pandas can hold; lower h"
        )
    return dates


def synthetic_dates(periods: int, freq: str) -> pd.DatetimeIndex:
    """`periods` dates at `freq` for series whose calendar phase is unknown (integer steps):
    from Monday 2000-01-03, second resolution."""
    return pd.date_range("2000-01-03", periods=periods, freq=freq, unit="s")


def window_dates(dates: pd.DatetimeIndex, n_context: int, h: int) -> pd.DatetimeIndex:
    """The last `n_context + h` dates of `dates`: a context window and the horizon after it."""
    if len(dates) < n_context + h:
        raise ValidationError(
            f"got {len(dates)} dates, need at least {n_context + h} (the context window and h)"
        )
    return dates[len(dates) - n_context - h :]


def read_long(path: str | os.PathLike) -> pd.DataFrame:
    """A long frame from a CSV or Parquet file, `unique_id` as strings and `ds` parsed as
    datetimes unless it is numeric."""
    frame = read_table(path, what="series")
    check_columns(frame, LONG_COLUMNS, f"{path} (long format: unique_id, ds, y)")
    frame["unique_id"] = frame["unique_id"].astype(str)
    if not pd.api.types.is_numeric_dtype(frame["ds"]):
        try:
            frame["ds"] = pd.to_datetime(frame["ds"])
        except (ValueError, TypeError) as err:
            first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValidationError(
                f"column ds of {path} is neither numeric nor dates ({first_line}); write dates "
                "as YYYY-MM-DD or integer steps"
            ) from err
    return frame


def to_long(
    values, start=None, freq: str | None = None, unique_id: str = "series_0"
) -> pd.DataFrame:
    """A long frame from one 1-D array (integer steps when `start` is None)."""
    values = np.asarray(values, dtype=float)
    ds = (
        np.arange(len(values))
        if start is None
        else pd.date_range(start, periods=len(values), freq=freq)
    )
    return pd.DataFrame({"unique_id": unique_id, "ds": ds, "y": values})


def series_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """{unique_id: y values in time order} from a long frame."""
    frame = validate_long(frame, allow_nan=True)
    return {str(uid): g["y"].to_numpy(float) for uid, g in frame.groupby("unique_id", sort=False)}


def statsmodels_series() -> pd.DataFrame:
    """A few real series bundled with statsmodels, as one long frame (for tours and examples)."""
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
    macro = sm.datasets.macrodata.load_pandas().data
    quarters = pd.date_range("1959-01-01", periods=len(macro), freq="QS")
    sunspots = sm.datasets.sunspots.load_pandas().data
    frames = [
        pd.DataFrame({"unique_id": "co2", "ds": co2.index, "y": co2.to_numpy()}),
        pd.DataFrame({"unique_id": "realgdp", "ds": quarters, "y": macro["realgdp"].to_numpy()}),
        pd.DataFrame({"unique_id": "cpi", "ds": quarters, "y": macro["cpi"].to_numpy()}),
        pd.DataFrame(
            {
                "unique_id": "sunspots",
                "ds": pd.to_datetime(sunspots["YEAR"].astype(int).astype(str)),
                "y": sunspots["SUNACTIVITY"].to_numpy(),
            }
        ),
    ]
    return pd.concat(frames, ignore_index=True)
