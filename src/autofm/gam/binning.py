"""Per-feature binning shared by training and inference, so the model sees the same bins in both.

Every feature is cut at the n_bins - 1 quantiles of its training rows; a value's bin index is the
number of edges at or below it (0 … n_bins - 1). Distinct values share a bin when more than n_bins
of them compete, and also when one value fills the quantiles above it: the rarer, larger values
then have no edge of their own. A 0/1 column whose 1 is in at most about 1/n_bins of the rows
(exactly: k ones in n rows with k ≤ n − 1 − ⌊(n − 1)(n_bins − 1)/n_bins⌋) puts both values in
the last bin, so the model cannot see it (a known defect, kept because the trained
model was worse with such columns made visible: docs/gam.md, diagnosis item 6). Missing values
(NaN) get their own bin, index `n_bins`, which the model embeds and gives its own shape value.
"""

from __future__ import annotations

import numpy as np
import torch


def bin_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """The n_bins - 1 inner edges (quantiles of the training values, NaN ignored; may repeat).

    Repeated edges are kept on purpose: a bin index then always says where a value sits in the
    training distribution (index ≈ n_bins × its quantile), also for binary and other
    few-valued features, which land in the bins their frequencies put them in.
    """
    return column_bin_edges(np.asarray(values, dtype=np.float64)[:, None], n_bins)[0]


def column_bin_edges(x: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """`bin_edges` of every column of `x` [N, F] (an empty array for an all-missing column).

    One sort of all columns instead of a quantile call per column: the edges are
    np.quantile(column, q, method="lower"), the sorted non-missing value at floor((n - 1) q).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 0:
        return [np.empty(0) for _ in range(x.shape[1])]
    ordered = np.sort(x, axis=0)  # NaN sorts last, after a column's n present values
    present = np.count_nonzero(~np.isnan(x), axis=0)
    quantiles = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    # the same index arithmetic as np.quantile's "lower" method
    positions = np.floor((present[:, None] - 1) * quantiles).astype(np.intp)
    edges = np.take_along_axis(ordered, np.maximum(positions, 0).T, axis=0).T.copy()
    return [edges[j] if present[j] else np.empty(0) for j in range(x.shape[1])]


def apply_bins(values: np.ndarray, edges: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each value (0 … len(edges)); NaN → n_bins (the missing-value bin)."""
    values = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(edges, values, side="right")
    index[np.isnan(values)] = n_bins
    return index


def apply_column_bins(x: np.ndarray, edges: list[np.ndarray], n_bins: int) -> np.ndarray:
    """`apply_bins` of every column of `x` [N, F] with that column's `edges`: [N, F] indices."""
    x = np.asarray(x, dtype=np.float64)
    index = np.empty(x.shape, dtype=np.intp)
    for j, column_edges in enumerate(edges):
        index[:, j] = np.searchsorted(column_edges, x[:, j], side="right")
    index[np.isnan(x)] = n_bins
    return index


def column_ranges(x: np.ndarray) -> np.ndarray:
    """(min, max) of every column's non-missing values [F, 2]; NaN for an all-missing column."""
    missing = np.isnan(x)
    low = np.where(missing, np.inf, x).min(axis=0, initial=np.inf)
    high = np.where(missing, -np.inf, x).max(axis=0, initial=-np.inf)
    ranges = np.stack([low, high], axis=1)
    ranges[missing.all(axis=0)] = np.nan
    return ranges


def bin_table(
    x_fit: np.ndarray, x_apply: list[np.ndarray], n_bins: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Edges of every column of `x_fit` [N, F] and the bins of each array in `x_apply`."""
    edges = column_bin_edges(x_fit, n_bins)
    return edges, [apply_column_bins(array, edges, n_bins) for array in x_apply]


def bin_batch(
    x_context: torch.Tensor, x_query: torch.Tensor, n_bins: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bins of a prior batch ([B, N, F] context, [B, M, F] query) using each task's context rows."""
    context = x_context.detach().cpu().double().numpy()
    query = x_query.detach().cpu().double().numpy()
    context_bins = np.empty(context.shape, dtype=np.int64)
    query_bins = np.empty(query.shape, dtype=np.int64)
    for b in range(context.shape[0]):
        _, (context_bins[b], query_bins[b]) = bin_table(context[b], [context[b], query[b]], n_bins)
    device = x_context.device
    return torch.from_numpy(context_bins).to(device), torch.from_numpy(query_bins).to(device)
