"""Post-hoc per-feature shrinkage of shape functions, fitted on cross-fitted contributions.

A forward pass estimates every shape function with some noise; for a feature without signal the
noise is all there is. Cross-fitting measures that: the model runs on K − 1 folds of the training
rows, the held-out fold's contributions are read from the resulting tables, and one non-negative
factor per feature (plus an intercept correction) is fitted to the held-out labels. The factors
then scale the shape functions of the full-data pass: near 0 for a feature whose estimated effect
does not carry over to unseen rows, near 1 (or above, for a shape the model under-weights) when
it does. When the fit already ran on several subsamples, those passes are the cross-fit: each
row's held-out contributions are read from the passes that did not contain it (out-of-pass), at
no extra cost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import minimize
from sklearn.model_selection import KFold, StratifiedKFold

from autofm.core.runtime import single_threaded

# the rows of one forward pass and the raw shape tables [features, n_bins + 1, C] it produced
Passes = list[tuple[np.ndarray, np.ndarray]]
# (bins [rows, features], model labels [rows]) -> raw shape tables [features, n_bins + 1, C]
ShapeTables = Callable[[np.ndarray, np.ndarray], np.ndarray]
# raw tables [..., n_outputs] -> tables in the estimator's output space [..., K]
OutputSpace = Callable[[np.ndarray], np.ndarray]


def crossfit_scales(
    bins: np.ndarray,
    y_model: np.ndarray,
    target: np.ndarray,
    task: str,
    n_outputs: int,
    shape_tables: ShapeTables,
    output_space: OutputSpace,
    passes: Passes,
    n_folds: int,
    random_state: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature scales [F] and an offset [K] fitted on held-out contributions (see module).

    `bins` [n, F] holds the binned informative features, `y_model` the labels the model sees,
    `target` what the loss compares with (`y_model`, or y in its own units for regression);
    `passes` are the fit's subsample passes: with two or more (and enough rows left out of
    them) they give the held-out contributions, otherwise `n_folds` cross-fitted passes run.
    """
    held = out_of_pass_contributions(bins, y_model, task, n_outputs, output_space, passes)
    if held is None:
        splits = fold_splits(y_model, n_folds, task != "regression", random_state)
        held = cross_fitted_contributions(
            bins, y_model, n_outputs, shape_tables, output_space, splits
        )
    rows, held_out, base = held
    return fit_feature_scales(held_out, base, target[rows], task)


def fold_splits(
    y_model: np.ndarray, n_folds: int, classification: bool, random_state: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) of `n_folds` (at least 2) shuffled folds, stratified by class
    when every class has a row in each fold."""
    k = max(2, int(n_folds))
    if classification and np.bincount(y_model).min() >= k:
        splitter = StratifiedKFold(k, shuffle=True, random_state=random_state)
    else:
        splitter = KFold(k, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros(len(y_model)), y_model))


def cross_fitted_contributions(
    bins: np.ndarray,
    y_model: np.ndarray,
    n_outputs: int,
    shape_tables: ShapeTables,
    output_space: OutputSpace,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, held-out contributions [n, F, K], base [n, K]) from one pass per fold split."""
    n_rows, n_features = bins.shape
    held_out = np.zeros((n_rows, n_features, n_outputs if n_outputs > 2 else 1))
    base = np.zeros((n_rows, held_out.shape[-1]))
    columns = np.arange(n_features)[None, :]
    for fit_rows, held_rows in splits:
        raw = shape_tables(bins[fit_rows], y_model[fit_rows])[..., :n_outputs]
        values = output_space(raw)[columns, bins]  # [rows, features, outputs]
        means = values[fit_rows].mean(axis=0)
        held_out[held_rows] = values[held_rows] - means
        base[held_rows] = means.sum(axis=0)
    return np.arange(n_rows), held_out, base


def out_of_pass_contributions(
    bins: np.ndarray,
    y_model: np.ndarray,
    task: str,
    n_outputs: int,
    output_space: OutputSpace,
    passes: Passes,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(rows, held-out contributions, base) from the subsample passes, each row's averaged over
    the passes that left it out; None when there was one pass, or too few rows (under 100, or
    one class) outside them."""
    if len(passes) < 2:
        return None
    n_rows, n_features = bins.shape
    outside = np.ones((len(passes), n_rows), dtype=bool)
    for index, (subset, _) in enumerate(passes):
        outside[index, subset] = False
    count = outside.sum(axis=0)
    rows = np.flatnonzero(count > 0)
    labels = y_model[rows]
    if len(rows) < 100 or (task != "regression" and np.unique(labels).size < 2):
        return None
    columns = np.arange(n_features)[None, :]
    held_out, base = 0.0, 0.0
    for index, (subset, raw) in enumerate(passes):
        space = output_space(raw[..., :n_outputs])
        values = space[columns, bins[rows]]
        means = space[columns, bins[subset]].mean(axis=0)
        weight = (outside[index, rows] / count[rows])[:, None, None]
        held_out = held_out + weight * (values - means)
        base = base + weight[:, :, 0] * means.sum(axis=0)
    return rows, held_out, base


def fit_feature_scales(
    contributions: np.ndarray,
    base: np.ndarray,
    y: np.ndarray,
    task: str,
    penalty: float = 0.0,
    max_scale: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Scales s [F] in [0, max_scale] and an offset δ [K] minimising the mean held-out loss of
    base + δ + Σ_j s_j · contributions[:, j] (+ penalty · Σ_j (s_j − 1)² / rows).

    contributions [n, F, K], base [n, K]; task "binary" (y in {0, 1}, K = 1, logistic loss),
    "multiclass" (y in 0 … K − 1, softmax cross-entropy) or "regression" (K = 1, squared error,
    fitted in units of y's standard deviation so that the result does not depend on y's unit).
    """
    unit = 1.0
    if task == "regression":
        # squared error in y's own units: a target of std 1e-3 gives losses near 1e-6, which
        # L-BFGS-B takes for converged at its start; the factors do not depend on the unit
        spread = float(np.std(y))
        unit = spread if np.isfinite(spread) and spread > 0 else 1.0
        contributions, base, y = contributions / unit, base / unit, np.asarray(y) / unit
    contributions = torch.as_tensor(contributions, dtype=torch.float64)
    base = torch.as_tensor(base, dtype=torch.float64)
    n_rows, n_features, n_outputs = contributions.shape
    target = torch.as_tensor(
        np.asarray(y), dtype=torch.long if task == "multiclass" else torch.float64
    )

    def objective(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        theta = torch.tensor(parameters, dtype=torch.float64, requires_grad=True)
        scales, offset = theta[:n_features], theta[n_features:]
        score = base + offset + torch.einsum("nfk,f->nk", contributions, scales)
        if task == "binary":
            loss = torch.nn.functional.binary_cross_entropy_with_logits(score[:, 0], target)
        elif task == "multiclass":
            loss = torch.nn.functional.cross_entropy(score, target)
        else:
            loss = torch.mean((score[:, 0] - target) ** 2)
        loss = loss + penalty * torch.sum((scales - 1.0) ** 2) / n_rows
        loss.backward()
        return float(loss.detach()), theta.grad.numpy().copy()

    start = np.concatenate([np.ones(n_features), np.zeros(n_outputs)])
    bounds = [(0.0, max_scale)] * n_features + [(None, None)] * n_outputs
    with single_threaded():
        result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[:n_features], result.x[n_features:] * unit
