"""The torch-screened greedy selection picks exactly what the plain numpy computation picks."""

import numpy as np
import pytest

from autofm.ensemble.metrics import PROBABILITY_FLOOR, member_losses
from autofm.ensemble.strategies import GreedyEnsemble, greedy, greedy_selection
from tests.ensemble.conftest import random_predictions


def _reference_losses(predictions, labels, running_sum, size, metric):
    """Every candidate's loss, as greedy.py computed it before the torch screen (numpy only)."""
    n = len(labels)
    scale = 1.0 / (size + 1)
    true = predictions[np.arange(n), :, labels]
    running_true = running_sum[np.arange(n), labels]
    if metric == "nll":
        true32 = np.ascontiguousarray(true.T, dtype=np.float32)
        sums = np.add(true32, running_true[None, :].astype(np.float32))
        np.maximum(sums, PROBABILITY_FLOOR * (size + 1), out=sums)
        np.log(sums, out=sums)
        return np.log(size + 1) - sums.sum(axis=1).astype(np.float64) / n
    if metric == "brier":
        cross = np.einsum("nc,nmc->nm", running_sum, predictions)
        squared_norms = np.sum(predictions**2, axis=2)
        norms = np.sum(running_sum**2, axis=1)[:, None] + 2 * cross + squared_norms
        per_sample = norms * scale**2 - 2 * scale * (running_true[:, None] + true) + 1
        return np.mean(per_sample, axis=0)
    wrong = np.empty(predictions.shape[1])
    for start in range(0, len(wrong), 64):
        block = running_sum[:, None, :] + predictions[:, start : start + 64, :]
        wrong[start : start + 64] = np.mean(np.argmax(block, axis=2) != labels[:, None], axis=0)
    return wrong


def _reference_selection(
    predictions, labels, n_rounds=50, metric="nll", init_size=0, best_prefix=True
):
    """greedy_selection as it was before the torch screen: scores all M candidates in numpy."""
    n, m, c = predictions.shape
    selections = []
    if init_size > 0:
        order = np.argsort(member_losses(predictions, labels, metric), kind="stable")
        selections = [int(i) for i in order[: min(int(init_size), m)]]
    running_sum = predictions[:, selections, :].sum(axis=1) if selections else np.zeros((n, c))
    trajectory = []
    for size in range(len(selections)):
        prefix = predictions[:, selections[: size + 1], :].mean(axis=1, keepdims=True)
        trajectory.append(float(member_losses(prefix, labels, metric)[0]))
    for _ in range(int(n_rounds)):
        losses = _reference_losses(predictions, labels, running_sum, len(selections), metric)
        best = int(np.argmin(losses))
        selections.append(best)
        running_sum += predictions[:, best, :]
        trajectory.append(float(losses[best]))
    losses_so_far = np.asarray(trajectory)
    stop = int(np.argmin(losses_so_far)) + 1 if best_prefix else len(selections)
    counts = np.bincount(np.asarray(selections[:stop], dtype=int), minlength=m).astype(float)
    return counts, losses_so_far


def _pool_with_ties_and_extremes(n, m, c, seed):
    """Random models plus exact copies, a true-class twin and a one-hot (0/1) model."""
    predictions, labels = random_predictions(n=n, m=m, c=c, seed=seed)
    copy = predictions[:, int(np.argmin(member_losses(predictions, labels))), :]
    twin = copy.copy()
    if c > 2:  # one wrong class's mass moved onto another: ties the copy under NLL only
        first, second = (labels + 1) % c, (labels + 2) % c
        twin[np.arange(n), first] += twin[np.arange(n), second]
        twin[np.arange(n), second] = 0.0
    # one-hot on the model's own argmax: exact 0s and 1s, a true-class probability of 0 when wrong
    onehot = np.eye(c)[np.argmax(predictions[:, 0, :], axis=1)]
    # extra models before and after the random ones, so that tie-breaking by index matters
    return np.concatenate(
        [copy[:, None], twin[:, None], predictions, onehot[:, None], copy[:, None]], axis=1
    ), labels


def _pool_with_near_twins(n, m, c, seed, n_twins=40):
    """Random models plus copies of the best one with a few probabilities moved by 1-3 ulps.

    Their float32 losses tie or differ in the last bits, where torch's and numpy's differ too.
    """
    predictions, labels = random_predictions(n=n, m=m, c=c, seed=seed)
    rng = np.random.default_rng(seed)
    best = predictions[:, int(np.argmin(member_losses(predictions, labels))), :]
    twins = np.repeat(best[:, None, :], n_twins, axis=1)
    for twin in range(n_twins):
        samples = rng.choice(n, size=20, replace=False)
        ulps = rng.choice([-3, -2, -1, 1, 2, 3], size=20) * 2.0**-23
        true = best[samples, labels[samples]]
        step = ulps * np.minimum(true, 1 - true)
        twins[samples, twin, labels[samples]] += step
        twins[samples, twin, (labels[samples] + 1) % c] -= step
    return np.concatenate([predictions, twins], axis=1), labels


POOLS = {
    "binary": lambda: _pool_with_ties_and_extremes(n=500, m=12, c=2, seed=1),
    "three-class": lambda: _pool_with_ties_and_extremes(n=700, m=15, c=3, seed=2),
    "ten-class": lambda: _pool_with_ties_and_extremes(n=1500, m=30, c=10, seed=3),
    "near-twins": lambda: _pool_with_near_twins(n=3000, m=10, c=4, seed=3),
    "wide": lambda: random_predictions(n=3000, m=120, c=4, seed=4),
}


@pytest.mark.parametrize("pool", sorted(POOLS))
@pytest.mark.parametrize("metric", ["nll", "brier", "error"])
@pytest.mark.parametrize(("init_size", "best_prefix"), [(0, False), (3, True)])
def test_selection_matches_the_plain_numpy_reference(pool, metric, init_size, best_prefix):
    predictions, labels = POOLS[pool]()
    args = (predictions, labels, 25, metric, init_size, best_prefix)
    counts, trajectory = greedy_selection(*args)
    reference_counts, reference_trajectory = _reference_selection(*args)
    np.testing.assert_array_equal(counts, reference_counts)
    np.testing.assert_array_equal(trajectory, reference_trajectory)


@pytest.mark.parametrize("n_bags", [1, 4])
def test_fitted_weights_match_the_plain_numpy_reference(monkeypatch, n_bags):
    predictions, labels = _pool_with_ties_and_extremes(n=800, m=20, c=5, seed=5)
    fitted = GreedyEnsemble(n_rounds=30, n_bags=n_bags, random_state=0).fit(predictions, labels)
    monkeypatch.setattr(greedy, "greedy_selection", _reference_selection)
    reference = GreedyEnsemble(n_rounds=30, n_bags=n_bags, random_state=0).fit(predictions, labels)
    np.testing.assert_array_equal(fitted.weights_, reference.weights_)


@pytest.mark.parametrize("pool", ["near-twins", "ten-class"])
def test_any_screen_error_within_the_tolerance_leaves_the_selection_unchanged(monkeypatch, pool):
    # a screen off by up to half its tolerance (in random directions) changes nothing
    predictions, labels = POOLS[pool]()
    rng = np.random.default_rng(0)
    screen = greedy._CandidateScorer._screened_nll

    def perturbed_screen(self, running_true32, size):
        sums = np.maximum(self.true32 + running_true32, PROBABILITY_FLOOR * (size + 1))
        mean_abs_log = np.mean(np.abs(np.log(sums.astype(np.float64))), axis=1)
        error = 0.5 * greedy.SCREEN_TOLERANCE * mean_abs_log * rng.uniform(-1, 1, len(sums))
        return screen(self, running_true32, size) + error

    monkeypatch.setattr(greedy._CandidateScorer, "_screened_nll", perturbed_screen)
    counts, trajectory = greedy_selection(predictions, labels, 25, best_prefix=False)
    reference_counts, reference_trajectory = _reference_selection(
        predictions, labels, 25, best_prefix=False
    )
    np.testing.assert_array_equal(counts, reference_counts)
    np.testing.assert_array_equal(trajectory, reference_trajectory)


def test_exact_copies_tie_to_the_lowest_index():
    predictions, labels = random_predictions(n=400, m=5, c=3, seed=6)
    copies = np.repeat(predictions, 3, axis=1)  # models 3j, 3j+1, 3j+2 are identical
    counts, _ = greedy_selection(copies, labels, 20, best_prefix=False)
    assert np.all(counts.reshape(-1, 3)[:, 1:] == 0)


@pytest.mark.parametrize("size", [0, 1, 7, 40])
def test_screen_is_within_its_tolerance_of_the_numpy_losses(size):
    # the property the shortlist relies on, on pools with exact zeros (log of the floor, ~ -34)
    predictions, labels = _pool_with_ties_and_extremes(n=5000, m=40, c=10, seed=7)
    rng = np.random.default_rng(size)
    members = rng.integers(predictions.shape[1], size=size)
    running_sum = predictions[:, members, :].sum(axis=1)
    scorer = greedy._CandidateScorer(predictions, labels, "nll")
    running_true32 = running_sum[np.arange(len(labels)), labels].astype(np.float32)
    screened = scorer._screened_nll(running_true32, size)
    exact = scorer._nll(running_true32, size, np.arange(predictions.shape[1]))
    subset = np.array([5, 2, 31])
    np.testing.assert_array_equal(scorer._nll(running_true32, size, subset), exact[subset])
    np.testing.assert_array_equal(
        exact, _reference_losses(predictions, labels, running_sum, size, "nll")
    )
    sums = np.maximum(scorer.true32 + running_true32, PROBABILITY_FLOOR * (size + 1))
    mean_abs_log = np.mean(np.abs(np.log(sums.astype(np.float64))), axis=1)
    assert np.all(np.abs(screened - exact) <= greedy.SCREEN_TOLERANCE * mean_abs_log)
