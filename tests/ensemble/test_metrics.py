import itertools

import numpy as np
import pytest

from autofm.ensemble import metrics
from tests.ensemble.conftest import random_predictions


def test_known_values():
    proba = np.array([[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    labels = np.array([0, 0, 1])
    assert metrics.error(proba, labels) == pytest.approx(2 / 3)  # ties go to class 0
    assert metrics.nll(proba, labels) == pytest.approx(
        -(np.log(0.8) + np.log(0.4) + np.log(0.5)) / 3
    )
    expected_brier = (2 * 0.2**2 + 2 * 0.6**2 + 2 * 0.5**2) / 3
    assert metrics.brier(proba, labels) == pytest.approx(expected_brier)
    assert metrics.roc_auc(proba, labels) == pytest.approx(0.5)


def test_nll_is_finite_for_zero_probability():
    assert np.isfinite(metrics.nll(np.array([[1.0, 0.0]]), np.array([1])))


def test_ece_zero_when_calibrated_and_known_when_not():
    # 10 samples at confidence 0.7, 7 of them right: calibrated
    proba = np.tile([0.7, 0.3], (10, 1))
    labels = np.array([0] * 7 + [1] * 3)
    assert metrics.ece(proba, labels) == pytest.approx(0.0)
    # all right at confidence 0.7: gap 0.3
    assert metrics.ece(proba, np.zeros(10, dtype=int)) == pytest.approx(0.3)


def test_roc_auc_nan_when_class_absent():
    proba = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    assert np.isnan(metrics.roc_auc(proba, np.array([0, 2])))


def test_disagreement_matches_brute_force():
    predictions, _ = random_predictions(n=50, m=5, c=3, seed=1)
    weights = np.random.default_rng(2).random(5)
    votes = predictions.argmax(axis=2)
    num = den = 0.0
    for i, j in itertools.permutations(range(5), 2):
        num += weights[i] * weights[j] * np.mean(votes[:, i] != votes[:, j])
        den += weights[i] * weights[j]
    assert metrics.disagreement(predictions, weights) == pytest.approx(num / den)


def test_disagreement_of_identical_models_is_zero():
    predictions, _ = random_predictions(n=30, m=1, c=3)
    assert metrics.disagreement(np.repeat(predictions, 4, axis=1)) == pytest.approx(0.0)


def test_ambiguity_decomposition_of_brier():
    predictions, labels = random_predictions(n=80, m=4, c=3, seed=3)
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    ensemble = np.einsum("nmc,m->nc", predictions, weights)
    member = metrics.member_losses(predictions, labels, "brier") @ weights
    assert metrics.brier(ensemble, labels) == pytest.approx(
        member - metrics.ambiguity(predictions, weights)
    )


@pytest.mark.parametrize("metric", ["nll", "error", "brier"])
def test_member_losses_match_per_model_metrics(metric):
    predictions, labels = random_predictions(n=40, m=3, c=4)
    single = getattr(metrics, metric)
    expected = [single(predictions[:, m, :], labels) for m in range(3)]
    np.testing.assert_allclose(metrics.member_losses(predictions, labels, metric), expected)
