import numpy as np
import pandas as pd
import pytest
import torch

from autofm.core.errors import ValidationError
from autofm.forecast.features import (
    N_TIME_FEATURES,
    POSITION_SCALE,
    calendar_fields,
    fit_scaler,
    time_features,
)

NAN = float("nan")


def test_minmax_scaler_known_answer_ignores_nan():
    y = torch.tensor([[NAN, 2.0, 6.0, 4.0], [1.0, 1.0, 1.0, NAN], [NAN, NAN, NAN, NAN]])
    loc, scale = fit_scaler(y, "minmax")
    assert loc.flatten().tolist() == [2.0, 1.0, 0.0]
    # constant series: scale |loc|; all-missing series: identity
    assert scale.flatten().tolist() == [4.0, 1.0, 1.0]


def test_robust_scaler_is_median_and_iqr():
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    loc, scale = fit_scaler(torch.tensor(values).unsqueeze(0), "robust")
    assert loc.item() == pytest.approx(np.median(values))
    assert scale.item() == pytest.approx(np.subtract(*np.percentile(values, [75, 25])))


def test_scaler_makes_affine_maps_invariant():
    y = torch.randn(3, 20, dtype=torch.float64)
    for method in ("minmax", "robust"):
        loc, scale = fit_scaler(y, method)
        loc2, scale2 = fit_scaler(5.0 + 3.0 * y, method)
        assert torch.allclose((y - loc) / scale, (5.0 + 3.0 * y - loc2) / scale2)


def test_unknown_scaler():
    with pytest.raises(ValidationError, match="scaler"):
        fit_scaler(torch.zeros(1, 3), "zscore")


def test_calendar_features_known_values():
    dates = pd.date_range("2020-01-01", periods=14, freq="MS")
    features = time_features(dates, 14, 12)
    assert features.shape == (14, N_TIME_FEATURES)
    # month-in-year: January is phase 0 (sin 0, cos 1), July is phase 1/2 (cos -1)
    assert features[0, 8] == pytest.approx(0.0, abs=1e-6)
    assert features[0, 9] == pytest.approx(1.0)
    assert features[6, 9] == pytest.approx(-1.0, abs=1e-2)
    # months repeat after 12 steps; years before the last context year; position 0 at the end
    calendar_but_weekday = [0, 1, 2, 3, 6, 7, 8, 9]
    np.testing.assert_allclose(
        features[12, calendar_but_weekday], features[0, calendar_but_weekday], atol=1e-6
    )
    assert features[0, -2] == pytest.approx(0.0) and features[12, -2] == pytest.approx(0.1)
    assert features[11, -1] == 0.0 and features[13, -1] == pytest.approx(2 / POSITION_SCALE)


def test_hourly_features_cycle_daily():
    dates = pd.date_range("2021-03-01", periods=48, freq="h")
    features = time_features(dates, 48, 40)
    np.testing.assert_allclose(features[24, 2:4], features[0, 2:4], atol=1e-6)
    assert features[6, 2] == pytest.approx(1.0)  # 06:00 is a quarter of the day


def test_position_only_features():
    features = time_features(None, 10, 7)
    assert np.all(features[:, :-1] == 0)
    np.testing.assert_allclose(features[:, -1], (np.arange(10) - 6) / POSITION_SCALE)


@pytest.mark.parametrize(
    "dates",
    [
        pd.date_range("1899-12-25 13:45", periods=400, freq="37h"),  # before 1970, odd steps
        pd.date_range("2023-12-31 22:59:30", periods=300, freq="17min"),
        pd.date_range("2024-02-01", periods=120, freq="MS"),  # leap years
        pd.date_range("2021-03-27", periods=100, freq="h", tz="Europe/Berlin"),  # DST
        pd.date_range("1950-01-01 00:00:07", periods=200, freq="W", unit="s"),  # as inference
    ],
)
def test_calendar_fields_match_pandas(dates):
    fields = calendar_fields(dates)
    expected = {
        "year": dates.year,
        "month": dates.month,
        "day": dates.day,
        "days_in_month": dates.days_in_month,
        "weekday": dates.day_of_week,
        "hour": dates.hour,
        "minute": dates.minute,
    }
    for name, values in expected.items():
        np.testing.assert_array_equal(fields[name], np.asarray(values), err_msg=name)


def test_calendar_fields_refuse_missing_timestamps():
    with pytest.raises(ValidationError, match="NaT"):
        calendar_fields(pd.DatetimeIndex(["2020-01-01", None]))
