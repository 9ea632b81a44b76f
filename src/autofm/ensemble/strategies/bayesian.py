"""Weights from validation log-likelihoods: Akaike weights and pseudo-BMA+ (Bayesian bootstrap)."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from autofm.core.errors import ValidationError
from autofm.ensemble.base import StaticWeightEnsembler, true_class_probabilities
from autofm.ensemble.metrics import PROBABILITY_FLOOR


def _log_likelihoods(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log p_m(y_n | x_n): [N, M]."""
    true = true_class_probabilities(predictions, labels)
    return np.log(np.maximum(true, PROBABILITY_FLOOR))


class AkaikeWeights(StaticWeightEnsembler):
    """w_m ∝ exp(-ΔAIC_m / 2) with AIC_m = -2 · (validation log-likelihood of model m).

    The parameter count is unknown for finetuned models and taken as equal, so the weights are a
    softmax of the summed log-likelihoods; on large validation sets they approach SingleBest.
    """

    def _fit(self, predictions, labels):
        total = _log_likelihoods(predictions, labels).sum(axis=0)
        self.weights_ = softmax(total)


class PseudoBMA(StaticWeightEnsembler):
    """Pseudo-BMA+ (Yao et al., 2018): softmax of the elpd, averaged over Bayesian bootstraps.

    Each bootstrap draws Dirichlet(1, ..., 1) sample weights α and scores model m by
    N · Σ_n α_n log p_m(y_n); averaging the softmaxes shrinks the weights towards models whose
    advantage is not robust. With `n_bootstrap=0` this is plain pseudo-BMA (= Akaike weights).
    The bootstraps are seeded (`random_state=0` by default), so two fits give the same weights;
    pass None for fresh draws each fit.
    """

    def __init__(self, n_bootstrap: int = 1000, random_state: int | None = 0):
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    def _fit(self, predictions, labels):
        if int(self.n_bootstrap) < 0:
            raise ValidationError(f"n_bootstrap must be >= 0, got {self.n_bootstrap}")
        loglik = _log_likelihoods(predictions, labels)
        n = loglik.shape[0]
        if int(self.n_bootstrap) == 0:
            self.weights_ = softmax(loglik.sum(axis=0))
            return
        rng = np.random.default_rng(self.random_state)
        weights = np.zeros(loglik.shape[1])
        for start in range(0, int(self.n_bootstrap), 100):
            draws = rng.dirichlet(np.ones(n), size=min(100, int(self.n_bootstrap) - start))
            elpd = n * draws @ loglik
            weights += softmax(elpd, axis=1).sum(axis=0)
        self.weights_ = weights / weights.sum()
