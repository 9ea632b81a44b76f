import json

import pytest

from autofm.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out


MODEL = ["--width", "32", "--head-size", "16", "--block-size", "16", "--depth", "1"]


def test_train_grow_and_continue(tmp_path, capsys):
    stem = tmp_path / "small"
    code, out = _run(
        capsys,
        "lm",
        "train",
        "--corpus",
        "stdlib",
        *MODEL,
        "--tokens",
        "4096",
        "--batch-size",
        "8",
        "--out",
        str(stem),
        "--report",
        str(tmp_path / "r.html"),
        "--json",
    )
    assert code == 0, out.err
    result = json.loads(out.out)
    assert result["tokens"] == 4096 and result["final_val_loss"] < 5.5
    assert (tmp_path / "r.html").exists() and stem.with_suffix(".safetensors").exists()

    code, out = _run(capsys, "lm", "grow", str(stem), "--width", "64", "--json")
    assert code == 0, out.err
    grown = json.loads(out.out)
    assert grown["to_width"] == 64 and grown["checkpoint"].endswith("small_w64")

    code, out = _run(
        capsys,
        "lm",
        "train",
        "--init",
        grown["checkpoint"],
        "--tokens",
        "256",
        "--batch-size",
        "8",
        "--out",
        str(tmp_path / "continued"),
        "--json",
    )
    assert code == 0, out.err
    assert json.loads(out.out)["n_parameters"] == grown["n_parameters"]

    code, out = _run(capsys, "lm", "grow", str(stem), "--width", "16")
    assert code == 2 and "smaller than the source" in out.err
    code, out = _run(capsys, "lm", "grow", str(stem), "--width", "64", "--param", "sp")
    assert code == 2 and "cannot grow a model trained in μP into SP" in out.err


def test_coord_check_json(capsys):
    code, out = _run(
        capsys,
        "lm",
        "coord-check",
        "--widths",
        "32",
        "64",
        "--steps",
        "2",
        "--seeds",
        "1",
        "--batch-size",
        "2",
        "--json",
    )
    assert code == 0, out.err
    result = json.loads(out.out)
    assert set(result["ratios"]) == {"sp", "mup"} and result["widths"] == [32, 64]


def test_sweep_json(tmp_path, capsys):
    code, out = _run(
        capsys,
        "lm",
        "sweep",
        *MODEL,
        "--widths",
        "16",
        "32",
        "--head-size",
        "8",
        "--lrs",
        "1e-3",
        "1e-2",
        "--params",
        "mup",
        "--tokens",
        "512",
        "--batch-size",
        "4",
        "--report",
        str(tmp_path / "s.html"),
        "--json",
    )
    assert code == 0, out.err
    result = json.loads(out.out)
    assert set(result["best_lr"]["mup"]) == {"16", "32"} and len(result["rows"]) == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["lm", "train", "--width", "100", "--head-size", "32"], "not divisible by head_size"),
        (["lm", "train", "--width", "64", "--heads", "3"], "not divisible by --heads"),
        (["lm", "train", "--corpus", "EMPTY"], "is empty"),
        (["lm", "grow", "MISSING", "--width", "64"], "not found"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, argv, message):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    argv = [
        str(empty) if a == "EMPTY" else str(tmp_path / "x") if a == "MISSING" else a for a in argv
    ]
    code, out = _run(capsys, *argv)
    assert code == 2 and message in out.err


def test_non_utf8_corpus_is_accepted_with_a_note(tmp_path, capsys):
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes(("café crème brûlée " * 400).encode("latin-1"))
    code, out = _run(
        capsys,
        "lm",
        "train",
        "--corpus",
        str(corpus),
        *MODEL,
        "--tokens",
        "256",
        "--batch-size",
        "4",
        "--out",
        str(tmp_path / "m"),
        "--json",
    )
    assert code == 0, out.err
    assert "not valid UTF-8" in out.err and "fine" in out.err


def test_a_run_folder_continues_under_any_spelling_of_its_inputs_but_not_on_other_ones(
    tmp_path, capsys, monkeypatch
):
    text = "".join(f"def f{i}(x):\n    return x * {i}\n" for i in range(400))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "text.txt").write_text(text)
    (tmp_path / "copy.txt").write_text(text)
    (tmp_path / "edited.txt").write_text(text.replace("return", "yield"))
    stem = tmp_path / "a" / "init"
    code, out = _run(capsys, "lm", "train", "--corpus", str(tmp_path / "a" / "text.txt"), *MODEL,
                     "--tokens", "256", "--batch-size", "4", "--out", str(stem))  # fmt: skip
    assert code == 0, out.err
    run = ["lm", "train", "--tokens", "1024", "--batch-size", "4", "--run-dir",
           str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--json"]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    code, out = _run(
        capsys, *run, "--corpus", "a/text.txt", "--init", "a/init", "--max-seconds", "0"
    )
    assert code == 0, out.err
    # the same text and model named otherwise (another path, a copy, the .json, from inside a/)
    monkeypatch.chdir(tmp_path / "a")
    for corpus, init in (("../copy.txt", "init.json"), ("text.txt", str(stem))):
        code, out = _run(capsys, *run, "--corpus", corpus, "--init", init, "--max-seconds", "0")
        assert code == 0, out.err
    code, out = _run(capsys, *run, "--corpus", "../edited.txt", "--init", "init")
    assert code == 2 and "another model or settings (['corpus']: corpus {" in out.err, out.err
    code, out = _run(capsys, *run, "--corpus", "text.txt")  # from scratch: no --init
    assert code == 2 and "(['init']: init " in out.err and "not null" in out.err, out.err
