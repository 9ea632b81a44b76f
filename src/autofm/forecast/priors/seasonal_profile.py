"""`SeasonalProfilePrior` (our addition): one season's random profile repeated almost exactly.

With a drifting amplitude and level and small noise: what hourly load or monthly tourism series
look like, and what GP and ForecastPFN draws rarely are (a model trained on those alone learned
to damp seasonality that repeats exactly).
"""

from __future__ import annotations

import numpy as np
import torch

from autofm.forecast.priors.frequencies import FREQUENCIES


class SeasonalProfilePrior:
    """Near-exactly repeating seasonal series [B, T] (our addition to the paper's prior).

    A profile of one season (a Fourier series of 1 to min(8, m // 2) harmonics with random
    coefficients decaying as k^-p, p ∈ [0.3, 2]: from smooth waves to sharp daily shapes; max
    |profile| = 1), sometimes modulated by a longer period of the frequency (a week of hours),
    times an amplitude drifting as exp(g·t/T), on a level made of a line and a slow random walk,
    plus AR(1) noise of 1–30% of the amplitude.
    """

    def __repr__(self) -> str:
        return "SeasonalProfilePrior()"

    @staticmethod
    def profile(period: float, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random periodic wave of `period` steps on steps t, scaled to max |wave| = 1."""
        n_harmonics = max(1, min(int(period) // 2, int(rng.integers(1, 9))))
        harmonics = np.arange(1, n_harmonics + 1)[:, None]
        decay = harmonics ** -rng.uniform(0.3, 2.0)
        angle = 2.0 * np.pi * harmonics * (t[None, :] / period + rng.uniform())
        coefficients = rng.normal(size=(2, n_harmonics, 1)) * decay
        wave = (coefficients[0] * np.sin(angle) + coefficients[1] * np.cos(angle)).sum(0)
        return wave / max(np.abs(wave).max(), 1e-8)

    def sample(
        self, n_steps: int, seasons: list[int], freqs: list[str], rng: np.random.Generator
    ) -> torch.Tensor:
        """Series [len(seasons), n_steps]; series i repeats every seasons[i] (≥ 2) steps."""
        t = np.arange(n_steps, dtype=float)
        tau = t / n_steps
        series = np.empty((len(seasons), n_steps))
        for row, (m, freq) in enumerate(zip(seasons, freqs, strict=True)):
            wave = self.profile(float(m), t, rng)
            longer = [p for p in FREQUENCIES[freq][1] if 2 * m <= p <= n_steps]
            if longer and rng.random() < 0.3:  # e.g. weekdays unlike weekends in hourly data
                second = self.profile(float(rng.choice(longer)), t, rng)
                wave = wave * (1.0 + rng.uniform(0.1, 0.5) * second)
            amplitude = np.exp(rng.normal(0.0, 0.3) * tau)
            walk = np.cumsum(
                rng.normal(0.0, np.exp(rng.uniform(np.log(1e-3), np.log(0.05))), n_steps)
            )
            level = rng.normal(0.0, 1.0) * tau + walk
            innovations = rng.normal(size=n_steps) * np.exp(rng.uniform(np.log(0.01), np.log(0.3)))
            phi, noise, previous = rng.uniform(0.0, 0.7), np.empty(n_steps), 0.0
            for step in range(n_steps):
                previous = phi * previous + innovations[step]
                noise[step] = previous
            series[row] = amplitude * wave + level + noise * np.sqrt(1.0 - phi**2)
        return torch.from_numpy(series).float()
