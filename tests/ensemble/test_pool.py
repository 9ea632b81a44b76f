import json

import numpy as np
import pytest

from autofm.core.errors import DataNotFoundError, ValidationError
from autofm.ensemble import Pool, load_pool, save_pool
from tests.ensemble.conftest import random_predictions

CLASSES = ["setosa", "versicolor", "virginica"]


def _pool_with_a_failed_model() -> Pool:
    val, val_labels = random_predictions(n=30, m=4, c=3, seed=0)
    test, test_labels = random_predictions(n=20, m=4, c=3, seed=1)
    val[:, 2] = test[:, 2] = np.nan
    statuses = ["ok", "ok", "failed", "constant"]
    models = [{"name": name, "status": s} for name, s in zip("abcd", statuses)]
    return Pool(val, val_labels, test, test_labels, list("abcd"), models, CLASSES, {"seed": 0})


def test_failed_models_are_kept_and_usable_drops_them():
    pool = _pool_with_a_failed_model()
    assert pool.failed().tolist() == [False, False, True, False]
    usable = pool.usable()
    assert usable.model_names == ["a", "b", "d"] and usable.n_models == 3
    np.testing.assert_array_equal(usable.test_predictions, pool.test_predictions[:, [0, 1, 3]])
    assert [m["status"] for m in usable.models] == ["ok", "ok", "constant"]
    with pytest.raises(ValidationError, match="every model in the pool failed"):
        pool.subset([2]).usable()


def test_subset_keeps_the_given_order():
    pool = _pool_with_a_failed_model()
    picked = pool.subset([3, 0])
    assert picked.model_names == ["d", "a"]
    np.testing.assert_array_equal(picked.val_predictions[:, 0], pool.val_predictions[:, 3])
    np.testing.assert_array_equal(picked.val_labels, pool.val_labels)


def test_save_load_round_trip(tmp_path):
    pool = _pool_with_a_failed_model()
    save_pool(pool, tmp_path / "pool")
    loaded = load_pool(tmp_path / "pool")
    # stored as float32: equal up to its rounding, NaNs of the failed model included
    np.testing.assert_allclose(loaded.val_predictions, pool.val_predictions, atol=1e-6)
    np.testing.assert_allclose(loaded.test_predictions, pool.test_predictions, atol=1e-6)
    np.testing.assert_array_equal(loaded.test_labels, pool.test_labels)
    assert loaded.model_names == pool.model_names and loaded.classes == CLASSES
    assert loaded.models == pool.models and loaded.description == {"seed": 0}
    assert loaded.failed().tolist() == [False, False, True, False]


def test_pool_checks_shapes():
    with pytest.raises(ValidationError, match="same models"):
        Pool(np.ones((4, 2, 2)) / 2, np.zeros(4), np.ones((4, 3, 2)) / 2, np.zeros(4), ["a", "b"])
    with pytest.raises(ValidationError, match="labels do not match"):
        Pool(np.ones((4, 2, 2)) / 2, np.zeros(3), np.ones((4, 2, 2)) / 2, np.zeros(4), ["a", "b"])
    with pytest.raises(ValidationError, match="3 model names for 2 models"):
        Pool(np.ones((4, 2, 2)) / 2, np.zeros(4), np.ones((4, 2, 2)) / 2, np.zeros(4), list("abc"))


def test_load_pool_refuses_what_is_not_a_pool(tmp_path):
    with pytest.raises(DataNotFoundError):
        load_pool(tmp_path / "missing")
    with pytest.raises(DataNotFoundError, match="neither pool.json"):
        load_pool(tmp_path)
    save_pool(_pool_with_a_failed_model(), tmp_path / "other")
    meta = json.loads((tmp_path / "other" / "pool.json").read_text())
    (tmp_path / "other" / "pool.json").write_text(json.dumps(meta | {"format": "other/1"}))
    with pytest.raises(ValidationError, match="not an autofm pool"):
        load_pool(tmp_path / "other")
