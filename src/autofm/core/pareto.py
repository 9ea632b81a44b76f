"""Pareto fronts of points whose objectives are all minimised: non-dominated filtering, the exact
2-D hypervolume with a fixed reference point, and the best (quality, size) point under a size
budget. Shared by the fairness search and the compression search.
"""

from __future__ import annotations

import numpy as np

from autofm.core.errors import ValidationError


def _points(points, columns: int | None = None) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.size == 0:
        return array.reshape(0, columns or 2)
    if array.ndim != 2 or (columns is not None and array.shape[1] != columns):
        want = f"n×{columns}" if columns else "2-D"
        raise ValidationError(f"points must be a {want} array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValidationError("points hold NaN or infinite values")
    return array


def pareto_mask(points) -> np.ndarray:
    """True for the rows no other row dominates (≤ in every column and < in one)."""
    points = _points(points)
    mask = np.ones(len(points), dtype=bool)
    for i, point in enumerate(points):
        no_worse = np.all(points <= point, axis=1)
        better = np.any(points < point, axis=1)
        mask[i] = not np.any(no_worse & better)
    return mask


def hypervolume_2d(points, reference) -> float:
    """Exact area dominated by `points` (n×2) inside the box below `reference`.

    Points not strictly below the reference in both objectives add nothing."""
    points = _points(points, 2)
    reference = np.asarray(reference, dtype=float).reshape(2)
    points = points[np.all(points < reference, axis=1)]
    # sweep by increasing first objective: each point that improves the best second objective
    # so far adds the strip between it and that best value, out to the reference
    points = points[np.lexsort((points[:, 1], points[:, 0]))]
    area, best = 0.0, reference[1]
    for first, second in points:
        if second < best:
            area += (reference[0] - first) * (best - second)
            best = second
    return float(area)


def best_under(points, budget: float) -> int | None:
    """Index of the row with the lowest quality (column 0) among rows whose size (column 1) is at
    most `budget`, ties to the smaller size; None when no row fits the budget."""
    points = _points(points, 2)
    fits = np.flatnonzero(points[:, 1] <= budget)
    if len(fits) == 0:
        return None
    order = np.lexsort((points[fits, 1], points[fits, 0]))
    return int(fits[order[0]])
