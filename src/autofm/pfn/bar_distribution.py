"""The bar ("Riemann") distribution: a PFN's output for regression.

The real line is cut into K buckets by `borders` (K+1 increasing numbers, usually quantiles of
prior samples); the network outputs K logits, one per bucket, and the predictive density is
piecewise constant: bucket probability divided by bucket width. The full-support version
replaces the two outer buckets by half-normal tails (pointing outwards from the inner border of
the outer bucket) so that every real y has a finite density. Each tail's scale is chosen so that
half of its mass lies inside the original outer bucket.

All methods take `logits` of shape [..., K] and broadcast over the leading dimensions.
Classification priors need no buckets: `classification_loss` is cross-entropy on class logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from autofm.core.errors import ValidationError

_HALF_NORMAL_MEDIAN = 0.6744897501960817  # icdf of HalfNormal(1) at 0.5 = Φ⁻¹(0.75)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def half_normal_icdf(u: torch.Tensor) -> torch.Tensor:
    """Quantile function of the standard half-normal distribution (|Z|, Z ~ N(0, 1))."""
    return math.sqrt(2.0) * torch.erfinv(u.clamp(0.0, 1.0 - 1e-7))


def _half_normal_log_pdf(z: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    # density of |Z|·scale at z ≥ 0
    return 0.5 * math.log(2.0 / math.pi) - torch.log(scale) - 0.5 * (z / scale) ** 2


def borders_from_samples(samples: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """K+1 bucket borders at equally spaced quantiles of `samples` (any shape, flattened).

    Repeated quantiles (from discrete samples) are dropped, so fewer than K buckets may result.
    """
    values = samples.detach().flatten().double()
    values = values[torch.isfinite(values)]
    if values.numel() < 2:
        raise ValidationError("need at least two finite samples to place bucket borders")
    if values.numel() > 1_000_000:  # torch.quantile has a size limit; a subsample is plenty
        index = torch.randperm(values.numel(), generator=torch.Generator().manual_seed(0))
        values = values[index[:1_000_000]]
    levels = torch.linspace(0.0, 1.0, n_buckets + 1, dtype=torch.float64)
    borders = torch.unique(torch.quantile(values, levels))
    if borders.numel() < 2:
        raise ValidationError("all samples are equal; cannot place bucket borders")
    return borders.float()


class BarDistribution(nn.Module):
    """Bucketed predictive distribution; `borders` are stored as a buffer (saved with the model)."""

    def __init__(self, borders: torch.Tensor, full_support: bool = True):
        super().__init__()
        borders = torch.as_tensor(borders, dtype=torch.float32).flatten()
        if borders.numel() < 2 or not bool((borders[1:] > borders[:-1]).all()):
            raise ValidationError("borders must hold at least two strictly increasing numbers")
        if full_support and borders.numel() < 3:
            raise ValidationError("a full-support bar distribution needs at least two buckets")
        self.full_support = full_support
        self.register_buffer("borders", borders)

    @property
    def n_buckets(self) -> int:
        return self.borders.numel() - 1

    @property
    def widths(self) -> torch.Tensor:
        return self.borders[1:] - self.borders[:-1]

    def _tail_scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        widths = self.widths
        return widths[0] / _HALF_NORMAL_MEDIAN, widths[-1] / _HALF_NORMAL_MEDIAN

    @staticmethod
    def _broadcast(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # logits [..., K] and y [...] expanded to common leading dimensions
        y = torch.as_tensor(y, dtype=logits.dtype, device=logits.device)
        shape = torch.broadcast_shapes(logits.shape[:-1], y.shape)
        return logits.expand(*shape, logits.shape[-1]), y.expand(shape).contiguous()

    def bucket_index(self, y: torch.Tensor) -> torch.Tensor:
        """Index of the bucket holding y (values outside the borders map to the outer buckets)."""
        index = torch.searchsorted(self.borders, y.contiguous(), right=False) - 1
        return index.clamp(0, self.n_buckets - 1)

    def log_density(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log p(y) for logits [..., K] and y [...]."""
        logits, y = self._broadcast(logits, y)
        log_probs = F.log_softmax(logits, dim=-1)
        index = self.bucket_index(y)
        log_bucket = log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        log_width = torch.log(self.widths)[index]
        result = log_bucket - log_width
        if self.full_support:
            left_scale, right_scale = self._tail_scales()
            left = _half_normal_log_pdf((self.borders[1] - y).clamp_min(0.0), left_scale)
            right = _half_normal_log_pdf((y - self.borders[-2]).clamp_min(0.0), right_scale)
            result = torch.where(index == 0, log_bucket + left, result)
            result = torch.where(index == self.n_buckets - 1, log_bucket + right, result)
        else:
            outside = (y < self.borders[0]) | (y > self.borders[-1])
            result = result.masked_fill(outside, float("-inf"))
        return result

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean negative log-density: the PFN training loss for regression priors."""
        return -self.log_density(logits, y).mean()

    def _bucket_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        # first and second moment of y within each bucket (uniform inside, half-normal tails)
        low, high = self.borders[:-1], self.borders[1:]
        first = (low + high) / 2
        second = (low**2 + low * high + high**2) / 3
        if self.full_support:
            left_scale, right_scale = self._tail_scales()
            c_left, c_right = self.borders[1], self.borders[-2]
            first = first.clone()
            second = second.clone()
            first[0] = c_left - left_scale * _SQRT_2_OVER_PI
            second[0] = c_left**2 - 2 * c_left * left_scale * _SQRT_2_OVER_PI + left_scale**2
            first[-1] = c_right + right_scale * _SQRT_2_OVER_PI
            second[-1] = c_right**2 + 2 * c_right * right_scale * _SQRT_2_OVER_PI + right_scale**2
        return first, second

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """Predictive mean."""
        first, _ = self._bucket_moments()
        return F.softmax(logits, dim=-1) @ first.to(logits.dtype)

    def variance(self, logits: torch.Tensor) -> torch.Tensor:
        """Predictive variance."""
        first, second = self._bucket_moments()
        probs = F.softmax(logits, dim=-1)
        mean = probs @ first.to(logits.dtype)
        return (probs @ second.to(logits.dtype) - mean**2).clamp_min(0.0)

    def cdf(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """P(Y ≤ y)."""
        logits, y = self._broadcast(logits, y)
        probs = F.softmax(logits, dim=-1)
        index = self.bucket_index(y)
        before = (probs.cumsum(-1) - probs).gather(-1, index.unsqueeze(-1)).squeeze(-1)
        p = probs.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        low, width = self.borders[:-1][index], self.widths[index]
        fraction = ((y - low) / width).clamp(0.0, 1.0)
        if self.full_support:
            left_scale, right_scale = self._tail_scales()
            z_left = (self.borders[1] - y).clamp_min(0.0) / left_scale
            z_right = (y - self.borders[-2]).clamp_min(0.0) / right_scale
            fraction = torch.where(index == 0, 1.0 - torch.erf(z_left / math.sqrt(2.0)), fraction)
            fraction = torch.where(
                index == self.n_buckets - 1, torch.erf(z_right / math.sqrt(2.0)), fraction
            )
        return before + p * fraction

    def quantile(self, logits: torch.Tensor, q: float | torch.Tensor) -> torch.Tensor:
        """The q-quantile (inverse CDF); `q` is a float or a tensor broadcastable to logits[..., 0]."""
        logits, q = self._broadcast(logits, q)
        probs = F.softmax(logits, dim=-1)
        cumulative = probs.cumsum(-1)
        index = torch.searchsorted(cumulative.contiguous(), q.unsqueeze(-1)).squeeze(-1)
        index = index.clamp(0, self.n_buckets - 1)
        p = probs.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        before = cumulative.gather(-1, index.unsqueeze(-1)).squeeze(-1) - p
        fraction = ((q - before) / p.clamp_min(1e-30)).clamp(0.0, 1.0)
        result = self.borders[:-1][index] + fraction * self.widths[index]
        if self.full_support:
            left_scale, right_scale = self._tail_scales()
            left = self.borders[1] - left_scale * half_normal_icdf(1.0 - fraction)
            right = self.borders[-2] + right_scale * half_normal_icdf(fraction)
            result = torch.where(index == 0, left, result)
            result = torch.where(index == self.n_buckets - 1, right, result)
        return result

    def sample(
        self, logits: torch.Tensor, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """`n_samples` draws per distribution, shape [n_samples, ...], by inverse-CDF sampling."""
        shape = (n_samples, *logits.shape[:-1])
        u = torch.rand(shape, generator=generator, dtype=logits.dtype, device=logits.device)
        return self.quantile(logits.expand(n_samples, *logits.shape), u)


def classification_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of class logits [..., C] against integer-valued targets y [...]."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1).long())
