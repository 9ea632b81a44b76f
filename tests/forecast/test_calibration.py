import numpy as np
import pandas as pd
import pytest
import torch

from autofm.core.checkpoint import read_checkpoint_meta, save_model, update_checkpoint_meta
from autofm.core.errors import CheckpointError, ValidationError
from autofm.forecast.calibration import fit_interval_scale, interval_scores, widen_intervals
from autofm.forecast.forecaster import Mamba4CastForecaster

from .helpers import tiny_forecaster, tiny_model


def test_interval_scores_known_answers():
    median = np.zeros(6)
    lower, upper = np.full(6, -1.0), np.full(6, 2.0)
    actual = np.array([0.0, 1.0, 4.0, -0.5, -3.0, np.nan])
    np.testing.assert_allclose(interval_scores(median, lower, upper, actual), [0, 0.5, 2, 0.5, 3])
    # a zero-width side holds only the median itself
    flat = interval_scores(np.zeros(2), np.zeros(2), np.zeros(2), np.array([0.0, 1.0]))
    assert flat[0] == 0 and np.isinf(flat[1])


def test_fit_interval_scale_reaches_the_level_with_panels_weighed_equally():
    scores = np.arange(1, 101) / 50.0  # 0.02 … 2.0
    assert fit_interval_scale([scores], 0.8) == pytest.approx(1.6)
    # a big panel of tiny scores does not swamp a small one: the mean of the two coverages
    big, small = np.full(10_000, 0.01), np.array([1.0, 2.0, 3.0, 4.0])
    scale = fit_interval_scale([big, small], 0.75)
    assert scale == pytest.approx(2.0, rel=1e-8)  # (1 + 2/4) / 2 = 0.75
    with pytest.raises(ValidationError, match="level"):
        fit_interval_scale([scores], 1.0)
    with pytest.raises(ValidationError, match="no held-out"):
        fit_interval_scale([np.array([])], 0.8)
    with pytest.raises(ValidationError, match="zero-width"):
        fit_interval_scale([np.array([np.inf, np.inf, 1.0])], 0.8)


def test_widen_intervals_keeps_the_median_and_scales_distances():
    quantiles = np.array([[[1.0, 2.0, 5.0]]])
    np.testing.assert_allclose(widen_intervals(quantiles, 1, 2.0), [[[0.0, 2.0, 8.0]]])
    assert widen_intervals(quantiles, 1, 1.0) is quantiles


def wavy(n_series=6, length=48, seed=0):
    """Noisy monthly waves of very different levels and scales (1 … 10⁵), lengths 48, 46, …"""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        n = length - 2 * i
        scale = 10.0 ** (i % 6)
        wave = 5 + np.sin(np.arange(n) * 2 * np.pi / 12) + rng.normal(0, 0.5, n)
        ds = pd.date_range("2000-01-01", periods=n, freq="MS")
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": scale * wave}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("gate", ["none", "backtest"])
def test_interval_scale_widens_about_the_median(gate):
    frame = wavy(3)
    values = [g["y"].to_numpy() for _, g in frame.groupby("unique_id")]
    _, narrow = tiny_forecaster(gate=gate).forecast_arrays(values, 5, season_lengths=12)
    _, wide = tiny_forecaster(gate=gate, interval_scale=3.0).forecast_arrays(
        values, 5, season_lengths=12
    )
    np.testing.assert_allclose(wide[..., 1], narrow[..., 1], rtol=1e-6)
    np.testing.assert_allclose(
        wide - wide[..., 1:2], 3.0 * (narrow - narrow[..., 1:2]), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValidationError, match="interval_scale"):
        tiny_forecaster(interval_scale=0.0)


def test_calibrate_intervals_makes_holdout_coverage_reach_the_level():
    frame = wavy()
    forecaster = tiny_forecaster(gate="none", interval_scale=5.0)
    scale = forecaster.calibrate_intervals(frame, 6, level=0.8)
    assert forecaster.interval_scale == scale
    # the scores do not depend on the scale in use, and the fitted one is the smallest that
    # covers 80% of the held-out points with the forecaster's own interval columns
    scores = forecaster.holdout_interval_scores(frame, 6)
    np.testing.assert_allclose(
        scores, tiny_forecaster(gate="none").holdout_interval_scores(frame, 6)
    )
    # (scores recomputed at the new scale agree with the fitted ones to rounding; the fitted
    # factor sits 1e-9 above its deciding score, so the strict side needs a wider margin)
    assert np.mean(scores <= scale * (1 + 1e-9)) >= 0.8 > np.mean(scores < scale * (1 - 1e-6))
    last = frame.groupby("unique_id").cumcount(ascending=False) < 6
    out = forecaster.predict(frame[~last], 6)
    merged = frame[last].merge(out, on=["unique_id", "ds"])
    inside = (merged["y"] >= merged["Mamba4Cast-lo-80"]) & (
        merged["y"] <= merged["Mamba4Cast-hi-80"]
    )
    assert inside.mean() >= 0.8
    with pytest.raises(ValidationError, match="90% interval"):
        forecaster.calibrate_intervals(frame, 6, level=0.9)
    with pytest.raises(ValidationError, match="smaller h"):
        forecaster.calibrate_intervals(frame.groupby("unique_id").head(5), 6)


def test_checkpoint_calibration_is_stored_and_loaded(tmp_path):
    model = tiny_model()
    stem = save_model(tmp_path / "tiny", model)
    assert Mamba4CastForecaster.from_pretrained(stem).interval_scale == 1.0
    update_checkpoint_meta(stem, calibration={"interval_scale": 1.7, "level": 0.8})
    assert read_checkpoint_meta(stem)["calibration"]["level"] == 0.8
    assert Mamba4CastForecaster.from_pretrained(stem).interval_scale == 1.7
    assert Mamba4CastForecaster.from_pretrained(stem, interval_scale=1.0).interval_scale == 1.0
    with pytest.raises(CheckpointError, match="sha256"):
        update_checkpoint_meta(stem, sha256="0" * 64)
    assert torch.equal(  # the weights still load (checksum untouched)
        next(iter(Mamba4CastForecaster.from_pretrained(stem).model.parameters())),
        next(iter(model.parameters())),
    )


def test_holdout_scores_align_each_series_and_skip_what_cannot_be_scored():
    frame = wavy()
    forecaster = tiny_forecaster(gate="none", batch_size=1)  # no padding: exact comparisons
    scores = forecaster.holdout_interval_scores(frame, 6)
    # each series scored alone, and by hand from its own forecast of its last 6 points
    alone = [
        forecaster.holdout_interval_scores(group, 6)
        for _, group in frame.groupby("unique_id", sort=False)
    ]
    np.testing.assert_allclose(scores, np.concatenate(alone))
    group = frame[frame["unique_id"] == "s5"]  # level 5·10⁵
    quantiles = forecaster.forecast_frame(group.iloc[:-6], 6)[3][0]  # [h, Q]
    actual = group["y"].iloc[-6:]
    expected = interval_scores(quantiles[:, 1], quantiles[:, 0], quantiles[:, 2], actual)
    np.testing.assert_allclose(alone[5], expected)
    # constant, too short and categorical-id series: left out, not misaligned
    extra = pd.DataFrame(
        {
            "unique_id": ["flat"] * 20 + ["tiny"] * 5,
            "ds": list(pd.date_range("2000-01-01", periods=20, freq="MS"))
            + list(pd.date_range("2000-01-01", periods=5, freq="MS")),
            "y": [3.0] * 20 + [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    mixed = pd.concat([frame, extra], ignore_index=True)
    mixed["unique_id"] = mixed["unique_id"].astype("category")
    np.testing.assert_allclose(forecaster.holdout_interval_scores(mixed, 6), scores)


def test_calibration_never_collapses_intervals_on_mostly_exact_points():
    # 9 of 10 points on the median: coverage 90% at any factor; the smallest positive score
    scores = np.array([0.0] * 9 + [2.5])
    assert fit_interval_scale([scores], 0.8) == pytest.approx(2.5, rel=1e-8)
    with pytest.raises(ValidationError, match="positive"):
        tiny_forecaster(interval_scale=float("nan"))


def test_season_interval_scales_replace_the_overall_factor_for_their_seasons(tmp_path):
    values = [g["y"].to_numpy() for _, g in wavy(3).groupby("unique_id")]
    seasons = np.array([12, 4, 1])
    _, plain = tiny_forecaster(gate="none").forecast_arrays(values, 5, season_lengths=seasons)
    forecaster = tiny_forecaster(
        gate="none", interval_scale=2.0, season_interval_scales={"12": 3.0}
    )
    _, wide = forecaster.forecast_arrays(values, 5, season_lengths=seasons)
    half_widths = [w - w[..., 1:2] for w in (plain, wide)]
    np.testing.assert_allclose(half_widths[1][0], 3.0 * half_widths[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(half_widths[1][1:], 2.0 * half_widths[0][1:], rtol=1e-5, atol=1e-6)
    # no season length given: unknown, so the overall factor (not the yearly one for m = 1)
    yearly = tiny_forecaster(gate="none", interval_scale=2.0, season_interval_scales={1: 3.0})
    _, unknown = yearly.forecast_arrays(values, 5)
    _, one = yearly.forecast_arrays(values, 5, season_lengths=1)
    _, plain_one = tiny_forecaster(gate="none").forecast_arrays(values, 5, season_lengths=1)
    plain_unknown = tiny_forecaster(gate="none").forecast_arrays(values, 5)[1]
    np.testing.assert_allclose(
        unknown - unknown[..., 1:2], 2.0 * (plain_unknown - plain_unknown[..., 1:2]), atol=1e-6
    )
    np.testing.assert_allclose(
        one - one[..., 1:2], 3.0 * (plain_one - plain_one[..., 1:2]), rtol=1e-5, atol=1e-6
    )
    # holdout scores stay in the model's own units whatever the factors
    frame = wavy()
    np.testing.assert_allclose(
        forecaster.holdout_interval_scores(frame, 6, season_length=12),
        tiny_forecaster(gate="none").holdout_interval_scores(frame, 6, season_length=12),
    )
    # a checkpoint's per-season factors are loaded with it; calibrating replaces them all
    model = forecaster.model
    stem = save_model(tmp_path / "m", model)
    update_checkpoint_meta(
        stem, calibration={"interval_scale": 1.5, "season_interval_scales": {"4": 2.5}}
    )
    loaded = Mamba4CastForecaster.from_pretrained(stem)
    assert loaded.series_interval_scales(np.array([4, 12]), 2).tolist() == [2.5, 1.5]
    assert loaded.series_interval_scales(None, 2).tolist() == [1.5, 1.5]  # season unknown
    loaded.calibrate_intervals(frame, 6, season_length=4)
    assert loaded.series_interval_scales(np.array([4]), 1) == loaded.interval_scale
