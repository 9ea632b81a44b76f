import json
import subprocess
import sys

from autofm.cli import main


def test_version_and_doctor_json(capsys):
    assert main(["doctor", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["versions"]["autofm"] and "cpu_count" in out["devices"]


def test_bad_input_exits_2_with_one_line(capsys):
    assert main(["tour", "--only", "no-such-step", "--out", "/tmp/autofm-test-tour"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("autofm: error: unknown tour step")


def test_unknown_command_exits_2_in_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "autofm", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "invalid choice" in proc.stderr


def test_tour_data_step_writes_report(tmp_path, capsys):
    assert main(["tour", "--only", "data", "--out", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"]["data"]["ok"]
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64" in html
