"""The operator audit: how often a proposer uses each operator, against a reference distribution.

The statistics (the paper, arXiv:2410.17787, compares frequencies descriptively; the tests are ours):

- a G-test (likelihood-ratio) and Pearson's chi-square of the counts against the reference, with
  asymptotic p-values and a Monte Carlo p-value for the G statistic (reliable with few counts);
- per operator, the standardised residual z = (c − N q) / sqrt(N q (1 − q)), flagged "over" or
  "under" where |z| exceeds a threshold (2.5);
- the total-variation distance between the observed shares and the reference;
- the share of simple operators (unary, + − * /, min, max) against complex ones (freq, group-by,
  combine) in both.

Proposals that map to no operator (OTHER) are left out of the tests; their share is reported.
Cells where neither the counts nor the reference have mass (operators that cannot apply to the
table, say) are left out too. A reference probability of 0 where the counts are positive would make
G infinite, so then the reference is smoothed with a pseudo-count per tested cell (see
`compare_to_reference`) and the result says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from autofm.core.errors import ValidationError
from autofm.fe.operators import (
    OPERATORS,
    OTHER,
    FeatureSpec,
    applicable_operators,
    candidate_pool,
)

REFERENCE_KINDS = ("openfe", "pool", "uniform")
SIMPLE_OPERATORS = tuple(n for n, op in OPERATORS.items() if op.complexity == "simple")


def operator_counts(operators: Iterable[str]) -> pd.Series:
    """How often each of the 23 operators (and OTHER, last) occurs in `operators`."""
    counts = pd.Series(0, index=[*OPERATORS, OTHER], dtype="int64", name="count")
    for name in operators:
        if name not in counts.index:
            raise ValidationError(
                f"unknown operator {name!r}; use one of OpenFE's 23 names, or {OTHER!r} for a "
                "proposal that maps to none"
            )
        counts[name] += 1
    return counts


def reference_distribution(
    kind: str,
    *,
    kinds: Mapping[str, frozenset[str]] | None = None,
    features: Iterable[FeatureSpec | str] | None = None,
) -> pd.Series:
    """A reference distribution over the 23 operators.

    kind: "openfe", the operators of the features OpenFE selected (`features`, e.g. from
        `reference.openfe_select`); "pool", OpenFE's first-order candidate pool for a table with
        these column `kinds`; "uniform", uniform over the operators applicable to that table.
    """
    if kind not in REFERENCE_KINDS:
        raise ValidationError(f"reference kind must be one of {REFERENCE_KINDS}, got {kind!r}")
    if kind == "openfe":
        if features is None:
            raise ValidationError("the 'openfe' reference needs features=<OpenFE's selection>")
        names = [f.operator if isinstance(f, FeatureSpec) else f for f in features]
    else:
        if kinds is None:
            raise ValidationError(f"the {kind!r} reference needs kinds=column_kinds(table)")
        if kind == "pool":
            names = [spec.operator for spec in candidate_pool(kinds)]
        else:
            names = applicable_operators(kinds)
    counts = operator_counts(names).drop(OTHER)
    if counts.sum() == 0:
        raise ValidationError(
            f"the {kind!r} reference is empty (no features, or no operator applies to the table)"
        )
    return (counts / counts.sum()).rename(kind)


def _simple_share(distribution: pd.Series) -> float:
    return float(distribution[list(SIMPLE_OPERATORS)].sum() / distribution.sum())


def _g_statistic(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """G = 2 Σ c ln(c / e) along the last axis (0 ln 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(observed > 0, observed * np.log(observed / expected), 0.0)
    return 2 * terms.sum(axis=-1)


def compare_to_reference(
    counts: pd.Series,
    reference: pd.Series,
    *,
    pseudo_count: float = 0.5,
    reference_size: float | None = None,
    z_threshold: float = 2.5,
    n_simulations: int = 10000,
    seed: int = 0,
) -> dict:
    """Test operator `counts` (from `operator_counts`) against a `reference` over operators.

    reference: probabilities (from `reference_distribution`) or counts; normalised here.
    pseudo_count, reference_size: used only when a tested cell has reference probability 0.
        Then q is replaced by (M q + pseudo_count) / (M + K pseudo_count) over the K tested cells,
        where M, the reference's sample size, is `reference_size`, else the reference's total if
        it is given as counts (sums to more than 1), else N, the number of mapped proposals.
    n_simulations: multinomial draws from the reference for the Monte Carlo p-value of G.
    Returns a JSON-ready dict: n, n_other, other_share, g_test and chi_square (statistic, dof,
    p_value; G also p_value_monte_carlo), tvd, the simple/complex shares, smoothing used, and per
    operator its count, share, reference probability, expected count, z and flag ("over",
    "under" or None); the lists `over` and `under`. Undefined values (z of an untested cell, the
    statistics when nothing can be tested) are None.
    """
    counts = pd.Series(counts, dtype="float64")
    reference = pd.Series(reference, dtype="float64")
    unknown = sorted(set(counts.index) - set(OPERATORS) - {OTHER}) + sorted(
        set(reference.index) - set(OPERATORS) - {OTHER}
    )
    if unknown:
        raise ValidationError(f"unknown operator name(s) {unknown}; index by OpenFE's 23 names")
    if (counts < 0).any() or (reference < 0).any():
        raise ValidationError("counts and reference must be non-negative")
    operators = list(OPERATORS)
    observed = counts.reindex(operators, fill_value=0.0)
    n_other = float(counts.get(OTHER, 0.0))
    reference = reference.reindex(operators, fill_value=0.0)
    if reference.sum() <= 0:
        raise ValidationError("the reference has no mass on any operator")
    q = reference / reference.sum()
    n = float(observed.sum())
    total = n + n_other

    tested = (observed > 0) | (q > 0)
    n_cells = int(tested.sum())
    smoothed = bool(((q == 0) & tested).any())
    if reference_size is not None:
        size = float(reference_size)
    elif reference.sum() > 1 + 1e-9:
        size = float(reference.sum())
    else:
        size = n
    q_test = q[tested]
    if smoothed:
        q_test = (size * q_test + pseudo_count) / (size + n_cells * pseudo_count)

    simple_share = _simple_share(observed) if n else None
    reference_simple_share = _simple_share(q)
    result: dict = {
        "n": int(n),
        "n_other": int(n_other),
        "other_share": n_other / total if total else None,
        "n_cells": n_cells,
        "smoothed": smoothed,
        "pseudo_count": pseudo_count if smoothed else 0.0,
        "reference_size": size if smoothed else None,
        "tvd": float(0.5 * (observed / n - q).abs().sum()) if n else None,
        "simple_share": simple_share,
        "reference_simple_share": reference_simple_share,
        "complex_share": None if simple_share is None else 1 - simple_share,
        "reference_complex_share": 1 - reference_simple_share,
    }

    dof = n_cells - 1
    result["g_test"] = {"statistic": None, "dof": max(dof, 0), "p_value": None}
    result["g_test"]["p_value_monte_carlo"] = None
    result["chi_square"] = {"statistic": None, "dof": max(dof, 0), "p_value": None}
    if n > 0 and dof > 0:  # else nothing to test: no mapped proposals, or a single cell
        expected = n * q_test.to_numpy()
        cells = observed[tested].to_numpy()
        g, g_p = stats.power_divergence(cells, expected, lambda_="log-likelihood")
        chi2, chi2_p = stats.power_divergence(cells, expected, lambda_="pearson")
        draws = np.random.default_rng(seed).multinomial(
            int(round(n)), q_test.to_numpy(), size=n_simulations
        )
        simulated = _g_statistic(draws, expected)
        monte_carlo = (1 + np.sum(simulated >= g - 1e-9)) / (n_simulations + 1)
        result["g_test"].update(
            statistic=float(g), p_value=float(g_p), p_value_monte_carlo=float(monte_carlo)
        )
        result["chi_square"].update(statistic=float(chi2), p_value=float(chi2_p))

    rows = []
    q_used = q.copy()
    q_used[tested] = q_test
    for name in operators:
        expected = n * q_used[name]
        variance = expected * (1 - q_used[name])
        z = None
        if tested[name] and variance > 0:
            z = float((observed[name] - expected) / np.sqrt(variance))
        flag = None
        if z is not None and abs(z) > z_threshold:
            flag = "over" if z > 0 else "under"
        rows.append(
            {
                "operator": name,
                "complexity": OPERATORS[name].complexity,
                "count": int(observed[name]),
                "share": float(observed[name] / n) if n else None,
                "reference_prob": float(q[name]),
                "expected": float(expected),
                "z": z,
                "flag": flag,
            }
        )
    result["residuals"] = rows
    result["over"] = [r["operator"] for r in rows if r["flag"] == "over"]
    result["under"] = [r["operator"] for r in rows if r["flag"] == "under"]
    return result
