"""The Quick-Tune loop: one more epoch of one candidate per step, in order, never past the last;
EI against a numerical integral; the meta-learned start; refit on a copy; cost awareness."""

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.stats import norm

from autofm.core.errors import ValidationError
from autofm.finetune.optimizer import QuickTuneOptimizer, expected_improvement, portfolio
from autofm.finetune.simulated import simulated_metadataset
from autofm.finetune.surrogates import CostSurrogate, PerformanceSurrogate

EPOCHS = 5
DOMINANT = 7  # a configuration made best on every task


@pytest.fixture(scope="module")
def metadataset():
    md = simulated_metadataset(n_tasks=8, n_configs=20, max_epochs=EPOCHS, seed=4)
    # one configuration dominates everywhere, so meta-learning must rank it high
    md.curves[:, DOMINANT] = np.minimum(md.curves.max(axis=1) + 0.15, 1.0)
    return md


@pytest.fixture(scope="module")
def task(metadataset):
    return metadataset.tasks[-1]


@pytest.fixture(scope="module")
def surrogates(metadataset, task):
    torch.set_num_threads(1)
    training = metadataset.subset([t for t in metadataset.tasks if t != task])
    return (
        PerformanceSurrogate(n_iterations=100, max_conditioning=500).fit(training),
        CostSurrogate(n_iterations=150).fit(training),
    )


def run(optimizer, metadataset, task, steps):
    t = metadataset.task_index(task)
    asked = []
    for _ in range(steps):
        proposal = optimizer.ask()
        if proposal is None:
            break
        c, e = proposal["config_id"], proposal["epoch"]
        assert proposal["config"] == optimizer.candidates[c]
        asked.append((c, e))
        optimizer.tell(c, e, metadataset.curves[t, c, e - 1], metadataset.costs[t, c, e - 1])
    return asked


@pytest.mark.parametrize("mean, std, best", [(0.5, 0.1, 0.55), (0.7, 0.05, 0.6), (0.2, 0.3, 0.9)])
def test_expected_improvement_matches_the_integral(mean, std, best):
    integral, _ = quad(lambda y: (y - best) * norm.pdf(y, mean, std), best, mean + 12 * std)
    got = expected_improvement(np.array([mean]), np.array([std]), np.array([best]))[0]
    assert got == pytest.approx(integral, rel=1e-6, abs=1e-12)


def test_expected_improvement_without_uncertainty_is_the_plain_improvement():
    np.testing.assert_allclose(
        expected_improvement(np.array([0.7, 0.4]), np.zeros(2), 0.5), [0.2, 0]
    )


@pytest.mark.parametrize("refit", [False, True])
def test_epochs_in_order_and_never_past_the_last(metadataset, task, surrogates, refit):
    perf, cost = surrogates
    candidates = metadataset.configs[:6]
    optimizer = QuickTuneOptimizer(
        perf, cost, candidates, metadataset.meta.loc[task], 3, refit=refit, refit_iterations=2
    )
    asked = run(optimizer, metadataset, task, 100)
    assert len(asked) == 6 * 3 and optimizer.ask() is None  # everything, then nothing
    done = {}
    for c, e in asked:
        assert e == done.get(c, 0) + 1 <= 3
        done[c] = e
    history = optimizer.history
    assert list(history["incumbent_score"]) == list(np.maximum.accumulate(history["score"]))
    with pytest.raises(ValidationError, match="max_epochs"):
        optimizer.tell(0, 4, 0.5, 1.0)


def test_tell_refuses_an_epoch_out_of_order(metadataset, task, surrogates):
    optimizer = QuickTuneOptimizer(
        *surrogates, metadataset.configs, metadataset.meta.loc[task], EPOCHS
    )
    with pytest.raises(ValidationError, match="tell epoch 1 next"):
        optimizer.tell(3, 2, 0.5, 1.0)
    with pytest.raises(ValidationError, match="config_id"):
        optimizer.tell(99, 1, 0.5, 1.0)
    with pytest.raises(ValidationError, match="max_epochs"):
        QuickTuneOptimizer(*surrogates, metadataset.configs, metadataset.meta.loc[task], EPOCHS + 1)


def test_starts_from_the_portfolio_and_finds_the_dominant_config(metadataset, task, surrogates):
    perf, cost = surrogates
    meta = metadataset.meta.loc[task]
    ranking = portfolio(perf, cost, metadataset.configs, meta)
    assert DOMINANT in list(ranking["config_id"].iloc[:3])
    assert list(ranking["rank"]) == list(range(1, len(metadataset.configs) + 1))
    assert ranking["predicted_score"].is_monotonic_decreasing
    assert (ranking["predicted_seconds"] > 0).all() and len(
        portfolio(perf, cost, metadataset.configs, meta, n=3)
    ) == 3
    optimizer = QuickTuneOptimizer(perf, cost, metadataset.configs, meta, EPOCHS)
    asked = run(optimizer, metadataset, task, 10)
    # no random start: the meta-learned best, at epoch 1
    assert asked[0] == (ranking["config_id"].iloc[0], 1)
    assert (DOMINANT, 1) in asked
    best = metadataset.curves[metadataset.task_index(task)].max()
    assert optimizer.history["incumbent_score"].iloc[-1] > best - 0.05


def test_refit_changes_a_copy_of_the_surrogate(metadataset, task, surrogates):
    perf, cost = surrogates
    before = [p.detach().clone() for p in perf.model_.parameters()]
    optimizer = QuickTuneOptimizer(
        perf, cost, metadataset.configs, metadataset.meta.loc[task], EPOCHS,
        refit=True, n_initial=2, refit_every=2, refit_iterations=3, seed=1,
    )  # fmt: skip
    assert optimizer.perf is not perf
    asked = run(optimizer, metadataset, task, 2)
    assert [e for _, e in asked] == [1, 1] and optimizer.n_refits_ == 1
    assert len(optimizer.perf.extra_targets_) == 2
    after = list(optimizer.perf.model_.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, after))
    assert all(torch.equal(a, b) for a, b in zip(before, perf.model_.parameters()))
    assert len(perf.extra_targets_) == 0
    run(optimizer, metadataset, task, 2)
    assert optimizer.n_refits_ == 2 and len(optimizer.perf.extra_targets_) == 4
    # a random initial design, reproducible by seed
    again = QuickTuneOptimizer(
        perf, cost, metadataset.configs, metadataset.meta.loc[task], EPOCHS, refit=True, seed=1
    )
    assert again.initial_design_[:2] == optimizer.initial_design_


class FixedCost:
    """A cost surrogate whose seconds per epoch are given."""

    def __init__(self, seconds):
        self.seconds = np.asarray(seconds, dtype=float)

    def predict(self, features, task_meta):
        return self.seconds[: len(features)]


def test_cost_aware_acquisition_divides_by_the_cost(metadataset, task, surrogates):
    perf, _ = surrogates
    meta = metadataset.meta.loc[task]
    first = int(portfolio(perf, None, metadataset.configs, meta)["config_id"].iloc[0])
    cheap = (first + 1) % len(metadataset.configs)
    seconds = np.full(len(metadataset.configs), 1e6)
    seconds[cheap] = 1.0
    choices = {}
    for cost_aware in (True, False):
        optimizer = QuickTuneOptimizer(
            perf, FixedCost(seconds), metadataset.configs, meta, EPOCHS, cost_aware=cost_aware
        )
        step = optimizer.ask()
        optimizer.tell(step["config_id"], 1, 0.3, 1e6)  # the started one is slow too
        choices[cost_aware] = optimizer.ask()["config_id"]
    assert choices[True] == cheap != choices[False]
