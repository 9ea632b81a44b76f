"""`Mamba4CastPrior`: the training prior, a mixture of the other priors with augmentations.

KernelSynth GP and ForecastPFN series mixed 70/30, plus a share of seasonal-profile series
(`profile_fraction`, drawn among frequencies with a season); some GP series integrated
(random-walk-like) or given a linear trend (our addition: stationary GP draws revert to their
mean, real series trend); level-step and spike augmentations, missing values, short (left-padded,
down to 8 points) contexts, each with a random drift that goes on into the horizon (our
addition, `drift_prob`), and sub-window targets (the loss covers a later part of the horizon, so
the model learns to forecast after a gap).

Every series gets a random frequency and start date; its time features come from those dates
(10% of series get position-only features, as for data without timestamps), and its season length
(metadata["season_length"], for the model's seasonal anchor) comes from the frequency exactly as
at inference (`autofm.data.timeseries.season_length`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from autofm.data.timeseries import season_length
from autofm.forecast.features import N_TIME_FEATURES, time_features
from autofm.forecast.priors.forecast_pfn import ForecastPFNPrior
from autofm.forecast.priors.frequencies import (
    frequency_periods,
    numpy_rng,
    sample_dates,
    sample_frequencies,
)
from autofm.forecast.priors.kernel_synth import KernelSynthPrior
from autofm.forecast.priors.seasonal_profile import SeasonalProfilePrior
from autofm.pfn.prior import TaskBatch


@dataclass
class Mamba4CastPrior:
    """The training prior (a `Prior` for autofm.pfn.train): KernelSynth GP and ForecastPFN
    series, 70/30 by default, and seasonal profiles, with augmentations.

    `profile_fraction` of the series whose frequency has a season (m > 1) are drawn from
    `SeasonalProfilePrior` instead (0 gives the paper's mixture); the rest are GP with
    probability `gp_fraction` (`KernelSynthPrior`), else ForecastPFN.

    `sample(batch_size, n_context, n_query, ...)` returns contexts of n_context steps (some left-
    padded with NaN to a shorter length, log-uniform in [min_context, n_context]: the paper's
    contexts start at 30 points, ours at 8, as real yearly series are that short) and horizons
    of H ∈ [min_horizon, n_query] steps (one H per batch). metadata["target_mask"] [B, H] marks
    the steps the loss covers.
    """

    gp_fraction: float = 0.7
    min_context: int = 8
    min_horizon: int = 10
    short_context_prob: float = 0.3
    step_prob: float = 0.1
    spike_prob: float = 0.1
    missing_prob: float = 0.05
    position_only_prob: float = 0.1
    subwindow_prob: float = 0.2
    integrate_prob: float = 0.25
    trend_prob: float = 0.4
    profile_fraction: float = 0.2
    drift_prob: float = 1.0

    def __post_init__(self) -> None:
        self.gp = KernelSynthPrior()
        self.pfn = ForecastPFNPrior()
        self.profile = SeasonalProfilePrior()

    def sample_series(
        self, batch_size: int, n_steps: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, list[pd.DatetimeIndex], list[str], torch.Tensor, torch.Tensor]:
        """Raw series [B, T] (before augmentation), their dates, frequencies, and which rows are
        GP and which seasonal-profile draws ([B] flags each)."""
        rng = numpy_rng(generator)
        freqs = sample_frequencies(batch_size, rng)
        dates = [sample_dates(f, n_steps, rng) for f in freqs]
        seasons = torch.tensor([season_length(f) for f in freqs])
        is_profile = (torch.rand(batch_size, generator=generator) < self.profile_fraction) & (
            seasons > 1
        )
        is_gp = (torch.rand(batch_size, generator=generator) < self.gp_fraction) & ~is_profile
        series = torch.empty(batch_size, n_steps)
        gp_rows = torch.nonzero(is_gp).flatten().tolist()
        pfn_rows = torch.nonzero(~is_gp & ~is_profile).flatten().tolist()
        profile_rows = torch.nonzero(is_profile).flatten().tolist()
        if profile_rows:
            series[profile_rows] = self.profile.sample(
                n_steps,
                [int(seasons[r]) for r in profile_rows],
                [freqs[r] for r in profile_rows],
                rng,
            )
        if gp_rows:
            periods = [frequency_periods(freqs[r]) for r in gp_rows]
            series[gp_rows] = self.gp.sample(len(gp_rows), n_steps, periods, generator)
        if pfn_rows:
            series[pfn_rows] = self.pfn.sample(
                [dates[r] for r in pfn_rows], [freqs[r] for r in pfn_rows], rng
            )
        series = self.nonstationary(series, is_gp, generator)
        # random affine map, so levels and scales vary as in real data
        level = torch.randn(batch_size, 1, generator=generator) * 3.0
        spread = torch.exp(torch.randn(batch_size, 1, generator=generator))
        return level + spread * series, dates, freqs, is_gp, is_profile

    def nonstationary(
        self, series: torch.Tensor, is_gp: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Make some GP series trend: integrate them (random-walk-like paths) or add a line.

        Stationary GP draws revert to their mean; real series mostly persist and trend.
        """
        batch_size, n_steps = series.shape
        std = series.std(dim=1, keepdim=True).clamp(min=1e-6)
        integrated = torch.cumsum(series, dim=1)
        integrated = integrated / integrated.std(dim=1, keepdim=True).clamp(min=1e-6) * std
        integrate = is_gp[:, None] & (
            torch.rand(batch_size, 1, generator=generator) < self.integrate_prob
        )
        series = torch.where(integrate, integrated, series)
        slope = torch.randn(batch_size, 1, generator=generator) * 2.0 * std
        trend = is_gp[:, None] & (torch.rand(batch_size, 1, generator=generator) < self.trend_prob)
        return series + trend * slope * torch.linspace(0.0, 1.0, n_steps)[None, :]

    def local_drift(
        self,
        series: torch.Tensor,
        lengths: torch.Tensor,
        n_context: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Give `drift_prob` (default: all) of the short contexts a drift that continues into the
        horizon.

        A trend added over a whole long draw barely shows in its last points, so short contexts
        would be trendless wiggles, while real short series (yearly, quarterly) mostly trend on
        (docs/forecast.md). The drift moves the series by N(0, 4²) times its own visible spread
        over the visible context and goes on at the same rate over the horizon.
        """
        batch_size, n_steps = series.shape
        visible = torch.arange(n_context)[None, :] >= (n_context - lengths)[:, None]
        count = lengths[:, None].to(series.dtype)
        context = series[:, :n_context]
        mean = (context * visible).sum(1, keepdim=True) / count
        spread = (((context - mean) ** 2 * visible).sum(1, keepdim=True) / count).sqrt()
        slope = torch.randn(batch_size, 1, generator=generator) * 4.0 * spread.clamp(min=1e-6)
        drifts = (lengths < n_context)[:, None] & (
            torch.rand(batch_size, 1, generator=generator) < self.drift_prob
        )
        steps = torch.arange(n_steps)[None, :] - (n_context - 1)  # 0 at the last context point
        return series + drifts * slope / count * steps

    def augment(self, series: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Level steps and spikes, in units of each series' standard deviation."""
        batch_size, n_steps = series.shape
        std = series.std(dim=1, keepdim=True).clamp(min=1e-6)
        steps_at = torch.randint(n_steps // 4, n_steps, (batch_size, 1), generator=generator)
        has_step = torch.rand(batch_size, 1, generator=generator) < self.step_prob
        size = torch.randn(batch_size, 1, generator=generator) * 2.0 * std
        after = torch.arange(n_steps)[None, :] >= steps_at
        series = series + (has_step & after) * size
        has_spikes = torch.rand(batch_size, 1, generator=generator) < self.spike_prob
        spike_points = torch.rand(batch_size, n_steps, generator=generator) < 0.01
        magnitude = (3.0 + 5.0 * torch.rand(batch_size, n_steps, generator=generator)) * std
        sign = torch.where(torch.rand(batch_size, n_steps, generator=generator) < 0.5, -1.0, 1.0)
        return series + (has_spikes & spike_points) * magnitude * sign

    def sample(
        self,
        batch_size: int,
        n_context: int,
        n_query: int,
        n_features: int = N_TIME_FEATURES,
        generator: torch.Generator | None = None,
    ) -> TaskBatch:
        generator = generator or torch.Generator().manual_seed(0)
        low = min(self.min_horizon, n_query)
        horizon = int(torch.randint(low, n_query + 1, (1,), generator=generator))
        n_steps = n_context + horizon
        series, dates, freqs, is_gp, is_profile = self.sample_series(batch_size, n_steps, generator)
        series = self.augment(series, generator)
        position_only = torch.rand(batch_size, generator=generator) < self.position_only_prob
        features = np.stack(
            [
                time_features(None if position_only[r] else dates[r], n_steps, n_context)
                for r in range(batch_size)
            ]
        )
        features = torch.from_numpy(features)
        # short contexts: left-pad with NaN
        # (log-uniform lengths: real yearly/quarterly series often have 10–40 points)
        shortest = min(self.min_context, n_context)
        u = torch.rand(batch_size, generator=generator)
        log_lengths = math.log(shortest) + u * (math.log(n_context + 1) - math.log(shortest))
        lengths = torch.exp(log_lengths).long().clamp(shortest, n_context)
        short = torch.rand(batch_size, generator=generator) < self.short_context_prob
        lengths = torch.where(short, lengths, n_context)
        series = self.local_drift(series, lengths, n_context, generator)
        y_context = series[:, :n_context].clone()
        y_query = series[:, n_context:].clone()
        padding = torch.arange(n_context)[None, :] < (n_context - lengths)[:, None]
        y_context[padding] = torch.nan
        # scattered missing values (never the last context point)
        missing = torch.rand(batch_size, n_context, generator=generator) < 0.1
        missing &= torch.rand(batch_size, 1, generator=generator) < self.missing_prob
        missing[:, -1] = False
        y_context[missing] = torch.nan
        # sub-window targets: the loss covers only steps from a random start on
        starts = torch.randint(0, max(1, horizon // 2), (batch_size, 1), generator=generator)
        starts = torch.where(
            torch.rand(batch_size, 1, generator=generator) < self.subwindow_prob, starts, 0
        )
        target_mask = torch.arange(horizon)[None, :] >= starts
        return TaskBatch(
            x_context=features[:, :n_context],
            y_context=y_context,
            x_query=features[:, n_context:],
            y_query=y_query,
            metadata={
                "target_mask": target_mask,
                "context_lengths": lengths,
                "is_gp": is_gp,
                "is_profile": is_profile,
                "freqs": freqs,
                "season_length": torch.tensor([season_length(f) for f in freqs]),
            },
        )
