import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autofm.core.errors import ValidationError
from autofm.pfn.bar_distribution import (
    BarDistribution,
    borders_from_samples,
    classification_loss,
)


def _random_case(seed, n_buckets=7):
    generator = torch.Generator().manual_seed(seed)
    widths = 0.1 + torch.rand(n_buckets, generator=generator, dtype=torch.float64)
    borders = torch.cat([torch.zeros(1, dtype=torch.float64), widths.cumsum(0)]) - 1.0
    logits = 2 * torch.randn(3, n_buckets, generator=generator, dtype=torch.float64)
    return borders, logits


def _integrate(values, y):
    return torch.trapezoid(values, y, dim=-1)


@pytest.mark.parametrize("full_support", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_density_integrates_to_one_and_matches_mean_and_variance(full_support, seed):
    borders, logits = _random_case(seed)
    dist = BarDistribution(borders, full_support).double()
    low, high = (borders[0] - 30, borders[-1] + 30) if full_support else (borders[0], borders[-1])
    y = torch.linspace(float(low), float(high), 400_001, dtype=torch.float64)
    density = dist.log_density(logits[:, None, :], y[None, :]).exp()
    assert torch.allclose(_integrate(density, y), torch.ones(3, dtype=torch.float64), atol=2e-4)
    mean = _integrate(density * y, y)
    assert torch.allclose(dist.mean(logits), mean, atol=2e-4)
    variance = _integrate(density * (y - mean[:, None]) ** 2, y)
    assert torch.allclose(dist.variance(logits), variance, rtol=1e-3, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    q=st.floats(1e-4, 1 - 1e-4),
    full_support=st.booleans(),
)
def test_quantile_inverts_the_cdf(seed, q, full_support):
    borders, logits = _random_case(seed)
    dist = BarDistribution(borders, full_support).double()
    y = dist.quantile(logits, q)
    assert torch.allclose(dist.cdf(logits, y), torch.full((3,), q, dtype=torch.float64), atol=1e-6)


def test_cdf_is_monotone_and_reaches_zero_and_one():
    borders, logits = _random_case(3)
    dist = BarDistribution(borders).double()
    y = torch.linspace(-40, 40, 2001, dtype=torch.float64)
    cdf = dist.cdf(logits[:, None, :].expand(3, len(y), -1), y.expand(3, -1))
    assert (cdf.diff(dim=-1) >= -1e-12).all()
    assert cdf[:, 0].max() < 1e-6 and cdf[:, -1].min() > 1 - 1e-6


def test_one_bucket_distribution_is_uniform():
    dist = BarDistribution(torch.tensor([2.0, 5.0]), full_support=False)
    logits = torch.zeros(1, 1)
    assert dist.mean(logits).item() == pytest.approx(3.5)
    assert dist.variance(logits).item() == pytest.approx(9 / 12, rel=1e-5)
    assert dist.log_density(logits, torch.tensor([4.0])).item() == pytest.approx(-math.log(3))
    assert dist.log_density(logits, torch.tensor([5.5])).item() == float("-inf")
    assert dist.quantile(logits, 0.25).item() == pytest.approx(2.75)


def test_tails_are_half_normal_with_half_their_mass_inside_the_outer_bucket():
    borders = torch.tensor([-1.0, 0.0, 1.0, 3.0], dtype=torch.float64)
    dist = BarDistribution(borders).double()
    logits = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64))
    cdf_at = lambda v: dist.cdf(logits, torch.tensor(v, dtype=torch.float64)).item()  # noqa: E731
    assert cdf_at(-1.0) == pytest.approx(0.1, abs=1e-9)  # half of the left bucket's 0.2
    assert 1 - cdf_at(3.0) == pytest.approx(0.15, abs=1e-9)  # half of the right bucket's 0.3
    far = dist.log_density(logits, torch.tensor(-50.0, dtype=torch.float64))
    assert torch.isfinite(far) and far < -100
    # log-density in the left tail is that of a half-normal scaled by the bucket's probability
    scale = 1.0 / 0.6744897501960817
    expected = (
        math.log(0.2) + 0.5 * math.log(2 / math.pi) - math.log(scale) - 0.5 * (2 / scale) ** 2
    )
    assert dist.log_density(
        logits, torch.tensor(-2.0, dtype=torch.float64)
    ).item() == pytest.approx(expected)


def test_sampling_matches_mean_and_quantiles():
    borders, logits = _random_case(5)
    dist = BarDistribution(borders).double()
    draws = dist.sample(logits, 200_000, torch.Generator().manual_seed(0))
    assert draws.shape == (200_000, 3)
    assert torch.allclose(draws.mean(0), dist.mean(logits), atol=0.01)
    median = dist.quantile(logits, 0.5)
    assert torch.allclose(
        (draws <= median).double().mean(0), torch.full((3,), 0.5, dtype=torch.float64), atol=0.01
    )


def test_borders_from_samples_are_quantiles():
    samples = torch.rand(100_000, generator=torch.Generator().manual_seed(0))
    borders = borders_from_samples(samples, 10)
    assert len(borders) == 11
    assert torch.allclose(borders, torch.linspace(0, 1, 11), atol=0.01)
    with pytest.raises(ValidationError):
        borders_from_samples(torch.ones(100), 10)


def test_bad_borders_are_refused():
    with pytest.raises(ValidationError):
        BarDistribution(torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValidationError):
        BarDistribution(torch.tensor([0.0, 1.0]), full_support=True)


def test_loss_is_mean_negative_log_density_and_classification_loss_is_cross_entropy():
    borders, logits = _random_case(7)
    dist = BarDistribution(borders).double()
    y = torch.tensor([-2.0, 0.3, 9.0], dtype=torch.float64)
    assert dist.loss(logits, y).item() == pytest.approx(-dist.log_density(logits, y).mean().item())
    class_logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])
    labels = torch.tensor([[0.0, 1.0]])
    expected = -(torch.log_softmax(class_logits, -1)[0, [0, 1], [0, 1]]).mean()
    assert classification_loss(class_logits, labels).item() == pytest.approx(expected.item())
