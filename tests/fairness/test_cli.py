import json

import pytest

from autofm.cli import main

from .helpers import planted


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    planted(240).to_csv(folder / "table.csv", index=False)
    return folder


def test_run_conflicts_select_report(run_folder, capsys):
    table, out = run_folder / "table.csv", run_folder / "run"
    args = ["fair", "run", str(table), "--label", "label", "--protected", "race"]
    args += ["--privileged", "W", "--model", "logreg", "--trials", "6", "--bi-trials", "3"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["trials"] == 6 and set(result["bi_objective_runs"]) == {
        "dsp",
        "deod",
        "deop",
        "invd",
    }

    assert main(["fair", "conflicts", str(out), "--json"]) == 0
    conflicts = json.loads(capsys.readouterr().out)
    assert set(conflicts["contrast"]) == {"dsp", "deod", "deop", "invd"}
    assert conflicts["contrast"]["dsp"]["dsp"] == pytest.approx(0.0)
    assert conflicts["best"]["f1"] == pytest.approx(result["best_val"]["f1"])

    assert main(["fair", "select", str(out), "--weights", "dsp=0.3,deop=0.2,f1=0.5", "--json"]) == 0
    selection = json.loads(capsys.readouterr().out)
    assert selection["weights"]["dsp"] == pytest.approx(0.3)
    assert {"selection_rate_priv", "tpr_unpriv"} <= set(selection["rates"])
    assert all({"risk", "why"} == set(r) for r in selection["risks"])

    html = run_folder / "report.html"
    assert main(["fair", "report", str(out), str(html)]) == 0
    text = html.read_text()
    assert text.count("data:image/png;base64") >= 3 and "Selected model" in text


def test_bad_input_exits_2_in_one_line(run_folder, capsys):
    table = str(run_folder / "table.csv")
    assert main(["fair", "run", table, "--label", "nope", "--protected", "race"]) == 2
    assert "no column(s) ['nope']" in capsys.readouterr().err
    assert (
        main(
            [
                "fair",
                "run",
                table,
                "--label",
                "label",
                "--protected",
                "race",
                "--privileged",
                "X",
                "--out",
                str(run_folder / "bad"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("autofm: error:") and "does not occur" in err[-1]
    assert main(["fair", "select", str(run_folder / "missing"), "--weights", "f1=1"]) == 2


def test_group_without_a_command_prints_help_and_exits_2(capsys):
    assert main(["fair"]) == 2
    err = capsys.readouterr().err
    assert all(command in err for command in ("run", "conflicts", "select", "report"))
