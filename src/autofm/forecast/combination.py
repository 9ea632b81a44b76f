"""What the forecaster does with the model's forecast: average it with the optimised Theta
method's, or check it with a per-series backtest against its anchor.

- `combine_with_theta`: daily-and-slower series get the average of the model's and the optimised
  Theta method's (`autofm.forecast.theta`) point forecast; the intervals move with the point.
  Intraday series (`is_intraday`) have several seasonalities Theta cannot hold and are not
  combined.
- `backtest_gate`: each series is checked on its own last h points. The model forecasts them
  from the rest of the context, and the model, its anchor (seasonal naive, or naive for a
  "last"-anchor model) or their average, whichever was closest there, makes the forecast (the
  model's intervals shifted onto it). `gate_margin` gives the model the benefit of the doubt.

Why these defaults, and what they scored, is in docs/forecast.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from autofm.forecast.model import seasonal_anchor
from autofm.forecast.theta import theta_forecast

GATES = ("backtest", "none")
COMBINERS = ("theta", None)
INTRADAY_CYCLES = (24, 60)  # a season length divisible by one of these marks intraday data
DEFAULT_GATE_MARGINS = {"theta": 0.0, None: 0.5}  # by `combine`: only intraday series are gated
BLEND_WEIGHTS = (1.0, 0.5, 0.0)  # model weights the backtest gate chooses from

# forecast_contexts(contexts, h, dates, seasons) -> (point [B, h], quantiles [B, h, Q])
ContextForecaster = Callable[
    [list[np.ndarray], int, list[pd.DatetimeIndex | None] | None, np.ndarray],
    tuple[np.ndarray, np.ndarray],
]


def is_intraday(seasons: np.ndarray) -> np.ndarray:
    """Which season lengths mark intraday data (divisible by 24 hours or 60 minutes)."""
    seasons = np.asarray(seasons)
    return np.any([seasons % cycle == 0 for cycle in INTRADAY_CYCLES], axis=0)


def combine_with_theta(
    contexts: list[np.ndarray], h: int, seasons: np.ndarray, point: np.ndarray, quantiles, rows
) -> tuple[np.ndarray, np.ndarray]:
    """Point forecasts of the series in `rows` averaged with the optimised Theta method's; their
    quantiles move with the point (copies; the other series unchanged)."""
    point, quantiles = point.copy(), quantiles.copy()
    theta = theta_forecast([contexts[i] for i in rows], h, seasons[rows], optimise_theta=True)
    combined = (point[rows] + theta) / 2
    quantiles[rows] += (combined - point[rows])[..., None]
    point[rows] = combined
    return point, quantiles


def anchor_forecast(y: np.ndarray, h: int, season: int) -> np.ndarray:
    """Seasonal-naive forecast of one context (NaNs forward-filled), as the model's anchor."""
    values = torch.from_numpy(np.array(y, dtype=float))[None]  # a writable copy
    observed = ~torch.isnan(values)
    anchor = seasonal_anchor(values, observed, h, torch.tensor([season]))
    return anchor[0].numpy()


def backtest_gate(
    forecast_contexts: ContextForecaster,
    contexts: list[np.ndarray],
    h: int,
    dates: list[pd.DatetimeIndex | None] | None,
    seasons: np.ndarray,
    point: np.ndarray,
    quantiles: np.ndarray,
    rows: np.ndarray,
    *,
    anchor_seasons: np.ndarray,
    windows: int = 1,
    margin: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """For each series in `rows`, the model's forecast, its anchor's or their average, whichever
    had the smallest absolute error over the last `windows` windows of h observed context points.

    `forecast_contexts` is the model (it forecasts the held-out windows); the anchor repeats
    `anchor_seasons`. A candidate with model weight w counts its error times 1 + margin·(1 − w).
    Each window needs h + 2 observed points; series too short for any window keep the model.
    Returns copies of `point` [B, h] and `quantiles` [B, h, Q], intervals shifted with the point.
    """
    weights = np.asarray(BLEND_WEIGHTS)  # weight of the model; the rest on the anchor
    errors = np.zeros((len(contexts), len(weights)))
    for window in range(1, max(1, int(windows)) + 1):
        cut = window * h
        eligible = [
            i
            for i in rows
            if np.isfinite(contexts[i][:-cut]).sum() >= 2
            and np.isfinite(contexts[i][-cut:][:h]).any()
        ]
        if not eligible:
            break
        held_out = [contexts[i][:-cut] for i in eligible]
        held_dates = None
        if dates is not None:
            held_dates = [None if dates[i] is None else dates[i][:-cut] for i in eligible]
        backtest, _ = forecast_contexts(held_out, h, held_dates, seasons[eligible])
        for row, i in enumerate(eligible):
            actual = contexts[i][-cut:][:h]
            baseline = anchor_forecast(held_out[row], h, int(anchor_seasons[i]))
            candidates = weights[:, None] * backtest[row] + (1 - weights[:, None]) * baseline
            errors[i] += np.nansum(np.abs(candidates - actual), axis=1)
    errors *= 1.0 + margin * (1.0 - weights)  # the model's benefit of the doubt
    point, quantiles = point.copy(), quantiles.copy()
    for i in rows:
        weight = weights[int(np.argmin(errors[i]))]  # ties (and no backtest) keep the model
        if weight < 1.0:
            anchor = anchor_forecast(contexts[i], h, int(anchor_seasons[i]))
            blended = weight * point[i] + (1 - weight) * anchor
            quantiles[i] += (blended - point[i])[:, None]
            point[i] = blended
    return point, quantiles
