import json

import numpy as np
import pandas as pd
import pytest
import torch

from autofm.core.checkpoint import save_model
from autofm.core.errors import CheckpointError, ValidationError
from autofm.forecast.forecaster import Mamba4CastForecaster
from autofm.forecast.model import Mamba4Cast, Mamba4CastConfig

from .helpers import TINY, tiny_forecaster, tiny_model


def monthly(n_series=3, length=40, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        n = length - 5 * i
        y = 10 + np.sin(np.arange(n) * 2 * np.pi / 12) + rng.normal(0, 0.1, n)
        ds = pd.date_range("2010-01-01", periods=n, freq="MS")
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def test_predict_long_frame_statsforecast_style():
    frame = monthly()
    out = tiny_forecaster().predict(frame, h=6)
    assert list(out.columns) == [
        "unique_id", "ds", "Mamba4Cast", "Mamba4Cast-lo-80", "Mamba4Cast-hi-80"
    ]  # fmt: skip
    assert len(out) == 18 and out.groupby("unique_id").size().eq(6).all()
    last = frame.groupby("unique_id")["ds"].max()
    first_future = out.groupby("unique_id")["ds"].min()
    assert (first_future == last + pd.DateOffset(months=1)).all()
    assert (out["Mamba4Cast-lo-80"] <= out["Mamba4Cast-hi-80"]).all()
    assert np.isfinite(out["Mamba4Cast"]).all()


def test_unsorted_input_gives_the_same_forecasts():
    frame = monthly()
    forecaster = tiny_forecaster()
    shuffled = frame.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(forecaster.predict(frame, 4), forecaster.predict(shuffled, 4))


@pytest.mark.parametrize("batch_size", [None, 1, 2, 64])
def test_a_series_forecast_does_not_depend_on_the_other_series(batch_size):
    # series of other lengths in the same call (which used to be left-padded into one batch)
    # leave a series' forecast, intervals and gate decision unchanged
    alone = monthly(n_series=1)
    crowd = pd.concat(
        [
            monthly(n_series=4, length=52, seed=3).assign(unique_id=lambda d: "t" + d.unique_id),
            alone,
        ]
    )
    forecaster = tiny_forecaster(batch_size=batch_size)
    a = forecaster.predict(alone, 5)
    b = forecaster.predict(crowd, 5)
    b = b[b.unique_id == "s0"].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, rtol=1e-5)


@pytest.mark.parametrize("size", [None, 3])
def test_length_batches_cover_every_series_once_with_bounded_padding(size):
    from autofm.forecast.inference import length_batches

    lengths = np.random.default_rng(0).choice([5, 9, 10, 11, 40, 44, 320], size=60)
    batches = length_batches(lengths, size, tokens=200, extra=10, max_padding=0.2)
    assert sorted(np.concatenate(batches).tolist()) == list(range(60))
    for batch in batches:
        width = lengths[batch].max() + 10
        assert (lengths[batch] + 10).sum() >= 0.8 * len(batch) * width  # padding ≤ 20%
        assert len(batch) == 1 or len(batch) <= (size or 200 // width)
    assert any(len(set(lengths[batch])) > 1 for batch in batches)  # e.g. 9, 10 and 11
    assert [lengths[b].min() for b in batches] == sorted(lengths[b].min() for b in batches)
    no_padding = length_batches(lengths, size, tokens=200, extra=10, max_padding=0.0)
    assert all(len(set(lengths[batch])) == 1 for batch in no_padding)


def test_numpy_arrays():
    forecaster = tiny_forecaster()
    y = np.sin(np.arange(30) / 3)
    single = forecaster.predict(y, 5)
    assert single.shape == (5,)
    many = forecaster.predict(np.stack([y, 2 * y]), 5)
    assert many.shape == (2, 5)
    np.testing.assert_allclose(many[0], single, rtol=1e-5)
    ragged = forecaster.predict([y, y[:10]], 3)
    assert ragged.shape == (2, 3)
    point, quantiles = forecaster.forecast_arrays([y], 5)
    assert quantiles.shape == (1, 5, 3) and (np.diff(quantiles, axis=-1) >= 0).all()


def test_nan_short_and_constant_series():
    forecaster = tiny_forecaster()
    y = np.r_[np.nan, np.nan, np.arange(20.0), np.nan, 3.0]
    assert np.isfinite(forecaster.predict(y, 4)).all()
    np.testing.assert_array_equal(forecaster.predict(np.full(15, 7.5), 3), 7.5)
    np.testing.assert_array_equal(forecaster.predict(np.array([2.0]), 3), 2.0)
    one_point = pd.DataFrame({"unique_id": "a", "ds": pd.to_datetime(["2020-01-01"]), "y": [4.0]})
    out = forecaster.predict(one_point, 2, freq="D")
    assert out["Mamba4Cast"].tolist() == [4.0, 4.0]
    assert out["ds"].tolist() == list(pd.to_datetime(["2020-01-02", "2020-01-03"]))
    with pytest.raises(ValidationError, match="no observed"):
        forecaster.predict(np.full(5, np.nan), 3)


def test_only_the_last_context_length_points_matter():
    forecaster = tiny_forecaster(context_length=16)
    y = np.sin(np.arange(40) / 2)
    changed = y.copy()
    changed[:20] += 50.0
    np.testing.assert_allclose(forecaster.predict(y, 3), forecaster.predict(changed, 3))


def test_integer_ds_position_only_or_with_freq():
    forecaster = tiny_forecaster()
    frame = pd.DataFrame({"unique_id": "a", "ds": np.arange(5, 65, 2), "y": np.arange(30.0) % 7})
    out = forecaster.predict(frame, 3)
    assert out["ds"].tolist() == [65, 67, 69]
    with_calendar = forecaster.predict(frame, 3, freq="H")
    assert not np.allclose(out["Mamba4Cast"], with_calendar["Mamba4Cast"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.rename(columns={"y": "value"}), "y"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "duplicated"),
        (lambda f: f.assign(y=f["y"].where(f.index != 3, np.inf)), "infinite"),
        (lambda f: f.drop(index=[5, 9]), "regular"),
        (lambda f: f.assign(ds=f["ds"].astype(str) + "x"), "datetimes or integer"),
    ],
)
def test_bad_frames_raise(mutate, message):
    with pytest.raises(ValidationError, match=message):
        tiny_forecaster().predict(mutate(monthly(n_series=1)), 3)


@pytest.mark.parametrize("h", [0, -2, 1.5, True])
def test_bad_horizon(h):
    with pytest.raises(ValidationError, match="horizon"):
        tiny_forecaster().predict(monthly(n_series=1), h)


@pytest.mark.parametrize("length", [30, 100])  # shorter and longer than the context
def test_future_dates_match_pandas_for_zoned_daily_series(length):
    forecaster = tiny_forecaster(context_length=64)
    zoned = pd.date_range("2020-02-20", periods=length, freq="D", tz="US/Eastern")  # DST
    frame = pd.DataFrame({"unique_id": "a", "ds": zoned, "y": np.sin(np.arange(length))})
    out = forecaster.predict(frame, 3)
    expected = pd.date_range(zoned[-1], periods=4, freq="D")[1:]
    assert (out["ds"] == expected).all() and out["ds"].dt.tz is not None


def test_irregular_integer_steps_raise():
    frame = pd.DataFrame({"unique_id": "a", "ds": [0, 1, 3, 4], "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValidationError, match="evenly"):
        tiny_forecaster().predict(frame, 2)


def test_checkpoint_round_trip_and_tampering(tmp_path):
    model = tiny_model()
    stem = save_model(tmp_path / "tiny", model)
    loaded = Mamba4CastForecaster.from_pretrained(stem)
    frame = monthly()
    pd.testing.assert_frame_equal(
        loaded.predict(frame, 4), Mamba4CastForecaster(model).predict(frame, 4)
    )
    weights = stem.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(CheckpointError, match="sha256"):
        Mamba4CastForecaster.from_pretrained(stem)
    with pytest.raises(CheckpointError, match="no pretrained"):
        Mamba4CastForecaster.from_pretrained("no-such-model")


def test_shipped_checkpoint_loads_if_present():
    from autofm.core.checkpoint import PACKAGE_CHECKPOINT_DIR

    meta_path = PACKAGE_CHECKPOINT_DIR / "mamba4cast-cpu.json"
    if not meta_path.exists():
        pytest.skip("mamba4cast-cpu not shipped in this checkout")
    meta = json.loads(meta_path.read_text())
    assert meta["training"]["data"].startswith("synthetic")
    forecaster = Mamba4CastForecaster.from_pretrained("mamba4cast-cpu")
    assert np.isfinite(forecaster.predict(np.sin(np.arange(48) / 2), 12)).all()


def seasonal_naive(y: np.ndarray, m: int, h: int) -> np.ndarray:
    """statsforecast's SeasonalNaive (last value when the series is shorter than a season)."""
    if m <= 1 or len(y) < m:
        return np.full(h, y[-1])
    return np.resize(y[-m:], h)


def zero_head_seasonal_forecaster() -> Mamba4CastForecaster:
    model = Mamba4Cast(Mamba4CastConfig(**TINY, anchor="seasonal"))
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    return Mamba4CastForecaster(model, batch_size=2, combine=None)


def test_zero_head_seasonal_anchor_is_seasonal_naive_in_original_units():
    forecaster = zero_head_seasonal_forecaster()
    frame = monthly(n_series=4, length=40)  # lengths 40, 35, 30, 25
    frame.loc[frame["unique_id"] == "s3", "y"] = np.arange(25.0)[::-1] * 1e4  # large scale
    short = pd.DataFrame(
        {"unique_id": "short", "ds": pd.date_range("2010-01-01", periods=9, freq="MS"), "y": 1.0}
    )
    short["y"] = np.arange(9.0) ** 2  # shorter than a season: the last value
    frame = pd.concat([frame, short], ignore_index=True)
    out = forecaster.predict(frame, 15)  # monthly: m = 12, as statsforecast uses it
    for uid, group in frame.groupby("unique_id"):
        expected = seasonal_naive(group["y"].to_numpy(), 12, 15)
        got = out.loc[out["unique_id"] == uid, "Mamba4Cast"].to_numpy()
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
        assert np.allclose(out.loc[out["unique_id"] == uid, "Mamba4Cast-lo-80"], got)
    y = np.sin(np.arange(60) * 2 * np.pi / 24) + np.arange(60) * 0.01
    hourly = pd.DataFrame({"unique_id": "a", "ds": np.arange(60), "y": y})
    cases = [({"freq": "H"}, 24), ({}, 1), ({"season_length": 5}, 5)]  # legacy alias for hourly
    for kwargs, m in cases:
        got = forecaster.predict(hourly, 30, **kwargs)["Mamba4Cast"].to_numpy()
        assert np.allclose(got, seasonal_naive(y, m, 30), atol=1e-5)
    arrays = forecaster.predict(np.stack([y, -y]), 7, season_length=24)
    assert np.allclose(arrays, np.stack([y[-24:-17], -y[-24:-17]]), atol=1e-5)
    with pytest.raises(ValidationError, match="season lengths"):
        forecaster.predict(y, 3, season_length=0)


def linear_extrapolation(contexts, h, dates, seasons):
    """A stand-in 'model' that continues each context's last slope (point and ±1 quantiles)."""
    point = np.stack([y[-1] + (y[-1] - y[-2]) * np.arange(1, h + 1) for y in contexts])
    return point, point[:, :, None] + np.array([-1.0, 0.0, 1.0])


@pytest.mark.parametrize("gate,windows", [("backtest", 1), ("backtest", 2), ("none", 1)])
def test_backtest_gate_keeps_the_model_where_it_backtests_better(gate, windows, monkeypatch):
    forecaster = Mamba4CastForecaster(
        tiny_model(), gate=gate, backtest_windows=windows, combine=None
    )
    monkeypatch.setattr(forecaster, "_forecast_contexts", linear_extrapolation)
    line = 3.0 + 0.5 * np.arange(30)  # extrapolation is exact, seasonal naive (m = 4) is not
    point, quantiles = forecaster.forecast_arrays([line], 6, season_lengths=4)
    np.testing.assert_allclose(point[0], 3.0 + 0.5 * np.arange(30, 36))
    np.testing.assert_allclose(quantiles[0, :, 2] - quantiles[0, :, 0], 2.0)


def test_backtest_gate_switches_to_the_anchor_where_it_backtests_better(monkeypatch):
    wave = np.tile([1.0, 5.0, 2.0, 8.0], 8)  # seasonal naive (m = 4) is exact
    cases = [("backtest", 1, np.resize(wave[-4:], 6)), ("backtest", 3, np.resize(wave[-4:], 6))]
    for gate, windows, expected in [*cases, ("none", 1, None)]:
        forecaster = Mamba4CastForecaster(
            tiny_model(), gate=gate, backtest_windows=windows, combine=None
        )
        monkeypatch.setattr(forecaster, "_forecast_contexts", linear_extrapolation)
        point, quantiles = forecaster.forecast_arrays([wave], 6, season_lengths=4)
        if expected is None:  # without the gate: the stand-in model's extrapolation
            expected = wave[-1] + (wave[-1] - wave[-2]) * np.arange(1, 7)
        np.testing.assert_allclose(point[0], expected)
        # the model's interval is kept, shifted onto the forecast it now surrounds
        np.testing.assert_allclose(quantiles[0, :, 1], expected)
        np.testing.assert_allclose(quantiles[0, :, 2] - quantiles[0, :, 0], 2.0)


def test_backtest_gate_can_blend_and_refuses_unknown_gates(monkeypatch):
    # the model is off by +2 and the anchor by −2 on the held-out points: their average is exact
    forecaster = Mamba4CastForecaster(tiny_model(), combine=None)

    def biased(contexts, h, dates, seasons):
        point = np.stack([np.resize(y[-4:], h) + 4.0 for y in contexts])
        return point, np.repeat(point[:, :, None], 3, axis=2)

    monkeypatch.setattr(forecaster, "_forecast_contexts", biased)
    base = np.tile([0.0, 1.0, 0.0, 3.0], 8)
    y = base + 2.0 * (np.arange(32) >= 28)  # the last season is lifted by 2
    point, _ = forecaster.forecast_arrays([y], 4, season_lengths=4)
    # blend 0.5: half of (anchor + 4) plus half of the anchor, anchor = last season of y
    np.testing.assert_allclose(point[0], y[-4:] + 2.0)
    with pytest.raises(ValidationError, match="gate"):
        Mamba4CastForecaster(tiny_model(), gate="sometimes")


@pytest.mark.parametrize("margin,offset", [(0.0, 0.0), (0.5, -0.4), (0.2, 0.0)])
def test_gate_margin_gives_the_model_the_benefit_of_the_doubt(margin, offset, monkeypatch):
    # the last season is 1 higher: on the held-out points the anchor (seasonal naive) is off
    # by 1, the stand-in model (seasonal naive − 0.4) by 1.4 and their average by 1.2
    wave = np.tile([1.0, 5.0, 2.0, 8.0], 8)
    wave[-4:] += 1.0
    forecaster = Mamba4CastForecaster(tiny_model(), gate_margin=margin, combine=None)

    def shifted(contexts, h, dates, seasons):
        point = np.stack([np.resize(y[-4:], h) - 0.4 for y in contexts])
        return point, np.repeat(point[:, :, None], 3, axis=2)

    monkeypatch.setattr(forecaster, "_forecast_contexts", shifted)
    point, _ = forecaster.forecast_arrays([wave], 4, season_lengths=4)
    # 1.4 < 1.0 · 1.5 with margin 0.5: the model stays; otherwise the anchor takes over
    np.testing.assert_allclose(point[0], wave[-4:] + offset)
    with pytest.raises(ValidationError, match="gate_margin"):
        Mamba4CastForecaster(tiny_model(), gate_margin=-1.0)
    # the default goes with the combination: only intraday series are gated there
    assert Mamba4CastForecaster(tiny_model()).gate_margin == 0.0
    assert Mamba4CastForecaster(tiny_model(), combine=None).gate_margin == 0.5


def test_a_context_window_without_observed_values_raises():
    values = np.r_[np.arange(10.0) + 1, [np.nan] * 40]
    for combine in ("theta", None):
        with pytest.raises(ValidationError, match="no observed value in its last 32"):
            tiny_forecaster(context_length=32, combine=combine).forecast_arrays([values], 3)
