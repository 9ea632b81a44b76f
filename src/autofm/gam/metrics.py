"""Test metrics of GAMs and the shape-function recovery score on the additive prior."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score, roc_auc_score


def score_classifier(y_true, probabilities: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """ROC AUC (one-vs-rest for multiclass), accuracy and log loss of predicted probabilities."""
    y_true = np.asarray(y_true)
    known = np.isin(y_true, classes)
    y_true, probabilities = y_true[known], probabilities[known]
    predicted = classes[np.argmax(probabilities, axis=1)]
    result = {"accuracy": float(accuracy_score(y_true, predicted))}
    present = np.unique(y_true)
    if len(present) < 2:
        result["roc_auc"] = float("nan")
    elif len(classes) == 2:
        result["roc_auc"] = float(roc_auc_score(y_true == classes[1], probabilities[:, 1]))
    else:
        columns = np.isin(classes, present)
        scores = probabilities[:, columns] / probabilities[:, columns].sum(axis=1, keepdims=True)
        result["roc_auc"] = float(
            roc_auc_score(y_true, scores, multi_class="ovr", labels=classes[columns])
        )
    result["log_loss"] = float(log_loss(y_true, probabilities, labels=classes))
    return {key: result[key] for key in ("roc_auc", "accuracy", "log_loss")}


def score_regressor(y_true, predictions: np.ndarray) -> dict[str, float]:
    """RMSE and R² of predictions."""
    return {
        "rmse": float(np.sqrt(mean_squared_error(y_true, predictions))),
        "r2": float(r2_score(y_true, predictions)),
    }


def recovery_score(estimated: np.ndarray, truth: np.ndarray) -> float:
    """Pearson correlation of estimated and true per-feature contributions over all (row, feature).

    Both are [n_rows, n_features]; each feature is centred first (a GAM's shape functions are
    defined up to a constant each), so the score asks whether the shapes and their relative
    sizes match, and is dominated by the important features.
    """
    estimated = np.asarray(estimated, float)
    truth = np.asarray(truth, float)
    estimated = estimated - estimated.mean(axis=0)
    truth = truth - truth.mean(axis=0)
    denominator = np.sqrt((estimated**2).sum() * (truth**2).sum())
    return float((estimated * truth).sum() / denominator) if denominator > 0 else float("nan")


def per_feature_recovery(estimated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Correlation per feature (NaN where the true shape function is flat)."""
    scores = []
    for j in range(truth.shape[1]):
        a, b = estimated[:, j], truth[:, j]
        if a.std() < 1e-12 or b.std() < 1e-12:
            scores.append(np.nan)
        else:
            scores.append(float(np.corrcoef(a, b)[0, 1]))
    return np.asarray(scores)
