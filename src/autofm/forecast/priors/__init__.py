"""Synthetic series priors for Mamba4Cast (autofm.pfn's prior protocol), one per module.

- `KernelSynthPrior` (kernel_synth.py): KernelSynth-like Gaussian-process series.
- `ForecastPFNPrior` (forecast_pfn.py): trend × calendar seasonality × Weibull noise.
- `SeasonalProfilePrior` (seasonal_profile.py, ours): one season's profile repeated almost exactly.
- `Mamba4CastPrior` (mamba4cast.py): the training prior, mixing the three with augmentations.
- frequencies.py: the frequency, typical periods and dates every series draws first.
"""

from autofm.forecast.priors.forecast_pfn import ForecastPFNPrior
from autofm.forecast.priors.frequencies import (
    FREQUENCIES,
    frequency_periods,
    sample_dates,
    sample_frequencies,
)
from autofm.forecast.priors.kernel_synth import (
    KERNELS,
    KernelSynthPrior,
    kernel_matrix,
    sample_period,
)
from autofm.forecast.priors.mamba4cast import Mamba4CastPrior
from autofm.forecast.priors.seasonal_profile import SeasonalProfilePrior

__all__ = [
    "FREQUENCIES",
    "KERNELS",
    "ForecastPFNPrior",
    "KernelSynthPrior",
    "Mamba4CastPrior",
    "SeasonalProfilePrior",
    "frequency_periods",
    "kernel_matrix",
    "sample_dates",
    "sample_frequencies",
    "sample_period",
]
