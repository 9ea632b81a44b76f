import math

import numpy as np
import pytest
import torch

from autofm.data.timeseries import season_length, series_freq
from autofm.forecast.features import N_TIME_FEATURES
from autofm.forecast.priors import (
    KERNELS,
    ForecastPFNPrior,
    KernelSynthPrior,
    Mamba4CastPrior,
    SeasonalProfilePrior,
    frequency_periods,
    kernel_matrix,
    sample_dates,
    sample_period,
)


def lag_correlation(series: torch.Tensor, lag: int) -> float:
    x = series - series.mean(dim=1, keepdim=True)
    return float(((x[:, lag:] * x[:, :-lag]).mean(1) / (x**2).mean(1)).mean())


@pytest.mark.parametrize("kind", KERNELS)
def test_kernel_matrices_are_valid_covariances(kind):
    t = torch.arange(40, dtype=torch.float64)
    params = {
        "period": torch.tensor([12.0]),
        "length": torch.tensor([0.3]),
        "alpha": torch.tensor([1.0]),
        "offset": torch.tensor([0.5]),
        "noise": torch.tensor([0.1]),
    }
    matrix = kernel_matrix(kind, t, 40, {k: v.double() for k, v in params.items()})[0]
    assert torch.allclose(matrix, matrix.T)
    eigenvalues = torch.linalg.eigvalsh(matrix)
    assert eigenvalues.min() > -1e-8 * eigenvalues.max()


def test_periodic_gp_repeats_at_its_period():
    prior = KernelSynthPrior(
        max_kernels=1, kernel_weights={"periodic": 1.0}, random_period_prob=0.0
    )
    series = prior.sample(64, 60, [(12.0,)] * 64, torch.Generator().manual_seed(0))
    assert lag_correlation(series, 12) > 0.9
    assert lag_correlation(series, 12) > lag_correlation(series, 6) + 0.2


def test_white_noise_gp_is_uncorrelated_with_its_variance():
    prior = KernelSynthPrior(max_kernels=1, kernel_weights={"white": 1.0})
    generator = torch.Generator().manual_seed(1)
    series = prior.sample(200, 50, [(12.0,)] * 200, generator)
    assert abs(lag_correlation(series, 1)) < 0.05
    # noise variance is log-uniform on [1e-3, 0.3]: its mean is (0.3 - 1e-3) / ln(300)
    expected = (0.3 - 1e-3) / math.log(300)
    assert float(series.var()) == pytest.approx(expected, rel=0.25)


def test_smooth_gp_is_strongly_autocorrelated():
    prior = KernelSynthPrior(max_kernels=1, kernel_weights={"rbf": 1.0})
    series = prior.sample(64, 80, [(12.0,)] * 64, torch.Generator().manual_seed(2))
    assert lag_correlation(series, 1) > 0.9


def test_gp_sample_is_reproducible_and_finite():
    a = KernelSynthPrior().sample(8, 100, [(24.0, 168.0)] * 8, torch.Generator().manual_seed(3))
    b = KernelSynthPrior().sample(8, 100, [(24.0, 168.0)] * 8, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.isfinite(a).all()


def test_forecastpfn_series_positive_with_calendar_seasonality():
    rng = np.random.default_rng(0)
    dates = [sample_dates("MS", 120, rng) for _ in range(100)]
    series = ForecastPFNPrior().sample(dates, ["MS"] * 100, rng)
    assert (series > 0).all()
    log = torch.log(series)
    # the same calendar month a year apart differs less than half a year apart
    year_apart = (log[:, 12:] - log[:, :-12]).var(dim=1).mean()
    half_year_apart = (log[:, 6:] - log[:, :-6]).var(dim=1).mean()
    assert year_apart < 0.7 * half_year_apart
    # yearly series have no seasonal cycle: no such gap
    yearly_dates = [sample_dates("YS", 60, rng) for _ in range(100)]
    yearly = torch.log(ForecastPFNPrior().sample(yearly_dates, ["YS"] * 100, rng))
    assert (yearly[:, 2:] - yearly[:, :-2]).var(dim=1).mean() > 0.8 * (
        yearly[:, 1:] - yearly[:, :-1]
    ).var(dim=1).mean()


def test_mamba4cast_prior_batch_statistics():
    prior = Mamba4CastPrior()
    generator = torch.Generator().manual_seed(0)
    batch = prior.sample(300, 64, 30, N_TIME_FEATURES, generator)
    h = batch.n_query
    assert 10 <= h <= 30
    assert batch.x_context.shape == (300, 64, N_TIME_FEATURES)
    assert batch.x_query.shape == (300, h, N_TIME_FEATURES)
    assert torch.isfinite(batch.y_query).all()
    assert not torch.isnan(batch.y_context[:, -1]).any()  # the last context point is observed
    # 20% seasonal profiles among seasonal frequencies, 70% GP among the rest (3 sd ≈ 0.08)
    is_gp, is_profile = batch.metadata["is_gp"], batch.metadata["is_profile"]
    seasonal = batch.metadata["season_length"] > 1
    assert not (is_profile & ~seasonal).any() and not (is_gp & is_profile).any()
    assert abs(float(is_profile[seasonal].float().mean()) - 0.2) < 0.08
    assert abs(float(is_gp[~is_profile].float().mean()) - 0.7) < 0.08
    # ~30% short contexts, padded with NaN on the left to at least min_context observed points
    lengths = batch.metadata["context_lengths"]
    assert abs(float((lengths < 64).float().mean()) - 0.3) < 0.1
    assert (lengths >= prior.min_context).all()
    short = lengths[lengths < 64].float()  # log-uniform in [8, 64]: median ≈ √(8·65) ≈ 23
    assert 16 < float(short.median()) < 30 and int(short.min()) < 12
    observed = (~torch.isnan(batch.y_context)).sum(1)
    assert (observed <= lengths).all()
    # sub-window targets: masks are a suffix of the horizon, ~20% of them shortened
    mask = batch.metadata["target_mask"]
    assert mask[:, -1].all() and (mask.int().diff(dim=1) >= 0).all()
    assert 0.05 < float((~mask[:, 0]).float().mean()) < 0.3
    # position-only features for about 10% of the series
    position_only = (batch.x_context[:, :, :-1] == 0).all(dim=(1, 2))
    assert 0.03 < float(position_only.float().mean()) < 0.2


def test_prior_is_reproducible():
    a = Mamba4CastPrior().sample(4, 40, 12, N_TIME_FEATURES, torch.Generator().manual_seed(5))
    b = Mamba4CastPrior().sample(4, 40, 12, N_TIME_FEATURES, torch.Generator().manual_seed(5))
    assert torch.equal(a.y_query, b.y_query)
    assert torch.equal(torch.nan_to_num(a.y_context), torch.nan_to_num(b.y_context))


def test_step_augmentation_shifts_level():
    prior = Mamba4CastPrior(step_prob=1.0, spike_prob=0.0)
    flat = torch.zeros(50, 100)
    augmented = prior.augment(flat + torch.linspace(0, 1, 100), torch.Generator().manual_seed(0))
    jumps = (augmented - torch.linspace(0, 1, 100)).diff(dim=1).abs()
    assert ((jumps > 1e-6).sum(dim=1) <= 1).all()  # exactly one level shift per series at most
    assert (jumps > 1e-6).any(dim=1).float().mean() > 0.9


def test_nonstationary_gp_series_trend_or_integrate():
    generator = torch.Generator().manual_seed(0)
    is_gp = torch.tensor([True] * 20 + [False] * 20)
    flat = torch.randn(40, 50, generator=generator)
    lines = Mamba4CastPrior(integrate_prob=0.0, trend_prob=1.0).nonstationary(
        flat, is_gp, generator
    )
    added = lines - flat
    assert torch.equal(added[20:], torch.zeros(20, 50))  # ForecastPFN rows keep their own trend
    assert torch.allclose(added[:20].diff(n=2, dim=1), torch.zeros(20, 48), atol=1e-5)
    walks = Mamba4CastPrior(integrate_prob=1.0, trend_prob=0.0).nonstationary(
        flat, is_gp, generator
    )
    assert lag_correlation(walks[:20], 1) > 0.7 > 0.2 > lag_correlation(flat[:20], 1)


def test_prior_season_lengths_are_what_inference_derives_from_the_dates():
    batch = Mamba4CastPrior().sample(64, 40, 12, N_TIME_FEATURES, torch.Generator().manual_seed(1))
    seasons = batch.metadata["season_length"]
    assert seasons.dtype == torch.long and seasons.shape == (64,)
    rng = np.random.default_rng(0)
    for freq, expected in zip(batch.metadata["freqs"], seasons.tolist(), strict=True):
        index = sample_dates(freq, 40, rng)
        inferred = series_freq(index)  # the forecaster's own frequency inference
        assert season_length(inferred) == expected
    assert set(seasons.tolist()) >= {1, 4, 12, 24}


def test_gp_periods_are_mostly_tied_to_the_season_length():
    assert frequency_periods("h")[:3] == (24.0, 12.0, 48.0)
    assert frequency_periods("MS")[0] == 12.0 and frequency_periods("YS") == (10.0, 5.0)
    generator = torch.Generator().manual_seed(0)
    draws = [sample_period(frequency_periods("h"), 200, 0.2, generator) for _ in range(2000)]
    share = np.mean([d == 24.0 for d in draws])
    assert abs(share - 0.8 * 0.5) < 0.04
    random = [d for d in draws if d not in frequency_periods("h")]
    assert 0.15 < len(random) / len(draws) < 0.25
    assert all(2.0 <= d <= 100.0 for d in random)
    prior = KernelSynthPrior(
        max_kernels=1, kernel_weights={"periodic": 1.0}, random_period_prob=0.0
    )
    series = prior.sample(64, 96, [(24.0,)] * 64, torch.Generator().manual_seed(4))
    assert lag_correlation(series, 24) > 0.9


def test_seasonal_profiles_repeat_almost_exactly_unlike_gp_draws():
    rng = np.random.default_rng(0)
    seasons, freqs = [24, 12, 4, 7] * 25, ["h", "MS", "QS", "D"] * 25
    series = SeasonalProfilePrior().sample(160, seasons, freqs, rng)
    assert series.shape == (100, 160) and torch.isfinite(series).all()

    def repeat_error(y: np.ndarray, m: int) -> float:  # season-to-season change vs spread
        return float(np.abs(y[m:] - y[:-m]).mean() / np.abs(y - y.mean()).mean())

    errors = [repeat_error(series[i].numpy(), m) for i, m in enumerate(seasons)]
    assert np.median(errors) < 0.35
    smooth = KernelSynthPrior(kernel_weights={"rbf": 1.0, "matern32": 1.0}).sample(
        100, 160, [()] * 100, torch.Generator().manual_seed(0)
    )
    gp_errors = [repeat_error(smooth[i].numpy(), m) for i, m in enumerate(seasons)]
    assert np.median(gp_errors) > 1.5 * np.median(errors)  # measured: 0.52 vs 0.24
    # the profile is a wave of exactly `period` steps, scaled to max |wave| = 1
    wave = SeasonalProfilePrior.profile(12.0, np.arange(48.0), rng)
    assert np.allclose(wave[12:], wave[:-12]) and np.isclose(np.abs(wave).max(), 1.0)


def test_short_context_drift_goes_on_into_the_horizon():
    def drift_wins(drift_prob):
        prior = Mamba4CastPrior(drift_prob=drift_prob, short_context_prob=1.0, missing_prob=0.0)
        batch = prior.sample(600, 96, 10, N_TIME_FEATURES, torch.Generator().manual_seed(3))
        lengths = batch.metadata["context_lengths"]
        short = lengths < 96
        y, target = batch.y_context[short], batch.y_query[short]
        first = y.gather(1, (96 - lengths[short])[:, None])[:, 0]
        last = y[:, -1]
        slope = (last - first) / (lengths[short] - 1).clamp(min=1)
        ahead = torch.arange(1, target.shape[1] + 1)
        naive = (target - last[:, None]).abs().mean(1)
        drift = (target - last[:, None] - slope[:, None] * ahead).abs().mean(1)
        return float((drift < naive).float().mean())

    # without it, the visible trend of a short context continues no better than chance
    assert drift_wins(0.0) < 0.47 and drift_wins(1.0) > 0.53


def test_local_drift_uses_the_visible_window_only():
    series = torch.randn(4, 30, generator=torch.Generator().manual_seed(0))
    series[:, :20] = 1e6  # padding of the short rows: must not enter the drift's scale
    drifted = Mamba4CastPrior(drift_prob=1.0).local_drift(
        series.clone(), torch.tensor([5, 5, 25, 25]), 25, torch.Generator().manual_seed(1)
    )
    added = drifted - series
    steps = torch.arange(30) - 24  # 0 at the last context point
    for row in (0, 1):  # short rows: a line through 0 at the last point, scaled by the window
        slope = added[row, -1] / steps[-1]  # (compared where float32 is exact enough: not at 1e6)
        torch.testing.assert_close(added[row, 20:], slope * steps[20:])
        assert 0 < abs(float(slope)) * 5 < 20 * float(series[row, 20:25].std(correction=0))
    assert torch.equal(added[2:], torch.zeros(2, 30))  # full-length contexts are left alone
