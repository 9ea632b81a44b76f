"""The paper's last-window protocol: forecast each series' test horizon from its last ≤ 512 points.

MASE per series: mean |y - ŷ| over the horizon divided by the in-sample seasonal-naive error
mean |c_t - c_{t-m}| over the context c actually used (m = season length; m = 1 when the series is
shorter than m + 1 points or its seasonal scale is 0). sMAPE per series: 200 · mean |y - ŷ| /
(|y| + |ŷ|), a 0/0 term counting as 0. Both are averaged over series; datasets are aggregated
with the geometric mean. Series whose scale is 0 at every lag are left out of MASE (counted).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from autofm.core.errors import ValidationError
from autofm.core.validation import check_positive_int
from autofm.data.timeseries import load_timeseries_folder, series_arrays

CONTEXT_LENGTH = 512


def mase_scale(context: np.ndarray, season_length: int) -> float:
    """Mean absolute seasonal difference of `context` (NaNs ignored); m = 1 as a fallback."""
    context = np.asarray(context, dtype=float)
    for lag in (season_length, 1):
        if len(context) > lag:
            diffs = np.abs(context[lag:] - context[:-lag])
            diffs = diffs[~np.isnan(diffs)]
            if len(diffs) and diffs.mean() > 0:
                return float(diffs.mean())
    return float("nan")


def mase(
    actual: np.ndarray, forecast: np.ndarray, context: np.ndarray, season_length: int
) -> float:
    """MASE of one series (NaN when the context has no scale)."""
    return float(np.mean(np.abs(actual - forecast)) / mase_scale(context, season_length))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """sMAPE in percent, 0/0 terms counted as 0."""
    actual, forecast = np.asarray(actual, float), np.asarray(forecast, float)
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(
        np.abs(actual - forecast),
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    return float(200.0 * ratio.mean())


def geometric_mean(values) -> float:
    values = np.asarray(list(values), dtype=float)
    return float(np.exp(np.mean(np.log(values))))


def last_window(train: pd.DataFrame, context_length: int = CONTEXT_LENGTH) -> pd.DataFrame:
    """Each series' last `context_length` training points."""
    position_from_end = train.groupby("unique_id").cumcount(ascending=False)
    return train[position_from_end < context_length].reset_index(drop=True)


def score_forecasts(
    context: pd.DataFrame,
    test: pd.DataFrame,
    forecasts: pd.DataFrame,
    column: str,
    season_length: int,
) -> dict[str, float]:
    """Mean MASE and sMAPE of `forecasts[column]` against `test`, scaled on `context`."""
    merged = test.merge(forecasts[["unique_id", "ds", column]], on=["unique_id", "ds"], how="left")
    if merged[column].isna().any():
        missing = merged.loc[merged[column].isna(), "unique_id"].iloc[0]
        raise ValidationError(f"forecast column {column!r} lacks test points (first: {missing!r})")
    contexts = series_arrays(context)
    mases, smapes = [], []
    for uid, group in merged.groupby("unique_id", sort=False):
        actual, predicted = group["y"].to_numpy(float), group[column].to_numpy(float)
        mases.append(mase(actual, predicted, contexts[str(uid)], season_length))
        smapes.append(smape(actual, predicted))
    mases = np.array(mases)
    return {
        "mase": float(np.nanmean(mases)),
        "smape": float(np.mean(smapes)),
        "n_series": len(smapes),
        "n_unscaled": int(np.isnan(mases).sum()),
    }


def evaluate_folder(
    path: str | os.PathLike,
    forecast_fn: Callable[[pd.DataFrame, int, str | None], pd.DataFrame],
    column: str,
    *,
    context_length: int = CONTEXT_LENGTH,
    max_series: int | None = None,
    seed: int = 0,
) -> dict:
    """Run `forecast_fn(context, h, freq)` on a folder in the shared layout and score it.

    `max_series` evaluates a random subset (fixed by `seed`). Returns mase, smape, n_series,
    seconds (forecasting time only) and the dataset's meta.
    """
    if max_series is not None:
        check_positive_int(max_series, "max_series")
    train, test, meta = load_timeseries_folder(path)
    if max_series is not None and train["unique_id"].nunique() > max_series:
        ids = np.sort(train["unique_id"].unique())
        keep = np.random.default_rng(seed).choice(ids, size=max_series, replace=False)
        train = train[train["unique_id"].isin(keep)]
        test = test[test["unique_id"].isin(keep)]
    h = int(meta["horizon"])
    counts = test.groupby("unique_id").size()
    if (counts != h).any():
        raise ValidationError(f"{path}: every series in test.csv must have {h} points")
    context = last_window(train, context_length)
    freq = meta.get("freq")
    started = time.perf_counter()
    forecasts = forecast_fn(context, h, None if freq in (None, "unknown") else freq)
    seconds = time.perf_counter() - started
    scores = score_forecasts(context, test, forecasts, column, int(meta["season_length"]))
    return {**scores, "seconds": seconds, "h": h, "season_length": int(meta["season_length"])}
