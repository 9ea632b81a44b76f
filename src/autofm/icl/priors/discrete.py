"""Priors over a finite grid of latent functions, whose posterior predictive is exact.

A `GridPrior` is a finite set of latent parameter vectors θ_j with prior weights π_j and a function
f(x; θ). Regression tasks are y = f(x; θ) + ε with ε ~ N(0, σ²), σ = 0.1. Given a context D the
posterior over the grid is w_j ∝ π_j Π_i N(y_i; f(x_i; θ_j), σ²), and the exact posterior
predictive (PPD) at x is the Gaussian mixture Σ_j w_j N(f(x; θ_j), σ²). Everything is vectorised
over tasks and grid points (chunked over tasks to bound memory).
"""

from __future__ import annotations

import math

import torch

from autofm.core.errors import ValidationError
from autofm.icl.priors.predictive import (
    BernoulliPredictive,
    DiscreteMixturePredictive,
    MixturePredictive,
)
from autofm.pfn.prior import TaskBatch

NOISE_STD = 0.1


class GridPrior:
    """Base class: subclasses set `parameters` [J, P], `log_prior` [J] and define `function`."""

    noise_std: float = NOISE_STD
    parameters: torch.Tensor
    log_prior: torch.Tensor
    chunk_elements: int = 4_000_000  # bound on B·J·n per vectorised chunk

    def task_chunks(self, batch_size: int, n: int) -> range:
        """Start indices of task chunks small enough that B·J·n stays under chunk_elements (the
        step is `range.step`); the exact posterior and its predictive are computed chunk-wise."""
        step = max(1, self.chunk_elements // max(1, self.n_latent * max(1, n)))
        return range(0, batch_size, step)

    def function(self, parameters: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """f(x; θ) for parameters [..., P] and inputs x [..., n] (broadcast leading dims)."""
        raise NotImplementedError

    @property
    def n_latent(self) -> int:
        return self.parameters.shape[0]

    def sample_inputs(self, batch_size: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """Inputs x [B, n, 1], uniform on [0, 1]."""
        return torch.rand(batch_size, n, 1, generator=generator)

    def sample(
        self,
        batch_size: int,
        n_context: int,
        n_query: int,
        n_features: int = 1,
        generator: torch.Generator | None = None,
    ) -> TaskBatch:
        """Draw θ from the prior, inputs uniform on [0, 1], noisy targets; 1 feature always."""
        generator = generator or torch.Generator().manual_seed(0)
        latent = torch.multinomial(self.log_prior.exp(), batch_size, True, generator=generator)
        n = n_context + n_query
        x = self.sample_inputs(batch_size, n, generator)
        f = self.function(self.parameters[latent][:, None, :], x[..., 0]).float()
        y = self.observe(f, generator)
        return TaskBatch(
            x[:, :n_context],
            y[:, :n_context],
            x[:, n_context:],
            y[:, n_context:],
            {"latent": latent, "f_query": f[:, n_context:]},
        )

    def observe(self, f: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Noisy observations of the function values f."""
        return f + self.noise_std * torch.randn(f.shape, generator=generator)

    def grid_values(self, x: torch.Tensor) -> torch.Tensor:
        """f(x; θ_j) for every grid point θ_j: x [B, n] → [B, J, n]."""
        return self.function(self.parameters[None, :, None, :], x[:, None, :])

    def log_likelihood(self, f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log p(y | f) elementwise (Gaussian noise)."""
        return -0.5 * ((y - f) / self.noise_std) ** 2 - math.log(
            self.noise_std * math.sqrt(2 * math.pi)
        )

    def posterior_log_weights(
        self, x_context: torch.Tensor, y_context: torch.Tensor
    ) -> torch.Tensor:
        """log w_j: the normalised posterior over the grid, [B, J]."""
        parts = []
        chunks = self.task_chunks(x_context.shape[0], x_context.shape[1])
        for start in chunks:
            x = x_context[start : start + chunks.step, :, 0].double()
            y = y_context[start : start + chunks.step].double()
            values = self.grid_values(x)
            log_lik = self.log_likelihood(values, y[:, None, :]).sum(-1)
            log_joint = self.log_prior.double()[None] + log_lik
            parts.append(log_joint - torch.logsumexp(log_joint, dim=-1, keepdim=True))
        return torch.cat(parts)

    def posterior_predictive(
        self, x_context: torch.Tensor, y_context: torch.Tensor, x_query: torch.Tensor
    ) -> MixturePredictive:
        """The exact PPD at x_query [B, M, 1] given the context ([B, N, 1], [B, N])."""
        log_weights = self.posterior_log_weights(x_context, y_context)
        return MixturePredictive(self, log_weights, x_query[..., 0].double())


class StepPrior(GridPrior):
    """Step functions y0 + h·1[x > x0] on a grid of jump points x0, levels y0 and heights h.

    The exact PPD uses the structure of the grid: per jump point, the context's likelihood of
    every (y0, h) follows from a few sums (counts, Σy, Σy² left and right of x0), and because y0
    and h share one evenly spaced grid, the values y0 and y0 + h at a query point take only
    2L − 1 distinct values, so the predictive is a mixture of 2L − 1 Gaussians.
    """

    def __init__(self, n_jumps: int = 101, n_levels: int = 21, span: float = 1.0):
        if n_levels % 2 == 0:
            raise ValidationError(f"n_levels must be odd (0 is a level), got {n_levels}")
        self.jumps = torch.linspace(0.0, 1.0, n_jumps, dtype=torch.float64)
        self.levels = torch.linspace(-span, span, n_levels, dtype=torch.float64)
        self.span = span
        grid = torch.cartesian_prod(self.jumps, self.levels, self.levels)  # (x0, y0, h)
        self.parameters = grid
        self.log_prior = torch.full((len(grid),), -math.log(len(grid)), dtype=torch.float64)

    def function(self, parameters: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x0, y0, h = parameters[..., 0], parameters[..., 1], parameters[..., 2]
        return y0 + h * (x > x0).to(x.dtype)

    def posterior_log_weights(
        self, x_context: torch.Tensor, y_context: torch.Tensor
    ) -> torch.Tensor:
        x, y = x_context[..., 0].double(), y_context.double()
        n_jumps, n_levels = len(self.jumps), len(self.levels)
        after = (x[:, :, None] > self.jumps).double()  # [B, N, K]
        n_after = after.sum(1)
        n_before = x.shape[1] - n_after
        sum_after = (after * y[:, :, None]).sum(1)
        sum_before = y.sum(1, keepdim=True) - sum_after
        sum_squares = (y**2).sum(1)[:, None, None, None]
        base = self.levels[:, None]  # y0, [L, 1]
        top = self.levels[:, None] + self.levels[None, :]  # y0 + h, [L, L]
        expand = lambda t: t[:, :, None, None]  # noqa: E731
        squared_error = (
            sum_squares
            - 2 * base * expand(sum_before)
            - 2 * top * expand(sum_after)
            + expand(n_before) * base**2
            + expand(n_after) * top**2
        )
        log_lik = -0.5 * squared_error / self.noise_std**2 - x.shape[1] * math.log(
            self.noise_std * math.sqrt(2 * math.pi)
        )
        log_joint = self.log_prior.view(n_jumps, n_levels, n_levels) + log_lik
        log_joint = log_joint.reshape(len(x), -1)
        return log_joint - torch.logsumexp(log_joint, dim=-1, keepdim=True)

    def posterior_predictive(
        self, x_context: torch.Tensor, y_context: torch.Tensor, x_query: torch.Tensor
    ) -> DiscreteMixturePredictive:
        n_jumps, n_levels = len(self.jumps), len(self.levels)
        weights = self.posterior_log_weights(x_context, y_context).exp()
        weights = weights.view(-1, n_jumps, n_levels, n_levels)
        jumped = (x_query[..., 0].double()[:, :, None] > self.jumps).double()  # [B, M, K]
        weight_top = torch.einsum("bmk,bkij->bmij", jumped, weights)  # value y0 + h
        weight_base = weights.sum(1)[:, None] - weight_top  # value y0
        # y0 = −span + i·d = −2·span + (i + (L−1)/2)·d and y0 + h = −2·span + (i + j)·d:
        # one grid of 2L − 1 values (L is odd)
        n_values = 2 * n_levels - 1
        index = torch.arange(n_levels)
        top_index = (index[:, None] + index[None, :]).flatten()
        batch, n_query = x_query.shape[:2]
        value_weights = torch.zeros(batch, n_query, n_values, dtype=torch.float64)
        value_weights.index_add_(2, top_index, weight_top.reshape(batch, n_query, -1))
        value_weights.index_add_(2, index + (n_levels - 1) // 2, weight_base.sum(-1))
        value_weights = value_weights.clamp_min(0.0)  # rounding can leave tiny negatives
        values = torch.linspace(-2 * self.span, 2 * self.span, n_values, dtype=torch.float64)
        return DiscreteMixturePredictive(value_weights, values, self.noise_std)

    def __repr__(self) -> str:
        return f"StepPrior(n_latent={self.n_latent}, noise_std={self.noise_std})"


class SineLinePrior(GridPrior):
    """Half lines a·x + b, half sines A·sin(ωπx) + b, each family uniform on its grid.

    Parameter columns: (is_sine, a, b, A, ω). `family_posterior` gives P(sine | context).
    """

    def __init__(self, n_slopes: int = 21, n_amplitudes: int = 21, n_offsets: int = 11):
        slopes = torch.linspace(-1.0, 1.0, n_slopes)
        line_offsets = torch.linspace(-1.0, 1.0, n_slopes)
        lines = torch.cartesian_prod(slopes, line_offsets)
        amplitudes = torch.linspace(-0.5, 0.5, n_amplitudes)
        frequencies = torch.tensor([1.0, 2.0, 3.0, 4.0])
        sine_offsets = torch.linspace(-0.5, 0.5, n_offsets)
        sines = torch.cartesian_prod(amplitudes, frequencies, sine_offsets)
        zeros_l, zeros_s = torch.zeros(len(lines)), torch.zeros(len(sines))
        line_rows = torch.stack([zeros_l, lines[:, 0], lines[:, 1], zeros_l, zeros_l], -1)
        sine_rows = torch.stack([zeros_s + 1, zeros_s, sines[:, 2], sines[:, 0], sines[:, 1]], -1)
        self.parameters = torch.cat([line_rows, sine_rows]).double()
        self.log_prior = torch.cat(
            [
                torch.full((len(lines),), math.log(0.5 / len(lines))),
                torch.full((len(sines),), math.log(0.5 / len(sines))),
            ]
        ).double()

    def function(self, parameters: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        is_sine, a, b, amplitude, frequency = parameters.unbind(-1)
        line = a * x + b
        sine = amplitude * torch.sin(frequency * math.pi * x) + b
        return torch.where(is_sine > 0.5, sine, line)

    def family_posterior(self, x_context: torch.Tensor, y_context: torch.Tensor) -> torch.Tensor:
        """P(sine family | context) for each task, [B]."""
        weights = self.posterior_log_weights(x_context, y_context).exp()
        return weights[:, self.parameters[:, 0] > 0.5].sum(-1)

    def __repr__(self) -> str:
        return f"SineLinePrior(n_latent={self.n_latent}, noise_std={self.noise_std})"


class PhaseSinePrior(GridPrior):
    """Phase-shifted sines A·sin(2π(ω·x + φ)) on a grid of amplitudes, frequencies and phases."""

    def __init__(self, n_amplitudes: int = 5, n_phases: int = 16):
        amplitudes = torch.linspace(0.2, 1.0, n_amplitudes)
        frequencies = torch.tensor([1.0, 2.0])
        phases = torch.arange(n_phases) / n_phases
        grid = torch.cartesian_prod(amplitudes, frequencies, phases)
        self.parameters = grid.double()
        self.log_prior = torch.full((len(grid),), -math.log(len(grid)), dtype=torch.float64)

    def function(self, parameters: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        amplitude, frequency, phase = parameters.unbind(-1)
        return amplitude * torch.sin(2 * math.pi * (frequency * x + phase))

    def __repr__(self) -> str:
        return f"PhaseSinePrior(n_latent={self.n_latent}, noise_std={self.noise_std})"


class CountingPrior(GridPrior):
    """Coin flips: p on a grid of bin centres (uniform), y ~ Bernoulli(p), x = 0 (no information).

    The exact PPD after k ones in n flips is Σ_j w_j p_j, close to Laplace's (k+1)/(n+2).
    """

    def __init__(self, n_probabilities: int = 100):
        centres = (torch.arange(n_probabilities) + 0.5) / n_probabilities
        self.parameters = centres[:, None].double()
        self.log_prior = torch.full(
            (n_probabilities,), -math.log(n_probabilities), dtype=torch.float64
        )

    def function(self, parameters: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return parameters[..., 0] + 0.0 * x

    def sample_inputs(self, batch_size: int, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.zeros(batch_size, n, 1)

    def observe(self, f: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.bernoulli(f, generator=generator).float()

    def log_likelihood(self, f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y * torch.log(f) + (1 - y) * torch.log1p(-f)

    def posterior_predictive(
        self, x_context: torch.Tensor, y_context: torch.Tensor, x_query: torch.Tensor
    ) -> BernoulliPredictive:
        log_weights = self.posterior_log_weights(x_context, y_context)
        p_one = log_weights.exp() @ self.parameters[:, 0]
        return BernoulliPredictive(p_one[:, None].expand(-1, x_query.shape[1]))

    def __repr__(self) -> str:
        return f"CountingPrior(n_latent={self.n_latent})"
