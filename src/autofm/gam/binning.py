"""Per-feature binning shared by training and inference, so the model sees the same bins in both.

Every feature is cut at the n_bins - 1 quantiles of its training rows; a value's bin index is the
number of edges at or below it (0 … n_bins - 1). Distinct values never share a bin unless more
than n_bins of them compete. Missing values (NaN) get their own bin, index `n_bins`, which the
model embeds and gives its own shape value.
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
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.empty(0)
    return np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)[1:-1], method="lower")


def apply_bins(values: np.ndarray, edges: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each value (0 … len(edges)); NaN → n_bins (the missing-value bin)."""
    values = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(edges, values, side="right")
    index[np.isnan(values)] = n_bins
    return index


def bin_table(
    x_fit: np.ndarray, x_apply: list[np.ndarray], n_bins: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Edges of every column of `x_fit` [N, F] and the bins of each array in `x_apply`."""
    edges = [bin_edges(x_fit[:, j], n_bins) for j in range(x_fit.shape[1])]
    binned = []
    for array in x_apply:
        columns = [apply_bins(array[:, j], edges[j], n_bins) for j in range(array.shape[1])]
        binned.append(np.stack(columns, axis=1) if columns else np.empty((len(array), 0), int))
    return edges, binned


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
