"""Post-hoc per-feature shrinkage of shape functions, fitted on cross-fitted contributions.

A forward pass estimates every shape function with some noise; for a feature without signal the
noise is all there is. Cross-fitting measures that: the model runs on K − 1 folds of the training
rows, the held-out fold's contributions are read from the resulting tables, and one non-negative
factor per feature (plus an intercept correction) is fitted to the held-out labels. The factors
then scale the shape functions of the full-data pass: near 0 for a feature whose estimated effect
does not carry over to unseen rows, near 1 (or above, for a shape the model under-weights) when
it does.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize


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
    "multiclass" (y in 0 … K − 1, softmax cross-entropy) or "regression" (K = 1, squared error).
    """
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
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[:n_features], result.x[n_features:]
