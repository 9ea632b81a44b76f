"""Forward passes of a GAMformer over a training set: how many rows one pass holds, which
subsamples run when the training set is larger, and their averaged shape tables.

The paper's model degrades past about twice its training size, so above `max_context_rows` the
model runs on several subsamples of that size (stratified by class for classification), all
binned with the edges of the full training set, and the shape tables are averaged.

A binary task whose rarer class holds less than `min_class_share` of the rows runs *balanced*
passes instead: each keeps every row of the rare class (up to that share of the pass) and a
disjoint share of the other class's rows, so the model sees contexts like the ones it was trained
on rather than a handful of positives among hundreds of negatives. Each pass's class logits are
shifted by log(training share / pass share) of each class (Bayes' rule for a change of class
prior), so the averaged tables predict at the training rate.
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
    min_class_share: float = 0.0,
) -> list[np.ndarray]:
    """Sorted row indices of each pass: balanced passes for a binary task whose rarer class is
    under `min_class_share` of the rows (when `stratify`; see `balanced_subsets`), else all rows
    in one pass when they fit, else `n_subsamples` draws of `rows` rows without replacement (per
    class in proportion, when `stratify`)."""
    n_rows = len(y_model)
    rng = np.random.default_rng(random_state)
    if stratify and min_class_share > 0:
        balanced = balanced_subsets(y_model, rows, n_subsamples, min_class_share, rng)
        if balanced is not None:
            return balanced
    if rows >= n_rows:
        return [np.arange(n_rows)]
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


def balanced_subsets(
    y_model: np.ndarray,
    rows: int,
    n_passes: int,
    share: float,
    rng: np.random.Generator,
) -> list[np.ndarray] | None:
    """Passes of at most `rows` rows for a binary task whose rarer class is under `share` of
    the rows (None otherwise, or with fewer than two classes).

    Each pass holds every rare row (a random `share` of the pass when there are more) and one of
    as many disjoint blocks of the other class as keep the rare class at ≥ `share` of a pass, at
    most `n_passes` blocks (with fewer blocks the share stays below `share` and every row is still
    used once); a block larger than the rest of the pass is subsampled.
    """
    counts = np.bincount(y_model.astype(int))
    present = np.flatnonzero(counts)
    if present.size != 2 or counts[present].min() >= share * len(y_model):
        return None
    rare = present[np.argmin(counts[present])]
    rare_rows = np.flatnonzero(y_model == rare)
    other_rows = rng.permutation(np.flatnonzero(y_model != rare))
    per_pass = min(len(rare_rows), max(1, int(rows * share)))
    wanted = max(1, int(np.ceil(per_pass * (1 - share) / share)))
    blocks = np.array_split(other_rows, int(np.clip(len(other_rows) // wanted, 1, n_passes)))
    subsets = []
    for block in blocks:
        chosen_rare = rare_rows
        if per_pass < len(rare_rows):
            chosen_rare = rng.choice(rare_rows, per_pass, replace=False)
        room = rows - len(chosen_rare)
        if len(block) > room:
            block = rng.choice(block, room, replace=False)
        subsets.append(np.sort(np.concatenate([chosen_rare, block])))
    return subsets


def class_prior_shift(y_model: np.ndarray, subset: np.ndarray, n_outputs: int) -> np.ndarray:
    """log(share of each class in all rows / share in `subset`) [n_outputs]; 0 for a class
    absent from either."""
    overall = np.bincount(y_model.astype(int), minlength=n_outputs)[:n_outputs] / len(y_model)
    chosen = np.bincount(y_model[subset].astype(int), minlength=n_outputs)[:n_outputs]
    chosen = chosen / len(subset)
    both = (overall > 0) & (chosen > 0)
    shift = np.zeros(n_outputs)
    shift[both] = np.log(overall[both] / chosen[both])
    return shift


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
    (rows, tables) appended to `passes` when given). For classification each pass's tables are
    shifted by `class_prior_shift` (spread evenly over the features, every bin alike, so the
    shape functions keep their form and the intercept moves)."""
    torch_device = torch.device(device)
    model = model.to(torch_device)
    total = None
    for subset in subsets:
        context = torch.as_tensor(bins[subset], device=torch_device).unsqueeze(0)
        labels = torch.as_tensor(y_model[subset], device=torch_device).unsqueeze(0)
        shapes = model.shape_functions(context, labels, regression=regression)[0]
        shapes = shapes.double().cpu().numpy()
        if not regression:
            shift = class_prior_shift(y_model, subset, shapes.shape[-1])
            shapes = shapes + shift / shapes.shape[0]
        if passes is not None:
            passes.append((subset, shapes))
        total = shapes if total is None else total + shapes
    return total / len(subsets)
