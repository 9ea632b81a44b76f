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
    assert meta["config"]["prior"] == name
    assert model.config == type(model.config).from_dict(meta["config"]["pfn"])


def test_shipped_counting_pfn_counts_like_the_exact_posterior():
    model, _ = load_pfn("counting")
    prior = CountingPrior()
    for k in (0, 3, 10, 30):
        x, y = torch.zeros(1, k, 1), torch.ones(1, k)
        exact = prior.posterior_predictive(x, y, torch.zeros(1, 1, 1)).mean.item()
        assert model.predict_mean(x, y, torch.zeros(1, 1, 1)).item() == pytest.approx(
            exact, abs=0.05
        )
