"""The vectorised and single-threaded paths of issue #19 give the plain per-feature results.

Each test holds a fast path against the computation it replaced, written out here as the
reference: np.quantile per column for the edges, searchsorted per column for the bins, a look-up
per feature for the contributions, the optimiser on the caller's threads for the shrinkage.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from threadpoolctl import threadpool_info

from autofm.gam.binning import (
    apply_bins,
    apply_column_bins,
    bin_edges,
    column_bin_edges,
    column_ranges,
)
from autofm.gam.shrinkage import fit_feature_scales, single_threaded


def _reference_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.empty(0)
    return np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)[1:-1], method="lower")


def _reference_bins(values: np.ndarray, edges: np.ndarray, n_bins: int) -> np.ndarray:
    index = np.searchsorted(edges, values, side="right")
    index[np.isnan(values)] = n_bins
    return index


def _awkward_table(n_rows: int, seed: int) -> np.ndarray:
    """Columns with ties, NaN, a constant, binary indicators, all-missing, few values, -0.0."""
    rng = np.random.default_rng(seed)
    columns = [
        rng.normal(size=n_rows),
        np.round(rng.normal(size=n_rows), 1),  # many ties
        np.where(rng.random(n_rows) < 0.2, np.nan, rng.exponential(size=n_rows)),
        np.full(n_rows, 3.0),  # constant
        (rng.random(n_rows) < 0.1).astype(float),  # rare binary indicator
        (rng.random(n_rows) < 0.6).astype(float),
        np.full(n_rows, np.nan),  # all missing
        np.where(rng.random(n_rows) < 0.5, np.nan, 1.0),  # one value and missing ones
        rng.integers(0, 4, n_rows).astype(float),  # few values
        rng.choice([0.0, -0.0, 1.0], size=n_rows),  # signed zeros tie
        rng.normal(size=n_rows) * 1e6,
    ]
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("n_rows", [1, 2, 7, 50, 1000])
@pytest.mark.parametrize("n_bins", [2, 8, 32])
def test_column_edges_and_bins_equal_the_per_feature_computation(n_rows, n_bins):
    x = _awkward_table(n_rows, seed=n_rows * 100 + n_bins)
    query = np.concatenate([x, _awkward_table(30, seed=1) * 1.5 - 0.5])  # also unseen values
    edges = column_bin_edges(x, n_bins)
    assert len(edges) == x.shape[1]
    for j in range(x.shape[1]):
        expected = _reference_edges(x[:, j], n_bins)
        np.testing.assert_array_equal(edges[j], expected)
        np.testing.assert_array_equal(bin_edges(x[:, j], n_bins), expected)
    bins = apply_column_bins(query, edges, n_bins)
    assert bins.shape == query.shape and bins.dtype == np.intp
    for j in range(x.shape[1]):
        expected = _reference_bins(query[:, j], edges[j], n_bins)
        np.testing.assert_array_equal(bins[:, j], expected)
        np.testing.assert_array_equal(apply_bins(query[:, j], edges[j], n_bins), expected)


def test_edges_of_no_rows_and_no_columns():
    assert [e.size for e in column_bin_edges(np.empty((0, 3)), 8)] == [0, 0, 0]
    assert column_bin_edges(np.empty((5, 0)), 8) == []
    assert apply_column_bins(np.empty((5, 0)), [], 8).shape == (5, 0)


def test_column_ranges_equal_nanmin_and_nanmax_per_column():
    x = _awkward_table(200, seed=3)
    ranges = column_ranges(x)
    for j in range(x.shape[1]):
        column = x[~np.isnan(x[:, j]), j]
        expected = (column.min(), column.max()) if column.size else (np.nan, np.nan)
        np.testing.assert_array_equal(ranges[j], expected)


def _reference_contributions(gam, X) -> np.ndarray:
    """The per-feature look-up: each feature's table, its missing value appended."""
    x = gam._columns.encode(pd.DataFrame(X) if not isinstance(X, pd.DataFrame) else X, "X")
    out = np.empty((x.shape[0], x.shape[1], gam.intercept_.shape[0]))
    for j, edges in enumerate(gam.bin_edges_):
        index = apply_bins(x[:, j], edges, gam._n_bins)
        table = np.vstack([gam.shape_functions_[j], gam.missing_shape_[j][None, :]])
        out[:, j] = table[np.where(index == gam._n_bins, len(table) - 1, index)]
    return out


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_contributions_and_informative_features_equal_the_per_feature_rules(tiny_checkpoint, task):
    from autofm.gam import GAMformerClassifier, GAMformerRegressor

    rng = np.random.default_rng(7)
    x = _awkward_table(150, seed=7)
    target = np.nan_to_num(x[:, 0]) + x[:, 4]
    if task == "regression":
        gam = GAMformerRegressor(checkpoint=tiny_checkpoint).fit(x, target)
    else:
        cuts = [0.5] if task == "binary" else [-0.5, 0.5]
        gam = GAMformerClassifier(checkpoint=tiny_checkpoint).fit(x, np.digitize(target, cuts))
    informative = [
        j
        for j in range(x.shape[1])
        if np.unique(x[~np.isnan(x[:, j]), j]).size > 1
        or (np.isnan(x[:, j]).any() and not np.isnan(x[:, j]).all())
    ]
    np.testing.assert_array_equal(gam.informative_features_, informative)
    query = np.concatenate([x[:20], rng.normal(size=(10, x.shape[1])) * 3])
    query[::3, ::2] = np.nan
    contributions = gam.explain(query)["contributions"]
    expected = _reference_contributions(gam, query)
    for k, frame in enumerate(contributions.values()):
        np.testing.assert_array_equal(frame.to_numpy(), expected[:, :, k])


def test_contributions_with_categories_equal_the_per_feature_lookup(tiny_checkpoint):
    from autofm.gam import GAMformerClassifier

    rng = np.random.default_rng(8)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=120),
            "c": rng.choice(["x", "y", "z", None], size=120),
            "b": rng.random(120) < 0.3,
        }
    )
    y = (frame["a"] + (frame["c"] == "y") > 0.3).astype(int)
    gam = GAMformerClassifier(checkpoint=tiny_checkpoint).fit(frame, y)
    query = frame.iloc[:15].copy()
    query.loc[query.index[:3], "c"] = "unseen"  # an unseen category counts as missing
    contributions = gam.explain(query)["contributions"]
    np.testing.assert_array_equal(
        next(iter(contributions.values())).to_numpy(), _reference_contributions(gam, query)[..., 0]
    )


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_single_threaded_limits_torch_and_blas_and_restores_them():
    torch.set_num_threads(2)  # the suite's autouse fixture restores its own setting afterwards
    blas_before = _blas_threads()
    with single_threaded():
        assert torch.get_num_threads() == 1
        assert _blas_threads() <= {1}
    assert torch.get_num_threads() == 2
    assert _blas_threads() == blas_before
    with pytest.raises(RuntimeError), single_threaded():
        raise RuntimeError("restored on errors too")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_feature_scales_do_not_depend_on_the_callers_threads(task):
    rng = np.random.default_rng(11)
    n_outputs = 3 if task == "multiclass" else 1
    contributions = rng.normal(0, 0.4, size=(3000, 40, n_outputs))
    score = contributions[:, :5].sum(axis=1)
    if task == "binary":
        y = (rng.random(3000) < 1 / (1 + np.exp(2.0 - score[:, 0]))).astype(float)
    elif task == "multiclass":
        y = np.argmax(score + rng.gumbel(size=score.shape), axis=1)
    else:
        y = score[:, 0] + rng.normal(size=3000)
    base = np.zeros((3000, n_outputs))
    torch.set_num_threads(1)
    one = fit_feature_scales(contributions, base, y, task, penalty=0.5)
    torch.set_num_threads(2)
    two = fit_feature_scales(contributions, base, y, task, penalty=0.5)
    assert torch.get_num_threads() == 2
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
