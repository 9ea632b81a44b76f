"""`ForecastPFNPrior`: trend (linear × exponential) × calendar seasonalities (hour-in-day,
day-in-week, month-in-year; Fourier series with random coefficients, aligned to real dates) ×
Weibull noise, as in ForecastPFN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from autofm.forecast.features import calendar_phases


class ForecastPFNPrior:
    """ForecastPFN-style series: trend × calendar seasonality × Weibull noise, [B, T]."""

    def __repr__(self) -> str:
        return "ForecastPFNPrior()"

    # which calendar cycles carry seasonality at each frequency
    CYCLES = {
        "min": ("hour", "weekday"),
        "h": ("hour", "weekday"),
        "D": ("weekday", "month"),
        "W": ("month",),
        "MS": ("month",),
        "QS": ("month",),
        "YS": (),
    }

    def sample(
        self,
        dates: list[pd.DatetimeIndex],
        freqs: list[str],
        rng: np.random.Generator,
        n_harmonics: int = 4,
    ) -> torch.Tensor:
        batch_size, n_steps = len(dates), len(dates[0])
        tau = np.arange(n_steps) / n_steps
        series = np.empty((batch_size, n_steps))
        for row, (index, freq) in enumerate(zip(dates, freqs, strict=True)):
            slope = max(rng.normal(0.0, 0.6), -0.9)
            growth = rng.normal(0.0, 0.6)
            trend = (1.0 + slope * tau) * np.exp(growth * tau)
            seasonal = np.ones(n_steps)
            phases = calendar_phases(index)
            for cycle in self.CYCLES[freq]:
                harmonics = np.arange(1, n_harmonics + 1)[:, None]
                decay = 1.0 / harmonics
                angle = 2.0 * np.pi * harmonics * phases[cycle][None, :]
                coefficients = rng.normal(size=(2, n_harmonics, 1)) * decay
                wave = (coefficients[0] * np.sin(angle) + coefficients[1] * np.cos(angle)).sum(0)
                wave /= max(np.abs(wave).max(), 1e-8)
                seasonal *= 1.0 + rng.uniform(0.0, 0.5) * wave
            shape = rng.uniform(0.8, 3.0)
            weibull = rng.weibull(shape, n_steps)
            noise = 1.0 + rng.uniform(0.0, 0.25) * (weibull - math.gamma(1.0 + 1.0 / shape))
            series[row] = trend * seasonal * noise
        return torch.from_numpy(series).float()
