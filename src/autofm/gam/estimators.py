"""scikit-learn estimators that fit a GAM with one forward pass of a pretrained GAMformer.

`fit` bins every feature at the quantiles of the training rows, runs the model on the training
set and stores the resulting shape functions as tables; `predict_proba`/`predict` are a look-up
per feature and a sum, so a fitted estimator no longer needs the network.

Data handling (documented in docs/gam.md):
* more training rows than `max_context_rows`: the model runs on `n_subsamples` stratified
  subsamples of that size, all binned with the edges of the full training set, and the shape
  tables are averaged (the paper's model degrades past twice its training size);
* categorical columns (pandas category/object/bool/string dtypes): each category is one value,
  coded in sorted order; categories beyond `n_bins - 1` are pooled with the rarest; categories
  unseen in fit are treated as missing at predict time;
* missing values (NaN) are allowed: they fall into an extra bin with its own shape value;
* constant and all-missing columns get a zero shape function and are not passed to the model.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from autofm.core.checkpoint import load_model
from autofm.core.errors import ValidationError
from autofm.core.validation import check_consistent_length, check_finite
from autofm.gam.binning import apply_bins, bin_edges
from autofm.gam.model import GAMformer, build_gamformer
from autofm.gam.shrinkage import fit_feature_scales

DEFAULT_CHECKPOINT = "gamformer-cpu"


@functools.lru_cache(maxsize=4)
def _load_model_cached(checkpoint: str) -> GAMformer:
    model, _ = load_model(checkpoint, kind=GAMformer.checkpoint_kind, build=build_gamformer)
    return model


def load_gamformer(checkpoint: str | Path = DEFAULT_CHECKPOINT) -> GAMformer:
    """The GAMformer in `checkpoint` (a shipped name or a checkpoint path), in eval mode."""
    return _load_model_cached(str(checkpoint))


@dataclass
class _Columns:
    """How the raw columns were encoded: names, and for categorical ones value → code maps."""

    names: list[str]
    codes: dict[int, dict[Any, int]]
    labels: dict[int, list[str]]

    def encode(self, X: Any, what: str) -> np.ndarray:
        frame = _as_frame(X, what)
        if frame.shape[1] != len(self.names):
            raise ValidationError(
                f"{what} has {frame.shape[1]} columns but the model was fitted on "
                f"{len(self.names)}; pass the same columns in the same order"
            )
        columns = []
        for j in range(frame.shape[1]):
            column = frame.iloc[:, j]
            if j in self.codes:
                # categories unseen in fit become missing values
                mapped = column.map(self.codes[j]).astype(float)
                columns.append(mapped.to_numpy(dtype=float, na_value=np.nan))
            else:
                columns.append(_numeric(column, self.names[j], what))
        array = np.stack(columns, axis=1) if columns else np.empty((len(frame), 0))
        check_finite(array, what, allow_nan=True)
        return array


def _category_codes(column: pd.Series, n_bins: int) -> tuple[dict[Any, int], list[str]]:
    """Codes in sorted order; beyond n_bins - 1 categories the rarest share one code."""
    counts = column.dropna().value_counts()
    values = sorted(counts.index, key=str)
    if len(values) <= n_bins - 1:
        return {v: code for code, v in enumerate(values)}, [str(v) for v in values]
    kept = sorted(counts.index[: n_bins - 2], key=str)
    codes = {v: code for code, v in enumerate(kept)}
    codes.update({v: len(kept) for v in counts.index[n_bins - 2 :]})
    return codes, [str(v) for v in kept] + ["<other>"]


def _as_frame(X: Any, what: str) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        array = np.asarray(X)
        if array.ndim != 2:
            raise ValidationError(f"{what} must be 2-dimensional, got shape {array.shape}")
        frame = pd.DataFrame(array)
    if frame.shape[0] == 0:
        raise ValidationError(f"{what} has 0 rows; at least 1 needed")
    return frame


def _is_categorical(column: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _numeric(column: pd.Series, name: str, what: str) -> np.ndarray:
    try:
        return column.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise ValidationError(
            f"column {name!r} of {what} is not numeric ({err}); pass it as a pandas "
            "category/object column to treat it as categorical"
        ) from err


class _GAMformerBase(BaseEstimator):
    """Shared fitting: encoding, binning, subsample-averaged forward passes, shape tables."""

    _regression = False

    def __init__(
        self,
        checkpoint: str = DEFAULT_CHECKPOINT,
        max_context_rows: int = 500,
        n_subsamples: int = 8,
        max_cells: int = 2_000_000,
        device: str = "cpu",
        random_state: int | None = 0,
        shrinkage: str = "crossfit",
        shrinkage_folds: int = 2,
    ):
        self.checkpoint = checkpoint
        self.max_context_rows = max_context_rows
        self.n_subsamples = n_subsamples
        self.max_cells = max_cells
        self.device = device
        self.random_state = random_state
        self.shrinkage = shrinkage
        self.shrinkage_folds = shrinkage_folds

    # --- encoding -----------------------------------------------------------------------
    def _encode_fit(self, X: Any, n_bins: int) -> np.ndarray:
        frame = _as_frame(X, "X")
        names = [str(c) for c in frame.columns]
        codes, labels = {}, {}
        for j in range(frame.shape[1]):
            if _is_categorical(frame.iloc[:, j]):
                codes[j], labels[j] = _category_codes(frame.iloc[:, j], n_bins)
        self._columns = _Columns(names, codes, labels)
        return self._columns.encode(frame, "X")

    # --- fitting ------------------------------------------------------------------------
    def _fit_tables(self, X: Any, y_encoded: np.ndarray, n_outputs: int) -> None:
        started = time.perf_counter()
        model = load_gamformer(self.checkpoint)
        n_bins = model.config.n_bins
        x = self._encode_fit(X, n_bins)
        check_consistent_length(X=x, y=y_encoded)
        n_rows, n_features = x.shape
        self.n_features_in_ = n_features
        self.feature_names_in_ = np.asarray(self._columns.names, dtype=object)
        self.bin_edges_ = [bin_edges(x[:, j], n_bins) for j in range(n_features)]
        bins = np.stack(
            [apply_bins(x[:, j], self.bin_edges_[j], n_bins) for j in range(n_features)], 1
        )
        informative = [
            j
            for j in range(n_features)
            if np.unique(x[~np.isnan(x[:, j]), j]).size > 1
            or (np.isnan(x[:, j]).any() and not np.isnan(x[:, j]).all())
        ]
        self.informative_features_ = np.asarray(informative, dtype=int)
        if self.shrinkage not in ("none", "crossfit"):
            raise ValidationError(f"shrinkage must be 'none' or 'crossfit', got {self.shrinkage!r}")
        tables = np.zeros((n_features, n_bins + 1, n_outputs))
        passes: list[tuple[np.ndarray, np.ndarray]] = []
        if informative:
            raw = self._run_model(model, bins[:, informative], y_encoded, passes)
            tables[informative] = raw[..., :n_outputs]
        self._store_tables(tables, bins, x, n_bins)
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
        passes: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """Scale each shape function by a factor fitted on cross-fitted held-out contributions.

        When the fit subsampled (more rows than one pass holds), the subsample passes already
        are the cross-fit: each row's held-out contributions are read from the tables of the
        passes that did not contain it, at no extra cost. Otherwise `shrinkage_folds` extra
        passes run on K − 1 folds each.
        """
        bins = bins[:, informative]
        out_of_pass = self._out_of_pass(bins, y_encoded, n_outputs, passes or [])
        if out_of_pass is not None:
            rows, held_out, base = out_of_pass
        else:
            rows, held_out, base = self._cross_fit(model, bins, y_encoded, n_outputs)
        y_encoded = y_encoded[rows]
        if self._regression:
            task, target = "regression", y_encoded * self.y_std_
        else:
            task, target = ("binary" if n_outputs == 2 else "multiclass"), y_encoded
        scales, offset = fit_feature_scales(held_out, base, target, task)
        for index, j in enumerate(informative):
            self.shape_functions_[j] = self.shape_functions_[j] * scales[index]
            self.missing_shape_[j] = self.missing_shape_[j] * scales[index]
            self.feature_scales_[j] = scales[index]
        self.intercept_ = self.intercept_ + offset

    def _cross_fit(self, model, bins, y_encoded, n_outputs):
        """(rows, held-out contributions [n, F, K], base [n, K]) from K-fold passes."""
        n_rows, n_features = bins.shape
        held_out = np.zeros((n_rows, n_features, n_outputs if n_outputs > 2 else 1))
        base = np.zeros((n_rows, held_out.shape[-1]))
        columns = np.arange(n_features)[None, :]
        for fit_rows, held_rows in self._folds(y_encoded):
            raw = self._run_model(model, bins[fit_rows], y_encoded[fit_rows])[..., :n_outputs]
            values = self._output_space(raw)[columns, bins]  # [rows, features, outputs]
            means = values[fit_rows].mean(axis=0)
            held_out[held_rows] = values[held_rows] - means
            base[held_rows] = means.sum(axis=0)
        return np.arange(n_rows), held_out, base

    def _out_of_pass(self, bins, y_encoded, n_outputs, passes):
        """Held-out contributions from the subsample passes (None when there were too few
        rows outside them, or one pass over all rows)."""
        if len(passes) < 2:
            return None
        n_rows, n_features = bins.shape
        outside = np.ones((len(passes), n_rows), dtype=bool)
        for index, (subset, _) in enumerate(passes):
            outside[index, subset] = False
        count = outside.sum(axis=0)
        rows = np.flatnonzero(count > 0)
        labels = y_encoded[rows]
        if len(rows) < 100 or (not self._regression and np.unique(labels).size < 2):
            return None
        columns = np.arange(n_features)[None, :]
        held_out, base = 0.0, 0.0
        for index, (subset, raw) in enumerate(passes):
            space = self._output_space(raw[..., :n_outputs])
            values = space[columns, bins[rows]]
            means = space[columns, bins[subset]].mean(axis=0)
            weight = (outside[index, rows] / count[rows])[:, None, None]
            held_out = held_out + weight * (values - means)
            base = base + weight[:, :, 0] * means.sum(axis=0)
        return rows, held_out, base

    def _folds(self, y_encoded: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        k = max(2, int(self.shrinkage_folds))
        if not self._regression and np.bincount(y_encoded).min() >= k:
            splitter = StratifiedKFold(k, shuffle=True, random_state=self.random_state)
        else:
            splitter = KFold(k, shuffle=True, random_state=self.random_state)
        return list(splitter.split(np.zeros(len(y_encoded)), y_encoded))

    def _rows_per_pass(self, n_rows: int, n_features: int) -> int:
        rows = min(n_rows, int(self.max_context_rows))
        if rows * n_features > self.max_cells:
            rows = self.max_cells // n_features
            if rows < 32:
                raise ValidationError(
                    f"X has {n_features} features: one forward pass holds max_cells="
                    f"{self.max_cells} (rows × features), which leaves {rows} rows per pass "
                    f"(at least 32 needed). Select at most {self.max_cells // 32} features or "
                    "raise max_cells if memory allows"
                )
        return rows

    def _subsamples(self, y_encoded: np.ndarray, rows: int) -> list[np.ndarray]:
        n_rows = len(y_encoded)
        if rows >= n_rows:
            return [np.arange(n_rows)]
        rng = np.random.default_rng(self.random_state)
        n_passes = max(1, int(self.n_subsamples))
        subsets = []
        for _ in range(n_passes):
            if self._regression:
                subsets.append(np.sort(rng.choice(n_rows, rows, replace=False)))
                continue
            chosen = []
            for label in np.unique(y_encoded):
                members = np.flatnonzero(y_encoded == label)
                take = max(1, round(rows * len(members) / n_rows))
                chosen.append(rng.choice(members, min(take, len(members)), replace=False))
            subsets.append(np.sort(np.concatenate(chosen)))
        return subsets

    @torch.no_grad()
    def _run_model(
        self,
        model: GAMformer,
        bins: np.ndarray,
        y_model: np.ndarray,
        passes: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Shape tables [F, n_bins + 1, C] averaged over the subsample passes (each pass's
        (rows, tables) appended to `passes` when given)."""
        rows = self._rows_per_pass(*bins.shape)
        device = torch.device(self.device)
        model = model.to(device)
        total = None
        subsets = self._subsamples(self._stratify_labels(y_model), rows)
        for subset in subsets:
            context = torch.as_tensor(bins[subset], device=device).unsqueeze(0)
            labels = torch.as_tensor(y_model[subset], device=device).unsqueeze(0)
            shapes = model.shape_functions(context, labels, regression=self._regression)[0]
            shapes = shapes.double().cpu().numpy()
            if passes is not None:
                passes.append((subset, shapes))
            total = shapes if total is None else total + shapes
        return total / len(subsets)

    def _stratify_labels(self, y_model: np.ndarray) -> np.ndarray:
        return y_model

    def _store_tables(
        self, tables: np.ndarray, bins: np.ndarray, x: np.ndarray, n_bins: int
    ) -> None:
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
        self.missing_shape_ = np.stack(missing) if missing else np.zeros((0, tables.shape[-1]))
        self.bin_counts_ = counts
        self.intercept_ = intercept
        with np.errstate(all="ignore"):
            self.feature_ranges_ = (
                np.stack(
                    [
                        (np.nanmin(x[:, j]), np.nanmax(x[:, j]))
                        if not np.isnan(x[:, j]).all()
                        else (np.nan, np.nan)
                        for j in range(x.shape[1])
                    ]
                )
                if x.shape[1]
                else np.zeros((0, 2))
            )

    def _output_space(self, tables: np.ndarray) -> np.ndarray:
        return tables

    # --- prediction ---------------------------------------------------------------------
    def _contributions(self, X: Any) -> np.ndarray:
        """Per-row, per-feature contributions [n, F, n_outputs] (without the intercept)."""
        check_is_fitted(self, "shape_functions_")
        x = self._columns.encode(X, "X")
        out = np.empty((x.shape[0], x.shape[1], self.intercept_.shape[0]))
        for j, edges in enumerate(self.bin_edges_):
            index = apply_bins(x[:, j], edges, self._n_bins)
            table = np.vstack([self.shape_functions_[j], self.missing_shape_[j][None, :]])
            index = np.where(index == self._n_bins, len(table) - 1, index)
            out[:, j] = table[index]
        return out

    def _decision(self, X: Any) -> np.ndarray:
        return self.intercept_ + self._contributions(X).sum(axis=1)

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
        return pd.Series(values, index=self.feature_names_in_, name="importance").sort_values(
            ascending=False
        )

    def explain(self, X: Any = None) -> dict[str, Any]:
        """Per-feature curves and importances; with `X`, also each row's contributions.

        Returns {"intercept", "importances" {feature: value}, "curves" {feature: {"kind",
        "bin_edges", "values" [bins or categories, outputs], "missing_value", "counts",
        "categories"}},
        "output_names"} and, with X, "contributions" (a DataFrame per output name).
        """
        check_is_fitted(self, "shape_functions_")
        curves = {}
        for j, name in enumerate(self.feature_names_in_):
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
                name: pd.DataFrame(contributions[:, :, k], columns=self.feature_names_in_)
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
    `n_subsamples` (passes when subsampling), `max_cells` (rows × features allowed in one pass),
    `device`, `random_state` (subsampling and folds), `shrinkage` ("none", or "crossfit": scale
    each shape function by a non-negative factor fitted on `shrinkage_folds` cross-fitted
    held-out passes, or, when the fit subsamples, on the rows each subsample pass left out; see
    `autofm.gam.shrinkage`).
    Binary shape functions are log-odds of `classes_[1]`; multiclass ones are per-class logits
    centred across classes.
    """

    def fit(self, X: Any, y: Any) -> GAMformerClassifier:
        y_array = np.asarray(y)
        if y_array.ndim != 1:
            y_array = y_array.ravel() if y_array.ndim == 2 and y_array.shape[1] == 1 else y_array
        if y_array.ndim != 1:
            raise ValidationError(f"y must be 1-dimensional, got shape {y_array.shape}")
        if pd.isna(pd.Series(y_array)).any():
            raise ValidationError("y contains missing values; drop those rows first")
        self.classes_, y_encoded = np.unique(y_array, return_inverse=True)
        model = load_gamformer(self.checkpoint)
        if len(self.classes_) < 2:
            raise ValidationError(
                f"y has a single class ({self.classes_[0]!r}); a classifier needs at least two"
            )
        if len(self.classes_) > model.config.max_classes:
            raise ValidationError(
                f"y has {len(self.classes_)} classes; this GAMformer handles at most "
                f"{model.config.max_classes}"
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
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class GAMformerRegressor(RegressorMixin, _GAMformerBase):
    """A GAM regressor fitted by one forward pass of a GAMformer (shape functions in y units)."""

    _regression = True

    def fit(self, X: Any, y: Any) -> GAMformerRegressor:
        y_array = np.asarray(y, dtype=float).ravel() if np.ndim(y) == 2 else None
        try:
            y_array = np.asarray(y, dtype=float) if y_array is None else y_array
        except (TypeError, ValueError) as err:
            raise ValidationError(f"y must be numeric for regression ({err})") from err
        if y_array.ndim != 1:
            raise ValidationError(f"y must be 1-dimensional, got shape {y_array.shape}")
        check_finite(y_array, "y")
        self.y_mean_ = float(y_array.mean())
        std = float(y_array.std())
        if not math.isfinite(std) or std <= 0:
            raise ValidationError("y is constant; nothing to regress")
        self.y_std_ = std
        self._fit_tables(X, (y_array - self.y_mean_) / self.y_std_, 1)
        return self

    def _output_space(self, tables: np.ndarray) -> np.ndarray:
        return tables * self.y_std_

    def _store_tables(self, tables, bins, x, n_bins) -> None:
        super()._store_tables(tables, bins, x, n_bins)
        self.intercept_ = self.intercept_ + self.y_mean_

    def predict(self, X: Any) -> np.ndarray:
        return self._decision(X)[:, 0]
