import json

import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.data.timeseries import (
    infer_freq,
    load_timeseries_folder,
    regular_dates,
    season_length,
    series_arrays,
    train_test_split,
    validate_long,
)


def _write_folder(folder, freq="MS", n_series=3, length=30, h=6):
    folder.mkdir()
    rng = np.random.default_rng(0)
    train, test = [], []
    for i in range(n_series):
        ds = pd.date_range("2000-01-01", periods=length + h, freq=freq)
        y = np.sin(np.arange(length + h) * 2 * np.pi / 12) + rng.normal(0, 0.1, length + h) + i
        frame = pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y})
        train.append(frame.iloc[:length])
        test.append(frame.iloc[length:])
    pd.concat(train).to_csv(folder / "train.csv", index=False)
    pd.concat(test).to_csv(folder / "test.csv", index=False)
    meta = {"freq": freq, "season_length": 12, "horizon": h, "n_series": n_series, "source": "test"}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def test_loader_reads_shared_layout(tmp_path):
    meta = _write_folder(tmp_path / "monthly")
    train, test, loaded = load_timeseries_folder(tmp_path / "monthly")
    assert loaded == meta
    assert len(train) == 90 and len(test) == 18
    assert pd.api.types.is_datetime64_any_dtype(train["ds"])
    assert infer_freq(train) == "MS"
    assert train.groupby("unique_id")["ds"].max().lt(test.groupby("unique_id")["ds"].min()).all()


def test_loader_names_missing_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="train.csv"):
        load_timeseries_folder(tmp_path / "empty")


def test_validate_long_sorts_and_rejects_bad_frames():
    frame = pd.DataFrame({"unique_id": ["b", "a", "a"], "ds": [0, 1, 0], "y": [1.0, 2.0, 3.0]})
    out = validate_long(frame)
    assert out["unique_id"].tolist() == ["a", "a", "b"] and out["ds"].tolist() == [0, 1, 0]
    with pytest.raises(ValidationError, match="duplicated"):
        validate_long(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(ValidationError, match="NaN"):
        validate_long(frame.assign(y=[1.0, np.nan, 2.0]))
    with pytest.raises(ValidationError, match="column"):
        validate_long(frame.rename(columns={"y": "value"}))


def test_train_test_split_holds_out_last_h():
    frame = pd.DataFrame(
        {"unique_id": ["a"] * 5 + ["b"] * 4, "ds": list(range(5)) + list(range(4)), "y": range(9)}
    )
    train, test = train_test_split(frame, 2)
    arrays = series_arrays(test)
    assert arrays["a"].tolist() == [3.0, 4.0] and arrays["b"].tolist() == [7.0, 8.0]
    assert len(train) == 5
    with pytest.raises(ValidationError, match="≤ h"):
        train_test_split(frame, 4)


@pytest.mark.parametrize(
    ("freq", "expected"), [("MS", 12), ("QS-OCT", 4), ("h", 24), ("YS-JAN", 1), (None, 1), ("D", 7)]
)
def test_season_length(freq, expected):
    assert season_length(freq) == expected


@pytest.mark.parametrize(
    "freq", ["MS", "2MS", "QS", "QS-OCT", "YS", "3YS", "h", "3h", "30min", "D", "7D"]
)
@pytest.mark.parametrize(
    "start",
    ["1990-01-01", "1990-04-01", "1989-10-01", "1990-01-07 06:00", "1990-01-15", "1750-03-01"],
)
@pytest.mark.parametrize("unit", ["ns", "s"])
def test_regular_dates_equal_pandas_date_range(freq, start, unit):
    # the vectorised frequencies, from starts on and off the offset (pandas rolls those forward)
    if unit == "ns" and start.startswith("1750"):
        pytest.skip("before the nanosecond range")
    expected = pd.date_range(start, periods=40, freq=freq, unit=unit)
    for first in {expected[0], pd.Timestamp(start)}:
        got = regular_dates(first, 40, freq, unit)
        assert got.dtype == expected.dtype and (got == expected).all()


def test_regular_dates_fall_back_or_raise_like_pandas():
    zoned = pd.date_range("2020-03-01", periods=20, freq="D", tz="US/Eastern")  # crosses DST
    assert regular_dates(zoned[0], 20, "D").equals(zoned)
    month_ends = pd.date_range("2020-01-31", periods=5, freq="ME")
    assert regular_dates("2020-01-31", 5, "ME").equals(month_ends)
    with pytest.raises(ValueError):  # 1.5 s steps do not fit a second resolution
        regular_dates("2020-01-01", 3, "1500ms", "s")
    with pytest.raises(ValueError):  # past the nanosecond range: no silent wrap-around
        regular_dates("2261-01-01", 3, "3YS")


def test_validate_long_turns_categorical_ids_into_plain_values():
    frame = pd.DataFrame({"unique_id": ["b", "a", "b"], "ds": [2, 1, 1], "y": [1.0, 2.0, 3.0]})
    frame["unique_id"] = pd.Categorical(frame["unique_id"], categories=["a", "b", "unused"])
    checked = validate_long(frame)
    assert not isinstance(checked["unique_id"].dtype, pd.CategoricalDtype)
    assert checked["unique_id"].tolist() == ["a", "b", "b"] and checked["ds"].tolist() == [1, 1, 2]
    assert checked.groupby("unique_id").ngroups == 2  # the unused category is gone
