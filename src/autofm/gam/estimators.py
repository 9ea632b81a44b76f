"""scikit-learn estimators that fit a GAM with one forward pass of a pretrained GAMformer.

`fit` checks and encodes the table (`encoding.py`), bins every feature at the quantiles of the
training rows (`binning.py`), runs the model on them, on averaged subsamples above
`max_context_rows` (`passes.py`), scales each shape function by a cross-fitted factor
(`shrinkage.py`) and stores the shape functions as tables centred on the training rows.
`predict_proba`/`predict` are a look-up per feature and a sum, so a fitted estimator no longer
needs the network. NaN falls into an extra bin with its own shape value; constant and all-missing
columns get a zero shape function and are not passed to the model. See docs/gam.md.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from autofm.core.checkpoint import load_model
from autofm.core.errors import ValidationError
from autofm.core.validation import check_consistent_length, check_finite
from autofm.gam.binning import apply_bins, apply_column_bins, column_bin_edges, column_ranges
from autofm.gam.encoding import ColumnEncoding, check_X, target_vector
from autofm.gam.model import GAMformer, build_gamformer
from autofm.gam.passes import average_shape_tables, rows_per_pass, subsamples
from autofm.gam.shrinkage import Passes, crossfit_scales

DEFAULT_CHECKPOINT = "gamformer-cpu"


@functools.lru_cache(maxsize=4)
def _load_model_cached(checkpoint: str) -> GAMformer:
    model, _ = load_model(checkpoint, kind=GAMformer.checkpoint_kind, build=build_gamformer)
    return model


def load_gamformer(checkpoint: str | Path = DEFAULT_CHECKPOINT) -> GAMformer:
    """The GAMformer in `checkpoint` (a shipped name or a checkpoint path), in eval mode."""
    return _load_model_cached(str(checkpoint))


class _GAMformerBase(BaseEstimator):
    """Shared fitting: encoding, binning, subsample-averaged forward passes, shape tables."""

    _regression = False

    def __init__(
        self,
        checkpoint: str = DEFAULT_CHECKPOINT,
        max_context_rows: int = 500,
        n_subsamples: int = 4,
        max_cells: int = 2_000_000,
        device: str = "cpu",
        random_state: int | None = 0,
        shrinkage: str = "crossfit",
        shrinkage_folds: int = 2,
        min_class_share: float = 0.0,
    ):
        self.checkpoint = checkpoint
        self.max_context_rows = max_context_rows
        self.n_subsamples = n_subsamples
        self.max_cells = max_cells
        self.device = device
        self.random_state = random_state
        self.shrinkage = shrinkage
        self.shrinkage_folds = shrinkage_folds
        self.min_class_share = min_class_share

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN has its own bin and shape value
        tags.input_tags.string = True  # object/string/category columns are categorical
        tags.input_tags.categorical = True
        return tags

    # --- fitting ------------------------------------------------------------------------
    def _check_params(self) -> None:
        """Refuse settings that would otherwise be ignored or clipped without a word."""
        for name, low in (
            ("max_context_rows", 2),
            ("n_subsamples", 1),
            ("max_cells", 1),
            ("shrinkage_folds", 2),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValidationError(f"{name} must be an integer ≥ {low}, got {value!r}")
        share = self.min_class_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 0.5:
            raise ValidationError(
                f"min_class_share must be a number in [0, 0.5) (0 turns balanced passes off), "
                f"got {share!r}"
            )

    def _fit_tables(self, X: Any, y_encoded: np.ndarray, n_outputs: int) -> None:
        started = time.perf_counter()
        self._check_params()
        model = load_gamformer(self.checkpoint)
        n_bins = model.config.n_bins
        frame = check_X(self, X, reset=True)
        self._columns = ColumnEncoding.fit(frame, n_bins)
        x = self._columns.encode(frame, "X")
        check_consistent_length(X=x, y=y_encoded)
        n_rows, n_features = x.shape
        self.bin_edges_ = column_bin_edges(x, n_bins)
        bins = apply_column_bins(x, self.bin_edges_, n_bins)
        self.feature_ranges_ = column_ranges(x)
        low, high = self.feature_ranges_.T
        some_missing = np.isnan(x).any(axis=0) & ~np.isnan(low)
        # two distinct values, or a value and missing ones: a shape function can say something
        informative = np.flatnonzero((low < high) | some_missing).tolist()
        self.informative_features_ = np.asarray(informative, dtype=int)
        if self.shrinkage not in ("none", "crossfit"):
            raise ValidationError(f"shrinkage must be 'none' or 'crossfit', got {self.shrinkage!r}")
        tables = np.zeros((n_features, n_bins + 1, n_outputs))
        passes: Passes = []
        if informative:
            raw = self._shape_tables(model, bins[:, informative], y_encoded, passes)
            tables[informative] = raw[..., :n_outputs]
        self._store_tables(tables, bins, n_bins)
        self.feature_scales_ = np.ones(n_features)
        if self.shrinkage == "crossfit" and informative:
            self._shrink(model, bins, y_encoded, informative, n_outputs, passes)
        self.fit_seconds_ = time.perf_counter() - started

    def _shrink(
        self,
        model: GAMformer,
        bins: np.ndarray,
        y_encoded: np.ndarray,
        informative: list[int],
        n_outputs: int,
        passes: Passes,
    ) -> None:
        """Scale each informative shape function by its cross-fitted factor (`shrinkage.py`)."""
        if self._regression:
            task, target = "regression", y_encoded * self.y_std_
        else:
            task, target = ("binary" if n_outputs == 2 else "multiclass"), y_encoded
        scales, offset = crossfit_scales(
            bins[:, informative],
            y_encoded,
            target,
            task,
            n_outputs,
            functools.partial(self._shape_tables, model),
            self._output_space,
            passes,
            self.shrinkage_folds,
            self.random_state,
        )
        for index, j in enumerate(informative):
            self.shape_functions_[j] = self.shape_functions_[j] * scales[index]
            self.missing_shape_[j] = self.missing_shape_[j] * scales[index]
            self.feature_scales_[j] = scales[index]
        self.intercept_ = self.intercept_ + offset

    def _shape_tables(
        self,
        model: GAMformer,
        bins: np.ndarray,
        y_model: np.ndarray,
        passes: Passes | None = None,
    ) -> np.ndarray:
        """Shape tables [F, n_bins + 1, C] averaged over the subsample passes (`passes.py`)."""
        rows = rows_per_pass(*bins.shape, self.max_context_rows, self.max_cells)
        subsets = subsamples(
            y_model,
            rows,
            self.n_subsamples,
            not self._regression,
            self.random_state,
            self.min_class_share,
        )
        return average_shape_tables(
            model, bins, y_model, subsets, self._regression, self.device, passes
        )

    def _store_tables(self, tables: np.ndarray, bins: np.ndarray, n_bins: int) -> None:
        """Turn raw tables into centred per-feature shape functions plus an intercept."""
        tables = self._output_space(tables)
        self._n_bins = n_bins
        n_rows = bins.shape[0]
        shape_functions, missing, counts, intercept = [], [], [], np.zeros(tables.shape[-1])
        for j, edges in enumerate(self.bin_edges_):
            used = len(edges) + 1
            count = np.bincount(bins[:, j], minlength=n_bins + 1).astype(float)
            table = tables[j]
            # centre on the training rows so that each shape function averages to zero
            mean = (count[:, None] * table).sum(axis=0) / n_rows
            intercept += mean
            shape_functions.append(table[:used] - mean)
            missing.append(table[n_bins] - mean)
            counts.append(np.concatenate([count[:used], count[n_bins:]]))
        self.shape_functions_ = shape_functions
        self.missing_shape_ = np.stack(missing)
        self.bin_counts_ = counts
        self.intercept_ = intercept

    def _output_space(self, tables: np.ndarray) -> np.ndarray:
        return tables

    # --- prediction ---------------------------------------------------------------------
    def _contributions(self, X: Any) -> np.ndarray:
        """Per-row, per-feature contributions [n, F, n_outputs] (without the intercept)."""
        frame = check_X(self, X, reset=False)
        x = self._columns.encode(frame, "X")
        bins = apply_column_bins(x, self.bin_edges_, self._n_bins)
        # every feature's shape values at the bin indices, the missing value at index n_bins
        # (built from the fitted attributes on each call, so edits to them take effect)
        tables = np.zeros((x.shape[1], self._n_bins + 1, self.intercept_.shape[0]))
        for j, values in enumerate(self.shape_functions_):
            tables[j, : len(values)] = values
        tables[:, self._n_bins] = self.missing_shape_
        return tables[np.arange(x.shape[1]), bins]

    def _decision(self, X: Any) -> np.ndarray:
        contributions = self._contributions(X)  # checks that the estimator is fitted
        return self.intercept_ + contributions.sum(axis=1)

    # --- interpretation -----------------------------------------------------------------
    def feature_importances(self) -> pd.Series:
        """Mean absolute contribution of each feature over the training rows (EBM's measure)."""
        check_is_fitted(self, "shape_functions_")
        values = []
        for j, table in enumerate(self.shape_functions_):
            counts = self.bin_counts_[j]
            full = np.vstack([table, self.missing_shape_[j][None, :]])
            weights = counts / max(counts.sum(), 1.0)
            values.append(float((weights[:, None] * np.abs(full)).sum(axis=0).mean()))
        return pd.Series(values, index=self._feature_names(), name="importance").sort_values(
            ascending=False
        )

    def _feature_names(self) -> np.ndarray:
        """The column names seen in fit as strings (positions "0", "1", … for arrays)."""
        return np.asarray(self._columns.names, dtype=object)

    def explain(self, X: Any = None) -> dict[str, Any]:
        """Per-feature curves and importances; with `X`, also each row's contributions.

        Returns {"intercept", "importances" {feature: value}, "curves" {feature: {"kind",
        "bin_edges", "values" [bins or categories, outputs], "missing_value", "counts",
        "categories"}},
        "output_names"} and, with X, "contributions" (a DataFrame per output name).
        """
        check_is_fitted(self, "shape_functions_")
        curves = {}
        for j, name in enumerate(self._feature_names()):
            categories = self._columns.labels.get(j)
            values, counts = self.shape_functions_[j], self.bin_counts_[j][:-1]
            if categories is not None:  # one entry per category (the bin its code falls in)
                bins = apply_bins(np.arange(len(categories)), self.bin_edges_[j], self._n_bins)
                values, counts = values[bins], counts[bins]
            curves[name] = {
                "kind": "categorical" if categories is not None else "numeric",
                "bin_edges": self.bin_edges_[j],
                "values": values,
                "missing_value": self.missing_shape_[j],
                "counts": counts,
                "missing_count": self.bin_counts_[j][-1],
                "categories": categories,
                "range": tuple(self.feature_ranges_[j]),
            }
        result: dict[str, Any] = {
            "intercept": self.intercept_,
            "importances": self.feature_importances().to_dict(),
            "curves": curves,
            "output_names": self._output_names(),
        }
        if X is not None:
            contributions = self._contributions(X)
            result["contributions"] = {
                name: pd.DataFrame(contributions[:, :, k], columns=self._feature_names())
                for k, name in enumerate(self._output_names())
            }
        return result

    def _output_names(self) -> list[str]:
        return ["prediction"]

    def plot_shape_functions(self, features: list[str] | None = None, max_features: int = 12):
        """A matplotlib Figure: each shape function (by importance) over its training density."""
        from autofm.gam.plots import plot_shape_functions

        return plot_shape_functions(self, features=features, max_features=max_features)


class GAMformerClassifier(ClassifierMixin, _GAMformerBase):
    """A GAM classifier (binary or multiclass) fitted by one forward pass of a GAMformer.

    Parameters: `checkpoint` (shipped name or checkpoint path), `max_context_rows` (rows per
    forward pass; larger training sets are subsampled and the shape tables averaged),
    `n_subsamples` (passes when subsampling; 4, chosen over 8 on validation data at half
    the CPU, benchmarks/gam_subsamples.py), `max_cells` (rows × features allowed in one pass),
    `device`, `random_state` (subsampling and folds), `shrinkage` ("none", or "crossfit": scale
    each shape function by a non-negative factor fitted on `shrinkage_folds` cross-fitted
    held-out passes, or, when the fit subsamples, on the rows each subsample pass left out; see
    `autofm.gam.shrinkage`), `min_class_share` (a binary task whose rarer class is below this
    share of the rows runs up to `n_subsamples` balanced passes, each with every rare row and a
    disjoint block of the others, their logits shifted back to the training rate; default 0,
    off: with the shipped checkpoint 0.25 helped on rare-positive validation tasks on average
    but lost on one group, see docs/gam.md; see `autofm.gam.passes`).
    Binary shape functions are log-odds of `classes_[1]`; multiclass ones are per-class logits
    centred across classes.
    """

    def fit(self, X: Any, y: Any) -> GAMformerClassifier:
        y_array = target_vector(y, self)
        if pd.isna(pd.Series(y_array)).any():
            raise ValidationError("y contains missing values (NaN); drop those rows first")
        self.classes_, y_encoded = np.unique(y_array, return_inverse=True)
        model = load_gamformer(self.checkpoint)
        if len(self.classes_) < 2:
            only = self.classes_[:1].tolist()[0]  # a plain value in the message, not np.int64(1)
            raise ValidationError(
                f"y has only one class ({only!r}); a classifier needs at least two"
            )
        if len(self.classes_) > model.config.max_classes:
            hint = ""
            if type_of_target(y_array) == "continuous":
                hint = (
                    " (Unknown label type: continuous; for a numeric target use GAMformerRegressor)"
                )
            raise ValidationError(
                f"y has {len(self.classes_)} classes; this GAMformer handles at most "
                f"{model.config.max_classes}{hint}"
            )
        self._fit_tables(X, y_encoded, len(self.classes_))
        return self

    def _output_space(self, tables: np.ndarray) -> np.ndarray:
        if len(self.classes_) == 2:
            return tables[..., 1:2] - tables[..., 0:1]
        return tables - tables.mean(axis=-1, keepdims=True)

    def _output_names(self) -> list[str]:
        if len(self.classes_) == 2:
            return [f"logit({self.classes_[1]})"]
        return [f"logit({c})" for c in self.classes_]

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: [n] (binary, for classes_[1]) or [n, n_classes]."""
        scores = self._decision(X)
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = self._decision(X)
        if len(self.classes_) == 2:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        scores = scores - scores.max(axis=1, keepdims=True)
        probabilities = np.exp(scores)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        probabilities = self.predict_proba(X)  # checks that the estimator is fitted
        return self.classes_[np.argmax(probabilities, axis=1)]


class GAMformerRegressor(RegressorMixin, _GAMformerBase):
    """A GAM regressor fitted by one forward pass of a GAMformer (shape functions in y units)."""

    _regression = True

    def fit(self, X: Any, y: Any) -> GAMformerRegressor:
        y_array = target_vector(y, self, dtype=float)
        check_finite(y_array, "y")
        if len(y_array) < 2:
            raise ValidationError(f"y has {len(y_array)} sample; a regressor needs at least 2")
        self.y_mean_ = float(y_array.mean())
        std = float(y_array.std())
        if not math.isfinite(std) or std <= 0:
            raise ValidationError("y is constant; nothing to regress")
        self.y_std_ = std
        self._fit_tables(X, (y_array - self.y_mean_) / self.y_std_, 1)
        return self

    def _output_space(self, tables: np.ndarray) -> np.ndarray:
        return tables * self.y_std_

    def _store_tables(self, tables, bins, n_bins) -> None:
        super()._store_tables(tables, bins, n_bins)
        self.intercept_ = self.intercept_ + self.y_mean_

    def predict(self, X: Any) -> np.ndarray:
        return self._decision(X)[:, 0]
