"""Suggesting features, their downstream AUC and the audit over tables, with a scripted LLM
behind the real OpenAI client."""

import json

import numpy as np
import pandas as pd
import pytest

from autofm.core.errors import ValidationError
from autofm.fe.bias_study import auc_table, audit_studies, pooled_reference, study_table
from autofm.fe.impact import downstream_auc, summarise_auc
from autofm.fe.llm import OpenAIClient
from autofm.fe.operators import FeatureSpec
from autofm.fe.scripted_server import ScriptedChatServer
from autofm.fe.suggest import add_features, suggest_features
from autofm.fe.tour import planted_table


def _reply(*features: tuple[str, str, list[str]]) -> str:
    return json.dumps(
        {"features": [{"name": n, "operator": o, "inputs": i} for n, o, i in features]}
    )


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.normal(size=200), "b": rng.normal(size=200), "zero": np.zeros(200)}
    )
    frame["c"] = rng.choice(["x", "y", "z"], size=200)
    frame["label"] = (frame["a"] * frame["b"] > 0).astype(int)
    return frame


def test_suggestion_counts_every_proposal_and_keeps_only_usable_features(table):
    replies = [
        _reply(("s", "+", ["a", "b"]), ("bad", "+", ["a", "nope"]), ("l", "log", ["zero"])),
        _reply(("s2", "+", ["a", "b"]), ("m", "*", ["a", "b"])),
        "I would add the ratio of a to b.",
    ]
    with ScriptedChatServer(replies) as server:
        client = OpenAIClient(server.url, "m")
        suggestion = suggest_features(table, "label", client, n_calls=3, seed=7)
        requests = server.requests
    # the audit's data: every readable proposal under its operator, the unknown column invalid
    # (the invalid one still counts under the operator the LLM chose)
    assert sorted(suggestion.operators) == sorted(["+", "+", "log", "+", "*"])
    assert suggestion.n_invalid == 1
    assert suggestion.n_proposed >= 5
    # log|0| is NaN for every row: not computable; the repeated a+b is kept once
    assert suggestion.n_failed == 1
    assert [(f.operator, f.inputs) for f in suggestion.features] == [
        ("+", ("a", "b")),
        ("*", ("a", "b")),
    ]
    assert suggestion.seeds == [7, 8, 9]
    assert [r["seed"] for r in requests] == [7, 8, 9]
    assert all("response_format" in r for r in requests)  # schema-constrained


def test_add_features_appends_columns_and_refuses_a_name_clash(table):
    out = add_features(table, [FeatureSpec("*", ("a", "b"), name="ab")])
    np.testing.assert_allclose(out["ab"], table["a"] * table["b"])
    assert list(out.columns[:-1]) == list(table.columns)
    with pytest.raises(ValidationError, match="already name"):
        add_features(table, [FeatureSpec("*", ("a", "b"), name="a")])


def test_the_defining_feature_raises_downstream_auc():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X["a"] / (X["b"].abs() + 0.1) > 1).astype(int)  # a ratio: hard for trees on a and b
    ratio = {"ratio": [FeatureSpec("/", ("a", "b"))]}
    results = downstream_auc(X, y, ratio, n_splits=3, seed=0)
    assert len(results) == 3 * 2 and set(results["features"]) == {"original", "ratio"}
    summary = summarise_auc(results).set_index("features")
    assert summary.loc["ratio", "mean"] > 0.985
    assert summary.loc["ratio", "delta_vs_original"] > 0.01
    again = downstream_auc(X, y, ratio, n_splits=3, seed=0)
    pd.testing.assert_frame_equal(results, again)  # same splits, same models


def test_downstream_auc_refuses_a_single_class(table):
    with pytest.raises(ValidationError, match="two classes"):
        downstream_auc(table.drop(columns="label"), np.ones(len(table)), {}, n_splits=2)


def test_a_table_the_llm_completes_from_memory_is_dropped():
    frame = planted_table(120, seed=0)

    def answer(request: dict) -> str:  # a model that has the table by heart
        prompt = request["messages"][-1]["content"]
        lines = frame.to_csv(index=False, lineterminator="\n").split("\n")
        shown = prompt.strip().split("\n")[-1]
        for row, line in enumerate(lines):
            if line == shown:
                return lines[row + 1]
        return "no idea"

    with ScriptedChatServer(answer) as server:
        study = study_table(
            "memorised", frame, "label", OpenAIClient(server.url, "m"), memorisation_trials=4
        )
    assert study.memorisation == 1.0 and study.dropped and study.suggestion is None
    assert audit_studies([study])["tables_audited"] == 0


def test_the_audit_pools_tables_and_tests_against_every_reference():
    frames = {"one": planted_table(200, seed=1), "two": planted_table(240, seed=2)}
    replies = [
        _reply(("p", "+", ["income", "age"]), ("r", "/", ["income", "age"])),
        _reply(("g", "GroupByThenMean", ["region", "income"])),
    ]
    studies = []
    for name, frame in frames.items():
        with ScriptedChatServer(replies) as server:
            client = OpenAIClient(server.url, "m")
            studies.append(study_table(name, frame, "label", client, n_calls=2, openfe_features=4))
    result = audit_studies(studies)
    assert result["counts"] == {"+": 2, "/": 2, "GroupByThenMean": 2}
    assert set(result["against"]) == {"openfe", "pool", "uniform"}
    assert set(result["per_table"]) == {"one", "two"}
    uniform = pooled_reference(studies, "uniform")
    assert uniform.sum() == pytest.approx(1.0)
    # both tables have the same columns and the same number of proposals: the pooled uniform
    # reference is each table's uniform reference
    assert (uniform > 0).sum() == len(result["against"]["uniform"]["residuals"]) - sum(
        r["reference_prob"] == 0 for r in result["against"]["uniform"]["residuals"]
    )
    assert result["against"]["openfe"]["n"] == 6
    assert auc_table(studies).empty  # impact_splits=0: no AUC


def test_repeated_names_and_names_of_columns_are_made_distinct(table):
    reply = _reply(("short_name", "+", ["a", "b"]), ("short_name", "*", ["a", "b"]),
                   ("a", "-", ["a", "b"]))  # fmt: skip
    with ScriptedChatServer([reply]) as server:
        suggestion = suggest_features(table, "label", OpenAIClient(server.url, "m"))
    assert [f.column for f in suggestion.features] == ["short_name", "(a*b)", "(a-b)"]
    assert list(add_features(table, suggestion.features).columns[-3:]) == [
        "short_name", "(a*b)", "(a-b)"
    ]  # fmt: skip
