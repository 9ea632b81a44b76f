"""Does a feature set help a downstream model? ROC AUC on the same splits for each set.

Each split fits the feature statistics (group aggregates, frequencies) on its training rows only,
then a scikit-learn `HistGradientBoostingClassifier` with native categorical support on the
original columns plus the set's features, and scores the held-out rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from autofm.core.errors import ValidationError
from autofm.core.progress import progress
from autofm.fe.operators import FeatureSpec, FeatureTransformer


def encode_categoricals(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Float matrices with non-numeric columns as integer codes learnt on `train` (unseen: NaN),
    and the mask of those categorical columns."""
    train_out, test_out, categorical = [], [], []
    for column in train.columns:
        if pd.api.types.is_numeric_dtype(train[column]) and not pd.api.types.is_bool_dtype(
            train[column]
        ):
            train_out.append(train[column].to_numpy(dtype=float))
            test_out.append(test[column].to_numpy(dtype=float))
            categorical.append(False)
            continue
        codes = {value: i for i, value in enumerate(pd.unique(train[column].dropna()))}
        train_out.append(train[column].map(codes).to_numpy(dtype=float))
        test_out.append(test[column].map(codes).to_numpy(dtype=float))
        categorical.append(True)
    return np.column_stack(train_out), np.column_stack(test_out), np.array(categorical)


def roc_auc(y_true: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> float:
    """Binary ROC AUC, or one-vs-rest macro AUC for more classes."""
    from sklearn.metrics import roc_auc_score

    if len(classes) == 2:
        return float(roc_auc_score(y_true == classes[1], probabilities[:, 1]))
    return float(roc_auc_score(y_true, probabilities, multi_class="ovr", labels=classes))


def downstream_auc(
    X: pd.DataFrame,
    y: pd.Series,
    feature_sets: Mapping[str, Sequence[FeatureSpec]],
    *,
    n_splits: int = 5,
    test_size: float = 0.25,
    seed: int = 0,
) -> pd.DataFrame:
    """ROC AUC per (split, feature set) of a gradient-boosting classifier on X plus each set's
    features; "original" (no new feature) is always included. Columns: split, features, auc."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedShuffleSplit

    y = pd.Series(np.asarray(y), index=X.index)
    if y.nunique() < 2 or y.value_counts().min() < 2:
        raise ValidationError(
            "the target needs at least two classes with at least two rows each for the "
            f"downstream AUC; got counts {y.value_counts().to_dict()}"
        )
    sets = {"original": [], **{name: list(features) for name, features in feature_sets.items()}}
    splitter = StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    rows = []
    splits = list(splitter.split(X, y))
    for split, (train_rows, test_rows) in enumerate(progress(splits, desc="downstream AUC")):
        X_train, X_test = X.iloc[train_rows], X.iloc[test_rows]
        y_train, y_test = y.iloc[train_rows].to_numpy(), y.iloc[test_rows].to_numpy()
        for name, features in sets.items():
            if features:
                transformer = FeatureTransformer(features).fit(X_train)
                train = pd.concat([X_train, transformer.transform(X_train)], axis=1)
                test = pd.concat([X_test, transformer.transform(X_test)], axis=1)
            else:
                train, test = X_train, X_test
            train_matrix, test_matrix, categorical = encode_categoricals(train, test)
            train_matrix[~np.isfinite(train_matrix)] = np.nan
            test_matrix[~np.isfinite(test_matrix)] = np.nan
            model = HistGradientBoostingClassifier(
                categorical_features=categorical if categorical.any() else None,
                random_state=seed + split,
            ).fit(train_matrix, y_train)
            auc = roc_auc(y_test, model.predict_proba(test_matrix), model.classes_)
            rows.append({"split": split, "features": name, "n_new": len(features), "auc": auc})
    return pd.DataFrame(rows)


def summarise_auc(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std ROC AUC per feature set (and the mean difference to "original")."""
    table = results.groupby("features", sort=False)["auc"].agg(["mean", "std"])
    original = results[results["features"] == "original"].set_index("split")["auc"]
    table["delta_vs_original"] = [
        float((group.set_index("split")["auc"] - original).mean())
        for _, group in results.groupby("features", sort=False)
    ]
    return table.reset_index()
