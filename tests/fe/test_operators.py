"""OpenFE's operators: known answers, no leakage from transformed rows, and OpenFE itself as oracle."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from autofm.core.errors import ValidationError
from autofm.fe.operators import (
    OPERATORS,
    OTHER,
    FeatureSpec,
    FeatureTransformer,
    applicable_operators,
    candidate_pool,
    check_feature,
    column_kinds,
)

NUM, CAT = frozenset({"numerical"}), frozenset({"categorical"})
BOTH = NUM | CAT


def compute(spec: FeatureSpec, fit: pd.DataFrame, new: pd.DataFrame | None = None) -> np.ndarray:
    transformer = FeatureTransformer([spec]).fit(fit)
    return transformer.transform(fit if new is None else new).iloc[:, 0].to_numpy()


def test_the_23_operators_by_family_and_complexity():
    families = {}
    for op in OPERATORS.values():
        families.setdefault(op.family, []).append(op.name)
    assert families == {
        "all": ["freq"],
        "unary": ["abs", "log", "sqrt", "square", "sigmoid", "round", "residual"],
        "binary": ["min", "max", "+", "-", "*", "/"],
        "groupby": [
            "GroupByThenMin",
            "GroupByThenMax",
            "GroupByThenMean",
            "GroupByThenMedian",
            "GroupByThenStd",
            "GroupByThenRank",
        ],
        "combine": ["Combine", "CombineThenFreq", "GroupByThenNUnique"],
    }
    simple = {n for n, op in OPERATORS.items() if op.complexity == "simple"}
    assert simple == set(families["unary"]) | set(families["binary"])
    assert OPERATORS["GroupByThenMean"].input_kinds == ("categorical", "numerical")
    assert OTHER not in OPERATORS


def test_formulas_follow_openfe():
    assert FeatureSpec("+", ("a", "b")).formula() == "(a+b)"
    assert FeatureSpec("/", ["a", "b"]).formula() == "(a/b)"
    assert FeatureSpec("log", ("a",)).formula() == "log(a)"
    assert FeatureSpec("min", ("a", "b")).formula() == "min(a,b)"
    assert FeatureSpec("GroupByThenMean", ("c", "x")).formula() == "GroupByThenMean(c,x)"
    assert FeatureSpec("Combine", ("c1", "c2")).formula() == "Combine(c1,c2)"
    assert FeatureSpec("+", ("a", "b"), name="total").column == "total"
    assert FeatureSpec("+", ("a", "b")).column == "(a+b)"


def test_column_kinds_uses_openfes_ordinal_rule():
    frame = pd.DataFrame(
        {
            "text": ["u", "v"] * 101,
            "flag": [True, False] * 101,
            "hundred": np.arange(202) % 100,
            "many": np.arange(202) % 101,
            "real": np.linspace(0, 1, 202),
        }
    )
    kinds = column_kinds(frame)
    assert kinds == {"text": CAT, "flag": CAT, "hundred": BOTH, "many": NUM, "real": NUM}
    assert column_kinds(frame, ordinal_max_unique=101)["many"] == BOTH


def test_check_feature_gives_reasons():
    kinds = {"x": NUM, "y": NUM, "c": CAT, "o": BOTH}
    assert check_feature(FeatureSpec("+", ("x", "y")), kinds) is None
    assert check_feature(FeatureSpec("GroupByThenMean", ("o", "x")), kinds) is None
    assert check_feature(FeatureSpec("freq", ("c",)), kinds) is None
    assert "unknown operator" in check_feature(FeatureSpec("mean", ("x",)), kinds)
    assert "unknown column" in check_feature(FeatureSpec("+", ("x", "z")), kinds)
    assert "number of inputs" in check_feature(FeatureSpec("log", ("x", "y")), kinds)
    assert "same column" in check_feature(FeatureSpec("-", ("x", "x")), kinds)
    assert "wrong kind" in check_feature(FeatureSpec("log", ("c",)), kinds)
    assert "wrong kind" in check_feature(FeatureSpec("GroupByThenMean", ("x", "c")), kinds)
    assert "wrong kind" in check_feature(FeatureSpec("Combine", ("c", "x")), kinds)


def test_row_wise_operators_follow_openfe_conventions():
    frame = pd.DataFrame(
        {"a": [0.0, -np.e, -4.0, -1.25, np.nan, 1e200], "b": [2.0, 0.0, 1.0, np.nan, 1.0, 1.0]}
    )
    nan = np.nan
    cases = {
        "log": [nan, 1.0, np.log(4), np.log(1.25), nan, np.log(1e200)],  # log|x|, log 0 → NaN
        "sqrt": [0.0, np.sqrt(np.e), 2.0, np.sqrt(1.25), nan, 1e100],  # sqrt|x|
        "round": [0.0, -3.0, -4.0, -2.0, nan, 1e200],  # OpenFE's "round" is floor
        "residual": [0.0, -np.e + 3, 0.0, 0.75, nan, 0.0],  # x − floor(x)
        "square": [0.0, np.e**2, 16.0, 1.5625, nan, nan],  # overflow → NaN, never inf
        "abs": [0.0, np.e, 4.0, 1.25, nan, 1e200],
    }
    for op, expected in cases.items():
        np.testing.assert_allclose(compute(FeatureSpec(op, ("a",)), frame), expected, err_msg=op)
    assert compute(FeatureSpec("sigmoid", ("b",)), frame)[1] == 0.5
    np.testing.assert_allclose(
        compute(FeatureSpec("/", ("a", "b")), frame), [0.0, nan, -4.0, nan, nan, 1e200]
    )
    np.testing.assert_allclose(
        compute(FeatureSpec("min", ("a", "b")), frame), [0.0, -np.e, -4.0, nan, nan, 1.0]
    )
    np.testing.assert_allclose(
        compute(FeatureSpec("max", ("a", "b")), frame), [2.0, 0.0, 1.0, nan, nan, 1e200]
    )


@pytest.fixture
def groups():
    fit = pd.DataFrame(
        {
            "c": ["a", "a", "a", "b", "b", None],
            "d": ["u", "v", "u", "u", "u", "v"],
            "x": [1.0, 2.0, 6.0, 5.0, np.nan, 7.0],
        }
    )
    new = pd.DataFrame({"c": ["b", "a", "z", None], "d": ["u", "v", "u", "u"], "x": [0.0] * 4})
    return fit, new


def test_group_statistics_known_answers_and_unseen_groups(groups):
    fit, new = groups
    nan = np.nan
    expected = {
        "GroupByThenMin": [1, 1, 1, 5, 5, nan],
        "GroupByThenMax": [6, 6, 6, 5, 5, nan],
        "GroupByThenMean": [3, 3, 3, 5, 5, nan],
        "GroupByThenMedian": [2, 2, 2, 5, 5, nan],
        "GroupByThenStd": [np.std([1, 2, 6], ddof=1)] * 3 + [nan, nan, nan],
        "GroupByThenRank": [1 / 3, 2 / 3, 1, 1, nan, nan],
    }
    for op, values in expected.items():
        spec = FeatureSpec(op, ("c", "x"))
        np.testing.assert_allclose(compute(spec, fit), values, err_msg=op)
    # new rows: group "b" has one fit value (5), "a" three; unseen "z" and missing → NaN
    np.testing.assert_allclose(
        compute(FeatureSpec("GroupByThenMean", ("c", "x")), fit, new), [5, 3, nan, nan]
    )
    np.testing.assert_allclose(
        compute(FeatureSpec("GroupByThenRank", ("c", "x")), fit, new), [0.5, 0.5 / 3, nan, nan]
    )
    np.testing.assert_allclose(
        compute(FeatureSpec("GroupByThenNUnique", ("c", "d")), fit), [2, 2, 2, 1, 1, nan]
    )
    np.testing.assert_allclose(
        compute(FeatureSpec("GroupByThenNUnique", ("d", "c")), fit), [2, 1, 2, 2, 2, 1]
    )


def test_rank_matches_pandas_on_the_fit_rows():
    rng = np.random.default_rng(0)
    fit = pd.DataFrame({"c": rng.integers(0, 4, 80), "x": rng.integers(0, 6, 80).astype(float)})
    fit.loc[::7, "x"] = np.nan
    expected = fit.groupby("c")["x"].rank(pct=True).to_numpy()
    np.testing.assert_allclose(compute(FeatureSpec("GroupByThenRank", ("c", "x")), fit), expected)


def test_frequencies_and_combine_codes(groups):
    fit, new = groups
    nan = np.nan
    np.testing.assert_allclose(compute(FeatureSpec("freq", ("c",)), fit), [3, 3, 3, 2, 2, nan])
    # unseen category: it occurred 0 times in the fit data; missing stays missing
    np.testing.assert_allclose(compute(FeatureSpec("freq", ("c",)), fit, new), [2, 3, 0, nan])
    np.testing.assert_allclose(compute(FeatureSpec("freq", ("x",)), fit), [1, 1, 1, 1, nan, 1])
    np.testing.assert_allclose(
        compute(FeatureSpec("CombineThenFreq", ("c", "d")), fit), [2, 1, 2, 2, 2, nan]
    )
    np.testing.assert_allclose(
        compute(FeatureSpec("CombineThenFreq", ("c", "d")), fit, new), [2, 1, 0, nan]
    )
    # codes numbered by first appearance in the fit data; unseen pairs get no code
    np.testing.assert_allclose(
        compute(FeatureSpec("Combine", ("c", "d")), fit), [0, 1, 0, 2, 2, nan]
    )
    np.testing.assert_allclose(
        compute(FeatureSpec("Combine", ("c", "d")), fit, new), [2, 1, nan, nan]
    )


def test_transform_uses_fit_statistics_only():
    """Transforming new rows gives the fit data's statistics, whatever else is in the batch."""
    rng = np.random.default_rng(1)
    fit = pd.DataFrame({"c": rng.choice(list("abc"), 50), "x": rng.normal(size=50)})
    new = pd.DataFrame({"c": rng.choice(list("abcd"), 30), "x": rng.normal(size=30) + 100})
    specs = [
        FeatureSpec(op, ("c", "x"))
        for op in OPERATORS
        if op.startswith("GroupByThen") and op != "GroupByThenNUnique"
    ]
    specs += [FeatureSpec("freq", ("c",)), FeatureSpec("freq", ("x",))]
    transformer = FeatureTransformer(specs).fit(fit)
    batch = transformer.transform(new)
    one_by_one = pd.concat([transformer.transform(new.iloc[[i]]) for i in range(len(new))])
    pd.testing.assert_frame_equal(batch, one_by_one)
    means = fit.groupby("c")["x"].mean()
    np.testing.assert_allclose(batch["GroupByThenMean(c,x)"], new["c"].map(means).to_numpy())
    assert batch["GroupByThenMax(c,x)"].max() < 100  # new rows' large x never enter the statistics
    assert (batch["freq(x)"] == 0).all()


def test_transformer_is_a_scikit_learn_transformer(groups):
    fit, _ = groups
    specs = [FeatureSpec("+", ("x", "x"), name="double"), FeatureSpec("freq", ("d",))]
    transformer = clone(FeatureTransformer(specs))
    out = transformer.fit_transform(fit)
    assert list(out.columns) == ["double", "freq(d)"]
    assert list(out.index) == list(fit.index) and (out.dtypes == "float64").all()
    assert list(transformer.get_feature_names_out()) == ["double", "freq(d)"]


def test_transformer_errors_name_the_problem(groups):
    fit, _ = groups
    with pytest.raises(ValidationError, match="not fitted"):
        FeatureTransformer([FeatureSpec("log", ("x",))]).transform(fit)
    with pytest.raises(ValidationError, match="no column"):
        FeatureTransformer([FeatureSpec("log", ("nope",))]).fit(fit)
    with pytest.raises(ValidationError, match="needs a numerical column"):
        FeatureTransformer([FeatureSpec("log", ("c",))]).fit(fit)
    with pytest.raises(ValidationError, match="distinct names"):
        FeatureTransformer([FeatureSpec("log", ("x",), "f"), FeatureSpec("abs", ("x",), "f")]).fit(
            fit
        )
    with pytest.raises(ValidationError, match="unknown operator"):
        FeatureTransformer([FeatureSpec("mean", ("x",))]).fit(fit)


def test_candidate_pool_enumerates_like_openfe():
    kinds = {"a": NUM, "c": CAT, "b": NUM, "o": BOTH}
    pool = candidate_pool(kinds)
    formulas = [spec.formula() for spec in pool]
    by_op = pd.Series([spec.operator for spec in pool]).value_counts()
    # numerical nodes a, b, o; categorical nodes c, o
    assert formulas[:4] == ["freq(a)", "freq(b)", "freq(o)", "freq(c)"]
    assert by_op["log"] == 3
    assert [f for f in formulas if f.startswith("(") and "-" in f] == ["(a-b)", "(a-o)", "(b-o)"]
    assert by_op["GroupByThenMean"] == 5  # (c,a) (o,a) (c,b) (o,b) (c,o): never o by itself
    assert by_op["Combine"] == by_op["CombineThenFreq"] == 1
    assert by_op["GroupByThenNUnique"] == 2  # both orders
    assert formulas[-1] == "Combine(c,o)"  # OpenFE appends the categorical candidates last
    assert len(pool) == 4 + 21 + 18 + 30 + 4
    assert len(candidate_pool(kinds, unique=False)) == len(pool) + 1  # freq(o) listed twice


def test_applicable_operators_are_those_in_the_pool():
    tables = [
        {"a": NUM},
        {"a": NUM, "b": NUM},
        {"c": CAT},
        {"c": CAT, "d": CAT},
        {"o": BOTH},
        {"o": BOTH, "p": BOTH},
        {"a": NUM, "c": CAT},
    ]
    for kinds in tables:
        in_pool = {spec.operator for spec in candidate_pool(kinds)}
        assert applicable_operators(kinds) == [op for op in OPERATORS if op in in_pool], kinds
    assert "GroupByThenMean" not in applicable_operators({"a": NUM, "b": NUM})


def openfe_tree(spec: FeatureSpec):
    from openfe.FeatureGenerator import FNode, Node

    inputs = list(spec.inputs)
    if OPERATORS[spec.operator].family == "groupby" or spec.operator == "GroupByThenNUnique":
        inputs = inputs[::-1]
    return Node(spec.operator, [FNode(name) for name in inputs])


def test_operators_and_pool_agree_with_openfe():
    openfe = pytest.importorskip("openfe")
    from openfe.utils import tree_to_formula

    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n) * 3,
            "c": rng.choice(["a", "b", "c"], n),
            "o": rng.integers(-3, 4, n).astype(float),
            "d": rng.choice(["u", "v"], n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    kinds = column_kinds(frame)
    nodes = openfe.get_candidate_features(
        numerical_features=["x"], categorical_features=["c", "d"], ordinal_features=["o"]
    )
    pool = candidate_pool(kinds, unique=False)
    assert [tree_to_formula(openfe_tree(s)) for s in pool] == [tree_to_formula(t) for t in nodes]
    out = FeatureTransformer(candidate_pool(kinds)).fit(frame).transform(frame)
    for spec in candidate_pool(kinds):
        theirs = openfe_tree(spec).calculate(frame).astype(float).replace([np.inf, -np.inf], np.nan)
        np.testing.assert_allclose(out[spec.column], theirs, err_msg=spec.formula())
