"""Interval calibration: width factors for a checkpoint's quantile intervals.

The quantile head is trained on synthetic series; on real data its intervals come out too
narrow (80% intervals covered 60–80% of held-out points on the benchmark sets). A forecaster
widens every interval about its median by `interval_scale`; `fit_interval_scale` picks the
factor whose mean coverage over several panels (datasets) of held-out windows is the target
level, each panel counted equally — split-conformal calibration with one multiplicative
score. Fit it on windows cut from the series' own past (the benchmark uses the last h
*training* points of each development set, never the test split); the factor is stored with
the checkpoint (`calibration.interval_scale` in its JSON) and used by `from_pretrained`.
The benchmark also fits one factor per season length among the development sets
(`calibration.season_interval_scales`: yearly, quarterly, monthly, hourly data), which replaces
the overall factor for series of that season length: yearly series need wider intervals than
monthly ones.
"""

from __future__ import annotations

import numpy as np

from autofm.core.errors import ValidationError


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
