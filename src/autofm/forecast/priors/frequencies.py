"""What every synthetic series draws first: a frequency, its typical periods and its dates.

A series' season length (for the model's seasonal anchor) comes from its frequency exactly as at
inference (`autofm.data.timeseries.season_length`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from autofm.data.timeseries import season_length

# frequency alias → (sampling weight, typical seasonal periods in steps besides the season length)
FREQUENCIES: dict[str, tuple[float, tuple[float, ...]]] = {
    "min": (0.04, (60.0, 1440.0)),
    "h": (0.16, (24.0, 168.0)),
    "D": (0.14, (7.0, 30.44, 365.25)),
    "W": (0.10, (52.18, 4.35)),
    "MS": (0.24, (12.0, 6.0, 3.0)),
    "QS": (0.16, (4.0, 2.0)),
    "YS": (0.16, (10.0, 5.0)),
}


def numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A numpy generator seeded from the torch `generator` (one draw from it)."""
    return np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=generator)))


def sample_frequencies(batch_size: int, rng: np.random.Generator) -> list[str]:
    """Frequency aliases drawn with the weights in FREQUENCIES."""
    names = list(FREQUENCIES)
    weights = np.array([FREQUENCIES[n][0] for n in names])
    return list(rng.choice(names, size=batch_size, p=weights / weights.sum()))


def frequency_periods(freq: str) -> tuple[float, ...]:
    """Periods tied to a frequency: its season length (as inference computes it, first, when
    above 1), half and twice that, and the frequency's other typical periods (KernelSynth-like)."""
    m = season_length(freq)
    tied = (float(m), m / 2.0, 2.0 * m) if m > 1 else ()
    others = tuple(p for p in FREQUENCIES[freq][1] if p not in tied and p >= 2.0)
    return tied + others


def sample_dates(freq: str, n_steps: int, rng: np.random.Generator) -> pd.DatetimeIndex:
    """`n_steps` timestamps at `freq` from a random start (second resolution: no year-2262 limit)."""
    start_year = int(rng.integers(1700, 2015))
    start = pd.Timestamp(year=start_year, month=1, day=1) + pd.Timedelta(
        days=int(rng.integers(0, 365))
    )
    if freq in ("min", "h"):
        start = start + pd.Timedelta(hours=int(rng.integers(0, 24)))
    return pd.date_range(start.normalize(), periods=n_steps, freq=freq, unit="s")
