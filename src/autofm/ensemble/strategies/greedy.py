"""Greedy ensemble selection with replacement (Caruana et al., 2004), vectorised.

Each round scores every candidate ensemble "current members + model m" for all M models at once
from a running sum of the members' predictions, so a round costs O(N M) for NLL (only the true
class's probability matters; scored in float32) and O(N M C) for Brier and error.

NLL rounds are screened with torch, whose `log` is multi-threaded and SIMD on every CPU (numpy's
float32 `log` is several times slower without AVX-512); numpy then rescores the few candidates
the screen cannot tell apart, so the selection is exactly that of the float32 numpy computation.
"""

from __future__ import annotations

import numpy as np
import torch

from autofm.core.errors import ValidationError
from autofm.ensemble.base import StaticWeightEnsembler, true_class_probabilities
from autofm.ensemble.metrics import PROBABILITY_FLOOR, member_losses
from autofm.ensemble.strategies.static import _check_metric

# Bound on |torch NLL - numpy NLL| relative to mean |log x| over a candidate's samples. Both
# compute the same float32 x; their logs are within a few ulps (2^-24 ≈ 6e-8 relative), and a
# float32 sum errs by at most (its tree depth) × 2^-24 × sum |log x|: a depth under 45 for numpy's
# pairwise and under 90 for torch's cascade summation up to N = 4 million, so the two differ by
# less than 140 × 2^-24 ≈ 8.3e-6 of mean |log x|. The gaps seen are below 3e-7.
SCREEN_TOLERANCE = 1e-5


class _CandidateScorer:
    """Finds the model whose addition to the running sum of members gives the lowest loss."""

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
            self.smallest_true = float(self.true32.min())
            self.screen_buffer = torch.empty(self.true32.shape, dtype=torch.float32)
        if metric == "brier":
            self.squared_norms = np.sum(predictions**2, axis=2)

    def best(self, running_sum: np.ndarray, size: int) -> tuple[int, float]:
        """The best model to add to `size` members summing to `running_sum`, and the new loss.

        Ties go to the lowest model index.
        """
        if self.metric == "nll":
            return self._best_nll(running_sum[np.arange(self.n), self.labels], size)
        losses = (
            self._brier(running_sum, size) if self.metric == "brier" else self._error(running_sum)
        )
        best = int(np.argmin(losses))
        return best, float(losses[best])

    def _best_nll(self, running_true: np.ndarray, size: int) -> tuple[int, float]:
        running_true32 = running_true.astype(np.float32)
        screened = self._screened_nll(running_true32, size)
        # NLL = log k - mean log x with x = S_y + P_my <= S_y + 1, so
        # mean |log x| = -mean log x + 2 mean max(log x, 0) <= NLL - log k + 2 mean log(1 + S_y)
        mean_abs_log = screened - np.log(size + 1) + 2 * np.mean(np.log1p(running_true))
        tolerance = SCREEN_TOLERANCE * np.maximum(mean_abs_log, 0.0)  # >= 0 despite rounding
        contenders = np.flatnonzero(screened - tolerance <= np.min(screened + tolerance))
        losses = self._nll(running_true32, size, contenders)
        winner = int(np.argmin(losses))
        return int(contenders[winner]), float(losses[winner])

    def _nll(self, running_true32: np.ndarray, size: int, models: np.ndarray) -> np.ndarray:
        """NLL of adding each of `models`: the float32 numpy computation that defines selection."""
        # -mean log((S_y + P_my) / k) = -mean log(S_y + P_my) + log k
        sums = self.true32[models] + running_true32
        np.maximum(sums, PROBABILITY_FLOOR * (size + 1), out=sums)
        log_sums = np.log(sums, out=sums).sum(axis=1).astype(np.float64)
        return np.log(size + 1) - log_sums / self.n

    def _screened_nll(self, running_true32: np.ndarray, size: int) -> np.ndarray:
        """`_nll` of every model, computed by torch: equal to it within SCREEN_TOLERANCE."""
        sums = self.screen_buffer
        torch.add(torch.from_numpy(self.true32), torch.from_numpy(running_true32), out=sums)
        floor = PROBABILITY_FLOOR * (size + 1)
        if self.smallest_true < floor:  # otherwise no sum is below the floor: skip a pass
            sums.clamp_(min=floor)
        sums.log_()
        log_sums = sums.sum(dim=1).numpy().astype(np.float64)
        return np.log(size + 1) - log_sums / self.n

    def _brier(self, running_sum: np.ndarray, size: int) -> np.ndarray:
        # ||(S + P_m)/k - e_y||^2 = (|S|^2 + 2 S.P_m + |P_m|^2)/k^2 - 2 (S_y + P_my)/k + 1
        scale = 1.0 / (size + 1)
        running_true = running_sum[np.arange(self.n), self.labels]
        cross = np.einsum("nc,nmc->nm", running_sum, self.predictions)
        norms = np.sum(running_sum**2, axis=1)[:, None] + 2 * cross + self.squared_norms
        per_sample = norms * scale**2 - 2 * scale * (running_true[:, None] + self.true) + 1
        return np.mean(per_sample, axis=0)

    def _error(self, running_sum: np.ndarray) -> np.ndarray:
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
        best, loss = scorer.best(running_sum, len(selections))
        selections.append(best)
        running_sum += predictions[:, best, :]
        trajectory.append(loss)
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
