import json

import numpy as np
import pandas as pd

from autofm.cli import build_parser, main
from autofm.core.checkpoint import load_checkpoint
from autofm.data.tables import load_table
from autofm.gam import GAMformerClassifier
from autofm.gam.metrics import score_classifier


def _tables(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(160, 3)), columns=["a", "b", "c"])
    frame["label"] = (frame["a"] - frame["b"] > 0).astype(int)
    frame.iloc[:120].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[120:].to_csv(tmp_path / "test.csv", index=False)
    return tmp_path / "train.csv", tmp_path / "test.csv"


def test_fit_json_and_report_match_the_api(tmp_path, capsys, tiny_checkpoint):
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
    # the command is a thin layer: its numbers are the API's on the same tables
    X, y = load_table(str(train), "label")
    X_test, y_test = load_table(str(test), "label")
    gam = GAMformerClassifier(checkpoint=tiny_checkpoint, random_state=0).fit(X, y)
    expected = score_classifier(y_test, gam.predict_proba(X_test), gam.classes_)
    assert {key: result[key] for key in expected} == expected
    assert result["task"] == "classification" and result["n_rows"] == 120
    assert list(result["importances"]) == list(gam.feature_importances().index)
    html = report.read_text()
    assert html.count("<img") >= 1 and "Importances" in html


def test_fit_bad_input_exits_2(tmp_path, capsys, tiny_checkpoint):
    frame = pd.DataFrame({"x": np.arange(20.0), "y": np.ones(20, dtype=int)})
    frame.to_csv(tmp_path / "one.csv", index=False)
    code = main(["gam", "fit", str(tmp_path / "one.csv"), "--checkpoint", tiny_checkpoint])
    assert code == 2
    assert "only one class" in capsys.readouterr().err
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
            "--output",  # the earlier spelling of --out
            str(tmp_path / "model"),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["steps_done"] == 1
    _, meta = load_checkpoint(tmp_path / "model")
    assert meta["training"]["steps"] == 1 and meta["training"]["config"]["threads"] == 1
    args = build_parser().parse_args(["gam", "train", "--out", "stem", "--max-seconds", "60"])
    assert (args.out, args.max_seconds, args.threads) == ("stem", 60.0, None)


def test_gam_without_a_command_prints_help_and_exits_2(capsys):
    assert main(["gam"]) == 2
    assert "fit" in capsys.readouterr().err
