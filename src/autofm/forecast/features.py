"""What the model sees of a series: scaled values and time features.

Scalers map each series' context to a common range (statistics from observed context points only,
NaN-aware); the model predicts in that range and the forecast is mapped back.
  - "minmax" (the paper's): (y - min) / (max - min).
  - "robust": (y - median) / IQR, less sensitive to spikes than min-max.

Time features (N_TIME_FEATURES per step, shared by the priors and inference):
  - calendar: sin/cos of the phase of minute-in-hour, hour-in-day, day-in-week, day-in-month and
    month-in-year (multi-scale fixed sinusoids), years before the last context year;
  - position: the step relative to the last context point, for every series;
series without timestamps get zeros in the calendar channels (position-only features).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from autofm.core.errors import ValidationError

CALENDAR_PHASES = ("minute", "hour", "weekday", "monthday", "month")
N_TIME_FEATURES = 2 * len(CALENDAR_PHASES) + 2
SCALERS = ("minmax", "robust")
POSITION_SCALE = 256.0  # relative positions are divided by this (contexts are up to ~512 steps)
YEAR_SCALE = 10.0


def calendar_fields(dates: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Wall-clock year, month, day, days in the month, weekday (Monday 0), hour and minute.

    Computed with numpy datetime arithmetic, not pandas' field accessors (slow per call, and
    called for every series). Zoned dates use their local wall time.
    """
    if dates.hasnans:
        raise ValidationError("dates contain NaT; time features need every timestamp")
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    values = dates.to_numpy()
    months = values.astype("datetime64[M]")
    days = values.astype("datetime64[D]")
    month_start = months.astype("datetime64[D]")
    seconds = (values - days) // np.timedelta64(1, "s")
    return {
        "year": months.astype(np.int64) // 12 + 1970,
        "month": months.astype(np.int64) % 12 + 1,
        "day": (days - month_start).astype(np.int64) + 1,
        "days_in_month": ((months + 1).astype("datetime64[D]") - month_start).astype(np.int64),
        "weekday": (days.astype(np.int64) + 3) % 7,  # 1970-01-01 was a Thursday
        "hour": seconds // 3600,
        "minute": seconds % 3600 // 60,
    }


def calendar_phases(
    dates: pd.DatetimeIndex, fields: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Phase in [0, 1) of each calendar cycle at each timestamp (`fields`: `calendar_fields`
    of the dates, if already computed)."""
    fields = calendar_fields(dates) if fields is None else fields
    fields = {name: value.astype(float) for name, value in fields.items()}
    minute, hour, day = fields["minute"], fields["hour"], fields["day"]
    days_in_month = fields["days_in_month"]
    return {
        "minute": minute / 60.0,
        "hour": (hour + minute / 60.0) / 24.0,
        "weekday": (fields["weekday"] + hour / 24.0) / 7.0,
        "monthday": (day - 1.0 + hour / 24.0) / days_in_month,
        "month": (fields["month"] - 1.0 + (day - 1.0) / days_in_month) / 12.0,
    }


def time_features(dates: pd.DatetimeIndex | None, n_steps: int, n_context: int) -> np.ndarray:
    """[n_steps, N_TIME_FEATURES] features of a context of `n_context` steps and what follows.

    `dates` (length n_steps) gives calendar features; None gives position-only features.
    """
    features = np.zeros((n_steps, N_TIME_FEATURES), dtype=np.float32)
    if dates is not None:
        if len(dates) != n_steps:
            raise ValidationError(f"got {len(dates)} dates for {n_steps} steps")
        fields = calendar_fields(dates)
        phases = calendar_phases(dates, fields)
        for k, name in enumerate(CALENDAR_PHASES):
            angle = 2.0 * np.pi * phases[name]
            features[:, 2 * k] = np.sin(angle)
            features[:, 2 * k + 1] = np.cos(angle)
        year = fields["year"]
        years = (year - year[max(0, n_context - 1)]) / YEAR_SCALE
        features[:, -2] = np.clip(years, -5.0, 5.0)
    features[:, -1] = (np.arange(n_steps) - (n_context - 1)) / POSITION_SCALE
    return features


def fit_scaler(
    y_context: torch.Tensor, method: str = "minmax"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loc, scale), each [B, 1], from the observed (non-NaN) points of y_context [B, N].

    A series with no spread gets scale |loc| (or 1 if that is 0 too), so it maps to a constant.
    A series with no observed point gets loc 0, scale 1.
    """
    if method not in SCALERS:
        raise ValidationError(f"unknown scaler {method!r}; choose one of {', '.join(SCALERS)}")
    observed = ~torch.isnan(y_context)
    any_observed = observed.any(dim=1, keepdim=True)
    if method == "minmax":
        low = torch.where(observed, y_context, torch.inf).amin(dim=1, keepdim=True)
        high = torch.where(observed, y_context, -torch.inf).amax(dim=1, keepdim=True)
        loc, spread = low, high - low
    else:
        quantiles = torch.nanquantile(
            y_context, torch.tensor([0.25, 0.5, 0.75], dtype=y_context.dtype), dim=1
        )  # [3, B]
        loc = quantiles[1].unsqueeze(1)
        spread = (quantiles[2] - quantiles[0]).unsqueeze(1)
        deviation = torch.sqrt(torch.nanmean((y_context - loc) ** 2, dim=1, keepdim=True))
        spread = torch.where(spread > 0, spread, deviation)
    loc = torch.where(any_observed, loc, torch.zeros_like(loc))
    tiny = 1e-8 * loc.abs().clamp(min=1.0)
    fallback = torch.where(loc.abs() > 0, loc.abs(), torch.ones_like(loc))
    spread = torch.where(any_observed & (spread > tiny), spread, fallback)
    return loc, spread
