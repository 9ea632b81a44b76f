import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from autofm.core.errors import ValidationError
from autofm.ensemble import GreedyEnsemble, build_pool
from autofm.ensemble.pool_builder import default_model_grid


class _Exploding(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("diverged")


class _NaNPredictor(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), np.nan)


def _grid():
    return [
        ("logreg", "logreg", LogisticRegression(max_iter=300)),
        ("stump", "tree", DecisionTreeClassifier(max_depth=1, random_state=0)),
        ("exploding", "broken", _Exploding()),
        ("nan", "broken", _NaNPredictor()),
        ("constant", "dummy", DummyClassifier(strategy="prior")),
    ]


@pytest.fixture(scope="module")
def iris_pool():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    return build_pool(X, names, models=_grid(), random_state=0)


def test_build_pool_splits_and_statuses(iris_pool):
    pool = iris_pool
    assert pool.classes == ["setosa", "versicolor", "virginica"]
    assert len(pool.val_labels) == len(pool.test_labels) == 38  # a quarter of 150 each, rounded up
    statuses = {m["name"]: m["status"] for m in pool.models}
    assert statuses == {
        "logreg": "ok",
        "stump": "ok",
        "exploding": "failed",
        "nan": "failed",
        "constant": "constant",
    }
    assert "diverged" in pool.models[2]["error"]
    assert pool.failed().tolist() == [False, False, True, True, False]
    usable = pool.usable()
    assert usable.model_names == ["logreg", "stump", "constant"]
    np.testing.assert_allclose(usable.val_predictions.sum(axis=2), 1.0)
    # the pool's logistic regression must be as good as one fitted by hand on iris: near perfect
    assert np.mean(usable.test_predictions[:, 0].argmax(1) == usable.test_labels) > 0.85
    GreedyEnsemble().fit(usable.val_predictions, usable.val_labels)


def test_splits_are_stratified_and_cover_the_table(iris_pool):
    # 150 iris rows, 50 per class: each split holds every class in (almost) equal shares
    for labels in (iris_pool.val_labels, iris_pool.test_labels):
        assert set(np.bincount(labels, minlength=3)) <= {12, 13}
    assert iris_pool.description["n_train"] == 150 - 2 * 38


def test_model_grids_have_unique_names():
    # names become folder names in the FTC layout: a repeated name would overwrite a model
    for size, count in (("full", 36), ("small", 14)):
        names = [name for name, _, _ in default_model_grid(size=size)]
        assert len(names) == count == len(set(names))


def test_build_pool_bad_input():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValidationError, match="single class"):
        build_pool(X, np.zeros(30), models=_grid())
    with pytest.raises(ValidationError, match="at least 3"):
        build_pool(X, np.r_[np.zeros(29), 1], models=_grid())
    with pytest.raises(ValidationError, match="rows"):
        build_pool(X, np.zeros(29), models=_grid())
