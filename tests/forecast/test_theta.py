import warnings

import numpy as np
import pytest

from autofm.forecast.combination import is_intraday
from autofm.forecast.theta import seasonal_indices, theta_forecast

from .helpers import tiny_forecaster


def test_a_straight_line_continues_at_half_its_slope():
    # SES follows the line exactly (α = 1) and Theta adds half the slope per step
    y = 3.0 + 2.0 * np.arange(20)
    np.testing.assert_allclose(theta_forecast([y], 3, 1)[0], [42.0, 43.0, 44.0])


def test_optimised_theta_continues_a_straight_line_at_its_full_slope():
    y = 3.0 + 2.0 * np.arange(20)
    forecast = theta_forecast([y], 3, 1, optimise_theta=True)[0]
    np.testing.assert_allclose(forecast, [43.0, 45.0, 47.0], rtol=1e-9)


def brute_force_optimised_theta(y: np.ndarray, h: int) -> np.ndarray:
    """Grid search over α (ALPHAS) and the slope share w (fine grid), explicit loops."""
    from autofm.forecast.theta import ALPHAS

    n, t = len(y), np.arange(len(y))
    slope = np.polyfit(t, y, 1)[0]
    best = (np.inf, None)
    for alpha in ALPHAS:
        for w in np.linspace(0, 1, 2001):
            level, sse = y[0], 0.0
            for i in range(1, n):
                forecast = level + w * slope * (1 - (1 - alpha) ** i) / alpha
                sse += (y[i] - forecast) ** 2
                level += alpha * (y[i] - level)
            if sse < best[0]:
                steps = np.arange(h) + (1 - (1 - alpha) ** n) / alpha
                best = (sse, level + w * slope * steps)
    return best[1]


def test_optimised_theta_matches_a_brute_force_search():
    rng = np.random.default_rng(4)
    series = [10 + 0.3 * np.arange(15) + rng.normal(0, 1, 15) for _ in range(2)]
    ours = theta_forecast(series, 4, 1, optimise_theta=True)
    for y, forecast in zip(series, ours, strict=True):
        np.testing.assert_allclose(forecast, brute_force_optimised_theta(y, 4), rtol=1e-3)


def test_one_point_and_inner_gaps():
    forecasts = theta_forecast([np.array([7.0]), np.array([np.nan, 1.0, np.nan, 1.0])], 2, 1)
    np.testing.assert_allclose(forecasts, [[7.0, 7.0], [1.0, 1.0]])


def test_multiplicative_seasonality_is_found_and_continued():
    pattern = np.array([0.6, 0.8, 1.0, 1.4, 1.2, 1.0] * 2)
    y = 100.0 * np.tile(pattern, 5)
    values, multiplicative = seasonal_indices(y, 12)
    assert multiplicative
    np.testing.assert_allclose(values, pattern / pattern.mean(), rtol=1e-9)
    np.testing.assert_allclose(theta_forecast([y], 12, 12)[0], y[:12], rtol=1e-9)
    assert seasonal_indices(np.random.default_rng(0).normal(size=60), 12) is None
    assert seasonal_indices(y[:20], 12) is None  # fewer than two seasons


def test_agrees_with_statsmodels_theta_model():
    from statsmodels.tsa.forecasting.theta import ThetaModel

    rng = np.random.default_rng(0)
    gaps = []
    for i in range(30):
        n, m = int(rng.integers(30, 120)), (1, 4, 12)[i % 3]
        t = np.arange(n)
        y = 50 + 0.3 * t * rng.normal() + np.cumsum(rng.normal(0, 1, n))
        y = np.abs(y + (5 * np.sin(2 * np.pi * t / m) if m > 1 else 0)) + 5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ThetaModel(y, period=m, deseasonalize=m > 1, use_test=m > 1)
            reference = model.fit(use_mle=False).forecast(6).to_numpy()
        ours = theta_forecast([y], 6, m)[0]
        gaps.append(np.max(np.abs(ours - reference) / np.abs(reference)))
    # statsmodels fits α continuously, we on a grid of 50 values
    assert np.median(gaps) < 2e-3 and np.quantile(gaps, 0.9) < 1e-2


def test_intraday_season_lengths():
    assert is_intraday(np.array([24, 48, 168, 60, 1440])).all()
    assert not is_intraday(np.array([1, 4, 5, 7, 12, 52])).any()


def test_forecaster_averages_the_model_with_theta_for_all_but_intraday_series():
    rng = np.random.default_rng(1)
    values = [50 + np.cumsum(rng.normal(size=n)) for n in (40, 60, 60)]
    seasons = np.array([1, 12, 24])
    # combined series skip the backtest gate; intraday ones keep it (and are not combined)
    model = tiny_forecaster(gate="none", combine=None)
    alone, alone_q = model.forecast_arrays(values, 5, season_lengths=seasons)
    gated, _ = tiny_forecaster(combine=None).forecast_arrays(values, 5, season_lengths=seasons)
    both, both_q = tiny_forecaster().forecast_arrays(values, 5, season_lengths=seasons)
    theta = theta_forecast(values[:2], 5, seasons[:2], optimise_theta=True)
    np.testing.assert_allclose(both[:2], (alone[:2] + theta) / 2, rtol=1e-9)
    np.testing.assert_allclose(both[2], gated[2])
    shift = (both[:2] - alone[:2])[..., None]
    np.testing.assert_allclose(both_q[:2], alone_q[:2] + shift, rtol=1e-9)  # moved with it
    with pytest.raises(Exception, match="combine"):
        tiny_forecaster(combine="arima")


def test_short_series_keep_the_standard_slope_share_and_empty_ones_raise():
    from autofm.core.errors import ValidationError

    short = [np.array([1.0, 3.0, 4.0])]
    np.testing.assert_allclose(
        theta_forecast(short, 4, 1, optimise_theta=True), theta_forecast(short, 4, 1)
    )
    with pytest.raises(ValidationError, match="no observed"):
        theta_forecast([np.array([np.nan, np.nan])], 2, 1)


def test_only_intraday_series_go_through_the_gate(monkeypatch):
    from autofm.forecast.forecaster import Mamba4CastForecaster

    from .helpers import tiny_model

    # a stand-in model that is off by +10; seasonal naive (m = 4 or 24) is exact on these waves,
    # so the gate swaps the model for it, but only on the intraday (m = 24) series
    def off(contexts, h, dates, seasons):
        point = np.stack([np.resize(y[-int(m) :], h) + 10.0 for y, m in zip(contexts, seasons)])
        return point, np.repeat(point[:, :, None], 3, axis=2)

    forecaster = Mamba4CastForecaster(tiny_model())
    monkeypatch.setattr(forecaster, "_forecast_contexts", off)
    quarterly = np.tile([1.0, 5.0, 2.0, 8.0], 12)
    hourly = np.tile(np.arange(24.0), 4)
    seasons = np.array([4, 24, 4])
    point, _ = forecaster.forecast_arrays([quarterly, hourly, quarterly], 6, season_lengths=seasons)
    theta = theta_forecast([quarterly], 6, 4, optimise_theta=True)[0]
    combined = (np.resize(quarterly[-4:], 6) + 10.0 + theta) / 2  # not gated: still off by 5
    np.testing.assert_allclose(point[[0, 2]], np.stack([combined, combined]))
    np.testing.assert_allclose(point[1], np.resize(hourly[-24:], 6))  # gated to seasonal naive
    plain = Mamba4CastForecaster(tiny_model(), combine="none")  # "none" is the same as None
    assert plain.combine is None and plain.gate_margin == 0.5
