"""What the GAMformer estimators accept, and how the columns of a table become numbers to bin.

`check_X` and `target_vector` are the input checks at the scikit-learn boundary (`fit`,
`predict`). Numeric columns are used as they are. Categorical columns (pandas category/object/
bool/string dtypes) get one code per category, in sorted order; beyond `n_bins - 1` categories
the rarest share one code, and a category unseen in fit becomes a missing value (NaN).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import check_is_fitted

from autofm.core.errors import ValidationError
from autofm.core.validation import check_finite


@dataclass
class ColumnEncoding:
    """How the raw columns were encoded: names, and for categorical ones value → code maps."""

    names: list[str]
    codes: dict[int, dict[Any, int]]
    labels: dict[int, list[str]]

    @classmethod
    def fit(cls, frame: pd.DataFrame, n_bins: int) -> ColumnEncoding:
        """The encoding of `frame`'s columns (categorical ones coded for `n_bins` bins)."""
        names = [str(c) for c in frame.columns]
        codes, labels = {}, {}
        for j in range(frame.shape[1]):
            if _is_categorical(frame.iloc[:, j]):
                codes[j], labels[j] = _category_codes(frame.iloc[:, j], n_bins)
        return cls(names, codes, labels)

    def encode(self, frame: pd.DataFrame, what: str) -> np.ndarray:
        """`frame` (the fitted columns, in order) as floats [rows, columns]; NaN for missing."""
        columns = []
        for j in range(frame.shape[1]):
            column = frame.iloc[:, j]
            if j in self.codes:
                # categories unseen in fit become missing values
                mapped = column.map(self.codes[j]).astype(float)
                columns.append(mapped.to_numpy(dtype=float, na_value=np.nan))
            else:
                columns.append(_numeric(column, self.names[j], what))
        array = np.stack(columns, axis=1)
        check_finite(array, what, allow_nan=True)
        return array


def _as_frame(X: Any, what: str) -> pd.DataFrame:
    """`X` as a DataFrame (arrays get integer column names); dense, real, 2-D, not empty."""
    if scipy.sparse.issparse(X):
        raise ValidationError(
            f"{what} is a sparse matrix; GAMformer needs dense input: pass {what}.toarray()"
        )
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        array = np.asarray(X)
        if array.ndim != 2:
            raise ValidationError(
                f"{what} must be 2-dimensional, got shape {array.shape}. Reshape your data: "
                f"{what}.reshape(-1, 1) for one feature, {what}.reshape(1, -1) for one row"
            )
        frame = pd.DataFrame(array)
    if frame.shape[0] == 0:
        raise ValidationError(f"{what} has 0 rows; at least 1 needed")
    if any(pd.api.types.is_complex_dtype(dtype) for dtype in frame.dtypes):
        raise ValidationError(f"{what} holds complex numbers: Complex data not supported")
    return frame


def check_X(estimator: BaseEstimator, X: Any, reset: bool) -> pd.DataFrame:
    """`X` as a frame for `estimator`. In fit (`reset`) record `n_features_in_` and, when all
    column names are strings, `feature_names_in_`; later require the same columns (and raise
    NotFittedError before fit), as scikit-learn does."""
    frame = _as_frame(X, "X")
    names = _string_column_names(X)
    owner = type(estimator).__name__
    if reset:
        if frame.shape[1] == 0:
            raise ValidationError(
                f"X has 0 feature(s) (shape=({frame.shape[0]}, 0)) while a minimum of 1 is "
                "required; pass at least one column"
            )
        estimator.n_features_in_ = frame.shape[1]
        if names is not None:
            estimator.feature_names_in_ = names
        else:
            vars(estimator).pop("feature_names_in_", None)
        return frame
    check_is_fitted(estimator, "shape_functions_")
    if frame.shape[1] != estimator.n_features_in_:
        raise ValidationError(
            f"X has {frame.shape[1]} features, but {owner} is expecting "
            f"{estimator.n_features_in_} features as input; pass the columns of fit, in order"
        )
    fitted = getattr(estimator, "feature_names_in_", None)
    if names is not None and fitted is not None and not np.array_equal(names, fitted):
        raise ValidationError(
            "The feature names should match those that were passed during fit: X has "
            f"{list(names)}, fit saw {list(fitted)}; pass those columns in that order"
        )
    if names is None and fitted is not None:
        warnings.warn(
            f"X does not have valid feature names, but {owner} was fitted with feature names",
            UserWarning,
            stacklevel=2,
        )
    if names is not None and fitted is None:
        warnings.warn(
            f"X has feature names, but {owner} was fitted without feature names",
            UserWarning,
            stacklevel=2,
        )
    return frame


def _string_column_names(X: Any) -> np.ndarray | None:
    """The column names of a DataFrame whose names are all strings (scikit-learn's rule)."""
    if isinstance(X, pd.DataFrame) and all(isinstance(name, str) for name in X.columns):
        return np.asarray(X.columns, dtype=object)
    return None


def target_vector(y: Any, estimator: BaseEstimator, dtype: type | None = None) -> np.ndarray:
    """`y` as a 1-D array (of `dtype`); a column vector is flattened with scikit-learn's warning."""
    if y is None:
        raise ValidationError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None"
        )
    y_array = np.asarray(y)
    if np.iscomplexobj(y_array):
        raise ValidationError("y holds complex numbers: Complex data not supported")
    if dtype is not None:
        try:
            y_array = np.asarray(y, dtype=dtype)
        except (TypeError, ValueError) as err:
            raise ValidationError(
                f"y must be numeric for {type(estimator).__name__} ({err})"
            ) from err
    if y_array.ndim == 2 and y_array.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; pass y.ravel()",
            DataConversionWarning,
            stacklevel=3,
        )
        y_array = y_array.ravel()
    if y_array.ndim != 1:
        raise ValidationError(f"y must be 1-dimensional, got shape {y_array.shape}")
    if len(y_array) == 0:
        raise ValidationError("y has 0 rows; at least 1 needed")
    return y_array


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
