"""Models and their search spaces, with the ranges of the ManyFairHPO paper.

Each model is a scikit-learn pipeline: one-hot encoding of string/categorical columns and min-max
scaling of numeric ones (as in the paper's preprocessing), then the classifier. `gb` is
scikit-learn's HistGradientBoosting standing in for the paper's XGBoost (same five
hyperparameters: learning rate, depth, column subsampling, L2 penalty, number of trees).
`logreg` is not in the paper; it is a fast model for smoke tests and the tour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

from autofm.core.errors import ValidationError

Suggest = Callable[[optuna.Trial], dict[str, Any]]


def _rf_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "max_depth": trial.suggest_int("max_depth", 1, 50, log=True),
        "min_samples_split": trial.suggest_int("min_samples_split", 2, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20),
        "max_features": trial.suggest_float("max_features", 0.0, 1.0),
        "n_estimators": trial.suggest_int("n_estimators", 1, 200, log=True),
    }


def _gb_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 2**-10, 1.0, log=True),
        "max_depth": trial.suggest_int("max_depth", 1, 50, log=True),
        "max_features": trial.suggest_float("max_features", 0.1, 1.0),
        "l2_regularization": trial.suggest_float("l2_regularization", 2**-10, 2**10, log=True),
        "max_iter": trial.suggest_int("max_iter", 1, 200, log=True),
    }


def _mlp_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "depth": trial.suggest_int("depth", 1, 3),
        "width": trial.suggest_int("width", 16, 1024, log=True),
        "batch_size": trial.suggest_int("batch_size", 4, 256, log=True),
        "alpha": trial.suggest_float("alpha", 1e-8, 1.0, log=True),
        "learning_rate_init": trial.suggest_float("learning_rate_init", 1e-5, 1.0, log=True),
        "n_iter_no_change": trial.suggest_int("n_iter_no_change", 1, 20, log=True),
    }


def _logreg_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 1e-4, 1e4, log=True),
        "class_weight": trial.suggest_categorical("class_weight", ["none", "balanced"]),
    }


SPACES: dict[str, Suggest] = {
    "rf": _rf_space,
    "gb": _gb_space,
    "mlp": _mlp_space,
    "logreg": _logreg_space,
}
MODELS = tuple(SPACES)


def check_model(model: str) -> str:
    """`model` is a known model name."""
    if model not in SPACES:
        raise ValidationError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    return model


def suggest_params(model: str, trial: optuna.Trial) -> dict[str, Any]:
    """Sample one configuration of `model` from its search space."""
    return SPACES[check_model(model)](trial)


def build_classifier(
    model: str, params: dict[str, Any], n_features: int, random_state: int, max_epochs: int = 200
):
    """The classifier (without preprocessing) for one configuration."""
    check_model(model)
    if model == "rf":
        # the paper samples max_features as an exponent: n_features ** x features per split
        max_features = max(1, int(np.rint(n_features ** params["max_features"])))
        return RandomForestClassifier(
            max_depth=params["max_depth"],
            min_samples_split=params["min_samples_split"],
            min_samples_leaf=params["min_samples_leaf"],
            max_features=max_features,
            n_estimators=params["n_estimators"],
            bootstrap=True,
            random_state=random_state,
            n_jobs=1,
        )
    if model == "gb":
        return HistGradientBoostingClassifier(
            learning_rate=params["learning_rate"],
            max_depth=params["max_depth"],
            max_features=params["max_features"],
            l2_regularization=params["l2_regularization"],
            max_iter=params["max_iter"],
            early_stopping=False,
            random_state=random_state,
        )
    if model == "mlp":
        return MLPClassifier(
            hidden_layer_sizes=(params["width"],) * params["depth"],
            batch_size=params["batch_size"],
            alpha=params["alpha"],
            learning_rate_init=params["learning_rate_init"],
            n_iter_no_change=params["n_iter_no_change"],
            early_stopping=True,
            max_iter=max_epochs,
            activation="relu",
            solver="adam",
            random_state=random_state,
        )
    return LogisticRegression(
        C=params["C"],
        class_weight=None if params["class_weight"] == "none" else "balanced",
        max_iter=1000,
    )


def preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    """One-hot encode string/categorical/boolean columns, min-max scale the numeric ones."""
    categorical = [
        c
        for c in X.columns
        if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])
    ]
    numeric = [c for c in X.columns if c not in categorical]
    return ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            ),
            ("numeric", MinMaxScaler(), numeric),
        ]
    )


def encoded_width(X: pd.DataFrame) -> int:
    """Number of columns the preprocessing turns `X` into."""
    return int(preprocessor(X).fit(X).transform(X.head(1)).shape[1])


def build_pipeline(
    model: str,
    params: dict[str, Any],
    X: pd.DataFrame,
    random_state: int,
    n_features: int | None = None,
    max_epochs: int = 200,
) -> Pipeline:
    """Preprocessing + classifier for one configuration; `X` fixes the columns and their types."""
    if n_features is None:
        n_features = encoded_width(X)
    classifier = build_classifier(model, params, n_features, random_state, max_epochs)
    return Pipeline([("prep", preprocessor(X)), ("model", classifier)])
