"""Forward passes of a GAMformer over a training set: how many rows one pass holds, which
subsamples run when the training set is larger, and their averaged shape tables.

The paper's model degrades past about twice its training size, so above `max_context_rows` the
model runs on several subsamples of that size (stratified by class for classification), all
binned with the edges of the full training set, and the shape tables are averaged.
"""

from __future__ import annotations

import numpy as np
import torch

from autofm.core.errors import ValidationError
from autofm.gam.model import GAMformer

# the fewest rows a pass may hold; with fewer, `max_cells` is too small for the feature count
MIN_ROWS_PER_PASS = 32


def rows_per_pass(n_rows: int, n_features: int, max_context_rows: int, max_cells: int) -> int:
    """Rows in one forward pass: at most `max_context_rows`, and rows × features ≤ `max_cells`."""
    rows = min(n_rows, int(max_context_rows))
    if rows * n_features > max_cells:
        rows = max_cells // n_features
        if rows < MIN_ROWS_PER_PASS:
            raise ValidationError(
                f"X has {n_features} features: one forward pass holds max_cells="
                f"{max_cells} (rows × features), which leaves {rows} rows per pass "
                f"(at least {MIN_ROWS_PER_PASS} needed). Select at most "
                f"{max_cells // MIN_ROWS_PER_PASS} features or raise max_cells if memory allows"
            )
    return rows


def subsamples(
    y_model: np.ndarray,
    rows: int,
    n_subsamples: int,
    stratify: bool,
    random_state: int | None,
) -> list[np.ndarray]:
    """Sorted row indices of each pass: all rows in one pass when they fit, else `n_subsamples`
    draws of `rows` rows without replacement (per class in proportion, when `stratify`)."""
    n_rows = len(y_model)
    if rows >= n_rows:
        return [np.arange(n_rows)]
    rng = np.random.default_rng(random_state)
    n_passes = max(1, int(n_subsamples))
    subsets = []
    for _ in range(n_passes):
        if not stratify:
            subsets.append(np.sort(rng.choice(n_rows, rows, replace=False)))
            continue
        chosen = []
        for label in np.unique(y_model):
            members = np.flatnonzero(y_model == label)
            take = max(1, round(rows * len(members) / n_rows))
            chosen.append(rng.choice(members, min(take, len(members)), replace=False))
        subsets.append(np.sort(np.concatenate(chosen)))
    return subsets


@torch.inference_mode()
def average_shape_tables(
    model: GAMformer,
    bins: np.ndarray,
    y_model: np.ndarray,
    subsets: list[np.ndarray],
    regression: bool,
    device: str,
    passes: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> np.ndarray:
    """Shape tables [F, n_bins + 1, C] averaged over one pass per subset of rows (each pass's
    (rows, tables) appended to `passes` when given)."""
    torch_device = torch.device(device)
    model = model.to(torch_device)
    total = None
    for subset in subsets:
        context = torch.as_tensor(bins[subset], device=torch_device).unsqueeze(0)
        labels = torch.as_tensor(y_model[subset], device=torch_device).unsqueeze(0)
        shapes = model.shape_functions(context, labels, regression=regression)[0]
        shapes = shapes.double().cpu().numpy()
        if passes is not None:
            passes.append((subset, shapes))
        total = shapes if total is None else total + shapes
    return total / len(subsets)
