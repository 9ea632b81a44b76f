"""The forecasting tour step: zero-shot forecasts of statsmodels' bundled series (co2, GDP, CPI,
sunspots) with the shipped CPU checkpoint, scored against seasonal naive on held-out points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from autofm.core.report import Report
from autofm.core.runtime import seed_everything
from autofm.core.tour import TourStep
from autofm.data.timeseries import (
    season_length,
    series_freq,
    statsmodels_series,
    train_test_split,
)
from autofm.forecast.evaluate import mase
from autofm.forecast.forecaster import Mamba4CastForecaster
from autofm.forecast.report import plot_forecasts

HORIZON = 12


def step(workdir: Path, seed: int) -> TourStep:
    """Hold out the last 12 points of each series, forecast them, compare with seasonal naive."""
    seed_everything(seed)
    series = statsmodels_series()
    history, actual = train_test_split(series, HORIZON)
    forecaster = Mamba4CastForecaster.from_pretrained("mamba4cast-cpu")
    forecasts = forecaster.predict(history, HORIZON)
    rows = []
    for uid, past in history.groupby("unique_id", sort=False):
        m = season_length(series_freq(pd.DatetimeIndex(past["ds"])))
        y_past = past["y"].to_numpy(float)[-forecaster.context_length :]
        truth = actual.loc[actual["unique_id"] == uid, "y"].to_numpy(float)
        predicted = forecasts.loc[forecasts["unique_id"] == uid, "Mamba4Cast"].to_numpy(float)
        naive = np.resize(y_past[-m:], HORIZON)
        lower = forecasts.loc[forecasts["unique_id"] == uid, "Mamba4Cast-lo-80"].to_numpy(float)
        upper = forecasts.loc[forecasts["unique_id"] == uid, "Mamba4Cast-hi-80"].to_numpy(float)
        rows.append(
            {
                "series": uid,
                "season": m,
                "MASE Mamba4Cast": mase(truth, predicted, y_past, m),
                "MASE seasonal naive": mase(truth, naive, y_past, m),
                "80% coverage": float(np.mean((truth >= lower) & (truth <= upper))),
            }
        )
    ratio = float(
        np.exp(np.mean([np.log(r["MASE Mamba4Cast"] / r["MASE seasonal naive"]) for r in rows]))
    )
    coverage = float(np.mean([r["80% coverage"] for r in rows]))
    report = Report("forecast")
    report.text(
        f"Mamba4Cast (checkpoint mamba4cast-cpu, trained on synthetic series only) forecasts the "
        f"last {HORIZON} points of statsmodels' bundled series zero-shot."
    )
    report.table(rows)
    report.figure(
        plot_forecasts(history, forecasts, actual=actual, history_points=96),
        "history (black), held-out actuals (dashed), forecast and 80% interval",
    )
    summary = (
        f"{len(rows)} series, h={HORIZON}: MASE ratio to seasonal naive {ratio:.2f} "
        f"(geometric mean), 80% interval coverage {coverage:.2f}"
    )
    metrics = {"mase_ratio_to_seasonal_naive": ratio, "coverage_80": coverage}
    return TourStep("forecast", summary, metrics, report)
