"""The operator audit: hand-computed statistics, scipy as oracle, planted over- and under-use."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from autofm.core.errors import ValidationError
from autofm.fe.audit import compare_to_reference, operator_counts, reference_distribution
from autofm.fe.operators import OPERATORS, OTHER, FeatureSpec, candidate_pool

NUM, CAT = frozenset({"numerical"}), frozenset({"categorical"})


def residual(result: dict, operator: str) -> dict:
    return next(row for row in result["residuals"] if row["operator"] == operator)


def test_operator_counts_cover_the_23_operators_and_other():
    counts = operator_counts(["+", "+", "freq", OTHER, "GroupByThenMean"])
    assert list(counts.index) == [*OPERATORS, OTHER]
    assert counts["+"] == 2 and counts[OTHER] == 1 and counts.sum() == 5
    assert operator_counts([]).sum() == 0
    with pytest.raises(ValidationError, match="unknown operator 'add'"):
        operator_counts(["add"])


def test_hand_computed_statistics():
    counts = operator_counts(["+"] * 6 + ["-"] * 2 + ["freq"] * 2 + [OTHER] * 5)
    reference = pd.Series({"+": 0.5, "-": 0.25, "freq": 0.25})
    result = compare_to_reference(counts, reference)
    # N = 10 mapped, expected 5, 2.5, 2.5; G = 2 Σ c ln(c/e)
    g = 2 * (6 * np.log(6 / 5) + 2 * np.log(2 / 2.5) + 2 * np.log(2 / 2.5))
    assert result["g_test"]["statistic"] == pytest.approx(g) == pytest.approx(0.4027103)
    assert result["g_test"]["dof"] == 2  # only the three cells with mass are tested
    assert result["g_test"]["p_value"] == pytest.approx(np.exp(-g / 2))  # χ²₂ survival
    assert result["chi_square"]["statistic"] == pytest.approx(1 / 5 + 0.25 / 2.5 * 2)
    assert result["tvd"] == pytest.approx(0.5 * (0.1 + 0.05 + 0.05))
    assert result["n"] == 10 and result["n_other"] == 5
    assert result["other_share"] == pytest.approx(5 / 15)
    assert result["simple_share"] == pytest.approx(0.8)
    assert result["reference_simple_share"] == pytest.approx(0.75)
    assert result["complex_share"] == pytest.approx(0.2)
    assert residual(result, "+")["z"] == pytest.approx(1 / np.sqrt(10 * 0.5 * 0.5))
    assert not result["smoothed"] and result["over"] == result["under"] == []
    assert residual(result, "log")["z"] is None  # untested: no counts, no reference mass
    json.dumps(result, allow_nan=False)


def test_agrees_with_scipy_and_ignores_other():
    rng = np.random.default_rng(0)
    names = list(OPERATORS)
    probabilities = rng.dirichlet(np.ones(len(names)))
    counts = pd.Series(rng.multinomial(300, rng.dirichlet(np.ones(len(names)))), index=names)
    reference = pd.Series(probabilities, index=names)
    result = compare_to_reference(counts, reference)
    expected = 300 * probabilities
    g, g_p = stats.power_divergence(counts.to_numpy(), expected, lambda_="log-likelihood")
    chi2, chi2_p = stats.chisquare(counts.to_numpy(), expected)
    assert result["g_test"]["statistic"] == pytest.approx(g)
    assert result["g_test"]["p_value"] == pytest.approx(g_p)
    assert result["chi_square"]["statistic"] == pytest.approx(chi2)
    assert result["chi_square"]["p_value"] == pytest.approx(chi2_p)
    assert result["g_test"]["dof"] == len(names) - 1
    with_other = compare_to_reference(pd.concat([counts, pd.Series({OTHER: 50})]), reference)
    assert with_other["g_test"] == result["g_test"] and with_other["tvd"] == result["tvd"]
    assert with_other["other_share"] == pytest.approx(50 / 350)


def test_planted_over_and_under_use_are_flagged():
    ten = ["+", "-", "*", "/", "log", "freq", "GroupByThenMean", "Combine", "min", "max"]
    reference = pd.Series(0.1, index=ten)
    others = ["-", "*", "/", "log", "freq", "Combine", "min", "max"]
    operators = ["+"] * 40 + [
        op for op, k in zip(others, [8, 8, 8, 8, 7, 7, 7, 7]) for _ in range(k)
    ]
    result = compare_to_reference(operator_counts(operators), reference)
    assert result["n"] == 100
    assert residual(result, "+")["z"] == pytest.approx((40 - 10) / 3)  # sqrt(100 · 0.1 · 0.9) = 3
    assert residual(result, "GroupByThenMean")["z"] == pytest.approx(-10 / 3)
    assert result["over"] == ["+"] and result["under"] == ["GroupByThenMean"]
    assert residual(result, "-")["flag"] is None  # z = -2/3
    assert result["g_test"]["p_value"] < 1e-6
    assert result["g_test"]["p_value_monte_carlo"] == pytest.approx(1 / 10001)


def test_zero_reference_cells_are_smoothed_and_said_so():
    counts = operator_counts(["+"] * 8 + ["GroupByThenMean"] * 2)
    reference = operator_counts(["+"] * 3 + ["-"])  # counts: M = 4, and no GroupByThenMean
    result = compare_to_reference(counts, reference, pseudo_count=0.5)
    assert result["smoothed"] and result["reference_size"] == 4
    # three tested cells (+, -, GroupByThenMean): q = (4 q + 0.5) / (4 + 1.5)
    q = np.array([3.5, 1.5, 0.5]) / 5.5
    g, _ = stats.power_divergence([8, 0, 2], 10 * q, lambda_="log-likelihood")
    assert result["g_test"]["statistic"] == pytest.approx(g)
    assert np.isfinite(result["g_test"]["statistic"])
    assert residual(result, "GroupByThenMean")["reference_prob"] == 0.0  # reported unsmoothed
    assert result["tvd"] == pytest.approx(0.5 * (abs(0.8 - 0.75) + 0.25 + 0.2))
    # probabilities without a size: smoothed as if the reference had N = 10 draws
    as_probabilities = compare_to_reference(counts, reference / 4)
    assert as_probabilities["reference_size"] == 10


def test_monte_carlo_p_value_is_seeded_and_close_to_asymptotic_for_large_n():
    names = list(OPERATORS)[:6]
    reference = pd.Series([0.3, 0.2, 0.2, 0.1, 0.1, 0.1], index=names)
    counts = pd.Series([640, 420, 380, 200, 190, 170], index=names)
    first = compare_to_reference(counts, reference, seed=1)
    assert first == compare_to_reference(counts, reference, seed=1)
    assert first["g_test"]["p_value_monte_carlo"] == pytest.approx(
        first["g_test"]["p_value"], abs=0.03
    )


def test_nothing_to_test_gives_nan_not_an_error():
    result = compare_to_reference(operator_counts([OTHER, OTHER]), pd.Series({"+": 1.0}))
    assert result["n"] == 0 and result["other_share"] == 1.0
    assert result["g_test"]["p_value"] is None and result["tvd"] is None
    assert residual(result, "+")["z"] is None
    json.dumps(result, allow_nan=False)


def test_reference_distributions():
    kinds = {"a": NUM, "b": NUM, "c": CAT}
    uniform = reference_distribution("uniform", kinds=kinds)
    assert list(uniform.index) == list(OPERATORS)
    assert uniform.sum() == pytest.approx(1)
    # freq, 7 unary, 6 binary, 6 group-by apply; combine needs two categoricals
    assert (uniform > 0).sum() == 20 and uniform["+"] == pytest.approx(1 / 20)
    assert uniform["Combine"] == 0
    pool = reference_distribution("pool", kinds=kinds)
    n_pool = len(candidate_pool(kinds))
    assert n_pool == 3 + 14 + 6 + 12
    assert pool["freq"] == pytest.approx(3 / n_pool) and pool["+"] == pytest.approx(1 / n_pool)
    assert pool["GroupByThenMean"] == pytest.approx(2 / n_pool)
    selected = [FeatureSpec("GroupByThenRank", ("c", "a")), FeatureSpec("/", ("a", "b"))]
    openfe = reference_distribution("openfe", features=selected + ["GroupByThenRank"])
    assert openfe["GroupByThenRank"] == pytest.approx(2 / 3) and openfe["/"] == pytest.approx(1 / 3)
    with pytest.raises(ValidationError, match="features"):
        reference_distribution("openfe")
    with pytest.raises(ValidationError, match="kinds"):
        reference_distribution("pool")
    with pytest.raises(ValidationError, match="one of"):
        reference_distribution("llm", kinds=kinds)
    with pytest.raises(ValidationError, match="empty"):
        reference_distribution("openfe", features=[])


def test_bad_input_is_refused():
    with pytest.raises(ValidationError, match="unknown operator"):
        compare_to_reference(pd.Series({"add": 3}), pd.Series({"+": 1.0}))
    with pytest.raises(ValidationError, match="no mass"):
        compare_to_reference(operator_counts(["+"]), pd.Series({"+": 0.0}))
    with pytest.raises(ValidationError, match="non-negative"):
        compare_to_reference(pd.Series({"+": -1}), pd.Series({"+": 1.0}))
