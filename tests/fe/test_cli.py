"""`autofm fe suggest` and `audit` end to end on a scripted OpenAI-compatible server."""

import json

import pandas as pd

from autofm.cli import main
from autofm.fe.scripted_server import ScriptedChatServer
from autofm.fe.tour import planted_table

REPLY = json.dumps(
    {"features": [{"name": "inc_age", "operator": "/", "inputs": ["income", "age"]},
                  {"name": "g", "operator": "GroupByThenMean", "inputs": ["region", "income"]}]}
)  # fmt: skip


def run(args, capsys) -> tuple[int, dict]:
    code = main(["fe", *args, "--json", "--quiet"])
    return code, json.loads(capsys.readouterr().out)


def test_suggest_writes_the_table_and_a_rerun_comes_from_the_cache(tmp_path, capsys):
    planted_table(120, seed=0).to_csv(tmp_path / "t.csv", index=False)
    with ScriptedChatServer([REPLY]) as server:
        args = ["suggest", str(tmp_path / "t.csv"), "--llm", server.url, "--model", "m",
                "--cache", str(tmp_path / "cache"), "--calls", "1"]  # fmt: skip
        code, first = run([*args, "--out", str(tmp_path / "out.csv")], capsys)
        assert code == 0 and first["cache_misses"] == 1
        code, again = run(args, capsys)  # the script holds one reply: a second call would fail
    assert code == 0 and again["cache_hits"] == 1 and again["cache_misses"] == 0
    assert again["features"] == first["features"]
    assert [f["formula"] for f in first["features"]] == [
        "(income/age)",
        "GroupByThenMean(region,income)",
    ]
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written.columns) == ["region", "income", "age", "label", "inc_age", "g"]


def test_audit_of_a_folder_writes_the_result_and_the_report(tmp_path, capsys):
    tables = tmp_path / "tables"
    tables.mkdir()
    for seed in (0, 1):
        planted_table(160, seed=seed).to_csv(tables / f"t{seed}.csv", index=False)
    with ScriptedChatServer(lambda request: REPLY) as server:
        code, result = run(
            ["audit", str(tables), "--llm", server.url, "--model", "m", "--calls", "2",
             "--memorisation-trials", "0", "--impact-splits", "0", "--openfe-features", "3",
             "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "a.json"),
             "--report", str(tmp_path / "a.html")],
            capsys,
        )  # fmt: skip
    assert code == 0
    assert result["tables_audited"] == 2
    # two tables × two calls (replies cached by seed: each call its own request) × 2 features
    assert result["counts"] == {"/": 4, "GroupByThenMean": 4}
    assert json.loads((tmp_path / "a.json").read_text())["counts"] == result["counts"]
    assert "<img" in (tmp_path / "a.html").read_text()
