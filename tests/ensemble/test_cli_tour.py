import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from autofm.cli import build_parser, main
from autofm.ensemble.tour import step


@pytest.fixture(scope="module")
def synth_pool(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ens") / "synth"
    assert (
        main(
            [
                "ensemble",
                "synth",
                "--out",
                str(folder),
                "--models",
                "8",
                "--val",
                "200",
                "--test",
                "200",
                "--quiet",
            ]
        )
        == 0
    )
    return folder


def test_build_pool_from_csv(tmp_path, capsys):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.iloc[:200, :6].assign(diagnosis=np.where(y[:200] == 1, "benign", "malignant"))
    frame.to_csv(tmp_path / "table.csv", index=False)
    out = tmp_path / "pool"
    code = main(
        [
            "ensemble",
            "build-pool",
            str(tmp_path / "table.csv"),
            "--target",
            "diagnosis",
            "--out",
            str(out),
            "--grid",
            "small",
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_classes"] == 2 and result["n_val"] == 50 and result["n_models"] >= 10
    assert (out / "pool.json").is_file() and (out / "predictions.npz").is_file()
    meta = json.loads((out / "pool.json").read_text())
    assert meta["classes"] == ["benign", "malignant"]


def test_compare_json_shape(synth_pool, capsys, tmp_path):
    methods = ["single-best", "greedy", "softmax-ma", "top-5"]
    report = tmp_path / "compare.html"
    assert (
        main(
            [
                "ensemble",
                "compare",
                str(synth_pool),
                "--methods",
                *methods,
                "--json",
                "--report",
                str(report),
                "--quiet",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert list(result) == methods
    for values in result.values():
        assert set(values) == {"nll", "error", "normalized_nll", "normalized_error", "fit_seconds"}
    assert result["single-best"]["normalized_nll"] == 1.0
    assert result["greedy"]["nll"] == pytest.approx(
        result["greedy"]["normalized_nll"] * result["single-best"]["nll"]
    )
    assert report.read_text().count("data:image/png;base64") == 3


def test_fit_neural_saves_checkpoint(synth_pool, capsys, tmp_path):
    code = main(
        [
            "ensemble",
            "fit",
            str(synth_pool),
            "--method",
            "neural-ma",
            "--out",
            str(tmp_path / "net"),
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "neural-ma" and len(result["top_models"]) == 5
    assert (tmp_path / "net.safetensors").is_file()


def test_cli_bad_input_exits_2(tmp_path, capsys):
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0, 1, 0]}).to_csv(tmp_path / "t.csv", index=False)
    assert (
        main(
            [
                "ensemble",
                "build-pool",
                str(tmp_path / "t.csv"),
                "--target",
                "nope",
                "--out",
                str(tmp_path / "p"),
            ]
        )
        == 2
    )
    assert "no column(s) ['nope']" in capsys.readouterr().err
    assert main(["ensemble", "compare", str(tmp_path / "missing")]) == 2
    assert main(["ensemble", "fit", str(tmp_path), "--method", "greedy"]) == 2
    assert "pool.json" in capsys.readouterr().err


def test_save_is_an_alias_of_out():
    args = build_parser().parse_args(["ensemble", "fit", "pool", "--save", "net"])
    assert args.out == "net"


def test_out_is_refused_for_a_static_method(synth_pool, tmp_path, capsys):
    args = ["ensemble", "fit", str(synth_pool), "--method", "greedy", "--out", str(tmp_path / "n")]
    assert main(args) == 2
    assert "--out is for neural methods" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_group_without_a_command_prints_help_and_exits_2(capsys):
    assert main(["ensemble"]) == 2
    err = capsys.readouterr().err
    assert "build-pool" in err and "compare" in err


@pytest.mark.slow
def test_tour_step(tmp_path):
    result = step(tmp_path, seed=0)
    assert result.system == "ensemble" and "greedy" in result.summary
    assert result.metrics["single-best_normalized_nll"] == 1.0
    assert (tmp_path / "pool" / "pool.json").is_file()
    assert "data:image/png;base64" in result.report.to_html()
