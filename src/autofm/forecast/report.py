"""Figures of forecasts: history, point forecast and interval band, one panel per series."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from autofm.core.report import Report


def plot_forecasts(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    column: str = "Mamba4Cast",
    *,
    actual: pd.DataFrame | None = None,
    max_series: int = 8,
    history_points: int = 120,
) -> plt.Figure:
    """Panels of the last `history_points` of each series, its forecast and interval band."""
    ids = list(dict.fromkeys(forecasts["unique_id"]))[:max_series]
    columns = min(4, len(ids))
    rows = int(np.ceil(len(ids) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows), squeeze=False)
    bands = sorted(c for c in forecasts.columns if c.startswith(f"{column}-lo-"))
    for axis, uid in zip(axes.ravel(), ids, strict=False):
        past = history[history["unique_id"] == uid].tail(history_points)
        future = forecasts[forecasts["unique_id"] == uid]
        axis.plot(past["ds"], past["y"], lw=0.9, color="k", label="history")
        if actual is not None:
            truth = actual[actual["unique_id"] == uid]
            axis.plot(truth["ds"], truth["y"], lw=0.9, color="0.5", ls="--", label="actual")
        for band in bands:
            level = band.rsplit("-", 1)[-1]
            axis.fill_between(
                future["ds"],
                future[band],
                future[f"{column}-hi-{level}"],
                alpha=0.25,
                color="C0",
                label=f"{level}% interval",
            )
        axis.plot(future["ds"], future[column], lw=1.2, color="C0", label=column)
        axis.set_title(str(uid), fontsize=9)
        axis.tick_params(labelsize=7)
    for axis in axes.ravel()[len(ids) :]:
        axis.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def forecast_report(
    history: pd.DataFrame, forecasts: pd.DataFrame, column: str = "Mamba4Cast", title: str = ""
) -> Report:
    """A report with the forecast plots and a table of the first forecasts."""
    report = Report(title or "Mamba4Cast forecasts")
    n_series = forecasts["unique_id"].nunique()
    h = len(forecasts) // max(1, n_series)
    report.text(
        f"{n_series} series, horizon {h}; shaded: prediction intervals from the quantile head"
    )
    report.figure(plot_forecasts(history, forecasts, column), "history, forecast and interval")
    report.table(forecasts.head(min(len(forecasts), 3 * h)))
    return report
