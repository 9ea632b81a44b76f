import json

import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.data.timeseries import (
    infer_freq,
    load_timeseries_folder,
    normalise_freq,
    read_long,
    regular_dates,
    season_length,
    series_arrays,
    series_calendar,
    series_freq,
    synthetic_dates,
    train_test_split,
    validate_long,
    window_dates,
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


@pytest.mark.parametrize(
    ("freq", "expected"),
    [("H", "h"), ("2T", "2min"), ("BH", "bh"), ("MS", "MS"), ("W-SUN", "W-SUN"), ("unknown", None)],
)
def test_normalise_freq_spells_aliases_as_pandas_3_does(freq, expected):
    assert normalise_freq(freq) == expected


def test_normalise_freq_names_an_unknown_alias():
    with pytest.raises(ValidationError, match="'fortnightly'"):
        normalise_freq("fortnightly")


def test_series_freq_is_none_for_irregular_or_short_series():
    hours = pd.date_range("2020-01-01", periods=10, freq="h")
    assert series_freq(hours) == "h"
    assert series_freq(hours[:2]) is None
    assert series_freq(hours.delete(4)) is None


@pytest.mark.parametrize("length", [30, 100])  # shorter and longer than the context window
def test_series_calendar_matches_pandas_and_checks_regularity(length):
    zoned = pd.date_range("2020-02-20", periods=length, freq="D", tz="US/Eastern")  # DST
    calendar = series_calendar("a", zoned, "D", 64, 3)
    last = pd.date_range(zoned[-1], periods=4, freq="D")[-1]
    assert (calendar == pd.date_range(end=last, periods=67, freq="D")).all()
    months = pd.date_range("1995-01-01", periods=length, freq="MS")
    calendar = series_calendar("b", months, "MS", 64, 3)
    window = pd.date_range(end=months[-1], periods=64, freq="MS")
    assert (calendar == window.append(pd.date_range(months[-1], periods=4, freq="MS")[1:])).all()
    with pytest.raises(ValidationError, match="'c' has timestamps that are not regular"):
        series_calendar("c", months.delete(length // 2), "MS", 64, 3)
    # a series ending on the same date as a regular one is still checked (the cache only
    # holds the shared index)
    cache = {}
    series_calendar("b", months, "MS", 64, 3, cache)
    with pytest.raises(ValidationError, match="regular"):
        series_calendar("c", months.delete(length // 2), "MS", 64, 3, cache)


def test_window_dates_and_synthetic_dates():
    dates = synthetic_dates(10, "D")
    assert dates[0] == pd.Timestamp("2000-01-03") and dates[0].day_name() == "Monday"
    assert dates.unit == "s" and (dates.to_series().diff().dropna() == pd.Timedelta("1D")).all()
    assert window_dates(dates, 4, 2).equals(dates[4:])
    with pytest.raises(ValidationError, match="need at least 11"):
        window_dates(dates, 9, 2)


@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_read_long_parses_dates_and_names_missing_columns(tmp_path):
    frame = pd.DataFrame({"unique_id": [1, 1], "ds": ["2020-01-01", "2020-02-01"], "y": [1.0, 2.0]})
    frame.to_csv(tmp_path / "dated.csv", index=False)
    frame.assign(ds=[3, 4]).to_parquet(tmp_path / "steps.parquet")
    dated = read_long(tmp_path / "dated.csv")
    assert dated["unique_id"].tolist() == ["1", "1"]
    assert dated["ds"].tolist() == list(pd.to_datetime(["2020-01-01", "2020-02-01"]))
    assert read_long(tmp_path / "steps.parquet")["ds"].tolist() == [3, 4]
    frame.rename(columns={"y": "value"}).to_csv(tmp_path / "wide.csv", index=False)
    with pytest.raises(ValidationError, match=r"\['y'\]"):
        read_long(tmp_path / "wide.csv")
    frame.assign(ds="soon").to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(ValidationError, match="neither numeric nor dates"):
        read_long(tmp_path / "text.csv")
    with pytest.raises(DataNotFoundError):
        read_long(tmp_path / "absent.csv")
