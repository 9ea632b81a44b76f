"""The ensembler contract and the input checks every strategy shares.

Predictions are arrays of shape [N samples, M models, C classes] holding probabilities.
Rows are checked once, at `fit`/`predict_proba`: values must lie in [0, 1]; each model's row must
sum to 1 within `SUM_TOLERANCE` and is then renormalised exactly (float rounding in saved
predictions is common, logits passed by mistake are not: those are refused). NaN predictions (a
failed model) are refused with the offending model indices; drop them first
(`Pool.usable()` does it for pools).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from autofm.core.errors import ValidationError
from autofm.core.validation import check_array

SUM_TOLERANCE = 1e-3


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax; turns logits (e.g. from the FTC metadataset) into probabilities."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - np.max(logits, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def check_predictions(
    predictions,
    name: str = "P",
    *,
    n_models: int | None = None,
    n_classes: int | None = None,
) -> np.ndarray:
    """Validate base-model probabilities [N, M, C]; return them as float64, rows renormalised."""
    array = check_array(predictions, name, ndim=3, allow_nan=True)
    _, m, c = array.shape
    low, high = array.min(), array.max()  # NaN if any value is NaN: one pass instead of two
    nan_models = np.flatnonzero(np.isnan(array).any(axis=(0, 2))) if np.isnan(low) else []
    if len(nan_models):
        raise ValidationError(
            f"{name} has NaN predictions from model(s) {nan_models[:10].tolist()} (a failed "
            "model?); drop those models first, e.g. with Pool.usable()"
        )
    if c < 2:
        raise ValidationError(
            f"{name} has {c} class column(s); classification needs C >= 2 probability columns "
            "(regression pools are not supported)"
        )
    if n_models is not None and m != n_models:
        raise ValidationError(
            f"{name} has {m} models but the ensembler was fitted on {n_models}; pass the same "
            "models, in the same order, as in fit"
        )
    if n_classes is not None and c != n_classes:
        raise ValidationError(f"{name} has {c} classes but the ensembler was fitted on {n_classes}")
    if low < 0 or high > 1 + SUM_TOLERANCE:
        raise ValidationError(
            f"{name} must hold probabilities in [0, 1] (found values in "
            f"[{low:.3g}, {high:.3g}]); convert logits with "
            "autofm.ensemble.softmax first"
        )
    sums = array.sum(axis=2)
    bad = np.abs(sums - 1) > SUM_TOLERANCE
    if bad.any():
        model = int(np.flatnonzero(bad.any(axis=0))[0])
        raise ValidationError(
            f"{name}: {int(bad.sum())} prediction row(s) do not sum to 1 (first: model {model}, "
            f"sum {sums[:, model][bad[:, model]][0]:.4g}); rows within {SUM_TOLERANCE} of 1 are "
            "renormalised, others are refused: pass probabilities, not logits or scores"
        )
    if isinstance(predictions, np.ndarray) and np.shares_memory(array, predictions):
        return array / sums[..., None]
    array /= sums[..., None]  # our own float64 copy: normalise in place, no second large array
    return array


def check_labels(labels, n_samples: int, n_classes: int, name: str = "y") -> np.ndarray:
    """Integer class indices in [0, C) with one per sample; warn about classes never seen."""
    if labels is None:
        raise ValidationError(
            f"fitting requires labels, but {name} is None; pass the class index "
            f"(0..{n_classes - 1}) of each sample"
        )
    array = check_array(labels, name, ndim=1, dtype=np.float64)
    if len(array) != n_samples:
        raise ValidationError(
            f"{name} has {len(array)} labels but the predictions have {n_samples} samples"
        )
    if not np.all(array == np.round(array)) or array.min() < 0 or array.max() >= n_classes:
        raise ValidationError(
            f"{name} must hold integer class indices 0..{n_classes - 1} matching the prediction "
            f"columns (got values in [{array.min():.3g}, {array.max():.3g}])"
        )
    labels = array.astype(np.int64)
    missing = np.setdiff1d(np.arange(n_classes), labels)
    if missing.size:
        warnings.warn(
            f"{name} has no sample of class(es) {missing.tolist()}; weights are still fitted, "
            "but nothing was learned about those classes",
            UserWarning,
            stacklevel=3,
        )
    return labels


def true_class_probabilities(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """P[n, m, y_n] for every sample and model: [N, M]."""
    return predictions[np.arange(len(labels)), :, labels]


class BaseEnsembler(ClassifierMixin, BaseEstimator):
    """A scikit-learn estimator over base predictions: fit(P_val, y_val), predict_proba(P)."""

    def __sklearn_tags__(self):
        # input is P [N samples, M models, C classes] of probabilities, not a 2-D feature matrix;
        # scikit-learn's checks that generate 2-D data skip estimators that declare this
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.positive_only = True
        return tags

    def fit(self, P, y) -> BaseEnsembler:
        """Learn the ensemble from validation predictions P [N, M, C] and labels y [N]."""
        predictions = check_predictions(P, "P_val")
        n, m, c = predictions.shape
        labels = check_labels(y, n, c, "y_val")
        self.n_models_, self.n_classes_ = m, c
        self.classes_ = np.arange(c)
        self._fit(predictions, labels)
        return self

    def predict_proba(self, P) -> np.ndarray:
        """Ensemble class probabilities [N, C]."""
        check_is_fitted(self, "n_models_")
        predictions = check_predictions(P, "P", n_models=self.n_models_, n_classes=self.n_classes_)
        return self._predict_proba(predictions)

    def predict(self, P) -> np.ndarray:
        """Most probable class per sample [N]."""
        return np.argmax(self.predict_proba(P), axis=1)

    def weights(self, P) -> np.ndarray:
        """Per-sample ensemble weights [N, M] (static strategies repeat one row)."""
        check_is_fitted(self, "n_models_")
        predictions = check_predictions(P, "P", n_models=self.n_models_, n_classes=self.n_classes_)
        return self._weights(predictions)

    def _fit(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_proba(self, predictions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _weights(self, predictions: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class StaticWeightEnsembler(BaseEnsembler):
    """An ensembler that learns one convex weight vector `weights_` [M] for all samples."""

    def _predict_proba(self, predictions: np.ndarray) -> np.ndarray:
        return np.einsum("nmc,m->nc", predictions, self.weights_)

    def _weights(self, predictions: np.ndarray) -> np.ndarray:
        return np.tile(self.weights_, (predictions.shape[0], 1))
