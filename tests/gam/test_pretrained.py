"""Checks of the shipped checkpoint; skipped when it is absent (the contract tests use a tiny one)."""

import numpy as np
import pytest

from autofm.core.checkpoint import PACKAGE_CHECKPOINT_DIR
from autofm.gam.estimators import DEFAULT_CHECKPOINT, GAMformerClassifier
from autofm.gam.metrics import recovery_score
from autofm.gam.priors import sample_additive_task

pytestmark = pytest.mark.skipif(
    not (PACKAGE_CHECKPOINT_DIR / f"{DEFAULT_CHECKPOINT}.json").is_file(),
    reason="shipped GAMformer checkpoint not present",
)


def test_shipped_model_recovers_additive_shape_functions():
    scores = []
    for seed in range(3):
        task = sample_additive_task(300, 4, np.random.default_rng(100 + seed), signal=3.0)
        gam = GAMformerClassifier().fit(task.x, task.y)
        estimated = gam.explain(task.x)["contributions"]["logit(1.0)"].to_numpy()
        scores.append(recovery_score(estimated, task.contributions))
    assert np.mean(scores) > 0.7


@pytest.mark.slow
def test_tour_step(tmp_path):
    from autofm.gam.tour import step

    result = step(tmp_path, seed=0)
    assert result.metrics["roc_auc"] > 0.9
    assert result.report is not None
