import json

import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import DataNotFoundError
from autofm.forecast.evaluate import evaluate_folder, geometric_mean, mase, mase_scale, smape


def test_mase_known_answers():
    context = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mase_scale(context, 1) == 1.0
    assert mase(np.array([6.0, 7.0]), np.array([8.0, 9.0]), context, 1) == 2.0
    seasonal = np.array([1.0, 3.0, 1.0, 5.0, 1.0, 3.0])  # m=2 differences: 0, 2, 0, 2
    assert mase_scale(seasonal, 2) == 1.0
    # no seasonal variation: falls back to lag 1; a constant context has no scale
    assert mase_scale(np.array([1.0, 2.0, 1.0, 2.0]), 2) == 1.0
    assert np.isnan(mase_scale(np.ones(5), 2))


def test_smape_known_answers():
    assert smape(np.array([100.0]), np.array([100.0])) == 0.0
    assert smape(np.array([100.0, 0.0]), np.array([50.0, 0.0])) == pytest.approx(100 / 3)
    assert smape(np.array([1.0]), np.array([-1.0])) == 200.0


def test_geometric_mean():
    assert geometric_mean([1.0, 4.0]) == pytest.approx(2.0)


def write_folder(path, n_series=4, length=30, h=6, season=6):
    rows = []
    for i in range(n_series):
        y = 10.0 * (i + 1) + np.tile(np.arange(season, dtype=float), 20)[: length + h]
        ds = pd.date_range("2001-01-01", periods=length + h, freq="MS")
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    frame = pd.concat(rows)
    position = frame.groupby("unique_id").cumcount()
    path.mkdir()
    frame[position < length].to_csv(path / "train.csv", index=False)
    frame[position >= length].to_csv(path / "test.csv", index=False)
    meta = {"freq": "MS", "season_length": season, "horizon": h, "n_series": n_series}
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def seasonal_naive(season):
    def forecast(context, h, freq):
        rows = []
        for uid, group in context.groupby("unique_id"):
            last = group["y"].to_numpy()[-season:]
            ds = pd.date_range(group["ds"].iloc[-1], periods=h + 1, freq=freq)[1:]
            rows.append(pd.DataFrame({"unique_id": uid, "ds": ds, "SN": np.resize(last, h)}))
        return pd.concat(rows)

    return forecast


def test_evaluate_folder_scores_a_perfect_forecast_zero(tmp_path):
    folder = write_folder(tmp_path / "data")
    result = evaluate_folder(folder, seasonal_naive(6), "SN")
    assert result["mase"] == 0.0 and result["smape"] == 0.0
    assert result["n_series"] == 4 and result["h"] == 6


def test_evaluate_folder_context_window_and_subset(tmp_path):
    folder = write_folder(tmp_path / "data")
    seen = {}

    def forecast(context, h, freq):
        seen["lengths"] = context.groupby("unique_id").size().tolist()
        return seasonal_naive(6)(context, h, freq)

    result = evaluate_folder(folder, forecast, "SN", context_length=12, max_series=2)
    assert seen["lengths"] == [12, 12] and result["n_series"] == 2


def test_missing_folder(tmp_path):
    with pytest.raises(DataNotFoundError):
        evaluate_folder(tmp_path, seasonal_naive(1), "SN")
