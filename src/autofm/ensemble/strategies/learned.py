"""Learned combiners: static softmax weights fitted on NLL (model averaging), and stacking."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from autofm.core.errors import ValidationError
from autofm.ensemble.base import BaseEnsembler, StaticWeightEnsembler, true_class_probabilities
from autofm.ensemble.metrics import PROBABILITY_FLOOR


class SoftmaxWeights(StaticWeightEnsembler):
    """Static model-averaging weights w = softmax(θ) minimising validation NLL (+ l2 · |θ|²).

    The NLL of a convex mixture is convex in w, so L-BFGS from uniform weights finds the optimum
    (up to the softmax parametrisation never reaching exact zeros).
    """

    def __init__(self, l2: float = 0.0, max_iter: int = 500):
        self.l2 = l2
        self.max_iter = max_iter

    def _fit(self, predictions, labels):
        true = true_class_probabilities(predictions, labels)
        l2 = float(self.l2)

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w = softmax(theta)
            mixed = np.maximum(true @ w, PROBABILITY_FLOOR)
            loss = -np.mean(np.log(mixed)) + l2 * theta @ theta
            grad_w = -np.mean(true / mixed[:, None], axis=0)
            grad_theta = w * (grad_w - w @ grad_w) + 2 * l2 * theta
            return loss, grad_theta

        result = minimize(
            objective,
            np.zeros(predictions.shape[1]),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": int(self.max_iter)},
        )
        self.weights_ = softmax(result.x)
        self.validation_nll_ = float(result.fun - l2 * result.x @ result.x)


class Stacking(BaseEnsembler):
    """A scikit-learn classifier on the flattened predictions [N, M·C] (logistic regression default).

    `weights(P)` returns each model's share of the meta-learner's absolute coefficients (one row
    for every sample): an importance, not a convex mixture. Classes never seen in y_val get
    probability 0.
    """

    def __init__(self, meta_learner=None, features: str = "log"):
        self.meta_learner = meta_learner
        self.features = features

    def _design(self, predictions: np.ndarray) -> np.ndarray:
        flat = predictions.reshape(predictions.shape[0], -1)
        if self.features == "log":
            return np.log(np.maximum(flat, 1e-6))
        if self.features == "proba":
            return flat
        raise ValidationError(f"features must be 'log' or 'proba', got {self.features!r}")

    def _fit(self, predictions, labels):
        if len(labels) < 2 or len(np.unique(labels)) < 2:
            raise ValidationError(
                "stacking fits a classifier on the validation predictions: it needs at least two "
                f"samples of two classes, got {len(labels)} sample(s) of "
                f"{len(np.unique(labels))} class(es); use more validation data or another method"
            )
        learner = self.meta_learner
        if learner is None:
            learner = LogisticRegression(C=1.0, max_iter=2000)
        self.meta_learner_ = clone(learner).fit(self._design(predictions), labels)

    def _predict_proba(self, predictions):
        known = self.meta_learner_.predict_proba(self._design(predictions))
        proba = np.zeros((predictions.shape[0], self.n_classes_))
        proba[:, np.asarray(self.meta_learner_.classes_, dtype=int)] = known
        return proba

    def _weights(self, predictions):
        coef = getattr(self.meta_learner_, "coef_", None)
        if coef is None:
            importance = np.full(self.n_models_, 1.0)
        else:
            per_feature = np.abs(np.atleast_2d(coef)).sum(axis=0)
            importance = per_feature.reshape(self.n_models_, self.n_classes_).sum(axis=1)
        if importance.sum() <= 0:
            importance = np.ones(self.n_models_)
        return np.tile(importance / importance.sum(), (predictions.shape[0], 1))
