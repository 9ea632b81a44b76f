"""Static selection baselines: SingleBest, TopK, RandomK, Quick (all uniform over what they pick)."""

from __future__ import annotations

import numpy as np

from autofm.core.errors import ValidationError
from autofm.ensemble.base import StaticWeightEnsembler
from autofm.ensemble.metrics import SELECTION_METRICS, member_losses


def _check_metric(metric: str) -> None:
    if metric not in SELECTION_METRICS:
        raise ValidationError(
            f"unknown metric {metric!r}; choose one of {', '.join(SELECTION_METRICS)}"
        )


def _uniform(n_models: int, chosen) -> np.ndarray:
    weights = np.zeros(n_models)
    weights[np.asarray(chosen, dtype=int)] = 1.0
    return weights / weights.sum()


def rank_models(predictions: np.ndarray, labels: np.ndarray, metric: str) -> np.ndarray:
    """Model indices from best to worst validation loss; ties keep the lower index first."""
    return np.argsort(member_losses(predictions, labels, metric), kind="stable")


class SingleBest(StaticWeightEnsembler):
    """All weight on the model with the lowest validation loss (the paper's reference)."""

    def __init__(self, metric: str = "nll"):
        self.metric = metric

    def _fit(self, predictions, labels):
        _check_metric(self.metric)
        self.selected_ = rank_models(predictions, labels, self.metric)[:1]
        self.weights_ = _uniform(predictions.shape[1], self.selected_)


class TopK(StaticWeightEnsembler):
    """Uniform average of the K models with the lowest validation loss (K capped at M)."""

    def __init__(self, k: int = 5, metric: str = "nll"):
        self.k = k
        self.metric = metric

    def _fit(self, predictions, labels):
        _check_metric(self.metric)
        if int(self.k) < 1:
            raise ValidationError(f"k must be >= 1, got {self.k}")
        self.selected_ = rank_models(predictions, labels, self.metric)[: int(self.k)]
        self.weights_ = _uniform(predictions.shape[1], self.selected_)


class RandomK(StaticWeightEnsembler):
    """Uniform average of K models drawn at random without replacement (a diversity baseline)."""

    def __init__(self, k: int = 5, random_state: int | None = None):
        self.k = k
        self.random_state = random_state

    def _fit(self, predictions, labels):
        if int(self.k) < 1:
            raise ValidationError(f"k must be >= 1, got {self.k}")
        m = predictions.shape[1]
        rng = np.random.default_rng(self.random_state)
        self.selected_ = np.sort(rng.choice(m, size=min(int(self.k), m), replace=False))
        self.weights_ = _uniform(m, self.selected_)


class Quick(StaticWeightEnsembler):
    """Greedy without replacement in rank order: add the next-best model while the loss improves.

    Models are visited from best to worst; the first one whose addition does not lower the
    validation loss of the uniform average ends the search.
    """

    def __init__(self, metric: str = "nll", max_models: int | None = None):
        self.metric = metric
        self.max_models = max_models

    def _fit(self, predictions, labels):
        _check_metric(self.metric)
        order = rank_models(predictions, labels, self.metric)
        limit = len(order) if self.max_models is None else int(self.max_models)
        running = predictions[:, order[0], :].copy()
        chosen = [int(order[0])]
        best = member_losses(running[:, None, :], labels, self.metric)[0]
        for model in order[1:limit]:
            candidate = (running + predictions[:, model, :]) / (len(chosen) + 1)
            loss = member_losses(candidate[:, None, :], labels, self.metric)[0]
            if loss >= best:
                break
            running += predictions[:, model, :]
            chosen.append(int(model))
            best = loss
        self.selected_ = np.asarray(chosen)
        self.weights_ = _uniform(predictions.shape[1], self.selected_)
