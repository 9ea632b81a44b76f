"""A Gaussian-process prior with fixed RBF hyperparameters and its closed-form posterior."""

from __future__ import annotations

import torch

from autofm.icl.priors.discrete import NOISE_STD
from autofm.icl.priors.predictive import GaussianPredictive
from autofm.pfn.prior import TaskBatch


class GPPrior:
    """f ~ GP(0, s²·exp(-|x-x'|²/2ℓ²)) on x uniform in [0, 1]^F; y = f + N(0, σ²)."""

    def __init__(
        self, lengthscale: float = 0.25, outputscale: float = 1.0, noise_std: float = NOISE_STD
    ):
        self.lengthscale = lengthscale
        self.outputscale = outputscale
        self.noise_std = noise_std

    def kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """RBF kernel matrix between a [B, n, F] and b [B, m, F]: [B, n, m]."""
        distance2 = torch.cdist(a.double(), b.double()) ** 2
        return self.outputscale**2 * torch.exp(-0.5 * distance2 / self.lengthscale**2)

    def sample(
        self,
        batch_size: int,
        n_context: int,
        n_query: int,
        n_features: int = 1,
        generator: torch.Generator | None = None,
    ) -> TaskBatch:
        """Draw functions from the GP at uniform inputs and observe them with noise."""
        generator = generator or torch.Generator().manual_seed(0)
        n = n_context + n_query
        x = torch.rand(batch_size, n, n_features, generator=generator)
        covariance = self.kernel(x, x) + 1e-6 * torch.eye(n, dtype=torch.float64)
        chol = torch.linalg.cholesky(covariance)
        z = torch.randn(batch_size, n, 1, generator=generator, dtype=torch.float64)
        f = (chol @ z)[..., 0].float()
        y = f + self.noise_std * torch.randn(f.shape, generator=generator)
        return TaskBatch(
            x[:, :n_context],
            y[:, :n_context],
            x[:, n_context:],
            y[:, n_context:],
            {"f_query": f[:, n_context:]},
        )

    def posterior_predictive(
        self, x_context: torch.Tensor, y_context: torch.Tensor, x_query: torch.Tensor
    ) -> GaussianPredictive:
        """Closed-form predictive of a noisy observation at each query point (marginals)."""
        prior_variance = self.outputscale**2 + self.noise_std**2
        batch, n_query = x_query.shape[:2]
        if x_context.shape[1] == 0:
            mean = torch.zeros(batch, n_query, dtype=torch.float64)
            return GaussianPredictive(mean, torch.full_like(mean, prior_variance))
        n = x_context.shape[1]
        k_cc = self.kernel(x_context, x_context) + self.noise_std**2 * torch.eye(
            n, dtype=torch.float64
        )
        k_qc = self.kernel(x_query, x_context)
        chol = torch.linalg.cholesky(k_cc)
        alpha = torch.cholesky_solve(y_context.double()[..., None], chol)
        mean = (k_qc @ alpha)[..., 0]
        v = torch.linalg.solve_triangular(chol, k_qc.transpose(1, 2), upper=False)
        variance = prior_variance - (v**2).sum(1)
        return GaussianPredictive(mean, variance.clamp_min(self.noise_std**2))

    def __repr__(self) -> str:
        return (
            f"GPPrior(lengthscale={self.lengthscale}, outputscale={self.outputscale}, "
            f"noise_std={self.noise_std})"
        )
