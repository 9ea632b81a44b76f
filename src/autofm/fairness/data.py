"""Checking a user's table, label and protected attribute; the held-out test split and CV folds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from autofm.core.errors import ValidationError
from autofm.core.progress import status
from autofm.fairness.metrics import confusion_counts, group_rates
from autofm.fairness.spaces import encoded_width


@dataclass
class FairData:
    """Train+validation rows with their CV folds, and the held-out test rows (group 1 = privileged)."""

    X: pd.DataFrame
    y: np.ndarray
    group: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    group_test: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    n_features: int
    info: dict[str, Any] = field(default_factory=dict)


def _as_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X.reset_index(drop=True)
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValidationError(f"X must be a 2-D table, got shape {array.shape}")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


def _binary_codes(values: pd.Series, name: str, one: Any, flag: str) -> tuple[np.ndarray, str]:
    """0/1 codes with `one` (compared as text, so '1' from a CLI matches the integer 1) as 1."""
    text = values.astype(str)
    distinct = sorted(text.unique())
    if one is None:
        for candidate in ("1", "True", "1.0"):
            if candidate in distinct and len(distinct) <= 2:
                one = candidate
                break
        else:
            raise ValidationError(
                f"{name} has values {distinct[:10]}; say which one is {flag} "
                f"(e.g. {flag}={distinct[-1]!r})"
            )
    one = str(one)
    if one not in distinct:
        raise ValidationError(
            f"{flag} value {one!r} does not occur in {name}; its values are {distinct[:10]}"
        )
    return (text == one).to_numpy(np.int64), one


def _fingerprint(X: pd.DataFrame, y: np.ndarray, group: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    digest.update(y.tobytes())
    digest.update(group.tobytes())
    return digest.hexdigest()


def prepare_data(
    X,
    y,
    sensitive,
    *,
    privileged: Any = None,
    positive: Any = None,
    keep_protected: bool = False,
    n_folds: int = 3,
    test_size: float = 0.25,
    random_state: int = 0,
) -> FairData:
    """Check the inputs, code label and group as 0/1, split off a test set, make stratified folds.

    `sensitive` is a column name of `X` or one value per row. A protected attribute with more than
    two values is reduced to `privileged` versus all other values (said on stderr and recorded in
    `info["unprivileged_values"]`). The protected column is dropped from the features unless
    `keep_protected`. Splits are stratified on (label, group).
    """
    X = _as_frame(X)
    if isinstance(sensitive, str) and sensitive in X.columns:
        sensitive_name = sensitive
        sensitive = X[sensitive]
        if not keep_protected:
            X = X.drop(columns=[sensitive_name])
    else:
        sensitive_name = "sensitive"
        if isinstance(sensitive, str):
            raise ValidationError(
                f"protected column {sensitive!r} not found; columns: {', '.join(map(str, X.columns[:20]))}"
            )
    y = pd.Series(np.asarray(y).ravel() if not isinstance(y, pd.Series) else y.to_numpy())
    sensitive = pd.Series(
        np.asarray(sensitive).ravel()
        if not isinstance(sensitive, pd.Series)
        else sensitive.to_numpy()
    )
    if not (len(X) == len(y) == len(sensitive)):
        raise ValidationError(
            f"X, y and the protected attribute have different lengths: "
            f"{len(X)}, {len(y)}, {len(sensitive)}"
        )
    if X.shape[1] == 0:
        raise ValidationError("X has no feature columns left (the protected column was dropped)")
    nan_columns = [str(c) for c in X.columns if X[c].isna().any()]
    if nan_columns:
        raise ValidationError(
            f"features contain NaN in column(s) {nan_columns[:10]}; impute or drop them first"
        )
    numeric = X.select_dtypes("number")
    inf_columns = [str(c) for c in numeric.columns if np.isinf(numeric[c].to_numpy(float)).any()]
    if inf_columns:
        raise ValidationError(
            f"features contain infinite values in column(s) {inf_columns[:10]}; clip or drop them"
        )
    for name, values in (("label", y), ("protected attribute", sensitive)):
        if values.isna().any():
            raise ValidationError(f"{name} has {int(values.isna().sum())} missing value(s)")
    labels = sorted(y.astype(str).unique())
    if len(labels) != 2:
        raise ValidationError(
            f"labels must be binary; got {len(labels)} distinct value(s): {labels[:10]}"
        )
    groups = sorted(sensitive.astype(str).unique())
    if len(groups) < 2:
        raise ValidationError(
            f"the protected attribute has one group only ({groups}); fairness needs two"
        )
    y_codes, positive = _binary_codes(y, "the label", positive, "positive")
    group_codes, privileged = _binary_codes(
        sensitive, "the protected attribute", privileged, "privileged"
    )
    unprivileged_values = [g for g in groups if g != privileged]
    if len(groups) > 2:
        status(
            f"protected attribute has {len(groups)} values: comparing privileged {privileged!r} "
            f"with all others together ({', '.join(unprivileged_values[:5])}…)"
        )
    strata = y_codes * 2 + group_codes
    smallest = np.bincount(strata, minlength=4).min()
    if smallest < 2 * n_folds:
        raise ValidationError(
            f"too few rows: some (label, group) cell has {smallest} row(s); "
            f"at least {2 * n_folds} are needed for {n_folds} folds plus a test split"
        )
    indices = np.arange(len(X))
    trainval, test = train_test_split(
        indices, test_size=test_size, stratify=strata, random_state=random_state
    )
    kfold = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    folds = [(np.asarray(tr), np.asarray(va)) for tr, va in kfold.split(trainval, strata[trainval])]
    X_trainval = X.iloc[trainval].reset_index(drop=True)
    data = FairData(
        X=X_trainval,
        y=y_codes[trainval],
        group=group_codes[trainval],
        X_test=X.iloc[test].reset_index(drop=True),
        y_test=y_codes[test],
        group_test=group_codes[test],
        folds=folds,
        n_features=encoded_width(X),
    )
    base = {}
    for split, labels_, groups_ in (
        ("trainval", data.y, data.group),
        ("test", data.y_test, data.group_test),
    ):
        rates = group_rates(confusion_counts(labels_, labels_, groups_))
        base[split] = {k: v for k, v in rates.items() if k.startswith(("base_rate", "size"))}
    data.info = {
        "protected": str(sensitive_name),
        "privileged": privileged,
        "unprivileged_values": unprivileged_values,
        "positive": positive,
        "keep_protected": bool(keep_protected),
        "n_rows": len(X),
        "n_test": len(test),
        "n_folds": n_folds,
        "test_size": test_size,
        "features": [str(c) for c in X.columns],
        "base_rates": base,
        "data_sha256": _fingerprint(X, y_codes, group_codes),
    }
    return data
