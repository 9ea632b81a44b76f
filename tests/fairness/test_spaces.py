import numpy as np
import optuna
import pytest

from autofm.core.errors import ValidationError
from autofm.fairness.spaces import (
    MODELS,
    build_classifier,
    build_pipeline,
    encoded_width,
    suggest_params,
)

from .helpers import planted

PAPER_RANGES = {
    "rf": {"max_depth": (1, 50), "min_samples_split": (2, 128), "n_estimators": (1, 200)},
    "gb": {"learning_rate": (2**-10, 1.0), "max_iter": (1, 200)},
    "mlp": {"depth": (1, 3), "width": (16, 1024), "batch_size": (4, 256)},
}


@pytest.mark.parametrize("model", MODELS)
def test_spaces_sample_in_range_and_models_fit(model):
    table = planted(80)
    X, y = table.drop(columns=["label", "race"]), table["label"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        params = suggest_params(model, study.ask())
        for name, (low, high) in PAPER_RANGES.get(model, {}).items():
            assert low <= params[name] <= high
    small = {
        "rf": {
            "max_depth": 3,
            "min_samples_split": 2,
            "min_samples_leaf": 1,
            "max_features": 0.5,
            "n_estimators": 5,
        },
        "gb": {
            "learning_rate": 0.1,
            "max_depth": 3,
            "max_features": 1.0,
            "l2_regularization": 1.0,
            "max_iter": 5,
        },
        "mlp": {
            "depth": 1,
            "width": 16,
            "batch_size": 32,
            "alpha": 1e-4,
            "learning_rate_init": 1e-3,
            "n_iter_no_change": 2,
        },
        "logreg": {"C": 1.0, "class_weight": "balanced"},
    }[model]
    pipeline = build_pipeline(model, small, X, random_state=0, max_epochs=5)
    predictions = pipeline.fit(X, y).predict(X)
    assert set(np.unique(predictions)) <= {0, 1}


def test_rf_max_features_is_an_exponent_of_the_feature_count():
    params = {"max_depth": 3, "min_samples_split": 2, "min_samples_leaf": 1, "n_estimators": 5}
    assert build_classifier("rf", params | {"max_features": 0.5}, 16, 0).max_features == 4
    assert build_classifier("rf", params | {"max_features": 0.0}, 16, 0).max_features == 1
    assert build_classifier("rf", params | {"max_features": 1.0}, 16, 0).max_features == 16


def test_one_hot_width_and_unknown_model():
    table = planted(50)
    # x1, x2 numeric + colour one-hot (2 values) + race one-hot (2 values)
    assert encoded_width(table.drop(columns=["label"])) == 6
    with pytest.raises(ValidationError, match="unknown model"):
        build_classifier("svm", {}, 3, 0)
