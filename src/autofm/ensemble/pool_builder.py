"""Build a pool on a table: train a diverse grid of scikit-learn models, keep their predictions."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from autofm.core.errors import ValidationError
from autofm.core.progress import progress
from autofm.core.validation import check_array
from autofm.ensemble.pool import Pool, python_scalar


def default_model_grid(random_state: int = 0, size: str = "full") -> list[tuple[str, str, Any]]:
    """(name, family, unfitted estimator) for a diverse pool, including deliberately poor models.

    `size` 'full' (36 models) or 'small' (14, for tests and the tour).
    """
    scaled = lambda model: make_pipeline(SimpleImputer(), StandardScaler(), model)  # noqa: E731
    imputed = lambda model: make_pipeline(SimpleImputer(), model)  # noqa: E731
    grid: list[tuple[str, str, Any]] = []
    reg = (0.001, 0.1, 10.0) if size == "small" else (0.0003, 0.003, 0.03, 0.3, 3.0, 30.0)
    for c in reg:
        grid.append((f"logreg_C{c}", "logreg", scaled(LogisticRegression(C=c, max_iter=500))))
    ks = (1, 15) if size == "small" else (1, 3, 7, 15, 31, 63)
    for k in ks:
        grid.append((f"knn_k{k}", "knn", scaled(KNeighborsClassifier(n_neighbors=k))))
    depths = (1, None) if size == "small" else (1, 2, 4, 8, None)
    for depth in depths:
        tree = DecisionTreeClassifier(max_depth=depth, random_state=random_state)
        grid.append((f"tree_depth{depth}", "tree", imputed(tree)))
    forests = (
        ((20, "sqrt"),) if size == "small" else ((10, "sqrt"), (50, "sqrt"), (50, 0.5), (50, 1.0))
    )
    for n_trees, features in forests:
        for family, cls in (("rf", RandomForestClassifier), ("extra", ExtraTreesClassifier)):
            model = cls(
                n_estimators=n_trees,
                max_features=features,
                min_samples_leaf=2,
                random_state=random_state,
                n_jobs=1,
            )
            grid.append((f"{family}_{n_trees}_{features}", family, imputed(model)))
    boosting = ((0.1, 50),) if size == "small" else ((0.03, 50), (0.1, 100), (0.3, 200), (1.0, 100))
    for lr, iters in boosting:
        model = HistGradientBoostingClassifier(
            learning_rate=lr, max_iter=iters, early_stopping=False, random_state=random_state
        )
        grid.append((f"hgb_lr{lr}_it{iters}", "hgb", model))
    mlps = ((32, 1e-4),) if size == "small" else ((16, 1e-4), (64, 1e-4), (64, 1.0))
    for width, alpha in mlps:
        model = MLPClassifier(
            hidden_layer_sizes=(width,), alpha=alpha, max_iter=300, random_state=random_state
        )
        grid.append((f"mlp_w{width}_a{alpha}", "mlp", scaled(model)))
    grid.append(("gaussian_nb", "naive_bayes", imputed(GaussianNB())))
    # QDA often fails on collinear or one-hot tables: such models are kept as failed
    grid.append(("qda", "qda", imputed(QuadraticDiscriminantAnalysis(reg_param=0.0))))
    grid.append(("dummy_prior", "dummy", DummyClassifier(strategy="prior")))
    if size != "small":
        grid.append(
            (
                "dummy_uniform",
                "dummy",
                DummyClassifier(strategy="uniform", random_state=random_state),
            )
        )
    return grid


def build_pool(
    X,
    y,
    *,
    models: list[tuple[str, str, Any]] | None = None,
    val_size: float = 0.25,
    test_size: float = 0.25,
    random_state: int = 0,
    grid_size: str = "full",
) -> Pool:
    """Train a diverse pool of scikit-learn models on a train split and store their validation and
    test predictions.

    X: numeric features [n, d] (NaN allowed, imputed per model); y: labels (any type, encoded as
    class indices in sorted order). The split is stratified. A model that raises or returns
    non-finite probabilities is kept with status "failed" and NaN predictions; one that predicts
    the same distribution for every sample is kept with status "constant".
    """
    features = check_array(X, "X", ndim=2, allow_nan=True, min_rows=8)
    raw_labels = np.asarray(y)
    if len(raw_labels) != len(features):
        raise ValidationError(f"X has {len(features)} rows but y has {len(raw_labels)} labels")
    if pd.isna(raw_labels).any():
        raise ValidationError("y has missing labels; drop those rows first")
    classes, labels = np.unique(raw_labels, return_inverse=True)
    if len(classes) < 2:
        only = classes[:1].tolist()[0]  # a plain value in the message, not np.int64(1)
        raise ValidationError(f"y has a single class ({only!r}); need at least two")
    counts = np.bincount(labels)
    if counts.min() < 3:
        raise ValidationError(
            f"class {classes[int(np.argmin(counts))]!r} has {counts.min()} sample(s); each class "
            "needs at least 3 to appear in the train, validation and test splits"
        )
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise ValidationError("val_size and test_size must be in (0, 1) and sum to less than 1")
    index = np.arange(len(labels))
    train_val, test = train_test_split(
        index, test_size=test_size, stratify=labels, random_state=random_state
    )
    train, val = train_test_split(
        train_val,
        test_size=val_size / (1 - test_size),
        stratify=labels[train_val],
        random_state=random_state,
    )
    grid = models if models is not None else default_model_grid(random_state, grid_size)
    n_classes = len(classes)
    val_predictions = np.full((len(val), len(grid), n_classes), np.nan)
    test_predictions = np.full((len(test), len(grid), n_classes), np.nan)
    descriptions = []
    for position, (name, family, estimator) in enumerate(progress(grid, desc="pool")):
        started = time.perf_counter()
        info: dict[str, Any] = {"name": name, "family": family, "params": repr(estimator)}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = clone(estimator).fit(features[train], labels[train])
                val_proba = _full_proba(fitted, features[val], n_classes)
                test_proba = _full_proba(fitted, features[test], n_classes)
            if not (np.isfinite(val_proba).all() and np.isfinite(test_proba).all()):
                raise FloatingPointError("non-finite probabilities")
            val_predictions[:, position, :] = val_proba
            test_predictions[:, position, :] = test_proba
            constant = np.ptp(val_proba, axis=0).max() < 1e-9
            info["status"] = "constant" if constant else "ok"
        except Exception as err:  # a failed model is data, not a crash: keep it marked
            info["status"] = "failed"
            info["error"] = f"{type(err).__name__}: {err}"[:300]
        info["fit_seconds"] = time.perf_counter() - started
        descriptions.append(info)
    return Pool(
        val_predictions,
        labels[val],
        test_predictions,
        labels[test],
        [name for name, _, _ in grid],
        descriptions,
        [python_scalar(c) for c in classes],
        {
            "source": "build_pool",
            "n_train": len(train),
            "n_val": len(val),
            "n_test": len(test),
            "random_state": random_state,
        },
    )


def _full_proba(model, features: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with a column for every class (classes absent from the train split get 0)."""
    proba = model.predict_proba(features)
    full = np.zeros((len(features), n_classes))
    full[:, np.asarray(model.classes_, dtype=int)] = proba
    sums = full.sum(axis=1, keepdims=True)
    return full / np.where(sums > 0, sums, 1.0)
