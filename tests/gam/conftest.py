"""A tiny GAMformer trained for a few seconds: contract tests must not depend on the shipped one."""

import pytest

from autofm.gam.model import GAMformerConfig
from autofm.gam.priors import GAMPrior
from autofm.gam.training import Preset, train_gamformer
from autofm.pfn.train import PriorTrainConfig

TINY = GAMformerConfig(n_bins=8, d_model=16, n_layers=1, n_heads=2, d_hidden=32, head_hidden=32)


def tiny_preset(steps: int = 60) -> Preset:
    return Preset(
        TINY,
        GAMPrior(scm_weight=0.5, gp_weight=0.0, additive_weight=0.5, regression_fraction=0.2),
        PriorTrainConfig(
            steps=steps,
            batch_size=8,
            n_context=(20, 60),
            n_query=30,
            n_features=4,
            lr=3e-3,
            warmup_steps=5,
            checkpoint_every=1000,
        ),
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Path (stem, as a string) of a tiny GAMformer trained for 60 steps."""
    folder = tmp_path_factory.mktemp("gam-tiny")
    train_gamformer(tiny_preset(), folder / "run", output=folder / "tiny", device="cpu")
    return str(folder / "tiny")
