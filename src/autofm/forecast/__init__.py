"""Mamba4Cast: zero-shot time-series forecasting with a Mamba2 model trained on synthetic series.

from autofm.forecast import Mamba4CastForecaster
forecasts = Mamba4CastForecaster.from_pretrained("mamba4cast-cpu").predict(df, h=12)
"""

from autofm.forecast.evaluate import evaluate_folder, mase, smape
from autofm.forecast.forecaster import Mamba4CastForecaster
from autofm.forecast.mamba2 import Mamba2, Mamba2Config, sequential_scan, ssd_scan
from autofm.forecast.model import Mamba4Cast, Mamba4CastConfig
from autofm.forecast.priors import ForecastPFNPrior, KernelSynthPrior, Mamba4CastPrior
from autofm.forecast.theta import theta_forecast

__all__ = [
    "ForecastPFNPrior",
    "KernelSynthPrior",
    "Mamba2",
    "Mamba2Config",
    "Mamba4Cast",
    "Mamba4CastConfig",
    "Mamba4CastForecaster",
    "Mamba4CastPrior",
    "evaluate_folder",
    "mase",
    "sequential_scan",
    "smape",
    "ssd_scan",
    "theta_forecast",
]
