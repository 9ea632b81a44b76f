import json

import numpy as np
import pandas as pd
import pytest

from autofm.cli import main
from autofm.core.checkpoint import save_model

from .helpers import tiny_model
from .test_evaluate import write_folder


def tiny_checkpoint(tmp_path):
    model = tiny_model()
    return str(save_model(tmp_path / "tiny", model))


def series_csv(tmp_path):
    ds = pd.date_range("2015-01-01", periods=36, freq="MS")
    frame = pd.concat(
        pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.sin(np.arange(36) / 2) + k})
        for k, uid in enumerate(["a", "b"])
    )
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_forecast_without_a_command_prints_help_and_exits_2(capsys):
    assert main(["forecast"]) == 2
    assert "predict" in capsys.readouterr().err


def test_train_passes_its_flags_to_training(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import autofm.forecast.training as training

    calls = {}

    def fake_train(preset, run_dir, **kwargs):
        calls.update(kwargs, preset=preset, run_dir=run_dir)
        return SimpleNamespace(steps_done=0, losses=[], seconds=0.0)

    monkeypatch.setattr(training, "train_forecaster", fake_train)
    flags = ["--threads", "3", "--init", "old", "--lr", "0.002", "--warmup-steps", "7",
             "--drift-prob", "0.5", "--max-seconds", "9", "--seed", "4", "--steps", "11"]  # fmt: skip
    run_dir = str(tmp_path / "run")
    assert main(["forecast", "train", "--run-dir", run_dir, *flags, "--json"]) == 0
    assert calls["threads"] == 3 and calls["init_from"] == "old" and calls["lr"] == 0.002
    assert calls["warmup_steps"] == 7 and calls["max_seconds"] == 9.0 and calls["seed"] == 4
    assert calls["steps"] == 11 and calls["run_dir"] == run_dir
    assert calls["prior"].drift_prob == 0.5
    assert json.loads(capsys.readouterr().out)["checkpoint"] is None
    assert main(["forecast", "train", "--profile-fraction", "2"]) == 2


def test_predict_json_csv_and_report(tmp_path, capsys):
    out, report = tmp_path / "f.csv", tmp_path / "r.html"
    code = main(
        ["forecast", "predict", series_csv(tmp_path), "--h", "5", "--checkpoint",
         tiny_checkpoint(tmp_path), "--out", str(out), "--report", str(report), "--json"]
    )  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_series"] == 2 and len(result["forecasts"]) == 10
    assert set(result["forecasts"][0]) >= {"unique_id", "ds", "Mamba4Cast", "Mamba4Cast-lo-80"}
    assert len(pd.read_csv(out)) == 10
    assert "<img" in report.read_text()


def test_predict_can_calibrate_intervals_on_the_series_own_past(tmp_path, capsys):
    model = tiny_checkpoint(tmp_path)
    base = ["forecast", "predict", series_csv(tmp_path), "--h", "4", "--model", model, "--json"]
    assert main(base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["interval_scale"] == 1.0
    assert main([*base, "--calibrate-intervals"]) == 0
    calibrated = json.loads(capsys.readouterr().out)
    assert calibrated["interval_scale"] != 1.0
    widths = [
        np.mean([r["Mamba4Cast-hi-80"] - r["Mamba4Cast-lo-80"] for r in result["forecasts"]])
        for result in (plain, calibrated)
    ]
    assert widths[1] / widths[0] == pytest.approx(calibrated["interval_scale"], rel=1e-3)


def test_predict_bad_input_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"id": ["a"], "time": [1], "value": [1.0]}).to_csv(path, index=False)
    assert main(["forecast", "predict", str(path), "--h", "3"]) == 2
    assert "unique_id" in capsys.readouterr().err
    model = tiny_checkpoint(tmp_path)
    assert main(["forecast", "predict", series_csv(tmp_path), "--h", "0", "--model", model]) == 2


def test_evaluate_json(tmp_path, capsys):
    folder = write_folder(tmp_path / "data")
    command = ["forecast", "evaluate", str(folder), "--model", tiny_checkpoint(tmp_path), "--json"]
    assert main([*command, "--combine", "none"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"mase", "smape", "n_series", "seconds"}
    # exactly periodic series: the backtest gate finds seasonal naive perfect on each series'
    # last h context points and uses it, so even the untrained model scores MASE 0
    assert result["n_series"] == 4 and result["mase"] == pytest.approx(0.0, abs=1e-6)
    # by default they are averaged with Theta (exact on them) instead: half the model's error
    assert main([*command, "--gate", "none", "--combine", "none"]) == 0
    alone = json.loads(capsys.readouterr().out)["mase"]
    assert main(command) == 0
    combined = json.loads(capsys.readouterr().out)["mase"]
    assert alone > 0.1 and combined == pytest.approx(alone / 2, rel=1e-3)
