import math

import numpy as np
import pytest
import torch
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from autofm.core.errors import ValidationError
from autofm.icl.priors import (
    CountingPrior,
    GPPrior,
    GridPrior,
    PhaseSinePrior,
    SineLinePrior,
    StepPrior,
)

SMALL_PRIORS = [
    StepPrior(n_jumps=5, n_levels=3),
    SineLinePrior(n_slopes=3, n_amplitudes=3, n_offsets=3),
    PhaseSinePrior(n_amplitudes=2, n_phases=4),
]


def _brute_force_ppd(prior, x_context, y_context, x_query, y_query):
    """Loop over latent functions one by one: posterior weights, PPD mean and log density."""
    sigma = prior.noise_std
    log_joint = []
    for theta, log_prior in zip(prior.parameters, prior.log_prior):
        f = prior.function(theta, x_context.double())
        residual = (y_context.double() - f) / sigma
        log_joint.append(
            float(log_prior)
            + float((-0.5 * residual**2 - math.log(sigma * math.sqrt(2 * math.pi))).sum())
        )
    log_joint = np.array(log_joint)
    weights = np.exp(log_joint - log_joint.max())
    weights /= weights.sum()
    means = np.stack([prior.function(t, x_query.double()).numpy() for t in prior.parameters])
    mean = weights @ means
    densities = np.exp(-0.5 * ((y_query.numpy() - means) / sigma) ** 2) / (
        sigma * math.sqrt(2 * math.pi)
    )
    return weights, mean, np.log(weights @ densities)


@pytest.mark.parametrize("prior", SMALL_PRIORS, ids=lambda p: type(p).__name__)
def test_vectorised_ppd_equals_brute_force(prior):
    batch = prior.sample(3, 6, 4, 1, torch.Generator().manual_seed(0))
    ppd = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
    log_weights = prior.posterior_log_weights(batch.x_context, batch.y_context)
    for task in range(3):
        weights, mean, log_density = _brute_force_ppd(
            prior,
            batch.x_context[task, :, 0],
            batch.y_context[task],
            batch.x_query[task, :, 0],
            batch.y_query[task],
        )
        assert np.allclose(log_weights[task].exp().numpy(), weights, atol=1e-9)
        assert np.allclose(ppd.mean[task].numpy(), mean, atol=1e-9)
        assert np.allclose(ppd.log_density(batch.y_query)[task].numpy(), log_density, atol=1e-9)


def test_chunked_ppd_equals_unchunked():
    prior = PhaseSinePrior(n_amplitudes=2, n_phases=4)
    batch = prior.sample(7, 5, 3, 1, torch.Generator().manual_seed(1))
    whole = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
    expected_mean, expected_log = whole.mean.clone(), whole.log_density(batch.y_query)
    prior.chunk_elements = 1  # one task per chunk
    chunked = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
    assert torch.allclose(chunked.mean, expected_mean)
    assert torch.allclose(chunked.log_density(batch.y_query), expected_log)


def test_fast_step_ppd_equals_the_generic_grid_computation():
    prior = StepPrior()
    batch = prior.sample(3, 15, 10, 1, torch.Generator().manual_seed(10))
    fast = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
    generic = GridPrior.posterior_predictive(prior, batch.x_context, batch.y_context, batch.x_query)
    assert torch.allclose(fast.mean, generic.mean, atol=1e-10)
    assert torch.allclose(fast.variance, generic.variance, atol=1e-10)
    assert torch.allclose(
        fast.log_density(batch.y_query), generic.log_density(batch.y_query), atol=1e-9
    )
    with pytest.raises(ValidationError, match="odd"):
        StepPrior(n_levels=4)


def test_mixture_density_integrates_to_one_and_variance_matches():
    prior = StepPrior(n_jumps=5, n_levels=3)
    batch = prior.sample(2, 3, 1, 1, torch.Generator().manual_seed(2))
    ppd = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
    y = torch.linspace(-4, 4, 40_001, dtype=torch.float64)
    # evaluate density at every y as a separate "query" at the same x
    ppd_many = prior.posterior_predictive(
        batch.x_context, batch.y_context, batch.x_query.expand(2, len(y), 1)
    )
    density = ppd_many.log_density(y.expand(2, -1)).exp()
    assert torch.allclose(
        torch.trapezoid(density, y), torch.ones(2, dtype=torch.float64), atol=1e-6
    )
    mean = torch.trapezoid(density * y, y)
    assert torch.allclose(mean, ppd.mean[:, 0], atol=1e-6)
    variance = torch.trapezoid(density * (y - mean[:, None]) ** 2, y)
    assert torch.allclose(variance, ppd.variance[:, 0], atol=1e-6)


def test_empty_context_gives_the_prior_predictive():
    prior = SineLinePrior(n_slopes=3, n_amplitudes=3, n_offsets=3)
    x_query = torch.rand(1, 5, 1, generator=torch.Generator().manual_seed(3))
    ppd = prior.posterior_predictive(torch.zeros(1, 0, 1), torch.zeros(1, 0), x_query)
    prior_mean = prior.log_prior.exp() @ prior.function(
        prior.parameters[:, None, :], x_query[0, :, 0].double()
    )
    assert torch.allclose(ppd.mean[0], prior_mean)
    assert prior.family_posterior(torch.zeros(1, 0, 1), torch.zeros(1, 0)).item() == pytest.approx(
        0.5
    )


def test_family_posterior_finds_the_family_that_generated_the_data():
    prior = SineLinePrior()
    x = torch.rand(2, 40, 1, generator=torch.Generator().manual_seed(4))
    line = 0.8 * x[0, :, 0] - 0.2
    sine = 0.4 * torch.sin(2 * math.pi * x[1, :, 0]) + 0.1
    noise = 0.1 * torch.randn(2, 40, generator=torch.Generator().manual_seed(5))
    p_sine = prior.family_posterior(x, torch.stack([line, sine]) + noise)
    assert p_sine[0] < 0.01 and p_sine[1] > 0.99


def test_prior_draws_have_the_stated_noise_and_shapes():
    for prior in (StepPrior(), SineLinePrior(), PhaseSinePrior(), GPPrior()):
        batch = prior.sample(64, 10, 30, 1, torch.Generator().manual_seed(6))
        assert batch.x_context.shape == (64, 10, 1) and batch.y_query.shape == (64, 30)
        assert batch.y_context.dtype == torch.float32
        residual = batch.y_query - batch.metadata["f_query"]
        assert residual.std().item() == pytest.approx(0.1, rel=0.05)


def test_counting_ppd_is_close_to_laplace_and_equals_the_exact_sum():
    prior = CountingPrior()
    y_context = torch.tensor([[1.0] * 7 + [0.0] * 3])
    ppd = prior.posterior_predictive(torch.zeros(1, 10, 1), y_context, torch.zeros(1, 2, 1))
    p = prior.parameters[:, 0]
    expected = (p**8 * (1 - p) ** 3).sum() / (p**7 * (1 - p) ** 3).sum()
    assert ppd.mean[0, 0].item() == pytest.approx(expected.item(), abs=1e-12)
    assert ppd.mean[0, 0].item() == pytest.approx(8 / 12, abs=2e-3)
    assert ppd.log_density(torch.tensor([[1.0, 0.0]]))[0].exp().sum().item() == pytest.approx(1.0)
    draws = prior.sample(2000, 0, 50, 1, torch.Generator().manual_seed(7))
    assert set(draws.y_query.unique().tolist()) == {0.0, 1.0}
    assert draws.y_query.mean().item() == pytest.approx(0.5, abs=0.03)


def test_gp_posterior_matches_scikit_learn():
    prior = GPPrior(lengthscale=0.25, outputscale=1.0, noise_std=0.1)
    batch = prior.sample(1, 12, 20, 1, torch.Generator().manual_seed(8))
    kernel = ConstantKernel(1.0, "fixed") * RBF(0.25, "fixed") + WhiteKernel(0.01, "fixed")
    gp = GaussianProcessRegressor(kernel, optimizer=None, alpha=1e-10)
    gp.fit(batch.x_context[0].numpy(), batch.y_context[0].numpy())
    mean, std = gp.predict(batch.x_query[0].numpy(), return_std=True)  # std includes the noise
    ppd = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
    assert np.allclose(ppd.mean[0].numpy(), mean, atol=1e-5)
    assert np.allclose(ppd.variance[0].sqrt().numpy(), std, atol=1e-5)


def test_gp_empty_context_and_draw_covariance():
    prior = GPPrior()
    empty = prior.posterior_predictive(torch.zeros(2, 0, 1), torch.zeros(2, 0), torch.rand(2, 3, 1))
    assert torch.allclose(empty.mean, torch.zeros(2, 3, dtype=torch.float64))
    assert torch.allclose(empty.variance, torch.full((2, 3), 1.01, dtype=torch.float64))
    batch = prior.sample(4000, 0, 2, 1, torch.Generator().manual_seed(9))
    assert batch.y_query.var().item() == pytest.approx(1.01, rel=0.08)


@pytest.mark.parametrize("prior", [StepPrior(n_jumps=5, n_levels=3), GPPrior()])
def test_predictive_cdf_is_the_integral_of_the_density(prior):
    batch = prior.sample(2, 4, 1, 1, torch.Generator().manual_seed(3))
    y = torch.linspace(-6, 6, 60_001, dtype=torch.float64)
    many = prior.posterior_predictive(
        batch.x_context, batch.y_context, batch.x_query.expand(2, len(y), 1)
    )
    density = many.log_density(y.expand(2, -1)).exp()
    thresholds = y[[26_500, 30_000, 32_000, 36_500]]  # grid points, so the integral ends there
    one = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
    cdf = one.cdf(thresholds.expand(2, 1, -1))[:, 0]  # [2, 4]
    for k, t in enumerate(thresholds):
        below = y <= t
        integral = torch.trapezoid(density[:, below], y[below])
        assert torch.allclose(cdf[:, k], integral, atol=1e-5)
