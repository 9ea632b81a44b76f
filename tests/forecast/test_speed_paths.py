"""The fast inference paths give what the plain ones give.

Left-padded, masked batches against each series alone; outputs of the last steps only against
all steps; one-chunk scans against chunked ones; shared feature arrays against per-series
features; the numpy calendar check against `series_calendar`. Models run in float64 here, so the
comparisons are exact up to rounding (1e-9), not up to float32 noise.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from autofm.core.errors import ValidationError
from autofm.data.timeseries import window_dates
from autofm.forecast import forecaster as forecaster_module
from autofm.forecast import mamba2
from autofm.forecast.features import N_TIME_FEATURES, time_features
from autofm.forecast.forecaster import Mamba4CastForecaster
from autofm.forecast.inference import series_features
from autofm.forecast.mamba2 import (
    Mamba2,
    Mamba2Config,
    decay,
    segment_sum,
    sequential_scan,
    ssd_scan,
)
from autofm.forecast.model import Block, CausalConv, Mamba4Cast, Mamba4CastConfig

from .helpers import TINY

# three blocks (dilations 1, 2, 4), scan chunks of 8 (beyond CPU_ONE_CHUNK steps): padding must
# stay out of every layer
DEEP = {**TINY, "n_layers": 3, "chunk_size": 8, "anchor": "seasonal"}


def deep_model(seed: int = 0) -> Mamba4Cast:
    torch.manual_seed(seed)
    return Mamba4Cast(Mamba4CastConfig(**DEEP)).double().eval()


def contexts_of_many_lengths(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = [1, 2, 5, 9, 10, 11, 17, 30, 31, 33, 47, 64, 65, 90]
    series = [10 + np.cumsum(rng.normal(size=n)) + np.sin(np.arange(n)) for n in lengths]
    series[6][3] = np.nan  # a missing value inside a context
    series[8][:] = 4.0  # a constant series
    return series


@pytest.mark.parametrize("one_chunk", [True, False])
def test_masked_left_padding_equals_each_series_alone(one_chunk, monkeypatch):
    if not one_chunk:  # chunks of 8, whose boundaries padding shifts
        monkeypatch.setattr(mamba2, "CPU_ONE_CHUNK", 0)
    model = deep_model()
    g = torch.Generator().manual_seed(1)
    lengths, n, h = [24, 17, 9, 24], 24, 6
    x = torch.randn(4, n, N_TIME_FEATURES, generator=g, dtype=torch.float64)
    y = torch.randn(4, n, generator=g, dtype=torch.float64).cumsum(1)
    xq = torch.randn(4, h, N_TIME_FEATURES, generator=g, dtype=torch.float64)
    seasons = torch.tensor([4, 3, 1, 12])
    start = torch.tensor([n - length for length in lengths])
    for row, length in enumerate(lengths):
        y[row, : n - length] = math.nan  # left padding
        x[row, : n - length] = 123.0  # whatever the padding carries must not matter
    y[1, 12] = math.nan
    point, quantiles = model.predict(x, y, xq, seasons, start)
    for row, length in enumerate(lengths):
        alone = model.predict(
            x[row : row + 1, n - length :], y[row : row + 1, n - length :], xq[row : row + 1],
            seasons[row : row + 1],
        )  # fmt: skip
        torch.testing.assert_close(point[row], alone[0][0], rtol=0, atol=1e-9)
        torch.testing.assert_close(quantiles[row], alone[1][0], rtol=0, atol=1e-9)


def test_padding_without_the_mask_changes_forecasts():
    # the masked path is what makes padding exact: the network sees NaN padding otherwise
    model = deep_model()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 20, N_TIME_FEATURES, generator=g, dtype=torch.float64)
    y = torch.randn(1, 20, generator=g, dtype=torch.float64).cumsum(1)
    xq = torch.randn(1, 5, N_TIME_FEATURES, generator=g, dtype=torch.float64)
    y[0, :8] = math.nan
    masked = model.predict(x, y, xq, None, torch.tensor([8]))[0]
    alone = model.predict(x[:, 8:], y[:, 8:], xq)[0]
    seen = model.predict(x, y, xq)[0]
    torch.testing.assert_close(masked, alone, rtol=0, atol=1e-9)
    assert not torch.allclose(seen, alone, atol=1e-6)


@pytest.mark.parametrize("last", [1, 3, 7, 40])
def test_outputs_of_the_last_steps_equal_those_of_all_steps(last):
    torch.manual_seed(0)
    config = Mamba4CastConfig(**DEEP)
    u = torch.randn(2, 29, config.d_model, dtype=torch.float64)
    conv = CausalConv(config.d_model, 5, kernel=3, dilation=4).double()
    block = Block(config, dilation=2).double()
    mixer = Mamba2(Mamba2Config(d_model=16, d_state=8, headdim=8, chunk_size=8)).double()
    for layer in (conv, block, mixer):
        full = layer(u)
        torch.testing.assert_close(layer(u, last=last), full[:, -last:], rtol=0, atol=1e-10)


def test_mamba2_mask_keeps_padded_steps_out_of_the_state():
    torch.manual_seed(0)
    mixer = Mamba2(Mamba2Config(d_model=16, d_state=8, headdim=8, chunk_size=8)).double()
    u = torch.randn(1, 25, 16, dtype=torch.float64)
    padded = torch.cat([torch.zeros(1, 7, 16, dtype=torch.float64), u], dim=1)
    mask = torch.cat([torch.zeros(7), torch.ones(25)]).double().view(1, -1, 1)
    torch.testing.assert_close(mixer(padded, mask)[:, 7:], mixer(u), rtol=0, atol=1e-10)


@pytest.mark.parametrize("length", [5, 16, 37, 71, 72, 73, 150])
def test_layer_output_does_not_depend_on_the_cpu_chunking(length, monkeypatch):
    torch.manual_seed(0)
    mixer = Mamba2(Mamba2Config(d_model=16, d_state=8, headdim=8, chunk_size=64)).double()
    u = torch.randn(2, length, 16, dtype=torch.float64)
    chosen = mixer(u)
    chunk = mixer.chunk_length(length)
    if length <= mamba2.CPU_ONE_CHUNK:
        assert chunk == length
    else:  # the fewest chunks of at most CPU_CHUNK_SIZE, evened out
        assert chunk <= mamba2.CPU_CHUNK_SIZE
        assert -(-length // chunk) == -(-length // mamba2.CPU_CHUNK_SIZE)
    monkeypatch.setattr(mamba2, "ssd_scan", lambda x, a, B, C, chunk: sequential_scan(x, a, B, C))
    torch.testing.assert_close(chosen, mixer(u), rtol=0, atol=1e-10)


def test_strong_decays_match_the_step_by_step_recurrence():
    # the trained model's log-decays reach −30 a step: exp must stay exact where it matters
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 40, 4, 3, generator=g, dtype=torch.float64)
    log_decay = -torch.rand(2, 40, 4, generator=g, dtype=torch.float64) * 40
    log_decay[:, ::3] = -0.01  # and some slow ones between
    B = torch.randn(2, 40, 1, 5, generator=g, dtype=torch.float64)
    C = torch.randn(2, 40, 1, 5, generator=g, dtype=torch.float64)
    expected = sequential_scan(x, log_decay, B, C)
    for chunk in (8, 16, 40):
        torch.testing.assert_close(
            ssd_scan(x, log_decay, B, C, chunk), expected, rtol=0, atol=1e-10
        )


def test_segment_sums_are_precise_after_a_large_decay():
    # a difference of cumulative sums would lose these small sums after the −1000 in float32
    values = torch.tensor([0.0, -1000.0, -0.001, -0.002, -0.003])
    sums = segment_sum(values)
    assert sums[4, 1].item() == pytest.approx(-0.006, rel=1e-6)
    assert sums[4, 0].item() == pytest.approx(-1000.006, rel=1e-6)
    cumsum = values.cumsum(0)
    assert (cumsum[4] - cumsum[1]).item() != pytest.approx(-0.006, rel=1e-4)
    assert torch.isinf(sums[0, 1])
    assert decay(torch.tensor([-1e4, 0.0])).tolist()[1] == 1.0
    assert 0 < decay(torch.tensor(-1e4)).item() < 1e-30  # floored, never a slow denormal


def test_shared_features_are_each_series_own():
    dates = pd.date_range("2001-01-01", periods=40 + 5, freq="MS")
    lengths = np.array([40, 12, 3, 40, 7])
    indexes = [dates, dates, dates, None, None]
    shared = series_features(lengths, 5, indexes)
    for length, index, features in zip(lengths, indexes, shared, strict=True):
        window = None if index is None else window_dates(index, int(length), 5)
        np.testing.assert_array_equal(features, time_features(window, length + 5, length))


@pytest.mark.parametrize("batch_size", [None, 3])
def test_length_batches_forecast_each_series_as_alone(batch_size):
    model = deep_model()
    series = contexts_of_many_lengths()
    seasons = [12, 4, 1, 12, 7, 3, 12, 1, 12, 24, 4, 12, 1, 12]
    plain = Mamba4CastForecaster(model, batch_size=1, gate="none", combine=None)
    fast = Mamba4CastForecaster(model, batch_size=batch_size, gate="none", combine=None)
    expected = plain.forecast_arrays(series, 7, season_lengths=seasons)
    got = fast.forecast_arrays(series, 7, season_lengths=seasons)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def monthly_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for i, (n, end) in enumerate(
        [(30, "2019-12"), (12, "2019-12"), (50, "2019-12"), (20, "2018-06")]
    ):
        ds = pd.date_range(end=pd.Timestamp(end), periods=n, freq="MS")
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.normal(size=n)}))
    return pd.concat(frames, ignore_index=True)


def one_calendar_per_series(monkeypatch):
    """Every series through series_calendar, as before the shared calendars."""
    monkeypatch.setattr(
        forecaster_module._Calendars,
        "of_naive",
        lambda self, uid, steps, freq: self.of(uid, pd.DatetimeIndex(steps), freq),
    )


def test_numpy_calendar_check_equals_series_calendar(monkeypatch):
    frame = monthly_frame()
    model = deep_model()
    fast = Mamba4CastForecaster(model, context_length=40).predict(frame, 4, freq="MS")
    one_calendar_per_series(monkeypatch)
    plain = Mamba4CastForecaster(model, context_length=40).predict(frame, 4, freq="MS")
    pd.testing.assert_frame_equal(fast, plain, check_exact=False, rtol=0, atol=1e-9)


def test_irregular_series_ending_on_a_shared_date_still_raises():
    frame = monthly_frame()
    gap = frame.index[(frame["unique_id"] == "s1")][3]  # s1 ends where s0 ended
    with pytest.raises(ValidationError, match="'s1' has timestamps that are not regular"):
        Mamba4CastForecaster(deep_model()).predict(frame.drop(index=gap), 4, freq="MS")


def test_yearly_series_share_calendars_that_reach_before_1677(monkeypatch):
    rng = np.random.default_rng(1)
    frames = [
        pd.DataFrame(
            {
                "unique_id": f"s{i}",
                "ds": pd.date_range(end=f"{1988 - i % 2}-01-01", periods=n, freq="YS"),
                "y": rng.normal(size=n).cumsum(),
            }
        )
        for i, n in enumerate([20, 14, 30, 25, 18, 41])
    ]
    frame = pd.concat(frames, ignore_index=True)
    model = deep_model()
    calls = []
    original = forecaster_module.series_calendar
    monkeypatch.setattr(
        forecaster_module, "series_calendar", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    # a 512-year context window starts in the 15th century: the calendars are still shared,
    # one per distinct last year, and the forecasts equal those of one calendar per series
    fast = Mamba4CastForecaster(model, context_length=512).predict(frame, 6, freq="YS")
    assert len(calls) == 2
    one_calendar_per_series(monkeypatch)
    plain = Mamba4CastForecaster(model, context_length=512).predict(frame, 6, freq="YS")
    pd.testing.assert_frame_equal(fast, plain, check_exact=False, rtol=0, atol=1e-9)
