"""Mamba4CastForecaster: zero-shot forecasts from a pretrained Mamba4Cast, statsforecast style.

    forecaster = Mamba4CastForecaster.from_pretrained("mamba4cast-cpu")
    forecasts = forecaster.predict(df, h=12)   # unique_id, ds, Mamba4Cast, Mamba4Cast-lo-80, -hi-80

By default daily-and-slower series get the average of the model's and the optimised Theta
method's forecast, intraday series the model checked by a per-series backtest gate
(`autofm.forecast.combination`; `combine=None`: the model alone, as in the paper).

Input checks (docs/forecast.md, "Input handling"): datetime `ds` must be regular at `freq` (given
or inferred per series), integer `ds` evenly spaced (with `freq`: synthetic dates, else
position-only features); NaNs are masked and leading ones dropped; series of similar lengths
share a batch, the shorter ones left-padded with steps the model masks out exactly, so a
forecast does not depend on the other series; a constant series is forecast as that constant;
only the last `context_length` points are used.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from autofm.core.checkpoint import load_model
from autofm.core.errors import ValidationError
from autofm.core.validation import check_positive_int
from autofm.data.timeseries import (
    infer_freq,
    normalise_freq,
    series_calendar,
    series_freq,
    synthetic_dates,
    validate_long,
)
from autofm.data.timeseries import season_length as freq_season_length
from autofm.forecast import calibration
from autofm.forecast.calibration import (
    check_interval_scale,
    fit_interval_scale,
    interval_level,
    median_index,
    widen_intervals,
)
from autofm.forecast.combination import (
    COMBINERS,
    DEFAULT_GATE_MARGINS,
    GATES,
    backtest_gate,
    combine_with_theta,
    is_intraday,
)
from autofm.forecast.inference import forecast_contexts
from autofm.forecast.model import Mamba4Cast, build_mamba4cast

DEFAULT_MODEL = "mamba4cast-cpu"


class Mamba4CastForecaster:
    """Zero-shot forecaster; `predict(df, h)` needs no fitting.

    Parameters: `model` (a Mamba4Cast), `context_length` (points of history used),
    `batch_size` (series per forward pass; None: about `inference.CPU_BATCH_TOKENS` positions per
    batch on CPU, 256 series on a GPU; `inference.length_batches`), `alias`
    (forecast column name), `device`, and
    `gate`: "backtest" (default) checks each series on its own last h points first and uses the
    model, its anchor (seasonal naive, or naive for a "last"-anchor model) or their average,
    whichever was closest there (`combination.backtest_gate`); "none" always uses the model.
    `gate_margin` is the benefit of the doubt the model gets: a candidate with model weight w
    counts its backtest error times 1 + gate_margin·(1 − w), so with 0.5 the anchor must beat the
    model by a third to replace it (0: the plain argmin). Default (None): 0 with the Theta
    combination, where only intraday series are gated, and 0.5 without it.
    `backtest_windows` (default 1) sums the errors over that many consecutive windows of h
    points. Each window costs a forward pass and needs h + 2 observed points; series too short
    for any window keep the model forecast.
    `combine`: "theta" (default) averages the model's forecast with the optimised Theta
    method's (`autofm.forecast.theta`) for daily and slower series, the intervals shifted with
    the point; those series skip the gate. Intraday series — a season length divisible by 24 or
    60 (`combination.is_intraday`: hourly 24 or 168, half-hourly 48, minutely 60 or 1440) — have
    several seasonalities Theta cannot hold: they keep the model and the gate.
    None: the model (and the gate) for every series, the paper's method.
    `interval_scale` widens the intervals about the median quantile by that factor (1: as the
    model gives them; `from_pretrained` takes the checkpoint's calibrated factor, see
    `autofm.forecast.calibration`); `season_interval_scales` ({season length: factor}) replaces
    it for series of those season lengths (`from_pretrained`: the checkpoint's per-season
    factors).
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
        self.interval_scale = check_interval_scale(interval_scale)
        self.season_interval_scales = {
            int(m): check_interval_scale(v) for m, v in (season_interval_scales or {}).items()
        }
        self.model = model
        self.gate = gate
        if gate_margin is None:
            gate_margin = DEFAULT_GATE_MARGINS[combine]
        if not np.isfinite(gate_margin) or gate_margin < 0:
            raise ValidationError(f"gate_margin must be ≥ 0, got {gate_margin!r}")
        self.gate_margin = float(gate_margin)
        self.backtest_windows = backtest_windows
        # a context of 0 points would otherwise surface as missing dates
        self.context_length = check_positive_int(
            context_length, "context_length (points of history)"
        )
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
        fitted = meta.get("calibration", {})
        if kwargs.get("interval_scale") is None:
            kwargs["interval_scale"] = fitted.get("interval_scale", 1.0)
            if kwargs.get("season_interval_scales") is None:
                kwargs["season_interval_scales"] = fitted.get("season_interval_scales")
        forecaster = cls(model, **kwargs)
        forecaster.checkpoint_meta_ = meta
        return forecaster

    @property
    def quantile_levels(self) -> tuple[float, ...]:
        return self.model.config.quantiles

    def _interval_columns(self) -> list[tuple[str, int]]:
        """(column, quantile index) for each symmetric pair of quantiles (e.g. 0.1/0.9 → 80)."""
        levels = self.quantile_levels
        columns = []
        for i in range(len(levels) // 2):
            level = interval_level(levels[i], levels[-1 - i])
            columns += [
                (f"{self.alias}-lo-{level}", i),
                (f"{self.alias}-hi-{level}", len(levels) - 1 - i),
            ]
        return columns

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
        h = check_positive_int(h, "horizon h")
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
        quantiles = widen_intervals(quantiles, median_index(self.quantile_levels), scales)
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
        return forecast_contexts(
            self.model, contexts, h, dates, seasons, batch_size=self.batch_size, device=self.device
        )

    def _backtest_gate(self, contexts, h, dates, seasons, point, quantiles, rows):
        """`combination.backtest_gate` with this forecaster's model, anchor and settings."""
        anchor_seasons = seasons if self.model.config.anchor != "last" else np.ones_like(seasons)
        return backtest_gate(
            self._forecast_contexts,
            contexts,
            h,
            dates,
            seasons,
            point,
            quantiles,
            rows,
            anchor_seasons=anchor_seasons,
            windows=self.backtest_windows,
            margin=self.gate_margin,
        )

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
        ids, future_ds, point, quantiles, _ = self.forecast_frame(df, h, freq, season_length)
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

    def forecast_frame(
        self, df: pd.DataFrame, h: int, freq: str | None = None, season_length: int | None = None
    ) -> tuple[list, list, np.ndarray, np.ndarray, list[int] | None]:
        """What `predict` makes its frame from: (series ids, their h future ds, point [B, h],
        quantiles [B, h, Q], season lengths [B], None where unknown) for a long frame."""
        h = check_positive_int(h, "horizon h")
        frame = validate_long(df, allow_nan=True)
        is_datetime = pd.api.types.is_datetime64_any_dtype(frame["ds"])
        if not is_datetime and not pd.api.types.is_numeric_dtype(frame["ds"]):
            raise ValidationError(
                "column ds must hold datetimes or integer steps; convert it with pd.to_datetime"
            )
        freq = normalise_freq(freq)
        shared_freq = freq or (infer_freq(frame) if is_datetime else None)
        # the frame is sorted by series: each series is a block of rows (NaN ids are dropped,
        # as groupby drops them, and sort last)
        sizes = frame.groupby("unique_id", sort=False).size()
        ids = sizes.index.tolist()
        ends = np.cumsum(sizes.to_numpy())
        blocks = list(zip(ends - sizes.to_numpy(), ends, strict=True))
        y = frame["y"].to_numpy(float)
        values = [y[first:last] for first, last in blocks]
        ds = frame["ds"]
        naive = is_datetime and ds.dt.tz is None
        steps = ds.to_numpy() if naive or not is_datetime else None
        all_dates, future_ds, seasons = [], [], []
        synthetic, calendars = None, _Calendars(self.context_length, h)
        for uid, (first, last) in zip(ids, blocks, strict=True):
            if is_datetime:
                index = None if naive else pd.DatetimeIndex(ds.iloc[first:last])
                this_freq = freq
                if this_freq is None:
                    index = pd.DatetimeIndex(ds.iloc[first:last]) if index is None else index
                    this_freq = series_freq(index) or shared_freq
                if this_freq is None:
                    raise ValidationError(
                        f"cannot infer a regular frequency for series {uid!r} (irregular "
                        "timestamps or too few points); pass freq=, e.g. freq='MS'"
                    )
                if naive:
                    dates, future = calendars.of_naive(uid, steps[first:last], this_freq)
                else:
                    dates, future = calendars.of(uid, index, this_freq)
                this_season = freq_season_length(this_freq)
            else:
                series_steps = steps[first:last]
                step = series_steps[1] - series_steps[0] if len(series_steps) > 1 else 1
                if len(series_steps) > 1 and (step <= 0 or np.any(np.diff(series_steps) != step)):
                    raise ValidationError(
                        f"series {uid!r} has integer ds that are not evenly spaced"
                    )
                future = series_steps[-1] + step * np.arange(1, h + 1)
                dates = None
                this_season = freq_season_length(freq)
                if freq is not None:  # synthetic calendar (phase unknown), the same for all
                    if synthetic is None:
                        synthetic = synthetic_dates(self.context_length + h, freq)
                    dates = synthetic
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
        self.interval_scale = check_interval_scale(fit_interval_scale([scores], level))
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
        """`calibration.holdout_interval_scores` of this forecaster: the `interval_scores` of
        each series' last h points, forecast from the rest, in units of the model's own
        intervals."""
        return calibration.holdout_interval_scores(self, df, h, freq, level, season_length)

    def series_interval_scales(self, season_lengths, n_series: int) -> np.ndarray:
        """The interval factor of each of n_series series (`calibration.series_interval_scales`);
        `season_lengths` None means unknown, not 1."""
        seasons = None if season_lengths is None else _season_lengths(season_lengths, n_series)
        return calibration.series_interval_scales(
            seasons, n_series, self.interval_scale, self.season_interval_scales
        )


class _Calendars:
    """Each series' calendar (`series_calendar`: its last `n_context` dates and the `h` after
    them, its timestamps checked to be regular) and future dates, shared by the series that end
    on the same timestamp. A tz-naive series ending where an earlier one did is checked against
    that calendar with numpy; any other goes through `series_calendar`."""

    def __init__(self, n_context: int, h: int):
        self.n_context, self.h = n_context, h
        self.shared: dict = {}  # (last timestamp, freq) -> (dates, future dates, context values)
        self.date_cache: dict = {}  # series_calendar's own

    def of(
        self, uid, index: pd.DatetimeIndex, freq: str
    ) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
        """(calendar, future dates) of a series with timestamps `index`."""
        dates = series_calendar(uid, index, freq, self.n_context, self.h, self.date_cache)
        key = (index[-1], freq)
        if key not in self.shared:
            # at the calendar's second resolution: a yearly window of 512 steps reaches back
            # before 1677, out of nanoseconds' range
            context = dates[: self.n_context].as_unit("s").to_numpy()
            self.shared[key] = dates, dates[self.n_context :].as_unit(index.unit), context
        return self.shared[key][:2]

    def of_naive(
        self, uid, steps: np.ndarray, freq: str
    ) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
        """`of` for tz-naive timestamps given as a datetime64 array."""
        known = self.shared.get((pd.Timestamp(steps[-1]), freq))
        if known is not None and known[2] is not None and len(steps) <= self.n_context:
            seconds = steps.astype("datetime64[s]")  # exact unless steps hold sub-seconds
            if (seconds == steps).all() and np.array_equal(
                seconds, known[2][self.n_context - len(steps) :]
            ):
                return known[:2]
        return self.of(uid, pd.DatetimeIndex(steps), freq)


def trained_context_length(meta: dict, cap: int = 512) -> int:
    """The longest training context recorded in a checkpoint's metadata (else `cap`)."""
    n_context = meta.get("training", {}).get("config", {}).get("n_context")
    longest = max(n_context) if isinstance(n_context, list) else n_context
    return min(cap, int(longest)) if longest else cap


def _season_lengths(season_lengths, n_series: int) -> np.ndarray:
    """One integer season length ≥ 1 per series (1 where none is given)."""
    if season_lengths is None:
        return np.ones(n_series, dtype=np.int64)
    seasons = np.broadcast_to(np.asarray(season_lengths), (n_series,))
    if seasons.dtype.kind not in "iu" or (seasons < 1).any():
        raise ValidationError(f"season lengths must be positive integers, got {season_lengths!r}")
    return seasons.astype(np.int64)


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
