"""Mamba4Cast: zero-shot time-series forecasting with a Mamba2 model trained on synthetic series.

from autofm.forecast import Mamba4CastForecaster
forecasts = Mamba4CastForecaster.from_pretrained("mamba4cast-cpu").predict(df, h=12)
"""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.forecast",
    {
        "evaluate": ["evaluate_folder", "mase", "smape"],
        "forecaster": ["Mamba4CastForecaster"],
        "mamba2": ["Mamba2", "Mamba2Config", "sequential_scan", "ssd_scan"],
        "model": ["Mamba4Cast", "Mamba4CastConfig"],
        "priors": ["ForecastPFNPrior", "KernelSynthPrior", "Mamba4CastPrior"],
        "theta": ["theta_forecast"],
    },
)
