"""A tiny untrained model for tests (they never depend on the shipped weights' quality)."""

import torch

from autofm.forecast.forecaster import Mamba4CastForecaster
from autofm.forecast.model import Mamba4Cast, Mamba4CastConfig

TINY = dict(d_model=16, n_layers=1, d_state=8, headdim=8, chunk_size=16)


def tiny_model(seed: int = 0) -> Mamba4Cast:
    torch.manual_seed(seed)
    return Mamba4Cast(Mamba4CastConfig(**TINY))


def tiny_forecaster(**kwargs) -> Mamba4CastForecaster:
    kwargs.setdefault("batch_size", 4)
    return Mamba4CastForecaster(tiny_model(), **kwargs)
