import json

import numpy as np
import pandas as pd

from autofm.cli import main


def _tables(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(160, 3)), columns=["a", "b", "c"])
    frame["label"] = (frame["a"] - frame["b"] > 0).astype(int)
    frame.iloc[:120].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[120:].to_csv(tmp_path / "test.csv", index=False)
    return tmp_path / "train.csv", tmp_path / "test.csv"


def test_fit_json_and_report(tmp_path, capsys, tiny_checkpoint):
    train, test = _tables(tmp_path)
    report = tmp_path / "gam.html"
    code = main(
        [
            "gam",
            "fit",
            str(train),
            "--target",
            "label",
            "--test",
            str(test),
            "--json",
            "--report",
            str(report),
            "--checkpoint",
            tiny_checkpoint,
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("roc_auc", "accuracy", "log_loss", "fit_seconds", "predict_seconds"):
        assert isinstance(result[key], float)
    assert 0.0 <= result["roc_auc"] <= 1.0
    html = report.read_text()
    assert html.count("<img") >= 1 and "Importances" in html


def test_fit_bad_input_exits_2(tmp_path, capsys, tiny_checkpoint):
    frame = pd.DataFrame({"x": np.arange(20.0), "y": np.ones(20, dtype=int)})
    frame.to_csv(tmp_path / "one.csv", index=False)
    code = main(["gam", "fit", str(tmp_path / "one.csv"), "--checkpoint", tiny_checkpoint])
    assert code == 2
    assert "single class" in capsys.readouterr().err
    assert main(["gam", "fit", str(tmp_path / "missing.csv")]) == 2


def test_train_command_writes_a_checkpoint(tmp_path, capsys):
    code = main(
        [
            "gam",
            "train",
            "--preset",
            "cpu",
            "--steps",
            "1",
            "--run-dir",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / "model"),
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["steps_done"] == 1
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "model.json").is_file()
