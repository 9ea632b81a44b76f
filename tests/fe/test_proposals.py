"""Replies become operators: JSON however it is wrapped, code by its syntax tree, the rest
counted as unparsed, invalid or OTHER."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from autofm.fe.operators import OPERATORS, OTHER, check_feature, column_kinds
from autofm.fe.proposals import ParsedReply, canonical_operator, parse_reply


@pytest.fixture(scope="module")
def kinds() -> dict[str, frozenset[str]]:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["Paris", "Berlin", "Rome"], n),
            "job": rng.choice(list("abcdefg"), n),
        }
    )
    return column_kinds(frame)


def check_counts(parsed: ParsedReply, kinds) -> None:
    """The invariants the audit relies on."""
    assert parsed.n_proposed == parsed.n_unparsed + len(parsed.operators)
    assert len(parsed.features) <= len(parsed.operators) - parsed.n_invalid
    assert len(parsed.problems) == parsed.n_unparsed + parsed.n_invalid
    assert all(op == OTHER or op in OPERATORS for op in parsed.operators)
    assert all(check_feature(spec, kinds) is None for spec in parsed.features)


def formulas(parsed: ParsedReply) -> list[str]:
    return [spec.formula() for spec in parsed.features]


GOOD = {
    "features": [
        {"name": "income_per_age", "operator": "/", "inputs": ["income", "age"]},
        {"name": "mean_income_city", "operator": "GroupByThenMean", "inputs": ["city", "income"]},
    ]
}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda j: j,
        lambda j: f"Here are my features:\n```json\n{j}\n```\nHope this helps!",
        lambda j: f"Sure. {j} These should work.",
        lambda j: f"```\n{j}",  # an unclosed fence, as small models leave it
        lambda j: j.replace('"', "'"),  # a Python literal
        lambda j: j.replace("]}]}", "]},]}"),  # a trailing comma
    ],
)
def test_json_however_it_is_wrapped(kinds, wrap):
    parsed = parse_reply(wrap(json.dumps(GOOD)), kinds)
    check_counts(parsed, kinds)
    assert parsed.format == "json"
    assert formulas(parsed) == ["(income/age)", "GroupByThenMean(city,income)"]
    assert [s.name for s in parsed.features] == ["income_per_age", "mean_income_city"]
    assert (parsed.n_proposed, parsed.n_unparsed, parsed.n_invalid) == (2, 0, 0)


def test_bare_lists_single_objects_and_formula_strings(kinds):
    assert formulas(parse_reply(json.dumps(GOOD["features"]), kinds)) == [
        "(income/age)",
        "GroupByThenMean(city,income)",
    ]
    single = parse_reply('{"operator": "log", "inputs": ["income"]}', kinds)
    assert formulas(single) == ["log(income)"]
    strings = parse_reply('["log(income)", "(age*income)", "Combine(city,job)"]', kinds)
    assert formulas(strings) == ["log(income)", "(age*income)", "Combine(city,job)"]
    inputs_as_text = parse_reply('[{"op": "plus", "columns": "age, income"}]', kinds)
    assert formulas(inputs_as_text) == ["(age+income)"]


@pytest.mark.parametrize(
    "alias, operator",
    [
        ("add", "+"),
        ("Plus", "+"),
        ("subtract", "-"),
        ("multiply", "*"),
        ("ratio", "/"),
        ("divide", "/"),
        ("minimum", "min"),
        ("log1p", "log"),
        ("square root", "sqrt"),
        ("frequency encoding", "freq"),
        ("groupby_then_mean", "GroupByThenMean"),
        ("GROUPBYTHENRANK", "GroupByThenRank"),
        ("combine then freq", "CombineThenFreq"),
    ],
)
def test_operator_aliases(alias, operator):
    assert canonical_operator(alias) == operator


@pytest.mark.parametrize("vague", ["mean by group", "target encoding", "polynomial", "", None])
def test_vague_operator_names_are_not_guessed(vague):
    assert canonical_operator(vague) is None


def test_invalid_proposals_are_counted_with_reasons(kinds):
    reply = {
        "features": [
            {"name": "ok", "operator": "log", "inputs": ["income"]},
            {"name": "ghost", "operator": "+", "inputs": ["age", "salary"]},
            {"name": "vague", "operator": "mean by group", "inputs": ["city", "income"]},
            {"name": "kind", "operator": "log", "inputs": ["city"]},
            {"name": "arity", "operator": "+", "inputs": ["age"]},
            {"name": "no_inputs", "operator": "sqrt"},
            {"name": "no_operator", "inputs": ["age"]},
            "just some words",
        ]
    }
    parsed = parse_reply(json.dumps(reply), kinds)
    check_counts(parsed, kinds)
    assert (parsed.n_proposed, parsed.n_unparsed, parsed.n_invalid) == (8, 2, 5)
    assert parsed.operators == ["log", "+", OTHER, "log", "+", "sqrt"]
    assert formulas(parsed) == ["log(income)"]
    problems = " | ".join(parsed.problems)
    for reason in ("unknown column 'salary'", "unknown operator 'mean by group'", "wrong kind"):
        assert reason in problems


def test_group_column_given_second_is_put_first(kinds):
    parsed = parse_reply('[{"operator": "GroupByThenMax", "inputs": ["income", "city"]}]', kinds)
    assert formulas(parsed) == ["GroupByThenMax(city,income)"]


def test_duplicates_count_once_as_features_and_names_do_not_clash(kinds):
    reply = [
        {"name": "s", "operator": "+", "inputs": ["age", "income"]},
        {"name": "s2", "operator": "+", "inputs": ["age", "income"]},
        {"name": "age", "operator": "sqrt", "inputs": ["age"]},  # a column's name
    ]
    parsed = parse_reply(json.dumps(reply), kinds)
    assert parsed.operators == ["+", "+", "sqrt"]
    assert [(s.formula(), s.name) for s in parsed.features] == [
        ("(age+income)", "s"),
        ("sqrt(age)", None),
    ]


def test_an_empty_feature_list_is_zero_proposals(kinds):
    parsed = parse_reply('{"features": []}', kinds)
    assert (parsed.n_proposed, parsed.n_unparsed, parsed.format) == (0, 0, "json")


CODE_CASES = [
    ("df['f'] = df['age'] + df['income']", "(age+income)"),
    ("df['f'] = df['age'] - df['income']", "(age-income)"),
    ("df['f'] = df.age * df.income", "(age*income)"),
    ("df['f'] = df['income'] / (df['age'] + 1e-6)", "(income/age)"),
    ("df['f'] = df['income'] / df['age'].replace(0, np.nan)", "(income/age)"),
    ("df['f'] = np.log(df['income'])", "log(income)"),
    ("df['f'] = np.log1p(df['income'])", "log(income)"),
    ("df['f'] = np.log(df['income'] + 1)", "log(income)"),
    ("df['f'] = np.sqrt(df['income'])", "sqrt(income)"),
    ("df['f'] = df['income'] ** 0.5", "sqrt(income)"),
    ("df['f'] = np.abs(df['age'])", "abs(age)"),
    ("df['f'] = df['age'].abs()", "abs(age)"),
    ("df['f'] = np.round(df['age'])", "round(age)"),
    ("df['f'] = np.floor(df['age'])", "round(age)"),
    ("df['f'] = df['age'] ** 2", "square(age)"),
    ("df['f'] = np.square(df['age'])", "square(age)"),
    ("df['f'] = df['age'].pow(2)", "square(age)"),
    ("df['f'] = 1 / (1 + np.exp(-df['age']))", "sigmoid(age)"),
    ("df['f'] = df['age'] - np.floor(df['age'])", "residual(age)"),
    ("df['f'] = df['age'] % 1", "residual(age)"),
    ("df['f'] = np.minimum(df['age'], df['income'])", "min(age,income)"),
    ("df['f'] = np.maximum(df.age, df.income)", "max(age,income)"),
    ("df['f'] = df[['age', 'income']].max(axis=1)", "max(age,income)"),
    ("df['f'] = df.groupby('city')['income'].transform('mean')", "GroupByThenMean(city,income)"),
    ("df['f'] = df.groupby('city')['income'].transform('min')", "GroupByThenMin(city,income)"),
    ("df['f'] = df.groupby('city')['income'].transform('max')", "GroupByThenMax(city,income)"),
    (
        "df['f'] = df.groupby(['city'])['income'].transform(np.median)",
        "GroupByThenMedian(city,income)",
    ),
    ("df['f'] = df.groupby(df['city'])['age'].transform('std')", "GroupByThenStd(city,age)"),
    ("df['f'] = df.groupby('city')['age'].rank(pct=True)", "GroupByThenRank(city,age)"),
    ("df['f'] = df.groupby('city')['job'].transform('nunique')", "GroupByThenNUnique(city,job)"),
    ("df['f'] = df['city'].map(df.groupby('city')['age'].mean())", "GroupByThenMean(city,age)"),
    ("df['f'] = df['city'].map(df['city'].value_counts())", "freq(city)"),
    ("df['f'] = df['city'].map(df['city'].value_counts(normalize=True))", "freq(city)"),
    ("df['f'] = df.groupby('city')['city'].transform('count')", "freq(city)"),
    ("df['f'] = df['city'].astype(str) + '_' + df['job'].astype(str)", "Combine(city,job)"),
    ("df['f'] = df['city'].astype(str) + df['job'].astype(str)", "Combine(city,job)"),
    (
        "pair = df['city'].astype(str) + df['job'].astype(str)\n"
        "df['f'] = pair.map(pair.value_counts())",
        "CombineThenFreq(city,job)",
    ),
    ("df['f'] = df.groupby(['city', 'job'])['age'].transform('size')", "CombineThenFreq(city,job)"),
    ("ratio = df['income'] / df['age']\ndf['f'] = ratio", "(income/age)"),
    ("df.loc[:, 'f'] = df['age'] * df['income']", "(age*income)"),
    ("df = df.assign(f=np.log(df['income']))", "log(income)"),
]


@pytest.mark.parametrize(
    "code, formula", CODE_CASES, ids=[c[1] + str(i) for i, c in enumerate(CODE_CASES)]
)
def test_code_maps_to_the_operator(kinds, code, formula):
    parsed = parse_reply(f"```python\n{code}\n```", kinds)
    check_counts(parsed, kinds)
    assert parsed.format == "code"
    assert formulas(parsed) == [formula]
    assert parsed.operators == [parsed.features[0].operator]
    assert parsed.features[0].name == "f"


def test_code_in_a_function_with_prose_around_it(kinds):
    reply = (
        "The following code adds useful features.\n"
        "```python\n"
        "import numpy as np\n"
        "def add_features(df):\n"
        "    df = df.copy()\n"
        "    # ratio of income to age\n"
        "    df['income_per_age'] = df['income'] / df['age']\n"
        "    df['city_freq'] = df['city'].map(df['city'].value_counts())\n"
        "    return df\n"
        "```\n"
        "Let me know if you need more."
    )
    parsed = parse_reply(reply, kinds)
    assert parsed.operators == ["/", "freq"]
    assert [s.name for s in parsed.features] == ["income_per_age", "city_freq"]


def test_code_lines_that_parse_are_kept_when_the_whole_does_not(kinds):
    reply = "Feature one:\ndf['r'] = df['age'] * df['income']\nand then: oops (\ndf['l'] = np.log(df.income)"
    assert parse_reply(reply, kinds).operators == ["*", "log"]


def test_unknown_numpy_calls_and_other_code_are_other(kinds):
    reply = (
        "```python\n"
        "df['a'] = np.sin(df['age'])\n"
        "df['b'] = np.where(df['age'] > 40, 1, 0)\n"
        "df['c'] = df['age'] * 2\n"
        "df['d'] = df.groupby('city')['income'].transform('sum')\n"
        "df['e'] = df['age']\n"
        "df['g'] = df['income'] / df.groupby('city')['income'].transform('mean')\n"
        "```"
    )
    parsed = parse_reply(reply, kinds)
    check_counts(parsed, kinds)
    assert parsed.operators == [OTHER, OTHER, OTHER, OTHER, OTHER, "/"]
    assert parsed.features == [] and parsed.n_invalid == 6 and parsed.n_unparsed == 0
    assert "nested expression" in parsed.problems[-1]
    assert "np.sin" in parsed.problems[0]


@pytest.mark.parametrize(
    "reply",
    ["", "   ", "I'm sorry, I can't help with that.", "{broken json", "Feature: age times income"],
)
def test_garbage_is_one_unparsed_proposal(kinds, reply):
    parsed = parse_reply(reply, kinds)
    check_counts(parsed, kinds)
    assert (parsed.n_proposed, parsed.n_unparsed, parsed.operators, parsed.format) == (
        1,
        1,
        [],
        "none",
    )


def test_train_and_test_copies_count_once_and_frame_attributes_are_no_features(kinds):
    reply = (
        "X_train['r'] = X_train['age'] / X_train['income']\n"
        "X_test['r'] = X_test['age'] / X_test['income']\n"
        "X_train.columns = [c.lower() for c in X_train.columns]\n"
        "df.ratio = df.age / df.income\n"
    )
    parsed = parse_reply(reply, kinds)
    assert parsed.operators == ["/", "/"]
    assert [s.name for s in parsed.features] == ["r"]  # "ratio" is the same feature again


def test_column_names_match_despite_case_spaces_or_integer_names():
    frame = pd.DataFrame({0: np.arange(200.0), 1: np.arange(200.0) ** 2, "Income": np.ones(200)})
    kinds = column_kinds(frame)
    parsed = parse_reply(
        '[{"operator": "+", "inputs": ["0", " 1"]}, {"operator": "log", "inputs": ["income"]}]',
        kinds,
    )
    assert [s.inputs for s in parsed.features] == [(0, 1), ("Income",)]
