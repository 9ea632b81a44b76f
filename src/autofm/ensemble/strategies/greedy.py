"""Greedy ensemble selection with replacement (Caruana et al., 2004), vectorised.

Each round scores every candidate ensemble "current members + model m" for all M models at once
from a running sum of the members' predictions, so a round costs O(N M) for NLL (only the true
class's probability matters; scored in float32) and O(N M C) for Brier and error.
"""

from __future__ import annotations

import numpy as np

from autofm.core.errors import ValidationError
from autofm.ensemble.base import StaticWeightEnsembler, true_class_probabilities
from autofm.ensemble.metrics import PROBABILITY_FLOOR, member_losses
from autofm.ensemble.strategies.static import _check_metric


class _CandidateScorer:
    """Loss of (running_sum + P_m) / (size + 1) for every model m, given the running sum."""

    def __init__(self, predictions: np.ndarray, labels: np.ndarray, metric: str):
        self.metric = metric
        self.labels = labels
        self.predictions = predictions
        self.n = len(labels)
        self.true = true_class_probabilities(predictions, labels)
        if metric == "nll":
            # float32 halves the memory traffic of the O(N M) pass that dominates a round
            # model-major layout: the per-model sum is a contiguous (pairwise, accurate) reduction
            self.true32 = np.ascontiguousarray(self.true.T, dtype=np.float32)
            self.buffer = np.empty_like(self.true32)
        if metric == "brier":
            self.squared_norms = np.sum(predictions**2, axis=2)

    def losses(self, running_sum: np.ndarray, size: int) -> np.ndarray:
        scale = 1.0 / (size + 1)
        running_true = running_sum[np.arange(self.n), self.labels]
        if self.metric == "nll":
            # -mean log((S_y + P_my) / k) = -mean log(S_y + P_my) + log k, computed in place
            np.add(self.true32, running_true[None, :].astype(np.float32), out=self.buffer)
            np.maximum(self.buffer, PROBABILITY_FLOOR * (size + 1), out=self.buffer)
            np.log(self.buffer, out=self.buffer)
            log_sums = self.buffer.sum(axis=1).astype(np.float64)
            return np.log(size + 1) - log_sums / self.n
        if self.metric == "brier":
            # ||(S + P_m)/k - e_y||^2 = (|S|^2 + 2 S.P_m + |P_m|^2)/k^2 - 2 (S_y + P_my)/k + 1
            cross = np.einsum("nc,nmc->nm", running_sum, self.predictions)
            norms = np.sum(running_sum**2, axis=1)[:, None] + 2 * cross + self.squared_norms
            per_sample = norms * scale**2 - 2 * scale * (running_true[:, None] + self.true) + 1
            return np.mean(per_sample, axis=0)
        wrong = np.empty(self.predictions.shape[1])
        for start in range(0, len(wrong), 64):  # chunks bound the [N, 64, C] temporary
            block = running_sum[:, None, :] + self.predictions[:, start : start + 64, :]
            wrong[start : start + 64] = np.mean(
                np.argmax(block, axis=2) != self.labels[:, None], axis=0
            )
        return wrong


def greedy_selection(
    predictions: np.ndarray,
    labels: np.ndarray,
    n_rounds: int = 50,
    metric: str = "nll",
    init_size: int = 0,
    best_prefix: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Run greedy selection; return (counts per model [M], validation loss after each addition).

    Ties go to the lowest model index, so the result is deterministic. With `init_size` > 0 the
    ensemble starts from the `init_size` individually best models (each added once). With
    `best_prefix` the returned counts are those of the prefix with the lowest loss (the first one
    on ties), as AutoGluon does; otherwise those after the last round.
    """
    _check_metric(metric)
    n, m, c = predictions.shape
    scorer = _CandidateScorer(predictions, labels, metric)
    selections: list[int] = []
    if init_size > 0:
        order = np.argsort(member_losses(predictions, labels, metric), kind="stable")
        selections = [int(i) for i in order[: min(int(init_size), m)]]
    running_sum = predictions[:, selections, :].sum(axis=1) if selections else np.zeros((n, c))
    trajectory: list[float] = []
    for size in range(len(selections)):
        prefix = predictions[:, selections[: size + 1], :].mean(axis=1, keepdims=True)
        trajectory.append(float(member_losses(prefix, labels, metric)[0]))
    for _ in range(int(n_rounds)):
        losses = scorer.losses(running_sum, len(selections))
        best = int(np.argmin(losses))
        selections.append(best)
        running_sum += predictions[:, best, :]
        trajectory.append(float(losses[best]))
    losses_so_far = np.asarray(trajectory)
    stop = int(np.argmin(losses_so_far)) + 1 if best_prefix else len(selections)
    counts = np.bincount(np.asarray(selections[:stop], dtype=int), minlength=m).astype(float)
    return counts, losses_so_far


class GreedyEnsemble(StaticWeightEnsembler):
    """Caruana's greedy ensemble selection with replacement; weights are selection counts.

    Parameters: `n_rounds` additions after the optional sorted initialisation with the
    `init_size` best models; `metric` in nll/brier/error; `n_bags` > 1 repeats the selection on
    random subsets of `bag_fraction` of the models and averages the weights (Caruana's bagging);
    `best_prefix` keeps the best prefix of the selection sequence.
    """

    def __init__(
        self,
        n_rounds: int = 50,
        metric: str = "nll",
        init_size: int = 0,
        n_bags: int = 1,
        bag_fraction: float = 0.5,
        best_prefix: bool = True,
        random_state: int | None = None,
    ):
        self.n_rounds = n_rounds
        self.metric = metric
        self.init_size = init_size
        self.n_bags = n_bags
        self.bag_fraction = bag_fraction
        self.best_prefix = best_prefix
        self.random_state = random_state

    def _fit(self, predictions, labels):
        _check_metric(self.metric)
        if int(self.n_rounds) < 1 or int(self.n_bags) < 1:
            raise ValidationError("n_rounds and n_bags must be >= 1")
        if not 0 < float(self.bag_fraction) <= 1:
            raise ValidationError(f"bag_fraction must be in (0, 1], got {self.bag_fraction}")
        m = predictions.shape[1]
        if int(self.n_bags) == 1:
            counts, trajectory = greedy_selection(
                predictions, labels, self.n_rounds, self.metric, self.init_size, self.best_prefix
            )
            self.weights_ = counts / counts.sum()
            self.trajectory_ = trajectory
            return
        rng = np.random.default_rng(self.random_state)
        bag_size = max(1, int(round(float(self.bag_fraction) * m)))
        weights = np.zeros(m)
        for _ in range(int(self.n_bags)):
            members = np.sort(rng.choice(m, size=bag_size, replace=False))
            counts, _ = greedy_selection(
                predictions[:, members, :],
                labels,
                self.n_rounds,
                self.metric,
                self.init_size,
                self.best_prefix,
            )
            weights[members] += counts / counts.sum()
        self.weights_ = weights / weights.sum()
        self.trajectory_ = None
