import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import ValidationError
from autofm.ensemble import load_pool, make_synthetic_ftc, read_ftc, softmax, write_ftc


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
