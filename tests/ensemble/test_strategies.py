import numpy as np
import pytest
from scipy.special import softmax

from autofm.core.errors import ValidationError
from autofm.ensemble import (
    AkaikeWeights,
    GreedyEnsemble,
    PseudoBMA,
    Quick,
    RandomK,
    SingleBest,
    SoftmaxWeights,
    Stacking,
    TopK,
)
from autofm.ensemble.metrics import member_losses, nll
from autofm.ensemble.strategies import greedy_selection
from tests.ensemble.conftest import random_predictions


def _brute_force_greedy(predictions, labels, rounds, metric):
    """Reference: rebuild every candidate ensemble from scratch and score it."""
    chosen, trajectory = [], []
    for _ in range(rounds):
        losses = [
            member_losses(
                predictions[:, chosen + [m], :].mean(axis=1, keepdims=True), labels, metric
            )[0]
            for m in range(predictions.shape[1])
        ]
        best = int(np.argmin(losses))
        chosen.append(best)
        trajectory.append(losses[best])
    return chosen, np.asarray(trajectory)


@pytest.mark.parametrize("metric", ["nll", "brier", "error"])
def test_greedy_matches_brute_force(metric):
    predictions, labels = random_predictions(n=120, m=7, c=3, seed=4)
    chosen, reference = _brute_force_greedy(predictions, labels, 12, metric)
    counts, trajectory = greedy_selection(predictions, labels, 12, metric, best_prefix=False)
    np.testing.assert_allclose(trajectory, reference, atol=1e-5)
    np.testing.assert_array_equal(counts, np.bincount(chosen, minlength=7))


def test_greedy_best_prefix_and_weights():
    predictions, labels = random_predictions(n=150, m=6, c=3, seed=5)
    ensembler = GreedyEnsemble(n_rounds=30).fit(predictions, labels)
    trajectory = ensembler.trajectory_
    stop = int(np.argmin(trajectory)) + 1
    assert ensembler.weights_.sum() == pytest.approx(1.0)
    assert np.all(ensembler.weights_ * stop == np.round(ensembler.weights_ * stop))
    proba = ensembler.predict_proba(predictions)
    assert nll(proba, labels) == pytest.approx(trajectory.min())


def test_greedy_ties_go_to_lowest_index():
    predictions, labels = random_predictions(n=100, m=3, c=3, seed=6)
    best = int(np.argmin(member_losses(predictions, labels)))
    duplicated = np.concatenate([predictions[:, [best]], predictions[:, [best]]], axis=1)
    weights = GreedyEnsemble(n_rounds=5).fit(duplicated, labels).weights_
    np.testing.assert_allclose(weights, [1.0, 0.0])


def test_greedy_sorted_initialisation_uses_the_best_models():
    predictions, labels = random_predictions(n=100, m=6, c=3, seed=7)
    order = np.argsort(member_losses(predictions, labels))
    counts, trajectory = greedy_selection(predictions, labels, 3, init_size=3, best_prefix=False)
    assert len(trajectory) == 6 and counts.sum() == 6
    assert np.all(counts[order[:3]] >= 1)


def test_greedy_bagging_is_reproducible_and_convex():
    predictions, labels = random_predictions(n=100, m=8, c=3, seed=8)
    first = GreedyEnsemble(n_rounds=10, n_bags=5, random_state=1).fit(predictions, labels)
    second = GreedyEnsemble(n_rounds=10, n_bags=5, random_state=1).fit(predictions, labels)
    np.testing.assert_array_equal(first.weights_, second.weights_)
    assert first.weights_.sum() == pytest.approx(1.0) and np.all(first.weights_ >= 0)


@pytest.mark.parametrize("metric", ["nll", "error"])
def test_greedy_at_scale_matches_a_float64_reference(metric):
    # the vectorised scorer sums NLL in float32 and scores errors in chunks of 64 models: with
    # N in the thousands and M past two chunks, it must still pick what float64 arithmetic picks
    predictions, labels = random_predictions(n=4000, m=150, c=3, seed=11)
    running, chosen, reference = np.zeros((4000, 3)), [], []
    for size in range(8):
        candidates = (running[:, None, :] + predictions) / (size + 1)
        losses = member_losses(candidates, labels, metric)
        best = int(np.argmin(losses))
        chosen.append(best)
        reference.append(losses[best])
        running += predictions[:, best, :]
    counts, trajectory = greedy_selection(predictions, labels, 8, metric, best_prefix=False)
    np.testing.assert_array_equal(counts, np.bincount(chosen, minlength=150))
    np.testing.assert_allclose(trajectory, reference, rtol=1e-5)


def test_single_best_topk_randomk_quick(predictions):
    P, y = predictions
    order = np.argsort(member_losses(P, y))
    assert np.flatnonzero(SingleBest().fit(P, y).weights_).tolist() == [order[0]]
    top = TopK(k=3).fit(P, y).weights_
    np.testing.assert_allclose(top[order[:3]], 1 / 3)
    assert TopK(k=50).fit(P, y).weights_.min() == pytest.approx(1 / P.shape[1])
    random_a = RandomK(k=3, random_state=0).fit(P, y).weights_
    random_b = RandomK(k=3, random_state=0).fit(P, y).weights_
    np.testing.assert_array_equal(random_a, random_b)
    assert np.count_nonzero(random_a) == 3
    quick = Quick().fit(P, y)
    assert quick.selected_[0] == order[0]
    assert list(quick.selected_) == list(order[: len(quick.selected_)])


def test_quick_stops_at_first_non_improvement():
    rng = np.random.default_rng(0)
    labels = rng.integers(2, size=100)
    perfect = np.eye(2)[labels] * 0.9 + 0.05
    useless = np.full((100, 2), 0.5)
    P = np.stack([useless, perfect, perfect * 0 + [0.5, 0.5]], axis=1)
    assert Quick().fit(P, labels).selected_.tolist() == [1]


def test_akaike_and_pseudo_bma():
    P, y = random_predictions(n=60, m=4, c=3, seed=9)
    loglik = np.log(P[np.arange(60), :, y]).sum(axis=0)
    np.testing.assert_allclose(AkaikeWeights().fit(P, y).weights_, softmax(loglik))
    np.testing.assert_allclose(PseudoBMA(n_bootstrap=0).fit(P, y).weights_, softmax(loglik))
    # equal models get equal weights
    same = np.repeat(P[:, :1], 3, axis=1)
    np.testing.assert_allclose(
        PseudoBMA(n_bootstrap=200, random_state=0).fit(same, y).weights_, 1 / 3
    )
    # the Bayesian bootstrap is less certain than the point estimate on close models
    close = P[:, [2, 3]]
    akaike = AkaikeWeights().fit(close, y).weights_
    bma = PseudoBMA(n_bootstrap=500, random_state=0).fit(close, y).weights_
    assert bma.max() < akaike.max()


def test_softmax_weights_reach_the_grid_optimum():
    P, y = random_predictions(n=150, m=2, c=3, seed=10)
    grid = np.linspace(0, 1, 2001)
    true = P[np.arange(150), :, y]
    losses = [-np.mean(np.log(true @ [g, 1 - g])) for g in grid]
    fitted = SoftmaxWeights().fit(P, y)
    assert fitted.validation_nll_ == pytest.approx(min(losses), abs=1e-5)
    assert fitted.weights_[0] == pytest.approx(grid[int(np.argmin(losses))], abs=2e-3)


def test_stacking_can_undo_a_label_swap_that_weighting_cannot():
    rng = np.random.default_rng(0)
    labels = rng.integers(2, size=300)
    swapped = np.eye(2)[1 - labels] * 0.8 + 0.1  # confidently wrong, always
    noise = rng.dirichlet([1, 1], size=300)
    P = np.stack([swapped, noise], axis=1)
    stack = Stacking().fit(P, labels)
    assert stack.score(P, labels) == 1.0
    assert GreedyEnsemble().fit(P, labels).score(P, labels) < 0.7
    importance = stack.weights(P)
    assert importance.shape == (300, 2) and importance[0, 0] > importance[0, 1]


def test_bad_input(predictions):
    P, y = predictions
    with pytest.raises(ValidationError, match="labels but the predictions have"):
        GreedyEnsemble().fit(P, y[:-1])
    fitted = GreedyEnsemble(n_rounds=3).fit(P, y)
    with pytest.raises(ValidationError, match="fitted on 6"):
        fitted.predict_proba(P[:, :4])
    with pytest.raises(ValidationError, match="classes but"):
        fitted.predict_proba(P[:, :, :2] / P[:, :, :2].sum(axis=2, keepdims=True))
    with pytest.raises(ValidationError, match="do not sum to 1"):
        GreedyEnsemble().fit(P * 0.5, y)
    with pytest.raises(ValidationError, match="logits"):
        GreedyEnsemble().fit(np.log(P), y)
    broken = P.copy()
    broken[3, 2, 0] = np.nan
    with pytest.raises(ValidationError, match=r"model\(s\) \[2\]"):
        GreedyEnsemble().fit(broken, y)
    with pytest.raises(ValidationError, match="integer class indices"):
        GreedyEnsemble().fit(P, y + 5)
    with pytest.raises(ValidationError, match="unknown metric"):
        GreedyEnsemble(metric="auc").fit(P, y)


def test_rounding_is_renormalised(predictions):
    P, y = predictions
    nudged = P * (1 + 5e-4)
    a = SoftmaxWeights().fit(P, y).predict_proba(P)
    b = SoftmaxWeights().fit(nudged, y).predict_proba(nudged)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(b.sum(axis=1), 1.0)


def test_single_model_and_missing_class(predictions):
    P, y = predictions
    for estimator in (GreedyEnsemble(), SoftmaxWeights(), PseudoBMA(random_state=0), Quick()):
        weights = estimator.fit(P[:, :1], y).weights(P[:, :1])
        np.testing.assert_allclose(weights, 1.0)
    keep = y != 2
    with pytest.warns(UserWarning, match=r"no sample of class\(es\) \[2\]"):
        fitted = Stacking().fit(P[keep], y[keep])
    proba = fitted.predict_proba(P)
    assert proba.shape == (len(y), 3) and np.all(proba[:, 2] == 0)


def test_stacking_on_one_sample_says_what_to_do(predictions):
    P, y = predictions
    with pytest.raises(ValidationError, match="at least two samples of two classes"):
        Stacking().fit(P[:1], y[:1])


def test_pseudo_bma_is_deterministic_by_default():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(3), size=(40, 4))
    y = rng.integers(0, 3, 40)
    first, second = PseudoBMA().fit(P, y).weights_, PseudoBMA().fit(P, y).weights_
    np.testing.assert_array_equal(first, second)
