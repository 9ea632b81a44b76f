"""OpenFE's two-stage selection: planted features come out on top, and the reimplementation
ranks exactly as the PyPI package does on the same data."""

import random

import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import ValidationError
from autofm.fe.operators import FeatureSpec
from autofm.fe.reference import (
    _delete_same,
    _OpenFERun,
    _subsample,
    openfe_rank,
    openfe_select,
)

pytest.importorskip("lightgbm")


def planted_table(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """y depends on x − GroupByThenMean(c, x) and on log(a / b); `noise` is a distractor."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 8, n)
    group_means = rng.normal(0, 3, 8)
    x = group_means[group] + rng.normal(0, 1, n)
    a, b = rng.uniform(1, 5, n), rng.uniform(1, 5, n)
    X = pd.DataFrame(
        {
            "c": np.array(list("abcdefgh"))[group],
            "x": x,
            "a": a,
            "b": b,
            "noise": rng.normal(size=n),
        }
    )
    signal = 2.5 * (x - group_means[group]) + 3.0 * np.log(a / b)
    y = (signal + rng.logistic(size=n) > 0).astype(int)
    return X, y, signal


@pytest.fixture(scope="module")
def planted():
    X, y, _ = planted_table(600)
    return X, y, openfe_rank(X, y, seed=0)


def test_planted_features_come_first(planted):
    _, _, ranking = planted
    top = [spec for spec, _ in ranking[:2]]
    assert FeatureSpec("/", ("a", "b")) in top
    grouped = [s for s in top if s.operator.startswith("GroupByThen")]
    assert len(grouped) == 1 and grouped[0].inputs == ("c", "x")
    gains = [gain for _, gain in ranking]
    assert gains == sorted(gains, reverse=True) and gains[1] > 3 * gains[2]


def test_selection_is_deterministic_for_a_seed(planted):
    X, y, ranking = planted
    assert openfe_select(X, y, n_features=5, seed=0) == [spec for spec, _ in ranking[:5]]


def test_column_names_lightgbm_refuses_are_handled_and_given_back(planted):
    X, y, ranking = planted
    awkward = X.rename(columns={"a": 'a:"1"', "c": "c[group]"})
    renamed = openfe_select(awkward, y, n_features=5, seed=0)
    back = {'a:"1"': "a", "c[group]": "c"}
    assert [FeatureSpec(s.operator, tuple(back.get(c, c) for c in s.inputs)) for s in renamed] == [
        spec for spec, _ in ranking[:5]
    ]


def test_prior_init_scores_are_openfes():
    X, y, _ = planted_table(200)
    import lightgbm

    run = _OpenFERun(lightgbm, X, y, "classification", seed=0, n_jobs=1)
    np.testing.assert_allclose(run.prior_scores(), np.log(y.mean() / (1 - y.mean())))
    labels = np.arange(200) % 4
    run = _OpenFERun(lightgbm, X, labels, "classification", seed=0, n_jobs=1)
    np.testing.assert_allclose(run.prior_scores(), np.log(np.full((200, 4), 0.25)))
    run = _OpenFERun(lightgbm, X, X["x"].to_numpy(), "regression", seed=0, n_jobs=1)
    np.testing.assert_allclose(run.prior_scores(), X["x"].mean())


@pytest.mark.slow  # the package starts worker processes and takes a few seconds
def test_agrees_with_the_openfe_package():
    """The same ranking and gains, with feature boosting (out-of-fold init scores) and an
    ordinal and a second categorical column (Combine, NUnique, freq listed twice)."""
    pytest.importorskip("openfe")
    X, y, _ = planted_table(300, seed=1)
    rng = np.random.default_rng(7)
    X = X.drop(columns=["a", "b", "noise"]).assign(
        o=rng.integers(0, 10, len(X)), d=rng.choice(["p", "q", "r"], len(X))
    )
    ours = openfe_rank(X, y, seed=3, feature_boosting=True, n_data_blocks=2)
    theirs = openfe_rank(X, y, seed=3, feature_boosting=True, n_data_blocks=2, backend="openfe")
    assert ours == theirs
    assert ours[0][0].inputs == ("c", "x")


def test_regression_finds_the_group_feature():
    X, _, signal = planted_table(300, seed=2)
    X = X.drop(columns=["a", "b"])
    top = openfe_select(X, signal, task="regression", n_features=1, n_data_blocks=2)
    assert top[0].operator.startswith("GroupByThen") and top[0].inputs == ("c", "x")


def test_subsamples_are_nested_and_match_openfes_random_stream():
    blocks = _subsample(range(100), 8, random.Random(5))
    assert [len(b) for b in blocks] == [12, 24, 48, 100]
    assert all(blocks[i] == blocks[i + 1][: len(blocks[i])] for i in range(3))
    assert sorted(blocks[-1]) == list(range(100))
    random.seed(5)
    shuffled = list(range(100))
    random.shuffle(shuffled)  # what openfe's _subsample does after random.seed(seed)
    assert blocks[-1] == shuffled
    assert (
        _subsample(range(10), 1, random.Random(0))[0]
        == _subsample(range(10), 1, random.Random(0))[-1]
    )


def test_delete_same_keeps_the_first_of_equal_scores():
    scored = [("a", 3.0), ("b", 3.0), ("c", 2.0), ("d", 2.0 + 1e-30), ("e", 1.0)]
    assert _delete_same(scored) == [("a", 3.0), ("c", 2.0), ("e", 1.0)]


def test_bad_input_is_refused_with_a_reason(planted):
    X, y, _ = planted
    with pytest.raises(ValidationError, match="DataFrame"):
        openfe_rank(X.to_numpy(), y)
    with pytest.raises(ValidationError, match="rows"):
        openfe_rank(X, y[:-1])
    with pytest.raises(ValidationError, match="at least 160 rows"):
        openfe_rank(X.head(100), y[:100])
    with pytest.raises(ValidationError, match="2 classes"):
        openfe_rank(X, np.zeros(len(X)))
    with pytest.raises(ValidationError, match="task"):
        openfe_rank(X, y, task="ranking")
    with pytest.raises(ValidationError, match="power of 2"):
        openfe_rank(X, y, n_data_blocks=6)
    with pytest.raises(ValidationError, match="backend"):
        openfe_rank(X, y, backend="autofeat")
    with pytest.raises(ValidationError, match="n_features"):
        openfe_select(X, y, n_features=0)
    with pytest.raises(ValidationError, match="missing"):
        openfe_rank(X, np.where(np.arange(len(X)) == 3, np.nan, y))
    with pytest.raises(ValidationError, match="regression"):
        openfe_rank(X, y.astype(float), task="regression", backend="openfe")
