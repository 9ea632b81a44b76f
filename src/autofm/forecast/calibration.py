"""Interval calibration: width factors for a checkpoint's quantile intervals.

The quantile head is trained on synthetic series; on real data its intervals come out too
narrow (docs/forecast.md). A forecaster widens every interval about its median by
`interval_scale`; `fit_interval_scale` picks the factor whose mean coverage over several panels
(datasets) of held-out windows is the target level, each panel counted equally — split-conformal
calibration with one multiplicative score. Fit it on windows cut from the series' own past
(`holdout_interval_scores`: each series' last h points, forecast from the rest; the benchmark
uses the last h *training* points of each development set, never the test split); the factor is
stored with the checkpoint (`calibration.interval_scale` in its JSON) and used by
`from_pretrained`. One factor per season length (`calibration.season_interval_scales`) replaces
the overall factor for series of that season length (`series_interval_scales`): yearly series
need wider intervals than monthly ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from autofm.core.errors import ValidationError
from autofm.core.validation import check_positive_int
from autofm.data.timeseries import train_test_split, validate_long

if TYPE_CHECKING:
    from autofm.forecast.forecaster import Mamba4CastForecaster


def interval_scores(
    median: np.ndarray, lower: np.ndarray, upper: np.ndarray, actual: np.ndarray
) -> np.ndarray:
    """The smallest factor that widens [lower, upper] about `median` enough to hold `actual`.

    Per point: (actual − median) / (upper − median) above the median, (median − actual) /
    (median − lower) below it; 0 on the median, inf off a zero-width side. NaN actuals are
    dropped; the result is 1-D.
    """
    median, lower, upper, actual = (
        np.asarray(a, dtype=float).ravel() for a in (median, lower, upper, actual)
    )
    keep = ~np.isnan(actual)
    median, lower, upper, actual = median[keep], lower[keep], upper[keep], actual[keep]
    above = actual >= median
    distance = np.abs(actual - median)
    side = np.where(above, upper - median, median - lower)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(side > 0, distance / np.where(side > 0, side, 1.0), np.inf)
    return np.where(distance == 0, 0.0, scores)


def fit_interval_scale(panels: list[np.ndarray], level: float) -> float:
    """The smallest positive factor s with mean over panels of P(score ≤ s) ≥ `level`.

    `panels` are arrays of `interval_scores`, one per dataset (each weighs the same however
    many points it has). Scores of 0 (points on the median) count as covered at any factor.
    """
    panels = [np.asarray(p, dtype=float) for p in panels if len(p)]
    if not panels:
        raise ValidationError("no held-out points to calibrate the intervals on")
    if not 0.0 < level < 1.0:
        raise ValidationError(f"coverage level must be in (0, 1), got {level}")

    def coverage(scale: float) -> float:
        return float(np.mean([np.mean(p <= scale) for p in panels]))

    # the answer is one of the positive finite scores (a factor of 0 would collapse every
    # interval): the smallest that reaches the level
    candidates = np.unique(np.concatenate([p[np.isfinite(p) & (p > 0)] for p in panels]))
    if len(candidates) == 0 or coverage(candidates[-1]) < level:
        raise ValidationError(
            f"no finite widening reaches {level:.0%} coverage: too many held-out points lie "
            "off zero-width intervals (constant forecasts); drop such series or lower the level"
        )
    low, high = 0, len(candidates) - 1
    while low < high:  # coverage is non-decreasing in the scale
        middle = (low + high) // 2
        if coverage(candidates[middle]) >= level:
            high = middle
        else:
            low = middle + 1
    # a hair above the score, so the point that sets it stays inside after rounding
    return float(candidates[low]) * (1 + 1e-9)


def widen_intervals(
    quantiles: np.ndarray, median_index: int, scale: float | np.ndarray
) -> np.ndarray:
    """Quantiles [..., Q] moved away from quantile `median_index` by the factor `scale` (a
    number, or an array that broadcasts against the quantiles, e.g. one factor per series)."""
    if np.all(np.asarray(scale) == 1.0):
        return quantiles
    median = quantiles[..., median_index : median_index + 1]
    return median + scale * (quantiles - median)


def check_interval_scale(scale) -> float:
    """`scale` as a float; ValidationError unless it is a positive finite number."""
    if not np.isfinite(scale) or scale <= 0:
        raise ValidationError(f"interval_scale must be a positive number, got {scale!r}")
    return float(scale)


def median_index(quantile_levels: tuple[float, ...]) -> int:
    """Index of the 0.5 quantile (the middle one if there is none)."""
    if 0.5 in quantile_levels:
        return quantile_levels.index(0.5)
    return len(quantile_levels) // 2


def interval_level(lower: float, upper: float) -> int:
    """The coverage in percent of the interval between two quantile levels (0.1, 0.9 → 80)."""
    return round(100 * (upper - lower))


def interval_indices(quantile_levels: tuple[float, ...], level: float) -> tuple[int, int]:
    """Quantile indices of the lower and upper end of the `level` interval (a symmetric pair)."""
    levels = quantile_levels
    for i in range(len(levels) // 2):
        if interval_level(levels[i], levels[-1 - i]) == round(100 * level):
            return i, len(levels) - 1 - i
    raise ValidationError(f"the model has no {level:.0%} interval; its quantiles are {levels}")


def series_interval_scales(
    seasons: np.ndarray | None,
    n_series: int,
    interval_scale: float,
    season_interval_scales: dict[int, float],
) -> np.ndarray:
    """The interval factor of each of n_series series: its season length's factor in
    `season_interval_scales`, else `interval_scale` — which also holds for every series when
    `seasons` is None (unknown; not the same as 1, which is yearly data)."""
    if seasons is None:
        return np.full(n_series, interval_scale)
    return np.array([season_interval_scales.get(int(m), interval_scale) for m in seasons])


def holdout_series(frame: pd.DataFrame, h: int) -> pd.DataFrame:
    """The series of a validated long frame that a holdout of their last h points can score:
    at least 2 observed, not all equal values before them (a constant context gets a zero-width
    interval on purpose) and an observed value among them."""
    keep = []
    for uid, group in frame.groupby("unique_id", sort=False):
        y = group["y"].to_numpy(float)
        rest = y[:-h][~np.isnan(y[:-h])] if len(y) > h else y[:0]
        if len(rest) >= 2 and np.ptp(rest) > 0 and (~np.isnan(y[-h:])).any():
            keep.append(uid)
    if not keep:
        raise ValidationError(
            f"no series can be calibrated on its last h={h} points: each needs before them at "
            "least 2 observed values that are not all equal, and an observed value among them; "
            "use a smaller h or longer series"
        )
    return frame[frame["unique_id"].isin(keep)]


def holdout_interval_scores(
    forecaster: Mamba4CastForecaster,
    df: pd.DataFrame,
    h: int,
    freq: str | None = None,
    level: float = 0.8,
    season_length: int | None = None,
) -> np.ndarray:
    """`interval_scores` of each series' last h points, forecast by `forecaster` from the rest.

    The scores are in units of the model's own intervals (whatever the forecaster's
    `interval_scale` and `season_interval_scales` are), so a factor fitted on them is its new
    `interval_scale`. Only the series `holdout_series` keeps take part.
    """
    h = check_positive_int(h, "horizon h")
    context, held_out = train_test_split(holdout_series(validate_long(df, allow_nan=True), h), h)
    ids, _, _, quantiles, season_lengths = forecaster.forecast_frame(
        context, h, freq, season_length
    )
    actual = held_out.groupby("unique_id", sort=False)["y"]
    actual = np.stack([actual.get_group(uid).to_numpy(float) for uid in ids])
    lower, upper = interval_indices(forecaster.quantile_levels, level)
    median = quantiles[:, :, median_index(forecaster.quantile_levels)]
    scores = interval_scores(median, quantiles[:, :, lower], quantiles[:, :, upper], actual)
    scales = forecaster.series_interval_scales(season_lengths, len(ids))
    scales = np.broadcast_to(scales[:, None], actual.shape)
    return scores * scales[~np.isnan(actual)]
