import numpy as np
import torch

from autofm.gam.binning import apply_bins, bin_batch, bin_edges, bin_table


def test_few_distinct_values_sit_at_their_quantile_positions():
    # 70% zeros, 30% ones: 7 of 9 edges are ≤ 0 and all 9 are ≤ 1
    values = np.array([0.0] * 7 + [1.0] * 3 + [np.nan])
    edges = bin_edges(values, n_bins=10)
    assert len(edges) == 9
    np.testing.assert_array_equal(apply_bins(values, edges, 10), [7] * 7 + [9] * 3 + [10])
    three = bin_edges(np.array([1.0, 2.0, 3.0] * 4), n_bins=8)
    assert len(set(apply_bins(np.array([1.0, 2.0, 3.0]), three, 8))) == 3


def test_continuous_values_fill_quantile_bins_evenly():
    values = np.random.default_rng(0).normal(size=3200)
    edges = bin_edges(values, n_bins=32)
    assert len(edges) == 31 and np.all(np.diff(edges) > 0)  # distinct values: no repeats
    counts = np.bincount(apply_bins(values, edges, 32), minlength=32)
    assert counts.min() >= 99 and counts.max() <= 101


def test_all_missing_column_has_no_edges_and_everything_in_the_missing_bin():
    values = np.full(5, np.nan)
    edges = bin_edges(values, 16)
    assert edges.size == 0
    np.testing.assert_array_equal(apply_bins(values, edges, 16), np.full(5, 16))


def test_bin_batch_matches_per_task_binning():
    generator = torch.Generator().manual_seed(0)
    context = torch.randn(3, 40, 2, generator=generator)
    query = torch.randn(3, 10, 2, generator=generator)
    context_bins, query_bins = bin_batch(context, query, n_bins=8)
    for b in range(3):
        _, (expected_context, expected_query) = bin_table(
            context[b].double().numpy(), [context[b].double().numpy(), query[b].double().numpy()], 8
        )
        np.testing.assert_array_equal(context_bins[b].numpy(), expected_context)
        np.testing.assert_array_equal(query_bins[b].numpy(), expected_query)
    assert int(context_bins.max()) <= 7


def test_a_rare_top_value_shares_the_last_bin_with_the_value_below_it():
    # the documented defect (binning.py): with k ones in n rows and k ≤ n − 1 − ⌊(n − 1)·31/32⌋
    # (4 of 100 here) the 1 has no edge of its own; with one more it gets the last bin alone
    for ones, expected in ((1, [31, 31]), (4, [31, 31]), (5, [30, 31])):
        column = np.array([0.0] * (100 - ones) + [1.0] * ones)
        edges = bin_edges(column, n_bins=32)
        assert list(apply_bins(np.array([0.0, 1.0]), edges, 32)) == expected
    common = np.array([0.0] * 90 + [1.0] * 10)
    edges = bin_edges(common, n_bins=32)
    assert list(apply_bins(np.array([0.0, 1.0]), edges, 32)) == [29, 31]
