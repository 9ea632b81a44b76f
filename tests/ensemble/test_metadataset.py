import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.ensemble import (
    GreedyEnsemble,
    Pool,
    build_pool,
    load_pool,
    make_synthetic_ftc,
    read_ftc,
    save_pool,
    softmax,
    write_ftc,
)


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


def test_save_load_round_trip(iris_pool, tmp_path):
    save_pool(iris_pool, tmp_path / "pool")
    loaded = load_pool(tmp_path / "pool")
    np.testing.assert_allclose(loaded.val_predictions, iris_pool.val_predictions, atol=1e-6)
    np.testing.assert_array_equal(loaded.test_labels, iris_pool.test_labels)
    assert loaded.model_names == iris_pool.model_names and loaded.classes == iris_pool.classes
    assert [m["status"] for m in loaded.models] == [m["status"] for m in iris_pool.models]


def test_build_pool_bad_input():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValidationError, match="single class"):
        build_pool(X, np.zeros(30), models=_grid())
    with pytest.raises(ValidationError, match="at least 3"):
        build_pool(X, np.r_[np.zeros(29), 1], models=_grid())
    with pytest.raises(ValidationError, match="rows"):
        build_pool(X, np.zeros(29), models=_grid())


def test_pool_checks_shapes():
    with pytest.raises(ValidationError, match="same models"):
        Pool(np.ones((4, 2, 2)) / 2, np.zeros(4), np.ones((4, 3, 2)) / 2, np.zeros(4), ["a", "b"])
    with pytest.raises(DataNotFoundError):
        load_pool("/nonexistent/pool")


def _write_ftc_config(folder, name, logits_val, y_val, logits_test, y_test):
    for split, logits, labels in (("val", logits_val, y_val), ("test", logits_test, y_test)):
        frame = pd.DataFrame(logits, columns=["logit_0", "logit_1", "logit_2"])
        frame["label"] = labels
        (folder / name).mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / name / f"{split}_predictions.csv", index=False)


def test_read_ftc_layout(tmp_path):
    rng = np.random.default_rng(0)
    y_val, y_test = rng.integers(3, size=20), rng.integers(3, size=10)
    logits = {
        name: (rng.normal(size=(20, 3)), rng.normal(size=(10, 3))) for name in ("b_cfg", "a_cfg")
    }
    for name, (val, test) in logits.items():
        _write_ftc_config(tmp_path, name, val, y_val, test, y_test)
    (tmp_path / "incomplete").mkdir()
    with pytest.warns(UserWarning, match="skipping incomplete"):
        pool = read_ftc(tmp_path)
    assert pool.model_names == ["a_cfg", "b_cfg"]
    np.testing.assert_allclose(pool.val_predictions[:, 1], softmax(logits["b_cfg"][0]))
    np.testing.assert_array_equal(pool.test_labels, y_test)
    with pytest.warns(UserWarning):
        assert load_pool(tmp_path).n_models == 2  # load_pool recognises the layout
    _write_ftc_config(
        tmp_path, "c_cfg", *logits["a_cfg"][:1], y_val[::-1], logits["a_cfg"][1], y_test
    )
    with pytest.raises(ValidationError, match="labels differ"):
        read_ftc(tmp_path)


def test_write_ftc_round_trip(tmp_path):
    pool = make_synthetic_ftc(n_val=30, n_test=20, n_models=4, n_classes=3, random_state=1)
    back = read_ftc(write_ftc(pool, tmp_path))
    order = np.argsort(pool.model_names)
    np.testing.assert_allclose(back.val_predictions, pool.val_predictions[:, order], atol=1e-9)


def test_synthetic_generator_structure():
    pool = make_synthetic_ftc(n_val=3000, n_test=10, n_models=20, n_families=4, random_state=0)
    again = make_synthetic_ftc(n_val=3000, n_test=10, n_models=20, n_families=4, random_state=0)
    np.testing.assert_array_equal(pool.val_predictions, again.val_predictions)
    accuracy = np.mean(pool.val_predictions.argmax(2) == pool.val_labels[:, None], axis=0)
    collapsed = np.array([m["status"] == "collapsed" for m in pool.models])
    assert collapsed.any() and (~collapsed).any()
    assert np.all(accuracy[collapsed] < 0.33)  # chance is 0.25 with 4 classes
    assert np.all(accuracy[~collapsed] > 0.4)
    temperatures = np.array([m["temperature"] for m in pool.models])
    assert temperatures.min() < 0.8 and temperatures.max() > 1.25  # miscalibrated both ways
    # members of one family make correlated errors: their error indicators correlate
    wrong = pool.val_predictions.argmax(2) != pool.val_labels[:, None]
    families = np.array([m["family"] for m in pool.models])
    ok = np.flatnonzero(~collapsed)
    same, other = [], []
    for i in ok:
        for j in ok:
            if i < j:
                r = np.corrcoef(wrong[:, i], wrong[:, j])[0, 1]
                (same if families[i] == families[j] else other).append(r)
    assert np.mean(same) > np.mean(other) + 0.1
