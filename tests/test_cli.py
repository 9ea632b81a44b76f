import json
import subprocess
import sys

import pytest

from autofm.cli import main


def test_version_and_doctor_json(capsys):
    assert main(["doctor", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["versions"]["autofm"] and "cpu_count" in out["devices"]


def test_bad_input_exits_2_with_one_line(capsys):
    assert main(["tour", "--only", "no-such-step", "--out", "/tmp/autofm-test-tour"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("autofm: error: unknown tour step")


@pytest.mark.slow
def test_unknown_command_exits_2_in_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "autofm", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "invalid choice" in proc.stderr


@pytest.mark.slow
def test_tour_data_step_writes_report(tmp_path, capsys):
    assert main(["tour", "--only", "data", "--out", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"]["data"]["ok"]
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64" in html


@pytest.mark.parametrize("group", ["icl", "lm"])
def test_a_command_group_without_a_command_prints_its_help_and_exits_2(group, capsys):
    assert main([group]) == 2
    err = capsys.readouterr().err
    assert f"autofm {group}" in err and "COMMAND" in err


def test_systems_are_the_subpackages_that_exist():
    from pathlib import Path

    import autofm
    from autofm.systems import SHARED_PACKAGES, available_systems, systems

    on_disk = {
        p.parent.name
        for p in Path(autofm.__file__).parent.glob("*/__init__.py")
        if p.parent.name not in SHARED_PACKAGES
    }
    assert set(systems()) == on_disk and "pfn" not in on_disk
    assert {name for name, _ in available_systems("cli")} == on_disk


def test_an_abbreviated_flag_is_refused_not_guessed(capsys):
    # `--h` used to be taken for `--help` (prefix matching) and the command silently did nothing
    with pytest.raises(SystemExit) as exited:
        main(["forecast", "evaluate", "folder", "--h", "5"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --h 5" in capsys.readouterr().err
