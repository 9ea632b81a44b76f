"""The finetune commands end to end on a tiny GPT and a simulated meta-dataset, and their
one-line errors (exit 2, nothing half-written) on bad input."""

import json

import pandas as pd
import pytest

from autofm.cli import main
from autofm.finetune.simulated import simulated_metadataset


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finetune-cli")
    simulated_metadataset(n_tasks=4, n_configs=6, max_epochs=3, seed=0).save(folder / "md")
    rows = [(f"{'nice' if i % 2 else 'bad'} day {i}", ["neg", "pos"][i % 2]) for i in range(40)]
    pd.DataFrame(rows[:30], columns=["text", "label"]).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(rows[30:], columns=["text", "label"]).to_csv(folder / "test.csv", index=False)
    qa = [(f"echo {w}{i}", f"{w}{i}") for i, w in enumerate(["ab", "cd", "ef"] * 8)]
    pd.DataFrame(qa, columns=["question", "answer"]).to_csv(folder / "qa.csv", index=False)
    return folder


def run(args, capsys):
    code = main(["finetune", *args, "--json", "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_meta_train_suggest_run_and_bench(files, tiny_gpt_path, capsys):
    code, out, _ = run(["meta-train", str(files / "md"), "--out", str(files / "tuner")], capsys)
    assert code in (0, None), out
    assert (files / "tuner" / "tuner.json").is_file()

    common = ["--tuner", str(files / "tuner"), "--model", tiny_gpt_path]
    code, out, _ = run(["suggest", str(files / "train.csv"), *common, "--top", "3"], capsys)
    portfolio = json.loads(out)["portfolio"]
    assert [row["rank"] for row in portfolio] == [1, 2, 3]
    scores = [row["predicted_score"] for row in portfolio]
    assert scores == sorted(scores, reverse=True)

    for train, metric in (("train.csv", "test_accuracy"), ("qa.csv", "test_exact_match")):
        test = "test.csv" if train == "train.csv" else "qa.csv"
        out_dir, report = files / f"adapter-{train}", files / f"report-{train}.html"
        code, out, _ = run(
            ["run", str(files / train), "--test", str(files / test), "--budget", "2",
             *common, "--out", str(out_dir), "--report", str(report)],
            capsys,
        )  # fmt: skip
        result = json.loads(out)
        assert 0.0 <= result[metric] <= 1.0
        assert result["epochs_trained"] >= 1
        assert (out_dir / "adapter_model.safetensors").is_file() and report.is_file()

    code, out, _ = run(["bench", str(files / "md"), "--seeds", "1",
                        "--strategies", "random", "default", "zero_shot"], capsys)  # fmt: skip
    summary = pd.DataFrame(json.loads(out)["summary"])
    assert set(summary["strategy"]) == {"random", "default", "zero_shot"}
    assert summary["regret_mean"].between(0, 1).all()


def _bad(args, capsys, match):
    code = main(["finetune", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_inputs_exit_2_in_one_line(files, tiny_gpt_path, capsys, tmp_path):
    model = ["--model", tiny_gpt_path, "--tuner", str(files / "tuner")]
    no_columns = tmp_path / "x.csv"
    pd.DataFrame({"sentence": ["a", "b"], "y": [0, 1]}).to_csv(no_columns, index=False)
    _bad(["suggest", str(no_columns), *model], capsys, "text,label")
    one_class = tmp_path / "one.csv"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [1, 1, 1]}).to_csv(one_class, index=False)
    _bad(["suggest", str(one_class), *model], capsys, "single class")
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"text": ["a", " ", "c"], "label": [0, 1, 0]}).to_csv(empty, index=False)
    _bad(["suggest", str(empty), *model], capsys, "empty text")
    out = tmp_path / "adapter"
    for budget in ("0", "-5"):
        _bad(["run", str(files / "train.csv"), "--test", str(files / "test.csv"),
              "--budget", budget, *model, "--out", str(out)], capsys, "--budget")  # fmt: skip
    assert not out.exists()
    broken = tmp_path / "broken"
    simulated_metadataset(n_tasks=2, n_configs=3, max_epochs=2).save(broken)
    curve = pd.read_csv(broken / "curve.csv")
    curve.iloc[1, 1] = float("nan")
    curve.to_csv(broken / "curve.csv", index=False)
    _bad(["meta-train", str(broken), "--out", str(tmp_path / "t")], capsys, "missing epochs")
    assert not (tmp_path / "t").exists()
    tuner = json.loads((files / "tuner" / "tuner.json").read_text())
    tuner["candidates"][0]["learning_rate"] = 1.0
    bad_tuner = tmp_path / "bad-tuner"
    bad_tuner.mkdir()
    for name in ("perf", "cost"):
        for suffix in (".json", ".safetensors"):
            (bad_tuner / f"{name}{suffix}").write_bytes(
                (files / "tuner" / f"{name}{suffix}").read_bytes()
            )
    (bad_tuner / "tuner.json").write_text(json.dumps(tuner))
    _bad(["suggest", str(files / "train.csv"), "--model", tiny_gpt_path, "--tuner", str(bad_tuner)],
         capsys, "learning_rate 1.0 is outside")  # fmt: skip
    _bad(["bench", str(tmp_path / "nothing")], capsys, "not a finetuning meta-dataset")


def test_the_command_line_choices_are_the_modules_own():
    from autofm.finetune.cli import LODO_STRATEGIES, STRATEGIES
    from autofm.finetune.lodo import STRATEGIES as LODO
    from autofm.finetune.tuning import STRATEGIES as TUNING

    assert STRATEGIES == TUNING and set(LODO_STRATEGIES) == set(LODO)


@pytest.mark.slow
def test_tour_step(tmp_path):
    from autofm.finetune.tour import TOUR_BUILD, step

    result = step(tmp_path, seed=0)
    assert result.metrics["runs"] == len(TOUR_BUILD.tasks) * TOUR_BUILD.n_configs
    assert 0.0 <= result.metrics["tuned_test_exact_match"] <= 1.0
    assert result.metrics["configurations_tried"] >= 1
    assert (tmp_path / "finetune-metadataset" / "curve.csv").is_file()


def test_the_shipped_tuner_ranks_every_candidate(tiny_gpt, toy_classification):
    from autofm.finetune.tuning import load_tuner, suggest

    tuner = load_tuner()
    assert len(tuner.candidates) == 64 and tuner.max_epochs == 8 and tuner.info["runs"] == 512
    ranked = suggest(tuner, tiny_gpt, toy_classification)
    assert sorted(ranked["config_id"]) == list(range(64))
    assert ranked["predicted_score"].is_monotonic_decreasing
    assert (ranked["predicted_seconds"] > 0).all()
