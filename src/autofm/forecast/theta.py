"""The Theta method (standard and optimised), vectorised, as Mamba4Cast's combination partner.

Theta (Assimakopoulos & Nikolopoulos 2000, in the form of Hyndman & Billah 2003 and R's
`forecast::thetaf`): if the series is seasonal at lag m (its autocorrelation at m exceeds the
90% one-sided limit), divide out classical multiplicative seasonal indices (subtract additive
ones when a value is ≤ 0); fit simple exponential smoothing (smoothing weight α on a grid, the
initial level the first value, by one-step squared error); forecast its last level plus half the
least-squares slope, `l_n + b/2 · (j + (1 − (1 − α)^n) / α)` for step j = 0…h−1; put the
seasonality back. The optimised variant (`optimise_theta`, what the combination uses) fits the
share of the slope instead of using half. Theta won the M3 competition and is strong where
Mamba4Cast is weakest (short yearly and quarterly series); averaging the two forecasts beat
either alone on training-part windows of the development sets (docs/forecast.md).

Everything runs on numpy, vectorised over groups of equally long series.
"""

from __future__ import annotations

import numpy as np

from autofm.core.errors import ValidationError

ALPHAS = np.linspace(0.02, 1.0, 50)  # SES smoothing weights searched
MIN_POINTS_TO_OPTIMISE = 4  # shorter series keep the standard slope share
SEASONALITY_Z = 1.645  # one-sided 90% limit of the autocorrelation test


def theta_forecast(
    contexts: list[np.ndarray], h: int, seasons, optimise_theta: bool = False
) -> np.ndarray:
    """Theta forecasts [B, h] for B contexts (1-D arrays; inner NaNs forward-filled, leading NaNs
    dropped) with season lengths `seasons` (one per series). A series of one point is forecast
    as that point; an all-NaN context raises ValidationError.

    `optimise_theta`: the optimised Theta method (Fiorucci et al. 2016's OTM, simplified): the
    share of the slope added, w = 1 − 1/θ in [0, 1] (0.5 in the standard method), is fitted per
    series together with α by the one-step squared error of the drifting forecast (for each α
    the best w has a closed form). Series of fewer than MIN_POINTS_TO_OPTIMISE points keep 0.5:
    their one or two errors fit any slope.
    """
    seasons = np.broadcast_to(np.asarray(seasons, dtype=np.int64), (len(contexts),))
    out = np.empty((len(contexts), h))
    adjusted, factors = [], []
    for index, (y, m) in enumerate(zip(contexts, seasons, strict=True)):
        y = np.asarray(y, dtype=float)
        if np.isnan(y).all():
            raise ValidationError(f"series {index} has no observed (non-NaN) value")
        y = _forward_fill(y)
        indices = seasonal_indices(y, int(m))
        if indices is None:
            adjusted.append(y)
            factors.append(None)
            continue
        values, multiplicative = indices
        season_of = values[np.arange(len(y) + h) % int(m)]
        adjusted.append(y / season_of[: len(y)] if multiplicative else y - season_of[: len(y)])
        factors.append((season_of[len(y) :], multiplicative))
    lengths = np.array([len(y) for y in adjusted])
    for length in np.unique(lengths):
        members = np.flatnonzero(lengths == length)
        out[members] = _theta_same_length(
            np.stack([adjusted[i] for i in members]), h, optimise_theta
        )
    for i, factor in enumerate(factors):
        if factor is not None:
            season, multiplicative = factor
            out[i] = out[i] * season if multiplicative else out[i] + season
    return out


def seasonal_indices(y: np.ndarray, m: int) -> tuple[np.ndarray, bool] | None:
    """Classical-decomposition seasonal indices [m] (by position mod m from y's start) and
    whether they are multiplicative, or None if y is not seasonal at lag m (or too short: at
    most 2m points)."""
    n = len(y)
    if m <= 1 or n <= 2 * m:  # as forecast::thetaf: more than two seasons
        return None
    centred = y - y.mean()
    denominator = float(centred @ centred)
    if denominator == 0:
        return None
    acf = np.array([centred[k:] @ centred[:-k] for k in range(1, m + 1)]) / denominator
    limit = SEASONALITY_Z * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / n)
    if abs(acf[-1]) <= limit:
        return None
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(y, weights, mode="valid")  # centred moving average
    offset = (len(weights) - 1) // 2
    positions = np.arange(offset, offset + len(trend))
    multiplicative = bool((y > 0).all())
    part = y[positions]
    detrended = part / trend if multiplicative else part - trend
    counts = np.bincount(positions % m, minlength=m)
    values = np.bincount(positions % m, weights=detrended, minlength=m) / counts
    values = values / values.mean() if multiplicative else values - values.mean()
    return values, multiplicative


def _theta_same_length(y: np.ndarray, h: int, optimise_theta: bool = False) -> np.ndarray:
    """Theta forecasts [S, h] of S non-seasonal (or adjusted) series of one length [S, n]."""
    n = y.shape[1]
    if n < 2:
        return np.repeat(y[:, -1:], h, axis=1)
    optimise_theta = optimise_theta and n >= MIN_POINTS_TO_OPTIMISE
    time = np.arange(n) - (n - 1) / 2
    slope = (y - y.mean(axis=1, keepdims=True)) @ time / (time @ time)  # [S]
    level = np.repeat(y[:, :1], len(ALPHAS), axis=1)  # [S, A]
    sse = np.zeros_like(level)
    cross, drift_sq = np.zeros_like(level), np.zeros_like(level)
    for t in range(1, n):
        error = y[:, t : t + 1] - level  # SES's one-step error
        sse += error**2
        if optimise_theta:  # the full slope's drift after t points: d = b·(1 − (1 − α)^t)/α
            drift = slope[:, None] * ((1 - (1 - ALPHAS) ** t) / ALPHAS)
            cross += error * drift
            drift_sq += drift**2
        level = level + ALPHAS * error
    weight = np.full_like(level, 0.5)
    if optimise_theta:  # Σ(e − w·d)² is smallest at w = Σe·d / Σd², kept in [0, 1]
        weight = np.clip(
            np.divide(cross, drift_sq, out=np.zeros_like(cross), where=drift_sq > 0), 0, 1
        )
        sse = sse - 2 * weight * cross + weight**2 * drift_sq
    best = np.argmin(sse, axis=1)  # ties: the smallest α
    rows = np.arange(len(y))
    alpha, last, weight = ALPHAS[best], level[rows, best], weight[rows, best]
    steps = np.arange(h)[None, :] + ((1 - (1 - alpha) ** n) / alpha)[:, None]
    return last[:, None] + (weight * slope)[:, None] * steps


def _forward_fill(y: np.ndarray) -> np.ndarray:
    """y without leading NaNs and with inner NaNs replaced by the last observed value."""
    observed = np.flatnonzero(~np.isnan(y))
    y = y[observed[0] :]
    index = np.where(~np.isnan(y), np.arange(len(y)), 0)
    return y[np.maximum.accumulate(index)]
