"""Human in the loop: stakeholders weigh the objectives, a model is picked, its risks are named.

The pick is the Pareto-set model (on validation) with the smallest weighted sum of min-max
normalised objectives: each objective is scaled to [0, 1] over the Pareto set, weights are
rescaled to sum to 1, objectives without a weight count 0. Risk flags use the held-out test
rates of the picked model and the base rates of the data; the rules are in `risk_flags`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from autofm.core.errors import ValidationError
from autofm.fairness.metrics import OBJECTIVES

ALIASES = {
    "error": "f1",
    "1-f1": "f1",
    "ddsp": "dsp",
    "sp": "dsp",
    "eod": "deod",
    "deod-max": "deod_max",
    "eod_max": "deod_max",
    "eod-max": "deod_max",
    "eop": "deop",
}
BASE_RATE_GAP = 0.1  # a gap in P(y=1|a) this large makes demographic parity costly
DSP_WEIGHT = 0.25  # a weight on |DSP| this large counts as "prioritising" it
FOUR_FIFTHS = 0.8  # the US EEOC's four-fifths rule for selection-rate ratios
TPR_GAP = 0.1
ERROR_SLACK = 0.05


@dataclass
class Selection:
    """The model the weights picked, with its objectives, group rates and flagged risks."""

    trial: int
    weights: dict[str, float]
    score: float
    params: dict[str, Any]
    val: dict[str, float]
    test: dict[str, float]
    rates: dict[str, float]
    base_rates: dict[str, float]
    risks: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_weights(
    weights: str | Mapping[str, float], objectives: Sequence[str]
) -> dict[str, float]:
    """`'dsp=0.3,deop=0.2,f1=0.5'` or a dict → weights over `objectives`, summing to 1."""
    if isinstance(weights, str):
        parsed: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in weights.split(","))):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValidationError(f"weight {part!r} must look like name=value (e.g. dsp=0.3)")
            try:
                parsed[name.strip()] = float(value)
            except ValueError as err:
                raise ValidationError(
                    f"weight for {name.strip()!r} is not a number: {value!r}"
                ) from err
        weights = parsed
    resolved: dict[str, float] = {}
    for name, value in weights.items():
        key = ALIASES.get(name.lower(), name.lower())
        if key not in OBJECTIVES:
            raise ValidationError(
                f"unknown objective {name!r} in the weights; known: {', '.join(OBJECTIVES)}"
            )
        if key not in objectives:
            raise ValidationError(
                f"objective {key!r} was not optimised in this study; it has {', '.join(objectives)}"
            )
        if not np.isfinite(value) or value < 0:
            raise ValidationError(f"weight for {name!r} must be a finite number ≥ 0, got {value}")
        resolved[key] = resolved.get(key, 0.0) + float(value)
    total = sum(resolved.values())
    if total <= 0:
        raise ValidationError("at least one weight must be positive")
    return {name: resolved.get(name, 0.0) / total for name in objectives}


def weighted_scores(front: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """Weighted sum of the validation objectives, each min-max normalised over `front`."""
    score = np.zeros(len(front))
    for name, weight in weights.items():
        values = front[f"val_{name}"].to_numpy(float)
        span = values.max() - values.min()
        score += weight * ((values - values.min()) / span if span > 0 else np.zeros_like(values))
    return score


def risk_flags(
    weights: Mapping[str, float],
    rates: Mapping[str, float],
    base_rates: Mapping[str, float],
    test: Mapping[str, float],
    best_error: float,
) -> list[dict[str, str]]:
    """Risks of the picked model, each {"risk", "why"}; the thresholds are module constants."""
    risks = []
    gap = base_rates["base_rate_priv"] - base_rates["base_rate_unpriv"]
    fairness_weights = {k: v for k, v in weights.items() if k != "f1"}
    if (
        weights.get("dsp", 0.0) >= DSP_WEIGHT
        and weights.get("dsp", 0.0) >= max(fairness_weights.values(), default=0.0)
        and abs(gap) >= BASE_RATE_GAP
    ):
        low, high = ("unpriv", "priv") if gap > 0 else ("priv", "unpriv")
        risks.append(
            {
                "risk": "self-fulfilling prophecy",
                "why": (
                    f"|DSP| is prioritised (weight {weights['dsp']:.2f}) while base rates differ by "
                    f"{abs(gap):.2f} (privileged {base_rates['base_rate_priv']:.2f}, unprivileged "
                    f"{base_rates['base_rate_unpriv']:.2f}); equal selection rates mean selecting "
                    f"people the model itself expects to fail (precision {low} "
                    f"{rates[f'precision_{low}']:.2f} vs {high} {rates[f'precision_{high}']:.2f}), "
                    "whose failures can then seem to confirm the gap"
                ),
            }
        )
    selection = (rates["selection_rate_priv"], rates["selection_rate_unpriv"])
    if max(selection) > 0 and min(selection) / max(selection) < FOUR_FIFTHS:
        risks.append(
            {
                "risk": "disparate impact",
                "why": (
                    f"selection-rate ratio {min(selection) / max(selection):.2f} is below the "
                    f"four-fifths rule (privileged {selection[0]:.2f}, unprivileged {selection[1]:.2f})"
                ),
            }
        )
    tpr_gap = rates["tpr_priv"] - rates["tpr_unpriv"]
    if abs(tpr_gap) >= TPR_GAP:
        risks.append(
            {
                "risk": "unequal opportunity",
                "why": (
                    f"qualified people are selected at different rates (TPR privileged "
                    f"{rates['tpr_priv']:.2f}, unprivileged {rates['tpr_unpriv']:.2f})"
                ),
            }
        )
    overall = (
        rates["selection_rate_priv"] * rates["size_priv"]
        + rates["selection_rate_unpriv"] * rates["size_unpriv"]
    ) / max(rates["size_priv"] + rates["size_unpriv"], 1.0)
    if overall < 0.02 or overall > 0.98:
        risks.append(
            {
                "risk": "degenerate model",
                "why": (
                    f"it gives almost everyone the same outcome (selection rate {overall:.2f}); "
                    "its fairness scores are near 0 because it ignores the data"
                ),
            }
        )
    if test["f1"] - best_error > ERROR_SLACK:
        risks.append(
            {
                "risk": "accuracy cost",
                "why": (
                    f"test 1−F1 {test['f1']:.3f} is {test['f1'] - best_error:.3f} worse than the "
                    f"most accurate Pareto model ({best_error:.3f})"
                ),
            }
        )
    return risks


def select_model(
    front: pd.DataFrame,
    weights: str | Mapping[str, float],
    objectives: Sequence[str],
    base_rates: Mapping[str, float],
) -> Selection:
    """Pick from `front` (the Pareto set's trials) by weighted normalised objectives."""
    if front.empty:
        raise ValidationError("the study has no finished trials to select from; run it first")
    resolved = parse_weights(weights, objectives)
    scores = weighted_scores(front, resolved)
    # a one-row frame keeps each column's dtype (integer hyperparameters stay integers)
    row = front.iloc[[int(np.argmin(scores))]].to_dict("records")[0]
    params = {k[len("params_") :]: v for k, v in row.items() if k.startswith("params_")}
    val = {o: float(row[f"val_{o}"]) for o in OBJECTIVES if f"val_{o}" in row}
    test = {o: float(row[f"test_{o}"]) for o in OBJECTIVES if f"test_{o}" in row}
    rates = {k[len("rate_") :]: float(row[k]) for k in front.columns if k.startswith("rate_")}
    best_error = float(front.loc[front["val_f1"].idxmin(), "test_f1"])
    return Selection(
        trial=int(row["number"]),
        weights=resolved,
        score=float(scores.min()),
        params={
            k: (v.item() if hasattr(v, "item") else v) for k, v in params.items() if pd.notna(v)
        },
        val=val,
        test=test,
        rates=rates,
        base_rates=dict(base_rates),
        risks=risk_flags(resolved, rates, base_rates, test, best_error),
    )
