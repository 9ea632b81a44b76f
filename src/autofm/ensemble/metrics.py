"""Metrics for ensembles: error, NLL, Brier, ECE, ROC-AUC, reliability; and ensemble diversity."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

PROBABILITY_FLOOR = 1e-15


def _as_labels(labels) -> np.ndarray:
    return np.asarray(labels, dtype=np.int64)


def error(proba: np.ndarray, labels) -> float:
    """Fraction of samples whose most probable class is wrong."""
    return float(np.mean(np.argmax(proba, axis=1) != _as_labels(labels)))


def nll(proba: np.ndarray, labels) -> float:
    """Mean negative log-likelihood of the true class (probabilities floored at 1e-15)."""
    labels = _as_labels(labels)
    true = proba[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(true, PROBABILITY_FLOOR))))


def brier(proba: np.ndarray, labels) -> float:
    """Multiclass Brier score: mean over samples of the squared distance to the one-hot label."""
    labels = _as_labels(labels)
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def reliability_curve(
    proba: np.ndarray, labels, n_bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin (equal width on [0, 1]): mean confidence, accuracy, sample count."""
    labels = _as_labels(labels)
    confidence = proba.max(axis=1)
    correct = (np.argmax(proba, axis=1) == labels).astype(float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, confidence, minlength=n_bins) / counts
        accuracy = np.bincount(bins, correct, minlength=n_bins) / counts
    return mean_confidence, accuracy, counts


def ece(proba: np.ndarray, labels, n_bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence (equal-width bins)."""
    mean_confidence, accuracy, counts = reliability_curve(proba, labels, n_bins)
    filled = counts > 0
    gaps = np.abs(mean_confidence[filled] - accuracy[filled])
    return float(np.sum(counts[filled] * gaps) / counts.sum())


def roc_auc(proba: np.ndarray, labels) -> float:
    """ROC-AUC (binary), or macro one-vs-rest ROC-AUC (multiclass); NaN if a class is absent."""
    labels = _as_labels(labels)
    n_classes = proba.shape[1]
    if np.unique(labels).size < n_classes:
        return float("nan")
    if n_classes == 2:
        return float(roc_auc_score(labels, proba[:, 1]))
    normalised = proba / proba.sum(axis=1, keepdims=True)
    return float(roc_auc_score(labels, normalised, multi_class="ovr", average="macro"))


def all_metrics(proba: np.ndarray, labels) -> dict[str, float]:
    """error, nll, brier, ece and roc_auc in one dict."""
    return {
        "error": error(proba, labels),
        "nll": nll(proba, labels),
        "brier": brier(proba, labels),
        "ece": ece(proba, labels),
        "roc_auc": roc_auc(proba, labels),
    }


def _normalised_weights(n_models: int, weights) -> np.ndarray:
    if weights is None:
        return np.full(n_models, 1.0 / n_models)
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()


def disagreement(predictions: np.ndarray, weights=None) -> float:
    """Weighted share of model pairs (i != j) whose top classes differ, averaged over samples.

    predictions: [N, M, C]; weights: [M] (default uniform). Pairs are weighted by w_i w_j.
    """
    n, m, c = predictions.shape
    w = _normalised_weights(m, weights)
    votes = np.argmax(predictions, axis=2)
    per_class = np.zeros((n, c))
    np.add.at(per_class, (np.repeat(np.arange(n), m), votes.ravel()), np.tile(w, n))
    # sum over ordered pairs i != j of w_i w_j [same vote] = sum_c W_c^2 - sum_i w_i^2
    agreeing = (per_class**2).sum(axis=1) - np.sum(w**2)
    all_pairs = 1.0 - np.sum(w**2)
    if all_pairs <= 0:
        return 0.0
    return float(np.mean(1.0 - agreeing / all_pairs))


def ambiguity(predictions: np.ndarray, weights=None) -> float:
    """Squared-error ambiguity: mean over samples of sum_m w_m ||p_m - p_ensemble||^2.

    With the Brier score this is exact (Krogh & Vedelsby): ensemble Brier = weighted mean member
    Brier - ambiguity, so a larger ambiguity at equal member quality means a better ensemble.
    """
    m = predictions.shape[1]
    w = _normalised_weights(m, weights)
    ensemble = np.einsum("nmc,m->nc", predictions, w)
    spread = np.sum((predictions - ensemble[:, None, :]) ** 2, axis=2)
    return float(np.mean(spread @ w))


SELECTION_METRICS = ("nll", "error", "brier")


def member_losses(predictions: np.ndarray, labels, metric: str = "nll") -> np.ndarray:
    """Each base model's own loss [M] on (predictions [N, M, C], labels) under `metric`."""
    labels = _as_labels(labels)
    n = len(labels)
    if metric == "nll":
        true = predictions[np.arange(n), :, labels]
        return -np.mean(np.log(np.maximum(true, PROBABILITY_FLOOR)), axis=0)
    if metric == "error":
        return np.mean(np.argmax(predictions, axis=2) != labels[:, None], axis=0)
    if metric == "brier":
        onehot = np.zeros((n, 1, predictions.shape[2]))
        onehot[np.arange(n), 0, labels] = 1.0
        return np.mean(np.sum((predictions - onehot) ** 2, axis=2), axis=0)
    raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(SELECTION_METRICS)}")
