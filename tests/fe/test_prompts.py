"""Feature prompts stay within budget, their schema accepts good replies and refuses bad
ones, the strategies differ as documented, and the memorisation check scores known cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import ValidationError
from autofm.fe.operators import OPERATORS
from autofm.fe.prompts import (
    STRATEGIES,
    feature_prompt,
    feature_request,
    feature_schema,
    memorisation_score,
    row_completion_chance,
    row_completion_prompt,
)

try:
    import jsonschema
except ImportError:  # not a dependency: the structural validator below stands in
    jsonschema = None


def validate(instance: object, schema: dict) -> None:
    """Raise AssertionError unless `instance` satisfies `schema`: jsonschema when installed,
    else a validator for the keywords feature_schema uses."""
    if jsonschema is not None:
        try:
            jsonschema.validate(instance, schema)
        except jsonschema.ValidationError as err:
            raise AssertionError(err.message) from err
        return
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str}
    assert kind is None or isinstance(instance, types[kind]), f"{instance!r} is not {kind}"
    if "enum" in schema:
        assert instance in schema["enum"], f"{instance!r} not in enum"
    if isinstance(instance, str):
        assert schema.get("minLength", 0) <= len(instance) <= schema.get("maxLength", 10**9)
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            assert key in instance, f"missing {key}"
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            assert set(instance) <= set(properties), f"extra keys {set(instance) - set(properties)}"
        for key, value in instance.items():
            if key in properties:
                validate(value, properties[key])
    if isinstance(instance, list):
        assert schema.get("minItems", 0) <= len(instance) <= schema.get("maxItems", 10**9)
        prefix = schema.get("prefixItems", [])
        for index, item in enumerate(instance):
            if index < len(prefix):
                validate(item, prefix[index])
            elif "items" in schema:
                validate(item, schema["items"])


def prompt_chars(messages: list[dict]) -> int:
    return sum(len(message["content"]) for message in messages)


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame(
        {
            "age": rng.normal(40, 12, n).round(1),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["Paris", "Berlin", "Rome"], n),
            "job": rng.choice(list("abcdefg"), n),
            "churn": rng.integers(0, 2, n),
        }
    )


@pytest.fixture
def wide() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        rng.normal(size=(3000, 500)), columns=[f"measurement_{i:03d}" for i in range(500)]
    )
    frame["label"] = rng.integers(0, 2, len(frame))
    return frame


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("max_chars", [2500, 6000, 20000])
def test_budget_holds_on_a_500_column_table(wide, strategy, max_chars):
    reference = {"freq": 0.5, "+": 0.5}
    messages = feature_prompt(
        wide, "label", strategy=strategy, max_chars=max_chars, reference=reference
    )
    assert prompt_chars(messages) <= max_chars
    user = messages[-1]["content"]
    assert "more columns not listed" in user
    assert "measurement_000" in user and "Reply with JSON only" in user


def test_listing_notes_how_many_columns_were_left_out(wide):
    request = feature_request(wide, "label", max_chars=4000)
    user = request.messages[-1]["content"]
    listed = len(request.columns)
    assert 0 < listed < 500
    assert f"(… and {500 - listed} more columns not listed)" in user
    assert request.columns == [f"measurement_{i:03d}" for i in range(listed)]
    items = request.schema["properties"]["features"]["items"]
    assert items["properties"]["inputs"]["items"]["enum"] == request.columns


def test_prompt_describes_the_table_and_never_offers_the_target(table):
    request = feature_request(table, "churn", description="Bank customers; predict churn.")
    system, user = (m["content"] for m in request.messages)
    assert "JSON" in system
    assert "Bank customers; predict churn." in user
    assert "Target column: churn (classification; classes: " in user and "Never use it" in user
    assert "- city: categorical; 3 values" in user and "- income: numerical; min " in user
    assert "10 sample rows (CSV):\nage,income,city,job\n" in user
    assert "churn" not in request.columns
    assert request.columns == ["age", "income", "city", "job"]


def test_sample_rows_follow_the_seed_and_huge_tables_fit(table):
    same = feature_prompt(table, "churn", seed=3), feature_prompt(table, "churn", seed=3)
    other = feature_prompt(table, "churn", seed=4)
    assert same[0] == same[1] and same[0] != other
    rng = np.random.default_rng(2)
    huge = pd.DataFrame(
        {"x": rng.normal(size=300_000), "note": ["a long free text value " * 20] * 300_000}
    )
    huge["y"] = rng.normal(size=len(huge))
    messages = feature_prompt(huge, "y", max_sample_rows=10, max_chars=3000)
    assert prompt_chars(messages) <= 3000
    assert "regression" in messages[-1]["content"]


def test_only_applicable_operators_are_offered():
    rng = np.random.default_rng(3)
    numeric = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    numeric["y"] = rng.integers(0, 2, 300)
    user = feature_prompt(numeric, "y")[-1]["content"]
    assert "GroupByThenMean" not in user and "Combine(" not in user
    assert "+(a, b): a + b" in user and "freq(c)" in user


def test_strategies_differ_as_documented(table):
    reference = {"GroupByThenMean": 0.4, "freq": 0.35, "+": 0.25}
    plain, by_class, with_reference = (
        feature_prompt(table, "churn", strategy=s, reference=reference)[-1]["content"]
        for s in STRATEGIES
    )
    assert len({plain, by_class, with_reference}) == 3
    assert "must use" not in plain and "share" not in plain
    assert "feature 1 must use a frequency encoding operator" in by_class
    assert "feature 4 must use a group-by aggregation operator" in by_class
    assert "GroupByThenMean(c, x): mean of x over the rows with the same c [share 40%]" in (
        with_reference
    )
    assert "abs(x): absolute value |x| [share 0%]" in with_reference


def test_by_class_pins_each_position_to_its_class(table):
    request = feature_request(table, "churn", n_features=7, strategy="by_class")
    slots = request.schema["properties"]["features"]["prefixItems"]
    families = [{OPERATORS[o].family for o in s["properties"]["operator"]["enum"]} for s in slots]
    order = ["all", "unary", "binary", "groupby", "combine"]
    assert families == [{order[i % 5]} for i in range(7)]
    good = {
        "features": [
            {"name": f"f{i}", "operator": s["properties"]["operator"]["enum"][0], "inputs": ["age"]}
            for i, s in enumerate(slots)
        ]
    }
    validate(good, request.schema)
    good["features"][0]["operator"] = "+"  # slot 0 is frequency encoding only
    with pytest.raises(AssertionError):
        validate(good, request.schema)


def test_schema_accepts_a_good_reply_and_refuses_bad_ones():
    schema = feature_schema(2, ["age", "income", "city"])
    json.dumps(schema)  # serialisable, as it goes over HTTP and into llama.cpp's grammar
    good = {
        "features": [
            {"name": "ratio", "operator": "/", "inputs": ["income", "age"]},
            {"name": "mean_by_city", "operator": "GroupByThenMean", "inputs": ["city", "income"]},
        ]
    }
    validate(good, schema)
    bad_replies = [
        {"features": good["features"][:1]},  # too few
        {"features": good["features"] * 2},  # too many
        {"features": [{**good["features"][0], "operator": "mean by group"}] * 2},
        {"features": [{**good["features"][0], "inputs": ["salary"]}] * 2},
        {"features": [{**good["features"][0], "inputs": ["age", "income", "city"]}] * 2},
        {"features": [{**good["features"][0], "name": "n" * 61}] * 2},
        {"features": [{**good["features"][0], "why": "extra key"}] * 2},
        {"features": [{"name": "x", "operator": "+"}] * 2},
    ]
    for bad in bad_replies:
        with pytest.raises(AssertionError):
            validate(bad, schema)


def test_schema_bounds_inputs_by_the_operators_arity():
    unary = feature_schema(3, ["a", "b"], ["log", "sqrt"])
    item = unary["properties"]["features"]["items"]
    assert item["properties"]["inputs"]["maxItems"] == 1
    assert (
        unary["properties"]["features"]["minItems"]
        == unary["properties"]["features"]["maxItems"]
        == 3
    )
    with pytest.raises(ValidationError):
        feature_schema(2, ["a"], ["median"])
    with pytest.raises(ValidationError):
        feature_schema(0, ["a"])


def test_bad_arguments_are_validation_errors(table):
    with pytest.raises(ValidationError, match="target"):
        feature_prompt(table, "missing")
    with pytest.raises(ValidationError, match="strategy"):
        feature_prompt(table, "churn", strategy="shout")
    with pytest.raises(ValidationError, match="reference"):
        feature_prompt(table, "churn", strategy="with_reference")
    with pytest.raises(ValidationError, match="max_chars"):
        feature_prompt(table, "churn", max_chars=300)


class Oracle:
    """A fake model that has memorised the table: it writes the true next row."""

    model = "oracle"

    def __init__(self, frame: pd.DataFrame, wrong: bool = False) -> None:
        self.lines = frame.to_csv(index=False, lineterminator="\n").splitlines()
        self.wrong = wrong

    def complete(self, messages, *, schema=None, temperature=0.7, seed=0, max_tokens=512):
        shown = messages[-1]["content"].split("\n\n", 1)[1].splitlines()
        at = self.lines.index(shown[-1])  # rows are unique in these tests
        return "1,2,3" if self.wrong else f"```\n{self.lines[at + 1]}\n```"


def test_row_completion_asks_for_the_row_after_the_prefix(table):
    messages, expected = row_completion_prompt(table, n_prefix_rows=5, seed=9)
    lines = table.to_csv(index=False, lineterminator="\n").splitlines()
    shown = messages[-1]["content"].split("\n\n", 1)[1].splitlines()
    assert shown[0] == lines[0] and len(shown) == 6
    start = lines.index(shown[1])
    assert shown[1:] == lines[start : start + 5] and expected == lines[start + 5]


def test_memorisation_score_against_known_models(table):
    assert memorisation_score(Oracle(table), table, n_trials=6, seed=1) == 1.0
    assert memorisation_score(Oracle(table, wrong=True), table, n_trials=6, seed=1) == 0.0
    assert row_completion_chance(table, n_trials=6) == 0.0
    repeated = pd.DataFrame({"a": [1] * 40, "b": ["x"] * 40})
    assert row_completion_chance(repeated, n_trials=5) == 1.0  # copying a shown row wins
