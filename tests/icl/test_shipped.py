"""The shipped checkpoints: present, small, loadable, and close to the exact posteriors."""

import pytest
import torch

from autofm.core.checkpoint import find_pretrained
from autofm.icl.pretrained import RECIPES, load_pfn
from autofm.icl.priors import CountingPrior


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_shipped_checkpoint_loads_and_is_small(name):
    stem = find_pretrained(f"icl-{name}")
    assert stem.with_suffix(".safetensors").stat().st_size < 5_000_000
    model, meta = load_pfn(name)
    assert meta["training"]["prior"] == name
    assert model.config == type(model.config).from_dict(meta["model"])


def test_shipped_counting_pfn_counts_like_the_exact_posterior():
    model, _ = load_pfn("counting")
    prior = CountingPrior()
    for k in (0, 3, 10, 30):
        x, y = torch.zeros(1, k, 1), torch.ones(1, k)
        exact = prior.posterior_predictive(x, y, torch.zeros(1, 1, 1)).mean.item()
        assert model.predict_mean(x, y, torch.zeros(1, 1, 1)).item() == pytest.approx(
            exact, abs=0.05
        )


def test_shipped_gp_pfn_returns_the_prior_predictive_on_an_empty_context():
    model, _ = load_pfn("gp")
    prediction = model.predict(torch.zeros(0, 1), torch.zeros(0), torch.linspace(0, 1, 5)[:, None])
    assert prediction.mean.abs().max().item() < 0.1
    # the prior predictive is N(0, 1.01): compare central quantiles (the variance also depends on
    # the bar distribution's wide half-normal tails)
    assert prediction.quantile(0.9).mean().item() == pytest.approx(1.2816 * 1.01**0.5, abs=0.15)
    assert prediction.quantile(0.1).mean().item() == pytest.approx(-1.2816 * 1.01**0.5, abs=0.15)


@pytest.mark.parametrize("name", ["steps", "gp"])
def test_shipped_regression_pfns_are_near_their_exact_posteriors(name):
    from autofm.icl.experiments import compare
    from autofm.icl.pretrained import make_prior

    model, _ = load_pfn(name)
    result = compare(model, make_prior(name), n_tasks=8, n_query=10, context_sizes=(5, 20), seed=3)
    assert 0 < result["nll_gap"] < 0.5  # an untrained PFN is above 1
