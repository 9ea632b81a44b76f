"""Exact posterior predictive distributions: Gaussian mixtures, Gaussians and Bernoullis.

Each has `mean` and `variance` ([B, M]) and `log_density(y)` for y [B, M] (for the Bernoulli,
y ∈ {0, 1} and the "density" is the probability mass).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from autofm.icl.priors.discrete import GridPrior


class MixturePredictive:
    """Σ_j w_j N(f(x; θ_j), σ²) at every query point, computed in chunks over tasks."""

    def __init__(self, prior: GridPrior, log_weights: torch.Tensor, x_query: torch.Tensor):
        self.prior = prior
        self.log_weights = log_weights  # [B, J]
        self.x_query = x_query  # [B, M]
        self._moments: tuple[torch.Tensor, torch.Tensor] | None = None

    def _per_chunk(self, compute) -> torch.Tensor:
        chunks = self.prior.task_chunks(self.x_query.shape[0], self.x_query.shape[1])
        parts = []
        for start in chunks:
            part = slice(start, start + chunks.step)
            values = self.prior.grid_values(self.x_query[part])  # [b, J, M]
            parts.append(compute(self.log_weights[part], values, part))
        return torch.cat(parts)

    def _compute_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._moments is None:

            def moments(log_w, values, _):
                w = log_w.exp()[:, :, None]
                mean = (w * values).sum(1)
                second = (w * values**2).sum(1)
                return torch.stack([mean, second - mean**2 + self.prior.noise_std**2])

            stacked = self._per_chunk(lambda *a: moments(*a).transpose(0, 1))
            self._moments = stacked[:, 0], stacked[:, 1].clamp_min(0.0)
        return self._moments

    @property
    def mean(self) -> torch.Tensor:
        return self._compute_moments()[0]

    @property
    def variance(self) -> torch.Tensor:
        return self._compute_moments()[1]

    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        y = y.double()

        def log_density(log_w, values, part):
            log_lik = self.prior.log_likelihood(values, y[part][:, None, :])
            return torch.logsumexp(log_w[:, :, None] + log_lik, dim=1)

        return self._per_chunk(log_density)


class DiscreteMixturePredictive:
    """Σ_v w_v N(value_v, σ²) with weights [B, M, V] over a shared set of values [V]."""

    def __init__(self, weights: torch.Tensor, values: torch.Tensor, noise_std: float):
        self.weights = weights
        self.values = values
        self.noise_std = noise_std
        self.mean = weights @ values
        second = weights @ values**2
        self.variance = (second - self.mean**2).clamp_min(0.0) + noise_std**2

    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        y = y.double()[..., None]
        log_normal = -0.5 * ((y - self.values) / self.noise_std) ** 2 - math.log(
            self.noise_std * math.sqrt(2 * math.pi)
        )
        return torch.logsumexp(torch.log(self.weights) + log_normal, dim=-1)

    def cdf(self, y: torch.Tensor) -> torch.Tensor:
        """P(Y ≤ y) for y [B, M, K] (K thresholds per query point)."""
        z = (y.double()[..., None] - self.values) / self.noise_std  # [B, M, K, V]
        return (self.weights[:, :, None, :] * _normal_cdf(z)).sum(-1)


class GaussianPredictive:
    """Independent Gaussians N(mean, variance) at every query point."""

    def __init__(self, mean: torch.Tensor, variance: torch.Tensor):
        self.mean = mean
        self.variance = variance

    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        y = y.to(self.mean.dtype)
        return -0.5 * (
            (y - self.mean) ** 2 / self.variance + torch.log(2 * math.pi * self.variance)
        )

    def cdf(self, y: torch.Tensor) -> torch.Tensor:
        """P(Y ≤ y) for y [B, M, K] (K thresholds per query point)."""
        z = (y.to(self.mean.dtype) - self.mean[..., None]) / self.variance.sqrt()[..., None]
        return _normal_cdf(z)


class BernoulliPredictive:
    """P(y = 1) at every query point."""

    def __init__(self, p_one: torch.Tensor):
        self.mean = p_one
        self.variance = p_one * (1 - p_one)

    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        y = y.to(self.mean.dtype)
        return y * torch.log(self.mean) + (1 - y) * torch.log1p(-self.mean)


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-z / math.sqrt(2.0))
