"""Error and fairness objectives, all minimised, computed from group-wise confusion counts.

A protected attribute is binary with the privileged group coded 1. Every objective is a function
of the 2×2×2 table `counts[group, label, prediction]`, so each is O(n) to compute, including the
individual-fairness measure INVD, whose definition is a sum over all ordered pairs of rows.
Rates with an empty denominator (e.g. a TPR for a group with no positive labels) are taken as 0.

DEOD is the paper's equalized-odds measure, |mean of the FPR and TPR gaps|: gaps of opposite
sign cancel, so a model can score 0 while treating the groups very differently. `deod_max`, not
in the paper, is the worst case max(|FPR gap|, |TPR gap|) (fairlearn's
`equalized_odds_difference`); it is never smaller than DEOD.
"""

from __future__ import annotations

import numpy as np

from autofm.core.errors import ValidationError

# every objective a trial computes and stores, in the order studies list them
OBJECTIVES = ("f1", "dsp", "deod", "deod_max", "deop", "invd")
# the paper's five, the default of a search
PAPER_OBJECTIVES = ("f1", "dsp", "deod", "deop", "invd")
# how the objectives are labelled in figures and in optuna-dashboard
LABELS = {
    "f1": "1 − F1",
    "dsp": "|DSP|",
    "deod": "|DEOD|",
    "deod_max": "DEOD (worst case)",
    "deop": "|DEOP|",
    "invd": "INVD",
}
DESCRIPTIONS = {
    "f1": "1 − F1 (error)",
    "dsp": "|DSP|: difference in selection rates P(ŷ=1|a)",
    "deod": "|DEOD|: mean of the FPR and TPR differences (equalized odds, as in the paper)",
    "deod_max": "DEOD (worst case): the larger of the |FPR| and |TPR| differences "
    "(fairlearn's equalized_odds_difference)",
    "deop": "|DEOP|: difference in true positive rates (equal opportunity)",
    "invd": "INVD: share of ordered pairs, different groups, same label, different predictions",
}


def confusion_counts(y_true, y_pred, group) -> np.ndarray:
    """`counts[a, y, ŷ]`: how many rows have group a, label y and prediction ŷ (all 0/1)."""
    y_true, y_pred, group = (
        np.asarray(v).astype(np.int64).ravel() for v in (y_true, y_pred, group)
    )
    if not (len(y_true) == len(y_pred) == len(group)):
        raise ValidationError(
            f"y_true, y_pred and group must have the same length, got "
            f"{len(y_true)}, {len(y_pred)}, {len(group)}"
        )
    for name, values in (("y_true", y_true), ("y_pred", y_pred), ("group", group)):
        if values.size and (values.min() < 0 or values.max() > 1):
            raise ValidationError(f"{name} must hold only 0 and 1")
    cells = np.bincount(group * 4 + y_true * 2 + y_pred, minlength=8)
    return cells.reshape(2, 2, 2)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else 0.0


def group_rates(counts: np.ndarray) -> dict[str, float]:
    """Per group (suffix _priv / _unpriv): base rate, selection rate, TPR, FPR, precision, size."""
    rates: dict[str, float] = {}
    for a, suffix in ((1, "priv"), (0, "unpriv")):
        table = counts[a]
        n = table.sum()
        positives, negatives = table[1].sum(), table[0].sum()
        selected = table[:, 1].sum()
        rates[f"size_{suffix}"] = float(n)
        rates[f"base_rate_{suffix}"] = _ratio(positives, n)
        rates[f"selection_rate_{suffix}"] = _ratio(selected, n)
        rates[f"tpr_{suffix}"] = _ratio(table[1, 1], positives)
        rates[f"fpr_{suffix}"] = _ratio(table[0, 1], negatives)
        rates[f"precision_{suffix}"] = _ratio(table[1, 1], selected)
    return rates


def objectives_from_counts(counts: np.ndarray) -> dict[str, float]:
    """Every objective of `OBJECTIVES` from `counts[a, y, ŷ]` (see the module docstring)."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    true_pos = counts[:, 1, 1].sum()
    false_pos = counts[:, 0, 1].sum()
    false_neg = counts[:, 1, 0].sum()
    f1 = _ratio(2 * true_pos, 2 * true_pos + false_pos + false_neg)
    rates = group_rates(counts)
    dsp = rates["selection_rate_unpriv"] - rates["selection_rate_priv"]
    tpr_gap = rates["tpr_unpriv"] - rates["tpr_priv"]
    fpr_gap = rates["fpr_unpriv"] - rates["fpr_priv"]
    # ordered pairs (i, j) across groups with equal labels and different predictions, both orders
    cross = sum(
        counts[0, label, 0] * counts[1, label, 1] + counts[0, label, 1] * counts[1, label, 0]
        for label in (0, 1)
    )
    return {
        "f1": 1.0 - f1,
        "dsp": abs(dsp),
        "deod": abs(0.5 * (fpr_gap + tpr_gap)),
        "deod_max": max(abs(fpr_gap), abs(tpr_gap)),
        "deop": abs(tpr_gap),
        "invd": _ratio(2 * cross, n * n),
    }


def fairness_objectives(y_true, y_pred, group) -> dict[str, float]:
    """Every objective of `OBJECTIVES` of binary predictions, keyed by name."""
    return objectives_from_counts(confusion_counts(y_true, y_pred, group))
