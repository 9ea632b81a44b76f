"""Mamba4CastForecaster: zero-shot forecasts from a pretrained Mamba4Cast, statsforecast style.

    forecaster = Mamba4CastForecaster.from_pretrained("mamba4cast-cpu")
    forecasts = forecaster.predict(df, h=12)   # unique_id, ds, Mamba4Cast, Mamba4Cast-lo-80, -hi-80

By default daily-and-slower series get the average of the model's and the optimised Theta
method's forecast, intraday series the model checked by a per-series backtest gate
(`combine=None`: the model alone, as in the paper).

Handling of awkward input (documented in docs/forecast.md):
  - rows are sorted by (unique_id, ds); duplicated (unique_id, ds) pairs, inf, non-numeric y,
    missing columns, h < 1 raise ValidationError;
  - datetime `ds` must be regular: the frequency is `freq` or inferred; irregular series raise;
    integer `ds` must have a constant step; with `freq` it is mapped to synthetic dates (calendar
    phase unknown), without it the model gets position-only features;
  - NaN values are masked (the model sees an "observed" flag), leading NaNs are dropped, an
    all-NaN series raises;
  - series are batched only with series of the same length (never padded), so a forecast does
    not depend on which other series are forecast with it; a constant series (including a
    single point) is forecast as that constant with a zero-width interval;
  - only the last `context_length` (default 512, the paper's) points are used.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pandas as pd
import torch
from pandas.tseries.frequencies import to_offset

from autofm.core.checkpoint import load_model
from autofm.core.errors import ValidationError
from autofm.core.progress import progress
from autofm.core.runtime import resolve_device
from autofm.data.timeseries import infer_freq, regular_dates, train_test_split, validate_long
from autofm.data.timeseries import season_length as freq_season_length
from autofm.forecast.calibration import fit_interval_scale, interval_scores, widen_intervals
from autofm.forecast.features import time_features
from autofm.forecast.model import Mamba4Cast, build_mamba4cast, seasonal_anchor
from autofm.forecast.theta import theta_forecast

DEFAULT_MODEL = "mamba4cast-cpu"
GATES = ("backtest", "none")
COMBINERS = ("theta", None)
INTRADAY_CYCLES = (24, 60)  # a season length divisible by one of these marks intraday data
DEFAULT_GATE_MARGINS = {"theta": 0.0, None: 0.5}  # by `combine` (class docstring)
BLEND_WEIGHTS = (1.0, 0.5, 0.0)  # model weights the backtest gate chooses from
CPU_BATCH_TOKENS = 4096  # positions (series × (context + h)) per forward pass on CPU


def normalise_freq(freq: str | None) -> str | None:
    """A pandas offset alias in its current spelling ('H' → 'h'), or None."""
    if freq in (None, "", "unknown"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.tseries.frequencies.to_offset(_modern_alias(freq)).freqstr
    except ValueError as err:
        raise ValidationError(f"unknown frequency {freq!r}: {err}") from err


# aliases pandas 2 deprecated and pandas 3 rejects, as found in older data (M4's meta says "H")
_LEGACY_ALIASES = {"H": "h", "T": "min", "S": "s", "L": "ms", "U": "us", "N": "ns", "BH": "bh"}


def _modern_alias(freq: str) -> str:
    match = re.fullmatch(r"(\d*)([A-Za-z]+)(-.*)?", freq)
    if match is None:
        return freq
    count, base, anchor = match.groups()
    return f"{count}{_LEGACY_ALIASES.get(base, base)}{anchor or ''}"


def _interval_level(lower: float, upper: float) -> int:
    return round(100 * (upper - lower))


class Mamba4CastForecaster:
    """Zero-shot forecaster; `predict(df, h)` needs no fitting.

    Parameters: `model` (a Mamba4Cast), `context_length` (points of history used),
    `batch_size` (series per forward pass; None: about CPU_BATCH_TOKENS positions per batch on
    CPU, 256 series on a GPU; a batch only holds series of one length), `alias`
    (forecast column name), `device`, and
    `gate`: "backtest" (default) checks each series on its own last h points first — the model
    forecasts them from the rest of the context, and the model, its anchor (seasonal naive, or
    naive for a "last"-anchor model) or their average, whichever was closest there, makes the
    forecast (the model's intervals shifted onto it); "none" always uses the model.
    `gate_margin` is the benefit of the doubt the model gets: a candidate with model weight w
    counts its backtest error times 1 + gate_margin·(1 − w), so with 0.5 the anchor must beat the
    model by a third to replace it (0: the plain argmin). Default (None): 0 with the Theta
    combination, where only intraday series are gated (on hourly validation windows margins
    0/0.25/0.5/1 scored 1.263/1.289/1.307/1.313), and 0.5 without it (chosen on all sets).
    `backtest_windows` (default 1) sums the errors over that many consecutive windows of h
    points. Each window costs a forward pass and needs h + 2 observed points; series too short
    for any window keep the model forecast.
    `combine`: "theta" (default) averages the model's forecast with the optimised Theta
    method's (`autofm.forecast.theta`) for daily and slower series, the intervals shifted with
    the point; those series skip the gate (the combination is their hedge: gating them as well
    lost on validation windows, and costs a second forward pass). Intraday series — a season
    length divisible by 24 or 60 (`is_intraday`: hourly 24 or 168, half-hourly 48, minutely 60
    or 1440) — have several seasonalities Theta cannot hold (the combination lost on hourly
    validation windows): they keep the model and the gate.
    None: the model (and the gate) for every series, the paper's method.
    `interval_scale` widens the intervals about the median quantile by that factor (1: as the
    model gives them; `from_pretrained` takes the checkpoint's calibrated factor, see
    `autofm.forecast.calibration`); `season_interval_scales` ({season length: factor}) replaces
    it for series of those season lengths (`from_pretrained`: the checkpoint's per-season
    factors, fitted on yearly, quarterly, monthly and hourly development data).
    """

    def __init__(
        self,
        model: Mamba4Cast,
        *,
        context_length: int = 512,
        batch_size: int | None = None,
        alias: str = "Mamba4Cast",
        device: str = "cpu",
        gate: str = "backtest",
        backtest_windows: int = 1,
        interval_scale: float = 1.0,
        gate_margin: float | None = None,
        season_interval_scales: dict[int, float] | None = None,
        combine: str | None = "theta",
    ):
        if gate not in GATES:
            raise ValidationError(f"unknown gate {gate!r}; choose one of {', '.join(GATES)}")
        combine = None if combine == "none" else combine
        if combine not in COMBINERS:
            raise ValidationError(f"unknown combine {combine!r}; choose 'theta' or None ('none')")
        self.combine = combine
        self.interval_scale = _check_interval_scale(interval_scale)
        self.season_interval_scales = {
            int(m): _check_interval_scale(v) for m, v in (season_interval_scales or {}).items()
        }
        self.model = model
        self.gate = gate
        if gate_margin is None:
            gate_margin = DEFAULT_GATE_MARGINS[combine]
        if not np.isfinite(gate_margin) or gate_margin < 0:
            raise ValidationError(f"gate_margin must be ≥ 0, got {gate_margin!r}")
        self.gate_margin = float(gate_margin)
        self.backtest_windows = backtest_windows
        self.context_length = context_length
        self.batch_size = batch_size
        self.alias = alias
        self.device = device

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike = DEFAULT_MODEL, **kwargs
    ) -> Mamba4CastForecaster:
        """Load a shipped checkpoint by name, or one at a path stem (`.json` + `.safetensors`).

        Unless `context_length` is given, it is the longest context the checkpoint was trained
        on (recorded in its provenance), capped at 512: longer windows were never seen. Unless
        `interval_scale` is given, it is the checkpoint's calibrated factor (1 if it has none).
        """
        model, meta = load_model(
            name_or_path, kind=Mamba4Cast.checkpoint_kind, build=build_mamba4cast
        )
        if kwargs.get("context_length") is None:
            kwargs["context_length"] = trained_context_length(meta)
        calibration = meta.get("calibration", {})
        if kwargs.get("interval_scale") is None:
            kwargs["interval_scale"] = calibration.get("interval_scale", 1.0)
            if kwargs.get("season_interval_scales") is None:
                kwargs["season_interval_scales"] = calibration.get("season_interval_scales")
        forecaster = cls(model, **kwargs)
        forecaster.checkpoint_meta_ = meta
        return forecaster

    @property
    def quantile_levels(self) -> tuple[float, ...]:
        return self.model.config.quantiles

    def _median_index(self) -> int:
        """Index of the 0.5 quantile (the middle one if the head has none)."""
        levels = self.quantile_levels
        return levels.index(0.5) if 0.5 in levels else len(levels) // 2

    def _interval_indices(self, level: float) -> tuple[int, int]:
        """Quantile indices of the lower and upper end of the `level` interval."""
        for column, q in self._interval_columns():
            if column == f"{self.alias}-lo-{round(100 * level)}":
                return q, len(self.quantile_levels) - 1 - q
        raise ValidationError(
            f"the model has no {level:.0%} interval; its quantiles are {self.quantile_levels}"
        )

    def _interval_columns(self) -> list[tuple[str, int]]:
        """(column, quantile index) for each symmetric pair of quantiles (e.g. 0.1/0.9 → 80)."""
        levels = self.quantile_levels
        columns = []
        for i in range(len(levels) // 2):
            lower, upper = levels[i], levels[-1 - i]
            level = _interval_level(lower, upper)
            columns += [
                (f"{self.alias}-lo-{level}", i),
                (f"{self.alias}-hi-{level}", len(levels) - 1 - i),
            ]
        return columns

    # ---- arrays ------------------------------------------------------------------------------

    def forecast_arrays(
        self,
        values: list[np.ndarray] | np.ndarray,
        h: int,
        dates: list[pd.DatetimeIndex | None] | None = None,
        season_lengths: int | list[int] | np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Point forecasts [B, h] and quantiles [B, h, Q] for B series given as 1-D arrays.

        `dates[i]` (optional) ends with series i's last context dates followed by its h future
        dates; it needs at least min(len(series), context_length) + h entries. None gives
        position-only features. `season_lengths` (one for all or one per series; default 1)
        is what a seasonal-anchor model repeats, as seasonal naive would.
        """
        h = _check_horizon(h)
        series = [np.asarray(v, dtype=float).ravel() for v in _as_list(values)]
        if dates is not None and len(dates) != len(series):
            raise ValidationError(f"got {len(dates)} date indexes for {len(series)} series")
        seasons = _season_lengths(season_lengths, len(series))
        contexts = []
        for index, y in enumerate(series):
            if np.isinf(y).any():
                raise ValidationError(f"series {index} has infinite values")
            observed = np.flatnonzero(~np.isnan(y))
            if len(observed) == 0:
                raise ValidationError(f"series {index} has no observed (non-NaN) value")
            y = y[observed[0] :][-self.context_length :]
            if np.isnan(y).all():
                raise ValidationError(
                    f"series {index} has no observed value in its last {self.context_length} "
                    "points (the context window); drop its trailing NaNs or shorten it"
                )
            contexts.append(y)
        point, quantiles = self._forecast_contexts(contexts, h, dates, seasons)
        scales = self.series_interval_scales(season_lengths, len(contexts))[:, None, None]
        quantiles = widen_intervals(quantiles, self._median_index(), scales)
        combined = (
            ~is_intraday(seasons) if self.combine == "theta" else np.zeros(len(seasons), bool)
        )
        if self.gate == "backtest" and not combined.all():
            gated = np.flatnonzero(~combined)
            point, quantiles = self._backtest_gate(
                contexts, h, dates, seasons, point, quantiles, gated
            )
        if combined.any():
            point, quantiles = combine_with_theta(
                contexts, h, seasons, point, quantiles, np.flatnonzero(combined)
            )
        for i, y in enumerate(contexts):  # a constant series is forecast as that constant
            observed = y[~np.isnan(y)]
            if np.ptp(observed) == 0:
                point[i] = observed[0]
                quantiles[i] = observed[0]
        return point, quantiles

    def _forecast_contexts(
        self, contexts: list[np.ndarray], h: int, dates, seasons: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model's point forecasts [B, h] and quantiles [B, h, Q] for prepared contexts."""
        point = np.empty((len(contexts), h))
        quantiles = np.empty((len(contexts), h, len(self.quantile_levels)))
        model = self.model.to(resolve_device(self.device)).eval()
        device = next(model.parameters()).device
        size = self.batch_size or (None if device.type == "cpu" else 256)
        batches = equal_length_batches(
            [len(y) for y in contexts], size, tokens=CPU_BATCH_TOKENS, extra=h
        )
        # series sharing a date index (the same end) share features; batches come grouped by
        # length, so the cache holds one length at a time, and keeps each index (ids stay unique)
        feature_cache, n_context = {}, 0  # id(date index) -> (index, features)

        def features_of(series_dates) -> np.ndarray:
            if id(series_dates) not in feature_cache:
                window = None if series_dates is None else _window_dates(series_dates, n_context, h)
                features = time_features(window, n_context + h, n_context)
                feature_cache[id(series_dates)] = series_dates, features
            return feature_cache[id(series_dates)][1]

        for batch in progress(batches, desc="forecast", disable=len(batches) < 3 or None):
            y_context = np.stack([contexts[i] for i in batch])
            if y_context.shape[1] != n_context:
                feature_cache.clear()
                n_context = y_context.shape[1]
            features = [features_of(None if dates is None else dates[i]) for i in batch]
            x = torch.from_numpy(np.stack(features)).to(device)
            with torch.inference_mode():
                batch_point, batch_quantiles = model.predict(
                    x[:, :n_context],
                    torch.from_numpy(y_context).float().to(device),
                    x[:, n_context:],
                    torch.from_numpy(seasons[batch]).to(device),
                )
            point[batch] = batch_point.double().cpu().numpy()
            quantiles[batch] = batch_quantiles.double().cpu().numpy()
        return point, quantiles

    def _backtest_gate(self, contexts, h, dates, seasons, point, quantiles, rows):
        """For each series in `rows`, use the model, its anchor or their average, whichever had
        the smallest absolute error over the last `backtest_windows` windows of h observed
        context points, the anchor's and the average's counted with the `gate_margin` (class
        docstring)."""
        anchor_seasons = seasons if self.model.config.anchor != "last" else np.ones_like(seasons)
        weights = np.asarray(BLEND_WEIGHTS)  # weight of the model; the rest on the anchor
        errors = np.zeros((len(contexts), len(weights)))
        for window in range(1, max(1, int(self.backtest_windows)) + 1):
            cut = window * h
            eligible = [
                i
                for i in rows
                if np.isfinite(contexts[i][:-cut]).sum() >= 2
                and np.isfinite(contexts[i][-cut:][:h]).any()
            ]
            if not eligible:
                break
            held_out = [contexts[i][:-cut] for i in eligible]
            held_dates = None
            if dates is not None:
                held_dates = [None if dates[i] is None else dates[i][:-cut] for i in eligible]
            backtest, _ = self._forecast_contexts(held_out, h, held_dates, seasons[eligible])
            for row, i in enumerate(eligible):
                actual = contexts[i][-cut:][:h]
                baseline = _anchor_forecast(held_out[row], h, int(anchor_seasons[i]))
                candidates = weights[:, None] * backtest[row] + (1 - weights[:, None]) * baseline
                errors[i] += np.nansum(np.abs(candidates - actual), axis=1)
        errors *= 1.0 + self.gate_margin * (1.0 - weights)  # the model's benefit of the doubt
        point, quantiles = point.copy(), quantiles.copy()
        for i in rows:
            weight = weights[int(np.argmin(errors[i]))]  # ties (and no backtest) keep the model
            if weight < 1.0:
                anchor = _anchor_forecast(contexts[i], h, int(anchor_seasons[i]))
                blended = weight * point[i] + (1 - weight) * anchor
                quantiles[i] += (blended - point[i])[:, None]
                point[i] = blended
        return point, quantiles

    # ---- long frames -------------------------------------------------------------------------

    def _series_dates(
        self, uid, index: pd.DatetimeIndex, freq: str, h: int, cache: dict
    ) -> pd.DatetimeIndex:
        """The context_length dates ending at the series' last timestamp and the h after it
        (second resolution); raises if the series' own timestamps are not regular at freq.
        Series that end on the same timestamp share one (cached) index."""
        n = self.context_length
        try:
            if (index[-1], freq) not in cache:
                cache[index[-1], freq] = self._calendar_ending(index[-1], freq, h)
            dates = cache[index[-1], freq]
            if index.tz is not None:  # days cross DST changes: pandas steps in wall time
                expected = pd.date_range(index[0], periods=len(index), freq=freq)
            elif len(index) <= n:
                expected = dates[n - len(index) : n]
            else:
                expected = regular_dates(index[0], len(index), freq, "s")
        except ValueError as err:  # e.g. a sub-second step at second resolution
            raise ValidationError(
                f"series {uid!r}: cannot build dates at freq {freq!r} ({err})"
            ) from err
        if len(expected) != len(index) or not (index == expected).all():
            raise ValidationError(
                f"series {uid!r} has timestamps that are not regular at freq "
                f"{freq!r}; fill gaps with NaN rows or pass the right freq"
            )
        return dates

    def _calendar_ending(self, end: pd.Timestamp, freq: str, h: int) -> pd.DatetimeIndex:
        """The context_length dates ending at `end` and the h after it (second resolution)."""
        n = self.context_length
        if end.tz is not None:  # days cross DST changes: pandas steps in wall time
            window = pd.date_range(end=end, periods=n, freq=freq, unit="s")
            return window.append(pd.date_range(end, periods=h + 1, freq=freq, unit="s")[1:])
        return regular_dates(end.as_unit("s") - (n - 1) * to_offset(freq), n + h, freq, "s")

    def predict(
        self,
        df: pd.DataFrame | np.ndarray | list,
        h: int,
        freq: str | None = None,
        season_length: int | None = None,
    ) -> pd.DataFrame | np.ndarray:
        """Forecast h steps after each series.

        A long DataFrame (`unique_id, ds, y`) gives a DataFrame `unique_id, ds, <alias>` plus
        interval columns; an array [T] or [B, T] (or a list of 1-D arrays) gives point forecasts
        [h] or [B, h] (position-only features; use `forecast_arrays` for quantiles).
        `season_length` overrides the one derived from the frequency (as statsforecast's
        SeasonalNaive would use it: 12 for monthly, 24 for hourly…; 1 without a frequency).
        """
        if not isinstance(df, pd.DataFrame):
            single = not isinstance(df, list | tuple) and np.ndim(df) == 1
            point, _ = self.forecast_arrays(df, h, season_lengths=season_length)
            return point[0] if single else point
        ids, future_ds, point, quantiles, _ = self._forecast_frame(df, h, freq, season_length)
        out = pd.DataFrame(
            {
                "unique_id": np.repeat(ids, h),
                "ds": np.concatenate([np.asarray(f) for f in future_ds]),
                self.alias: point.ravel(),
            }
        )
        for column, q in self._interval_columns():
            out[column] = quantiles[:, :, q].ravel()
        return out

    def _forecast_frame(self, df: pd.DataFrame, h: int, freq, season_length):
        """(series ids, their h future ds, point [B, h], quantiles [B, h, Q], season lengths [B])
        for a long frame."""
        h = _check_horizon(h)
        frame = validate_long(df, allow_nan=True)
        is_datetime = pd.api.types.is_datetime64_any_dtype(frame["ds"])
        if not is_datetime and not pd.api.types.is_numeric_dtype(frame["ds"]):
            raise ValidationError(
                "column ds must hold datetimes or integer steps; convert it with pd.to_datetime"
            )
        freq = normalise_freq(freq)
        shared_freq = freq or (infer_freq(frame) if is_datetime else None)
        ids, values, all_dates, future_ds, seasons = [], [], [], [], []
        synthetic, date_cache = None, {}
        for uid, group in frame.groupby("unique_id", sort=False):
            ds = group["ds"]
            y = group["y"].to_numpy(float)
            if is_datetime:
                index = pd.DatetimeIndex(ds)
                this_freq = freq or series_freq(index) or shared_freq
                if this_freq is None:
                    raise ValidationError(
                        f"cannot infer a regular frequency for series {uid!r} (irregular "
                        "timestamps or too few points); pass freq=, e.g. freq='MS'"
                    )
                dates = self._series_dates(uid, index, this_freq, h, date_cache)
                future = dates[self.context_length :].as_unit(index.unit)
                this_season = freq_season_length(this_freq)
            else:
                steps = ds.to_numpy()
                step = steps[1] - steps[0] if len(steps) > 1 else 1
                if len(steps) > 1 and (step <= 0 or np.any(np.diff(steps) != step)):
                    raise ValidationError(
                        f"series {uid!r} has integer ds that are not evenly spaced"
                    )
                future = steps[-1] + step * np.arange(1, h + 1)
                dates = None
                this_season = freq_season_length(freq)
                if freq is not None:  # synthetic calendar (phase unknown), the same for all
                    if synthetic is None:
                        synthetic = pd.date_range(
                            "2000-01-03", periods=self.context_length + h, freq=freq, unit="s"
                        )
                    dates = synthetic
            ids.append(uid)
            values.append(y)
            all_dates.append(dates)
            future_ds.append(future)
            seasons.append(this_season if season_length is None else season_length)
        # integer ds without freq or season_length: the season length is unknown, not 1
        known = is_datetime or freq is not None or season_length is not None
        season_lengths = seasons if known else None
        point, quantiles = self.forecast_arrays(values, h, all_dates, season_lengths)
        return ids, future_ds, point, quantiles, season_lengths

    def calibrate_intervals(
        self,
        df: pd.DataFrame,
        h: int,
        freq: str | None = None,
        level: float = 0.8,
        season_length: int | None = None,
    ) -> float:
        """Set `interval_scale` (as `set_params` would) so that the `level` intervals cover that
        share of held-out points, and return it.

        Each series' last h points are held out and forecast from the rest (see
        `holdout_interval_scores` for which series take part). One panel; to weigh several
        datasets equally, combine `holdout_interval_scores` with
        `autofm.forecast.calibration.fit_interval_scale`.
        """
        scores = self.holdout_interval_scores(df, h, freq, level, season_length)
        self.interval_scale = _check_interval_scale(fit_interval_scale([scores], level))
        self.season_interval_scales = {}  # the fitted factor holds for every series
        return self.interval_scale

    def holdout_interval_scores(
        self,
        df: pd.DataFrame,
        h: int,
        freq: str | None = None,
        level: float = 0.8,
        season_length: int | None = None,
    ) -> np.ndarray:
        """`interval_scores` of each series' last h points, forecast from the rest.

        The scores are in units of the model's own intervals (whatever `interval_scale` and
        `season_interval_scales` are set), so a factor fitted on them is the new
        `interval_scale`. Series take part if their
        rest has at least 2 observed, not all equal values (a constant context gets a
        zero-width interval on purpose) and their last h points at least one observed value.
        """
        h = _check_horizon(h)
        context, held_out = train_test_split(
            _holdout_series(validate_long(df, allow_nan=True), h), h
        )
        ids, _, _, quantiles, season_lengths = self._forecast_frame(context, h, freq, season_length)
        actual = held_out.groupby("unique_id", sort=False)["y"]
        actual = np.stack([actual.get_group(uid).to_numpy(float) for uid in ids])
        lower, upper = self._interval_indices(level)
        median = quantiles[:, :, self._median_index()]
        scores = interval_scores(median, quantiles[:, :, lower], quantiles[:, :, upper], actual)
        scales = self.series_interval_scales(season_lengths, len(ids))
        scales = np.broadcast_to(scales[:, None], actual.shape)
        return scores * scales[~np.isnan(actual)]

    def series_interval_scales(self, season_lengths, n_series: int) -> np.ndarray:
        """The interval factor of each of n_series series: its season length's factor in
        `season_interval_scales`, else `interval_scale` — which also holds for every series when
        `season_lengths` is None (unknown; not the same as 1, which is yearly data)."""
        if season_lengths is None:
            return np.full(n_series, self.interval_scale)
        seasons = _season_lengths(season_lengths, n_series)
        return np.array(
            [self.season_interval_scales.get(int(m), self.interval_scale) for m in seasons]
        )


def _holdout_series(frame: pd.DataFrame, h: int) -> pd.DataFrame:
    """The series of a validated long frame that a holdout of their last h points can score."""
    keep = []
    for uid, group in frame.groupby("unique_id", sort=False):
        y = group["y"].to_numpy(float)
        rest = y[:-h][~np.isnan(y[:-h])] if len(y) > h else y[:0]
        if len(rest) >= 2 and np.ptp(rest) > 0 and (~np.isnan(y[-h:])).any():
            keep.append(uid)
    if not keep:
        raise ValidationError(
            f"no series can be calibrated on its last h={h} points: each needs before them at "
            "least 2 observed values that are not all equal, and an observed value among them; "
            "use a smaller h or longer series"
        )
    return frame[frame["unique_id"].isin(keep)]


def _check_interval_scale(scale) -> float:
    if not np.isfinite(scale) or scale <= 0:
        raise ValidationError(f"interval_scale must be a positive number, got {scale!r}")
    return float(scale)


def is_intraday(seasons: np.ndarray) -> np.ndarray:
    """Which season lengths mark intraday data (divisible by 24 hours or 60 minutes)."""
    seasons = np.asarray(seasons)
    return np.any([seasons % cycle == 0 for cycle in INTRADAY_CYCLES], axis=0)


def combine_with_theta(
    contexts: list[np.ndarray], h: int, seasons: np.ndarray, point: np.ndarray, quantiles, rows
) -> tuple[np.ndarray, np.ndarray]:
    """Point forecasts of the series in `rows` averaged with the optimised Theta method's; their
    quantiles move with the point (copies; the other series unchanged)."""
    point, quantiles = point.copy(), quantiles.copy()
    theta = theta_forecast([contexts[i] for i in rows], h, seasons[rows], optimise_theta=True)
    combined = (point[rows] + theta) / 2
    quantiles[rows] += (combined - point[rows])[..., None]
    point[rows] = combined
    return point, quantiles


def equal_length_batches(
    lengths: list[int], size: int | None = None, *, tokens: int = CPU_BATCH_TOKENS, extra: int = 0
) -> list[np.ndarray]:
    """Indices grouped into batches of series of the same length, shortest first.

    A batch never pads, so a series' forecast does not depend on which other series are
    forecast with it (with left padding, forecasts moved by up to 9× when the batch changed).
    Series longer than the context window are cut to it first, so most long series share one
    length. A batch holds at most `size` series, or, without a size, about `tokens` positions
    (a series counts its length plus `extra`, the horizon).
    """
    lengths = np.asarray(lengths)
    batches = []
    for length in np.unique(lengths):
        members = np.flatnonzero(lengths == length)
        step = size or max(1, tokens // (int(length) + extra))
        batches.extend(members[i : i + step] for i in range(0, len(members), step))
    return batches


def trained_context_length(meta: dict, cap: int = 512) -> int:
    """The longest training context recorded in a checkpoint's metadata (else `cap`)."""
    n_context = meta.get("training", {}).get("config", {}).get("n_context")
    longest = max(n_context) if isinstance(n_context, list) else n_context
    return min(cap, int(longest)) if longest else cap


def _window_dates(dates: pd.DatetimeIndex, n_context: int, h: int) -> pd.DatetimeIndex:
    """The last n_context context dates and the h future dates of `dates`."""
    if len(dates) < n_context + h:
        raise ValidationError(
            f"got {len(dates)} dates, need at least {n_context + h} (the context window and h)"
        )
    return dates[len(dates) - n_context - h :]


def series_freq(index: pd.DatetimeIndex) -> str | None:
    """The frequency alias of one series' timestamps (None if irregular or < 3 points)."""
    if len(index) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(index)
    return normalise_freq(freq) if freq else None


def _season_lengths(season_lengths, n_series: int) -> np.ndarray:
    """One integer season length ≥ 1 per series (1 where none is given)."""
    if season_lengths is None:
        return np.ones(n_series, dtype=np.int64)
    seasons = np.broadcast_to(np.asarray(season_lengths), (n_series,))
    if seasons.dtype.kind not in "iu" or (seasons < 1).any():
        raise ValidationError(f"season lengths must be positive integers, got {season_lengths!r}")
    return seasons.astype(np.int64)


def _anchor_forecast(y: np.ndarray, h: int, season: int) -> np.ndarray:
    """Seasonal-naive forecast of one context (NaNs forward-filled), as the model's anchor."""
    values = torch.from_numpy(np.array(y, dtype=float))[None]  # a writable copy
    observed = ~torch.isnan(values)
    anchor = seasonal_anchor(values, observed, h, torch.tensor([season]))
    return anchor[0].numpy()


def _check_horizon(h) -> int:
    if isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1:
        raise ValidationError(f"horizon h must be a positive integer, got {h!r}")
    return int(h)


def _as_list(values) -> list[np.ndarray]:
    if isinstance(values, list | tuple):
        if len(values) == 0:
            raise ValidationError("no series given")
        return list(values)
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        return [array]
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValidationError(f"series array must be 1-D or 2-D [series, time], got {array.shape}")
    return list(array)
