"""Pareto sets and the paper's hypervolume contrast between objectives (the Pareto mask and the exact
2-D hypervolume are `autofm.core.pareto`'s).

All objectives are minimised. A hypervolume here is always measured in a plane (1 − F1, fᵢ) after
min-max normalising both axes over the union of the point sets being compared, with the reference
point at `1 + margin` on both axes (margin 0.1 by default, so extreme points still count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from autofm.core.pareto import hypervolume_2d, pareto_mask

REFERENCE_MARGIN = 0.1


def normalised_hypervolumes(
    point_sets: Sequence[np.ndarray], margin: float = REFERENCE_MARGIN
) -> list[float]:
    """Hypervolume of each 2-D set after min-max normalising over the union of all sets."""
    sets = [np.asarray(s, dtype=float).reshape(-1, 2) for s in point_sets]
    union = np.vstack([s for s in sets if len(s)] or [np.zeros((1, 2))])
    low, high = union.min(axis=0), union.max(axis=0)
    width = np.where(high > low, high - low, 1.0)
    reference = np.full(2, 1.0 + margin)
    return [hypervolume_2d((s - low) / width, reference) if len(s) else 0.0 for s in sets]


def _plane(frame: pd.DataFrame, metric: str, split: str) -> np.ndarray:
    return frame[[f"{split}_f1", f"{split}_{metric}"]].to_numpy(float)


def hypervolume_contrast(
    runs: Mapping[str, pd.DataFrame], split: str = "val", margin: float = REFERENCE_MARGIN
) -> pd.DataFrame:
    """C[i, j] = HV of run i's models minus HV of run j's Pareto set, both in (1 − F1, fᵢ).

    `runs[m]` holds the finished trials of the bi-objective run that minimised (1 − F1, m), with
    columns `val_<objective>` and `test_<objective>`. Run j's Pareto set is chosen on validation
    in its own plane (1 − F1, fⱼ). Positive C[i, j]: optimising fⱼ gives a worse (1 − F1, fᵢ)
    trade-off than optimising fᵢ, i.e. fⱼ conflicts with fᵢ. Asymmetric; the diagonal is 0.
    """
    metrics = list(runs)
    matrix = pd.DataFrame(np.nan, index=metrics, columns=metrics)
    for i in metrics:
        own = _plane(runs[i], i, split)
        for j in metrics:
            other = runs[j]
            front = other[pareto_mask(_plane(other, j, "val"))]
            hv_own, hv_other = normalised_hypervolumes([own, _plane(front, i, split)], margin)
            matrix.loc[i, j] = hv_own - hv_other
    matrix.index.name = "measured in (1-F1, f_i)"
    matrix.columns.name = "run optimised for f_j"
    return matrix


def hypervolume_regret(
    many: pd.DataFrame,
    runs: Mapping[str, pd.DataFrame],
    split: str = "val",
    margin: float = REFERENCE_MARGIN,
) -> pd.DataFrame:
    """Per fairness metric: HV of the bi-objective run vs the many-objective run in (1 − F1, f).

    `regret` = HV(bi-objective) − HV(many-objective); ≤ 0 means the many-objective run covered
    that plane at least as well as the run dedicated to it.
    """
    rows = []
    for metric, run in runs.items():
        hv_bi, hv_many = normalised_hypervolumes(
            [_plane(run, metric, split), _plane(many, metric, split)], margin
        )
        rows.append(
            {"metric": metric, "hv_bi": hv_bi, "hv_many": hv_many, "regret": hv_bi - hv_many}
        )
    return pd.DataFrame(rows).set_index("metric") if rows else pd.DataFrame()
