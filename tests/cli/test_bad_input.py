"""Every command on a shared set of broken inputs: exit 2, one line on stderr, no traceback, and
nothing created or changed in the case's folder (nor in the valid inputs beside it).

A case is the valid arguments of one command with exactly one input broken. The broken files are
made in the case's own folder, which is also the working directory (so a default output such as
`runs/...` would show up there). A new command adds its cases here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autofm.cli import main

# ---- broken inputs -------------------------------------------------------------------------------

FOLDER = "<folder>"  # a file entry that is an empty folder
RANDOM_BYTES = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def _table(broken: str | None = None) -> str:
    """A valid classification table (a, b, c, label), or one with one thing broken."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    frame["label"] = (frame["a"] > 0).astype(int)
    if broken == "nan-target":
        frame["label"] = frame["label"].astype(float)
        frame.loc[3, "label"] = np.nan
    elif broken == "inf-feature":
        frame.loc[3, "a"] = np.inf
    elif broken == "string-feature":
        frame["b"] = frame["b"].astype(object)
        frame.loc[3, "b"] = "banana"
    elif broken == "single-class":
        frame["label"] = 1
    return _csv(frame)


def _series(broken: str | None = None) -> str:
    """Two monthly series in long format (unique_id, ds, y), or with one thing broken."""
    ds = pd.date_range("2015-01-01", periods=30, freq="MS")
    frame = pd.concat(
        pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.sin(np.arange(30) / 2) + k})
        for k, uid in enumerate(["a", "b"])
    ).reset_index(drop=True)
    if broken == "inf-y":
        frame.loc[5, "y"] = np.inf
    elif broken == "string-y":
        frame["y"] = frame["y"].astype(object)
        frame.loc[5, "y"] = "banana"
    elif broken == "duplicates":
        frame = pd.concat([frame, frame.iloc[[4]]])
    elif broken == "bad-dates":
        frame["ds"] = frame["ds"].astype(str)
        frame.loc[5, "ds"] = "not a date"
    elif broken == "wrong-columns":
        frame = frame.rename(columns={"ds": "time"})
    return _csv(frame)


def _texts(broken: str | None = None) -> str:
    """A text-classification task file (text, label), or one with one thing broken."""
    rows = [(f"{'nice' if i % 2 else 'bad'} day {i}", ["neg", "pos"][i % 2]) for i in range(30)]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    if broken == "single-class":
        frame["label"] = "pos"
    elif broken == "wrong-columns":
        frame = frame.rename(columns={"text": "sentence"})
    return _csv(frame)


def foreign_sqlite(path: Path, assets: Path) -> None:
    """Another program's SQLite database: one unrelated table with one row."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        connection.execute("INSERT INTO notes (text) VALUES ('keep me')")
    connection.close()


def copy_of(name: str) -> Callable[[Path, Path], None]:
    """A copy of the valid asset `name` (a file, a folder, or a checkpoint stem)."""

    def make(path: Path, assets: Path) -> None:
        source = assets / name
        if source.is_dir():
            shutil.copytree(source, path)
        elif source.is_file():
            shutil.copy(source, path)
        else:
            for suffix in (".json", ".safetensors"):
                shutil.copy(source.parent / f"{name}{suffix}", path.parent / f"{path.name}{suffix}")

    return make


def random_weights(name: str) -> Callable[[Path, Path], None]:
    """Checkpoint stem `name`'s JSON with random bytes as its .safetensors."""

    def make(path: Path, assets: Path) -> None:
        shutil.copy(assets / f"{name}.json", path.parent / f"{path.name}.json")
        (path.parent / f"{path.name}.safetensors").write_bytes(RANDOM_BYTES)

    return make


def truncated_meta(name: str) -> Callable[[Path, Path], None]:
    """Checkpoint stem `name` with its JSON cut in half."""

    def make(path: Path, assets: Path) -> None:
        shutil.copy(assets / f"{name}.safetensors", path.parent / f"{path.name}.safetensors")
        text = (assets / f"{name}.json").read_text()
        (path.parent / f"{path.name}.json").write_text(text[: len(text) // 2])

    return make


def folder_with(name: str, file: str, content) -> Callable[[Path, Path], None]:
    """A copy of the valid folder asset `name` with `file` replaced by `content` (text, bytes,
    or a function of the file's valid bytes)."""

    def make(path: Path, assets: Path) -> None:
        shutil.copytree(assets / name, path)
        target = path / file
        if callable(content):
            target.write_bytes(content(target.read_bytes()))
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)

    return make


# ---- cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One command with one broken input. `argv` may name `{case}` (the case's folder) and
    `{assets}` (the valid inputs); `files` are made in the case's folder first; `match` is a
    fragment the one-line message must hold."""

    id: str
    argv: tuple[str, ...]
    files: dict = field(default_factory=dict)
    match: str | None = None
    xfail: str | None = None


def case(id: str, *argv: str, files: dict | None = None, match: str | None = None, xfail=None):
    return Case(id, argv, files or {}, match, xfail)


BLOCKER = {"blocker": "x"}  # a file where an output's parent folder should be
TABLE = "{assets}/table.csv"


def _gam_cases() -> list[Case]:
    fit = ("gam", "fit")
    args = ("--target", "label")
    train = ("gam", "train", "--steps", "1", "--device", "cpu", "--threads", "1")
    run = ("--run-dir", "{case}/run")
    return [
        case("gam-fit-missing-file", *fit, "{case}/missing.csv", *args),
        case("gam-fit-empty-csv", *fit, "{case}/t.csv", *args, files={"t.csv": ""}),
        case("gam-fit-header-only", *fit, "{case}/t.csv", *args, files={"t.csv": "a,b,label\n"}),
        case("gam-fit-wrong-target", *fit, TABLE, "--target", "nope", match="nope"),
        case("gam-fit-nan-target", *fit, "{case}/t.csv", *args,
             files={"t.csv": _table("nan-target")}),
        case("gam-fit-inf-feature", *fit, "{case}/t.csv", *args,
             files={"t.csv": _table("inf-feature")}),
        case("gam-fit-single-class", *fit, "{case}/t.csv", *args, "--task", "classification",
             files={"t.csv": _table("single-class")}),
        case("gam-fit-test-without-target", *fit, TABLE, *args, "--test", "{case}/t.csv",
             files={"t.csv": "a,b,c\n1,2,3\n"}),
        case("gam-fit-max-context-rows-0", *fit, TABLE, *args, "--max-context-rows", "0"),
        case("gam-fit-max-context-rows-negative", *fit, TABLE, *args, "--max-context-rows", "-5"),
        case("gam-fit-report-parent-is-a-file", *fit, TABLE, *args,
             "--report", "{case}/blocker/r.html", files=BLOCKER),
        case("gam-fit-report-is-a-folder", *fit, TABLE, *args, "--report", "{case}/r.html",
             files={"r.html": FOLDER}),
        case("gam-fit-random-bytes-checkpoint", *fit, TABLE, *args, "--checkpoint", "{case}/m",
             files={"m": random_weights("gpt")}),
        case("gam-fit-truncated-json-checkpoint", *fit, TABLE, *args, "--checkpoint", "{case}/m",
             files={"m": truncated_meta("gpt")}),
        case("gam-fit-wrong-kind-checkpoint", *fit, TABLE, *args, "--checkpoint",
             "{assets}/gpt", match="'gpt'"),
        case("gam-fit-checkpoint-is-another-file", *fit, TABLE, *args, "--checkpoint",
             "weights.pt", files={"weights.pt": RANDOM_BYTES}, match="weights.pt is not"),
        case("gam-fit-unknown-flag", *fit, TABLE, "--max-rows", "5"),
        case("gam-train-unknown-preset", *train, *run, "--preset", "nope"),
        case("gam-train-steps-negative", "gam", "train", "--steps", "-1", *run),
        case("gam-train-lr-nan", *train, *run, "--lr", "nan"),
        case("gam-train-lr-negative", *train, *run, "--lr", "-0.1"),
        case("gam-train-max-seconds-negative", *train, *run, "--max-seconds", "-1"),
        case("gam-train-threads-0", "gam", "train", "--steps", "1", *run, "--threads", "0"),
        case("gam-train-out-is-a-folder", *train, *run, "--out", "{case}/m.json",
             files={"m.json": FOLDER}),
        case("gam-train-run-dir-is-a-file", *train, "--run-dir", "{case}/blocker", files=BLOCKER),
        case("gam-train-init-wrong-kind", *train, *run, "--init", "{assets}/gpt"),
    ]  # fmt: skip


def _forecast_cases() -> list[Case]:
    predict = ("forecast", "predict")
    h = ("--h", "4")
    series = "{assets}/series.csv"
    evaluate = ("forecast", "evaluate")
    train = ("forecast", "train", "--steps", "1", "--threads", "1", "--run-dir", "{case}/run")

    def broken(name: str, kind: str, **kwargs) -> Case:
        return case(f"forecast-predict-{name}", *predict, "{case}/s.csv", *h,
                    files={"s.csv": _series(kind)}, **kwargs)  # fmt: skip

    return [
        case("forecast-predict-missing-file", *predict, "{case}/missing.csv", *h),
        case("forecast-predict-empty-csv", *predict, "{case}/s.csv", *h, files={"s.csv": ""}),
        case("forecast-predict-header-only", *predict, "{case}/s.csv", *h,
             files={"s.csv": "unique_id,ds,y\n"}),
        broken("wrong-columns", "wrong-columns", match="unique_id"),
        broken("inf-y", "inf-y"),
        broken("string-y", "string-y"),
        broken("duplicates", "duplicates", match="duplicated"),
        broken("bad-dates", "bad-dates"),
        case("forecast-predict-h-0", *predict, series, "--h", "0"),
        case("forecast-predict-h-negative", *predict, series, "--h", "-3"),
        case("forecast-predict-h-beyond-the-calendar", *predict, series, "--h", "100000"),
        case("forecast-predict-context-length-0", *predict, series, *h, "--context-length", "0",
             match="context"),
        case("forecast-predict-season-length-0", *predict, series, *h, "--season-length", "0"),
        case("forecast-predict-unknown-freq", *predict, series, *h, "--freq", "banana"),
        case("forecast-predict-out-parent-is-a-file", *predict, series, *h,
             "--out", "{case}/blocker/f.csv", files=BLOCKER),
        case("forecast-predict-out-is-a-folder", *predict, series, *h, "--out", "{case}/f.csv",
             files={"f.csv": FOLDER}),
        case("forecast-predict-report-is-a-folder", *predict, series, *h,
             "--report", "{case}/r.html", files={"r.html": FOLDER}),
        case("forecast-predict-random-bytes-checkpoint", *predict, series, *h,
             "--checkpoint", "{case}/m", files={"m": random_weights("gpt")}),
        case("forecast-predict-wrong-kind-checkpoint", *predict, series, *h,
             "--checkpoint", "{assets}/gpt"),
        case("forecast-predict-missing-checkpoint", *predict, series, *h,
             "--checkpoint", "{case}/nothing", match="{case}/nothing"),
        case("forecast-evaluate-missing-folder", *evaluate, "{case}/nothing"),
        case("forecast-evaluate-empty-train-csv", *evaluate, "{case}/ts",
             files={"ts": folder_with("ts", "train.csv", "")}),
        case("forecast-evaluate-truncated-meta-json", *evaluate, "{case}/ts",
             files={"ts": folder_with("ts", "meta.json", '{"freq": "MS", ')}),
        case("forecast-evaluate-max-series-negative", *evaluate, "{assets}/ts",
             "--max-series", "-1"),
        case("forecast-evaluate-max-series-0", *evaluate, "{assets}/ts", "--max-series", "0"),
        case("forecast-evaluate-abbreviated-flag", *evaluate, "{assets}/ts", "--h", "5"),
        case("forecast-train-unknown-preset", *train, "--preset", "nope"),
        case("forecast-train-steps-negative", *train, "--steps", "-1"),
        case("forecast-train-lr-nan", *train, "--lr", "nan"),
        case("forecast-train-drift-prob-nan", *train, "--drift-prob", "nan"),
        case("forecast-train-init-wrong-kind", *train, "--init", "{assets}/gpt"),
        case("forecast-train-out-is-a-folder", *train, "--out", "{case}/m.json",
             files={"m.json": FOLDER}),
        case("forecast-train-run-dir-is-a-file", "forecast", "train", "--steps", "1",
             "--run-dir", "{case}/blocker", files=BLOCKER),
    ]  # fmt: skip


def _ensemble_cases() -> list[Case]:
    build = ("ensemble", "build-pool")
    args = ("--target", "label", "--grid", "small", "--out", "{case}/pool")
    synth = ("ensemble", "synth", "--models", "3", "--val", "20", "--test", "20")
    fit = ("ensemble", "fit")
    compare = ("ensemble", "compare")

    def table(name: str, content: str, **kwargs) -> Case:
        return case(f"ensemble-build-pool-{name}", *build, "{case}/t.csv", *args,
                    files={"t.csv": content}, **kwargs)  # fmt: skip

    def pool(command: str, name: str, maker, **kwargs) -> Case:
        extra = ("--method", "greedy") if command == "fit" else ("--methods", "single-best")
        return case(f"ensemble-{command}-{name}", "ensemble", command, "{case}/pool", *extra,
                    files={"pool": maker}, **kwargs)  # fmt: skip

    return [
        case("ensemble-build-pool-missing-file", *build, "{case}/missing.csv", *args),
        table("empty-csv", ""),
        table("header-only", "a,b,c,label\n"),
        table("string-feature", _table("string-feature"), match="numeric"),
        table("inf-feature", _table("inf-feature")),
        table("nan-target", _table("nan-target")),
        table("single-class", _table("single-class")),
        case("ensemble-build-pool-wrong-target", *build, TABLE, *args[:-2], "--target", "nope",
             "--out", "{case}/pool"),
        case("ensemble-build-pool-val-size-0", *build, TABLE, *args, "--val-size", "0"),
        case("ensemble-build-pool-sizes-over-1", *build, TABLE, *args, "--val-size", "0.6",
             "--test-size", "0.6"),
        case("ensemble-build-pool-out-is-a-file", *build, TABLE, "--target", "label",
             "--grid", "small", "--out", "{case}/blocker", files=BLOCKER),
        case("ensemble-synth-models-0", *synth, "--out", "{case}/pool", "--models", "0"),
        case("ensemble-synth-classes-1", *synth, "--out", "{case}/pool", "--classes", "1"),
        case("ensemble-synth-val-negative", *synth, "--out", "{case}/pool", "--val", "-5"),
        case("ensemble-synth-out-is-a-file", *synth, "--out", "{case}/blocker", files=BLOCKER),
        case("ensemble-fit-missing-pool", *fit, "{case}/nothing"),
        pool("fit", "empty-folder", FOLDER),
        pool("fit", "random-bytes-predictions", folder_with("pool", "predictions.npz",
             RANDOM_BYTES), match="not an autofm pool"),
        pool("fit", "truncated-predictions",
             folder_with("pool", "predictions.npz", lambda data: data[: len(data) // 2])),
        pool("fit", "truncated-pool-json", folder_with("pool", "pool.json", '{"format": ')),
        pool("compare", "random-bytes-predictions", folder_with("pool", "predictions.npz",
             RANDOM_BYTES)),
        pool("compare", "foreign-json", folder_with("pool", "pool.json", "[1, 2, 3]")),
        case("ensemble-fit-out-for-a-static-method", *fit, "{assets}/pool", "--method", "greedy",
             "--out", "{case}/net"),
        case("ensemble-fit-report-is-a-folder", *fit, "{assets}/pool", "--method", "greedy",
             "--report", "{case}/r.html", files={"r.html": FOLDER}),
        case("ensemble-compare-report-parent-is-a-file", *compare, "{assets}/pool",
             "--methods", "single-best", "--report", "{case}/blocker/r.html", files=BLOCKER),
        case("ensemble-fit-unknown-method", *fit, "{assets}/pool", "--method", "nope"),
    ]  # fmt: skip


def _fair_cases() -> list[Case]:
    run = ("fair", "run")
    args = ("--label", "label", "--protected", "race", "--privileged", "W", "--model", "logreg",
            "--trials", "2", "--bi-trials", "0", "--out", "{case}/run")  # fmt: skip
    table = "{assets}/fair.csv"
    study = "{assets}/study"

    def studies(command: str, *extra: str) -> list[Case]:
        return [
            case(f"fair-{command}-missing-study", "fair", command, "{case}/nothing.db", *extra),
            case(f"fair-{command}-empty-file", "fair", command, "{case}/s.db", *extra,
                 files={"s.db": ""}),
            case(f"fair-{command}-random-bytes", "fair", command, "{case}/s.db", *extra,
                 files={"s.db": RANDOM_BYTES}),
            case(f"fair-{command}-foreign-sqlite", "fair", command, "{case}/s.db", *extra,
                 files={"s.db": foreign_sqlite}),
        ]  # fmt: skip

    return [
        case("fair-run-missing-file", *run, "{case}/missing.csv", *args),
        case("fair-run-empty-csv", *run, "{case}/t.csv", *args, files={"t.csv": ""}),
        case("fair-run-wrong-label", *run, table, *args, "--label", "nope", match="nope"),
        case("fair-run-threads-0", *run, table, *args, "--threads", "0"),
        case("fair-run-unknown-model", *run, table, *args, "--model", "svm", match="svm"),
        case("fair-run-inf-feature", *run, "{case}/t.csv", *args,
             files={"t.csv": _fair_table("inf")}),
        case("fair-run-single-class", *run, "{case}/t.csv", *args,
             files={"t.csv": _fair_table("single-class")}),
        case("fair-run-trials-0", *run, table, *args, "--trials", "0"),
        case("fair-run-folds-1", *run, table, *args, "--folds", "1"),
        case("fair-run-test-size-over-1", *run, table, *args, "--test-size", "1.5"),
        case("fair-run-unknown-objective", *run, table, *args, "--objectives", "f1,banana"),
        case("fair-run-weights-banana", *run, table, *args, "--weights", "banana"),
        case("fair-run-storage-foreign-sqlite", *run, table, *args,
             "--storage", "sqlite:///{case}/s.db", files={"s.db": foreign_sqlite}),
        case("fair-run-out-is-a-file", *run, table, *args, "--out", "{case}/blocker",
             files=BLOCKER),
        case("fair-run-report-is-a-folder", *run, table, *args, "--report", "{case}/r.html",
             files={"r.html": FOLDER}),
        *studies("conflicts"),
        *studies("select", "--weights", "f1=1"),
        case("fair-select-weights-banana", "fair", "select", study, "--weights", "banana"),
        case("fair-select-weights-negative", "fair", "select", study, "--weights", "f1=-1"),
        case("fair-select-unknown-study-name", "fair", "select", study, "--weights", "f1=1",
             "--name", "nope"),
        *studies("report", "{case}/r.html"),
        case("fair-report-out-is-a-folder", "fair", "report", study, "{case}/r.html",
             files={"r.html": FOLDER}),
    ]  # fmt: skip


def _fair_table(broken: str | None = None) -> str:
    rng = np.random.default_rng(0)
    n = 80
    group = rng.integers(0, 2, n)
    frame = pd.DataFrame({
        "x1": rng.normal(size=n) + group, "x2": rng.normal(size=n),
        "race": np.where(group == 1, "W", "B"), "label": (rng.normal(size=n) + group > 0.5).astype(int),
    })  # fmt: skip
    if broken == "inf":
        frame.loc[3, "x1"] = np.inf
    elif broken == "single-class":
        frame["label"] = 1
    return _csv(frame)


def _icl_cases() -> list[Case]:
    compare = ("icl", "compare", "--prior", "gp", "--n-tasks", "1")
    train = ("icl", "train", "--prior", "counting", "--steps", "1", "--max-seconds", "1",
             "--run-dir", "{case}/run")  # fmt: skip
    return [
        case("icl-compare-n-tasks-negative", *compare, "--n-tasks", "-1"),
        case("icl-compare-missing-checkpoint", *compare, "--checkpoint", "{case}/nothing"),
        case("icl-compare-random-bytes-checkpoint", *compare, "--checkpoint", "{case}/m",
             files={"m": random_weights("gpt")}),
        case("icl-compare-truncated-json-checkpoint", *compare, "--checkpoint", "{case}/m",
             files={"m": truncated_meta("gpt")}),
        case("icl-compare-wrong-kind-checkpoint", *compare, "--checkpoint", "{assets}/gpt"),
        case("icl-compare-wrong-kind-shipped", *compare, "--checkpoint", "gamformer-cpu"),
        case("icl-compare-other-prior", "icl", "compare", "--prior", "steps", "--n-tasks", "1",
             "--checkpoint", "icl-counting"),
        case("icl-compare-unknown-prior", "icl", "compare", "--prior", "banana"),
        case("icl-experiments-report-is-a-folder", "icl", "experiments", "--prior", "counting",
             "--quick", "--report", "{case}/r.html", files={"r.html": FOLDER}),
        case("icl-experiments-report-parent-is-a-file", "icl", "experiments", "--prior",
             "counting", "--quick", "--report", "{case}/blocker/r.html", files=BLOCKER),
        case("icl-train-steps-0", *train, "--steps", "0"),
        case("icl-train-max-seconds-negative", *train, "--max-seconds", "-1"),
        case("icl-train-max-seconds-nan", *train, "--max-seconds", "nan"),
        case("icl-train-buckets-1", "icl", "train", "--prior", "gp", "--steps", "1",
             "--run-dir", "{case}/run", "--buckets", "1"),
        case("icl-train-out-is-a-folder", *train, "--out", "{case}/m.json",
             files={"m.json": FOLDER}),
        case("icl-train-run-dir-is-a-file", "icl", "train", "--prior", "counting", "--steps", "1",
             "--run-dir", "{case}/blocker", files=BLOCKER),
    ]  # fmt: skip


LM_MODEL = ("--width", "32", "--head-size", "16", "--block-size", "16", "--depth", "1")


def _lm_cases() -> list[Case]:
    train = ("lm", "train", *LM_MODEL, "--tokens", "256", "--batch-size", "4",
             "--out", "{case}/m")  # fmt: skip
    coord = ("lm", "coord-check", "--widths", "32", "64", "--steps", "1", "--seeds", "1",
             "--batch-size", "2")  # fmt: skip
    grow = ("lm", "grow")
    sweep = ("lm", "sweep", *LM_MODEL, "--widths", "16", "32", "--head-size", "8", "--lrs",
             "1e-3", "1e-2", "--params", "mup", "--tokens", "256", "--batch-size", "4")  # fmt: skip
    return [
        case("lm-train-missing-corpus", *train, "--corpus", "{case}/missing.txt"),
        case("lm-train-empty-corpus", *train, "--corpus", "{case}/c.txt", files={"c.txt": ""}),
        case("lm-train-corpus-is-a-folder", *train, "--corpus", "{case}/c",
             files={"c": FOLDER}),
        case("lm-train-tokens-0", *train, "--tokens", "0"),
        case("lm-train-batch-size-0", *train, "--batch-size", "0"),
        case("lm-train-lr-nan", *train, "--lr", "nan"),
        case("lm-train-lr-negative", *train, "--lr", "-1"),
        case("lm-train-valid-fraction-1", *train, "--valid-fraction", "1"),
        case("lm-train-width-0", *train, "--width", "0"),
        case("lm-train-warmup-over-1", *train, "--warmup", "2"),
        case("lm-train-init-random-bytes", *train, "--init", "{case}/i",
             files={"i": random_weights("gpt")}),
        case("lm-train-init-wrong-kind", *train, "--init", "icl-gp"),
        case("lm-train-out-is-a-folder", *train, "--out", "{case}/m.json",
             files={"m.json": FOLDER}),
        case("lm-train-out-parent-is-a-file", *train, "--out", "{case}/blocker/m",
             files=BLOCKER),
        case("lm-train-report-is-a-folder", *train, "--report", "{case}/r.html",
             files={"r.html": FOLDER}),
        case("lm-coord-check-lr-nan", *coord, "--lr", "nan"),
        case("lm-coord-check-widths-0", *coord, "--widths", "0", "32"),
        case("lm-coord-check-steps-0", *coord, "--steps", "0"),
        case("lm-coord-check-seeds-0", *coord, "--seeds", "0"),
        case("lm-coord-check-report-is-a-folder", *coord, "--report", "{case}/r.html",
             files={"r.html": FOLDER}),
        case("lm-grow-missing-checkpoint", *grow, "{case}/nothing", "--width", "64"),
        case("lm-grow-random-bytes-checkpoint", *grow, "{case}/m", "--width", "64",
             files={"m": random_weights("gpt")}),
        case("lm-grow-truncated-json-checkpoint", *grow, "{case}/m", "--width", "64",
             files={"m": truncated_meta("gpt")}),
        case("lm-grow-wrong-kind-checkpoint", *grow, "{assets}/pfn", "--width", "64",
             "--out", "{case}/g"),
        case("lm-grow-width-negative", *grow, "{assets}/gpt", "--width", "-64",
             "--out", "{case}/g"),
        case("lm-grow-shrink-nan", *grow, "{assets}/gpt", "--width", "64", "--shrink", "nan",
             "--out", "{case}/g"),
        case("lm-grow-out-json-is-a-folder", *grow, "{assets}/gpt", "--width", "64",
             "--out", "{case}/g", files={"g.json": FOLDER}),
        case("lm-sweep-lrs-nan", *sweep, "--lrs", "nan", "1e-2"),
        case("lm-sweep-lrs-0", *sweep, "--lrs", "0", "1e-2"),
        case("lm-sweep-n-lrs-0", "lm", "sweep", *LM_MODEL, "--n-lrs", "0", "--tokens", "256"),
        case("lm-sweep-lr-min-over-lr-max", "lm", "sweep", *LM_MODEL, "--lr-min", "1",
             "--lr-max", "0.1", "--n-lrs", "2", "--tokens", "256"),
        case("lm-sweep-seeds-0", *sweep, "--seeds", "0"),
        case("lm-sweep-report-is-a-folder", *sweep, "--report", "{case}/r.html",
             files={"r.html": FOLDER}),
    ]  # fmt: skip


def _compress_cases() -> list[Case]:
    data = ("--data", "{assets}/text.txt")
    parent = "{assets}/gpt"
    importance = ("compress", "importance")
    train = ("compress", "supernet-train", parent, *data, "--tokens", "256", "--batch-size", "4",
             "--out", "{case}/s")  # fmt: skip
    search = ("compress", "search", parent, *data, "--method", "random", "--trials", "2",
              "--run-dir", "{case}/study")  # fmt: skip
    extract = ("compress", "extract", parent, "--front", "{assets}/front.json", "--out", "{case}/x")
    sub = json.dumps({"embed": 32, "layers": [0], "heads": [4], "mlp": [64]})
    prune = ("compress", "prune", parent, *data, "--recover-tokens", "0", "--out", "{case}/p")
    evaluate = ("compress", "eval")
    return [
        case("compress-importance-missing-model", *importance, "{case}/nothing", *data,
             "--out", "{case}/o"),
        case("compress-importance-random-bytes-model", *importance, "{case}/m", *data,
             "--out", "{case}/o", files={"m": random_weights("gpt")}),
        case("compress-importance-wrong-kind-model", *importance, "{assets}/pfn", *data,
             "--out", "{case}/o"),
        case("compress-importance-missing-data", *importance, parent, "--data",
             "{case}/missing.txt", "--out", "{case}/o"),
        case("compress-importance-empty-data", *importance, parent, "--data", "{case}/t.txt",
             "--out", "{case}/o", files={"t.txt": ""}),
        case("compress-importance-batches-0", *importance, parent, *data, "--batches", "0",
             "--out", "{case}/o"),
        case("compress-importance-out-is-a-folder", *importance, parent, *data,
             "--out", "{case}/o.safetensors", files={"o.safetensors": FOLDER}),
        case("compress-importance-out-parent-is-a-file", *importance, parent, *data,
             "--out", "{case}/blocker/o", files=BLOCKER, match="cannot write"),
        case("compress-supernet-train-tokens-0", *train, "--tokens", "0"),
        case("compress-supernet-train-lr-nan", *train, "--lr", "nan"),
        case("compress-supernet-train-batch-size-0", *train, "--batch-size", "0"),
        case("compress-supernet-train-random-samples-negative", *train,
             "--random-samples", "-1"),
        case("compress-search-trials-0", *search, "--trials", "0"),
        case("compress-search-calibration-blocks-0", *search, "--calibration-blocks", "0"),
        case("compress-search-storage-foreign-sqlite", *search, "--storage",
             "sqlite:///{case}/s.db", files={"s.db": foreign_sqlite}),
        case("compress-search-out-is-a-folder", *search, "--out", "{case}/r.json",
             files={"r.json": FOLDER}),
        case("compress-search-report-parent-is-a-file", *search, "--report",
             "{case}/blocker/r.html", files=BLOCKER),
        case("compress-report-missing-result", "compress", "report", "{case}/nothing.json",
             "--out", "{case}/r.html"),
        case("compress-report-truncated-result", "compress", "report", "{case}/r.json",
             "--out", "{case}/r.html", files={"r.json": '{"front": ['}),
        case("compress-report-foreign-json", "compress", "report", "{case}/r.json",
             "--out", "{case}/r.html", files={"r.json": '{"hello": 1}'}),
        case("compress-report-out-is-a-folder", "compress", "report", "{case}/r.json",
             "--out", "{case}/r.html", files={"r.json": '{"hello": 1}', "r.html": FOLDER}),
        case("compress-extract-params-fraction-0", *extract, "--params-fraction", "0"),
        case("compress-extract-params-fraction-nan", *extract, "--params-fraction", "nan"),
        case("compress-extract-params-negative", *extract, "--params", "-5"),
        case("compress-extract-sub-not-json", *extract, "--sub", "{embed"),
        case("compress-extract-truncated-front", *extract, "--front", "{case}/f.json",
             "--params-fraction", "0.5", files={"f.json": '{"front": ['}),
        case("compress-extract-out-is-a-folder", "compress", "extract", parent, "--sub", sub,
             "--out", "{case}/x.json", files={"x.json": FOLDER}),
        case("compress-extract-recover-tokens-negative", *extract, "--params-fraction", "0.5",
             "--recover-tokens", "-1"),
        case("compress-extract-recover-data-missing", "compress", "extract", parent, "--sub", sub,
             "--recover-tokens", "512", "--data", "{case}/missing.txt", "--out", "{case}/x"),
        case("compress-prune-params-fraction-0", *prune, "--params-fraction", "0"),
        case("compress-prune-params-fraction-over-1", *prune, "--params-fraction", "1.5"),
        case("compress-prune-params-fraction-nan", *prune, "--params-fraction", "nan"),
        case("compress-prune-recover-tokens-negative", *prune, "--params-fraction", "0.5",
             "--recover-tokens", "-1"),
        case("compress-prune-lr-nan", *prune, "--params-fraction", "0.5", "--recover-tokens",
             "256", "--lr", "nan"),
        case("compress-eval-blocks-0", *evaluate, parent, *data, "--blocks", "0"),
        case("compress-eval-truncated-json-model", *evaluate, "{case}/m", *data,
             files={"m": truncated_meta("gpt")}),
        case("compress-eval-missing-data", *evaluate, parent, "--data", "{case}/missing.txt"),
        case("compress-eval-path-is-called-a-path", *evaluate, "{case}/nothing.safetensors",
             *data, match="not found"),
    ]  # fmt: skip


def _finetune_cases() -> list[Case]:
    model = ("--model", "{assets}/ft-gpt")
    tuner = ("--tuner", "{assets}/tuner")
    suggest = ("finetune", "suggest")
    run = ("finetune", "run")
    run_args = ("--test", "{assets}/ft-test.csv", "--budget", "1", *tuner, *model)
    train_csv = "{assets}/ft-train.csv"
    build = ("finetune", "build-metadataset", "--tasks", "qa_arithmetic", *model, "--configs",
             "1", "--epochs", "1", "--n-train", "8", "--n-val", "4", "--n-test", "4")  # fmt: skip
    return [
        case("finetune-build-metadataset-configs-0", *build, "--storage", "{case}/run",
             "--configs", "0"),
        case("finetune-build-metadataset-unknown-task", *build, "--storage", "{case}/run",
             "--tasks", "{case}/nothing"),
        case("finetune-build-metadataset-storage-foreign-sqlite", *build, "--storage",
             "{case}/s.db", files={"s.db": foreign_sqlite}),
        case("finetune-build-metadataset-out-is-a-file", *build, "--storage", "{case}/run",
             "--out", "{case}/blocker", files=BLOCKER),
        case("finetune-build-metadataset-wrong-kind-model", *build, "--storage", "{case}/run",
             "--model", "{assets}/pfn"),
        case("finetune-export-missing-storage", "finetune", "export", "{case}/nothing.db",
             "--out", "{case}/md"),
        case("finetune-export-empty-file", "finetune", "export", "{case}/s.db",
             "--out", "{case}/md", files={"s.db": ""}),
        case("finetune-export-random-bytes", "finetune", "export", "{case}/s.db",
             "--out", "{case}/md", files={"s.db": RANDOM_BYTES}),
        case("finetune-export-foreign-sqlite", "finetune", "export", "{case}/s.db",
             "--out", "{case}/md", files={"s.db": foreign_sqlite}),
        case("finetune-meta-train-missing-folder", "finetune", "meta-train", "{case}/nothing",
             "--out", "{case}/tuner"),
        case("finetune-meta-train-empty-folder", "finetune", "meta-train", "{case}/md",
             "--out", "{case}/tuner", files={"md": FOLDER}),
        case("finetune-meta-train-truncated-tasks-json", "finetune", "meta-train", "{case}/md",
             "--out", "{case}/tuner", files={"md": folder_with("md", "tasks.json", '{"tas')}),
        case("finetune-meta-train-empty-curve-csv", "finetune", "meta-train", "{case}/md",
             "--out", "{case}/tuner", files={"md": folder_with("md", "curve.csv", "")}),
        case("finetune-meta-train-out-is-a-file", "finetune", "meta-train", "{assets}/md",
             "--out", "{case}/blocker", files=BLOCKER),
        case("finetune-suggest-missing-file", *suggest, "{case}/nothing.csv", *tuner, *model),
        case("finetune-suggest-empty-csv", *suggest, "{case}/t.csv", *tuner, *model,
             files={"t.csv": ""}),
        case("finetune-suggest-header-only", *suggest, "{case}/t.csv", *tuner, *model,
             files={"t.csv": "text,label\n"}),
        case("finetune-suggest-wrong-columns", *suggest, "{case}/t.csv", *tuner, *model,
             files={"t.csv": _texts("wrong-columns")}, match="text,label"),
        case("finetune-suggest-single-class", *suggest, "{case}/t.csv", *tuner, *model,
             files={"t.csv": _texts("single-class")}),
        case("finetune-suggest-top-0", *suggest, train_csv, *tuner, *model, "--top", "0"),
        case("finetune-suggest-missing-tuner", *suggest, train_csv, *model,
             "--tuner", "{case}/nothing"),
        case("finetune-suggest-truncated-tuner-json", *suggest, train_csv, *model,
             "--tuner", "{case}/t", files={"t": folder_with("tuner", "tuner.json", '{"cand')}),
        case("finetune-suggest-random-bytes-tuner-weights", *suggest, train_csv, *model,
             "--tuner", "{case}/t",
             files={"t": folder_with("tuner", "perf.safetensors", RANDOM_BYTES)}),
        case("finetune-suggest-wrong-kind-model", *suggest, train_csv, *tuner,
             "--model", "{assets}/pfn"),
        case("finetune-run-budget-nan", *run, train_csv, *run_args, "--budget", "nan"),
        case("finetune-run-max-train-0", *run, train_csv, *run_args, "--max-train", "0"),
        case("finetune-run-missing-test", *run, train_csv, *run_args, "--test",
             "{case}/nothing.csv"),
        case("finetune-run-test-with-other-columns", *run, train_csv, *run_args, "--test",
             "{case}/t.csv", files={"t.csv": "question,answer\na,b\n"}),
        case("finetune-run-empty-train", *run, "{case}/t.csv", *run_args, files={"t.csv": ""}),
        case("finetune-run-out-is-a-file", *run, train_csv, *run_args, "--out", "{case}/blocker",
             files=BLOCKER),
        case("finetune-run-report-is-a-folder", *run, train_csv, *run_args, "--report",
             "{case}/r.html", files={"r.html": FOLDER}),
        case("finetune-bench-missing-folder", "finetune", "bench", "{case}/nothing"),
        case("finetune-bench-seeds-0", "finetune", "bench", "{assets}/md", "--seeds", "0"),
        case("finetune-bench-report-is-a-folder", "finetune", "bench", "{assets}/md", "--seeds",
             "1", "--strategies", "default", "--report", "{case}/r.html",
             files={"r.html": FOLDER}),
    ]  # fmt: skip


FE_LLM = ("--llm", "{llm}", "--retries", "0", "--timeout", "5", "--cache", "{case}/cache")


def _fe_cases() -> list[Case]:
    suggest = ("fe", "suggest")
    audit = ("fe", "audit")
    audit_args = ("--calls", "1", "--memorisation-trials", "0", "--impact-splits", "0")
    return [
        case("fe-suggest-missing-file", *suggest, "{case}/nothing.csv", *FE_LLM),
        case("fe-suggest-empty-csv", *suggest, "{case}/t.csv", *FE_LLM, files={"t.csv": ""}),
        case("fe-suggest-header-only", *suggest, "{case}/t.csv", *FE_LLM,
             files={"t.csv": "a,b,c,label\n"}),
        case("fe-suggest-target-not-a-column", *suggest, TABLE, *FE_LLM, "--target", "nope",
             match="nope"),
        case("fe-suggest-one-column", *suggest, "{case}/t.csv", *FE_LLM,
             files={"t.csv": "label\n1\n0\n"}),
        case("fe-suggest-calls-0", *suggest, TABLE, *FE_LLM, "--calls", "0"),
        case("fe-suggest-n-features-0", *suggest, TABLE, *FE_LLM, "--n-features", "0"),
        case("fe-suggest-temperature-nan", *suggest, TABLE, *FE_LLM, "--temperature", "nan"),
        case("fe-suggest-unknown-strategy", *suggest, TABLE, *FE_LLM, "--strategy", "magic"),
        case("fe-suggest-llm-not-a-url", *suggest, TABLE, "--llm", "ftp://x", "--cache",
             "{case}/cache", match="ftp://x"),
        case("fe-suggest-missing-gguf", *suggest, TABLE, "--llm", "gguf:{case}/none.gguf",
             "--cache", "{case}/cache", match="none.gguf"),
        case("fe-suggest-unreachable-llm", *suggest, TABLE, "--llm", "http://127.0.0.1:9/v1",
             "--model", "m", "--retries", "0", "--timeout", "2", "--cache", "{case}/cache"),
        case("fe-suggest-out-is-a-folder", *suggest, TABLE, *FE_LLM, "--out", "{case}/t.csv",
             files={"t.csv": FOLDER}),
        case("fe-suggest-out-under-a-file", *suggest, TABLE, *FE_LLM, "--out",
             "{case}/blocker/t.csv", files=BLOCKER),
        case("fe-suggest-cache-is-a-file", *suggest, TABLE, "--llm", "{llm}", "--cache",
             "{case}/blocker", files=BLOCKER),
        case("fe-audit-missing-file", *audit, "{case}/nothing.csv", *FE_LLM, *audit_args),
        case("fe-audit-empty-folder", *audit, "{case}/tables", *FE_LLM, *audit_args,
             files={"tables": FOLDER}),
        case("fe-audit-target-not-a-column", *audit, TABLE, *FE_LLM, *audit_args, "--target",
             "nope"),
        case("fe-audit-openfe-features-0", *audit, TABLE, *FE_LLM, *audit_args,
             "--openfe-features", "0"),
        case("fe-audit-impact-splits-negative", *audit, TABLE, *FE_LLM, "--impact-splits", "-1"),
        case("fe-audit-report-is-a-folder", *audit, TABLE, *FE_LLM, *audit_args, "--report",
             "{case}/r.html", files={"r.html": FOLDER}),
        case("fe-audit-out-under-a-file", *audit, TABLE, *FE_LLM, *audit_args, "--out",
             "{case}/blocker/a.json", files=BLOCKER),
    ]  # fmt: skip


def _top_level_cases() -> list[Case]:
    return [
        case("tour-unknown-step", "tour", "--only", "nope", "--out", "{case}/tour"),
        case(
            "tour-out-is-a-file", "tour", "--only", "data", "--out", "{case}/blocker", files=BLOCKER
        ),
        case("doctor-unknown-flag", "doctor", "--nope"),
        case("unknown-command", "nope"),
    ]


CASES = [
    *_gam_cases(),
    *_forecast_cases(),
    *_ensemble_cases(),
    *_fair_cases(),
    *_icl_cases(),
    *_lm_cases(),
    *_compress_cases(),
    *_finetune_cases(),
    *_fe_cases(),
    *_top_level_cases(),
]


# ---- the valid inputs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Iterator[Path]:
    """Valid inputs for every command, made once; each case breaks one of them in its folder."""
    from autofm.compress.space import SubNetwork, count_parameters
    from autofm.core.checkpoint import save_model
    from autofm.ensemble.ftc import make_synthetic_ftc
    from autofm.ensemble.pool import save_pool
    from autofm.fairness.search import ManyFairHPO
    from autofm.fe.scripted_server import ScriptedChatServer
    from autofm.finetune.simulated import simulated_metadataset
    from autofm.finetune.tuning import meta_train
    from autofm.icl.pretrained import RECIPES, build_pfn
    from autofm.lm import GPT, GPTConfig, save_gpt

    folder = tmp_path_factory.mktemp("bad-input-assets")
    (folder / "table.csv").write_text(_table())
    (folder / "series.csv").write_text(_series())
    (folder / "fair.csv").write_text(_fair_table())
    (folder / "text.txt").write_text("def f(x):\n    return x + 1\n" * 200)
    texts = pd.read_csv(io.StringIO(_texts()))
    texts.iloc[:24].to_csv(folder / "ft-train.csv", index=False)
    texts.iloc[24:].to_csv(folder / "ft-test.csv", index=False)

    series = pd.read_csv(io.StringIO(_series()))
    ts = folder / "ts"
    ts.mkdir()
    position = series.groupby("unique_id").cumcount()
    series[position < 24].to_csv(ts / "train.csv", index=False)
    series[position >= 24].to_csv(ts / "test.csv", index=False)
    (ts / "meta.json").write_text(json.dumps({"freq": "MS", "season_length": 12, "horizon": 6}))

    config = GPTConfig(width=32, depth=2, head_size=8, block_size=16, parametrization="sp")
    save_gpt(folder / "gpt", GPT(config, seed=0), {"note": "untrained"})
    ft_config = GPTConfig(width=32, depth=1, head_size=16, block_size=96, parametrization="sp")
    save_gpt(folder / "ft-gpt", GPT(ft_config, seed=0), {"note": "untrained"})
    save_model(folder / "pfn", build_pfn(RECIPES["counting"]), training={"prior": "counting"})
    full = SubNetwork.full(config)
    point = {
        "sub_network": full.to_dict(),
        "params": count_parameters(config, full),
        "objective": 0,
    }
    (folder / "front.json").write_text(json.dumps({"front": [point]}))

    save_pool(make_synthetic_ftc(n_val=30, n_test=30, n_models=4, random_state=0), folder / "pool")
    metadataset = simulated_metadataset(n_tasks=3, n_configs=4, max_epochs=2, seed=0)
    metadataset.save(folder / "md")
    meta_train(metadataset, seed=0).save(folder / "tuner")

    frame = pd.read_csv(folder / "fair.csv")
    ManyFairHPO(model="logreg", bi_objective_trials=0, workdir=folder / "study").run(
        frame.drop(columns=["label"]), frame["label"], "race", n_trials=2, privileged="W"
    )
    # an OpenAI-compatible server answering every feature request with two valid features
    reply = json.dumps(
        {
            "features": [
                {"name": "ab", "operator": "+", "inputs": ["a", "b"]},
                {"name": "fa", "operator": "freq", "inputs": ["c"]},
            ]
        }
    )
    with ScriptedChatServer(lambda request: reply) as server:
        (folder / "llm-url").write_text(server.url)
        yield folder


# ---- the check -----------------------------------------------------------------------------------


def _fill(text: str, folder: Path, assets: Path) -> str:
    text = text.replace("{case}", str(folder)).replace("{assets}", str(assets))
    if "{llm}" in text:  # the scripted chat server the assets fixture started
        text = text.replace("{llm}", (assets / "llm-url").read_text())
    return text


def _make(path: Path, content, assets: Path) -> None:
    if content == FOLDER:
        path.mkdir()
    elif callable(content):
        content(path, assets)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def _snapshot(folder: Path, contents: bool = True) -> dict[str, tuple]:
    """Every file and folder under `folder`: kind, size, mtime, and (contents) sha256."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            info = path.stat()
            digest = None
            if contents and path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            kind = "dir" if path.is_dir() else "file"
            state[str(path.relative_to(folder))] = (kind, info.st_size, info.st_mtime_ns, digest)
    return state


# a bad input is refused before any work: a case still running after this long has started it
# (generous, so that a loaded CI machine does not trip it; refusals take well under a second)
DEADLINE_SECONDS = 60


class _StillWorking(BaseException):  # not an Exception: the CLI must not turn it into exit 1
    pass


def _still_working(signum, frame):
    raise _StillWorking(f"still working after {DEADLINE_SECONDS} s: the input was not refused")


def _run(argv: list[str], deadline: float | None = DEADLINE_SECONDS) -> int:
    previous = signal.signal(signal.SIGALRM, _still_working)
    signal.setitimer(signal.ITIMER_REAL, deadline or 0)
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's errors exit from inside parse_args
        return exit_.code
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(c, id=c.id, marks=pytest.mark.xfail(reason=c.xfail, strict=True))
        if c.xfail
        else pytest.param(c, id=c.id)
        for c in CASES
    ],
)
def test_bad_input_exits_2_in_one_line_and_touches_nothing(
    bad: Case, assets: Path, tmp_path: Path, monkeypatch, capsys
):
    folder = tmp_path / "case"
    folder.mkdir()
    for name, content in bad.files.items():
        _make(folder / name, content, assets)
    argv = [_fill(arg, folder, assets) for arg in bad.argv]
    monkeypatch.chdir(folder)
    before, assets_before = _snapshot(folder), _snapshot(assets, contents=False)
    capsys.readouterr()

    code = _run(argv)

    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == 2, f"exit {code}: {err}"
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("autofm: error:"), err
    # plain values, and never advice to load a file unsafely
    assert not re.search(r"np\.\w+\(|Timestamp\(|allow_pickle", err), err
    if bad.match:
        assert _fill(bad.match, folder, assets) in lines[0]
    assert _snapshot(folder) == before, "a file was created or changed"
    assert _snapshot(assets, contents=False) == assets_before, "a valid input was changed"


# the valid arguments the cases break, for the commands that run in about a second: each must
# succeed, so that a case fails for its broken input and not for a mistake in the rest
# fmt: off
VALID = {
    "gam-fit": ("gam", "fit", TABLE, "--target", "label"),
    "gam-train": ("gam", "train", "--steps", "1", "--device", "cpu", "--threads", "1",
                  "--run-dir", "{case}/run"),
    "forecast-predict": ("forecast", "predict", "{assets}/series.csv", "--h", "4"),
    "forecast-evaluate": ("forecast", "evaluate", "{assets}/ts"),
    "forecast-train": ("forecast", "train", "--steps", "1", "--threads", "1", "--run-dir",
                       "{case}/run"),
    "ensemble-build-pool": ("ensemble", "build-pool", TABLE, "--target", "label", "--grid",
                            "small", "--out", "{case}/pool"),
    "ensemble-synth": ("ensemble", "synth", "--models", "3", "--val", "20", "--test", "20",
                       "--out", "{case}/pool"),
    "ensemble-fit": ("ensemble", "fit", "{assets}/pool", "--method", "greedy"),
    "ensemble-compare": ("ensemble", "compare", "{assets}/pool", "--methods", "single-best"),
    "fair-run": ("fair", "run", "{assets}/fair.csv", "--label", "label", "--protected", "race",
                 "--privileged", "W", "--model", "logreg", "--trials", "2", "--bi-trials", "0",
                 "--out", "{case}/run"),
    "fair-select": ("fair", "select", "{assets}/study", "--weights", "f1=1"),
    "icl-compare": ("icl", "compare", "--prior", "gp", "--n-tasks", "1"),
    "icl-train": ("icl", "train", "--prior", "counting", "--steps", "1", "--max-seconds", "1",
                  "--run-dir", "{case}/run"),
    "lm-train": ("lm", "train", *LM_MODEL, "--tokens", "256", "--batch-size", "4", "--out",
                 "{case}/m"),
    "lm-coord-check": ("lm", "coord-check", "--widths", "32", "64", "--steps", "1", "--seeds",
                       "1", "--batch-size", "2"),
    "lm-grow": ("lm", "grow", "{assets}/gpt", "--width", "64", "--out", "{case}/g"),
    "lm-sweep": ("lm", "sweep", *LM_MODEL, "--widths", "16", "32", "--head-size", "8", "--lrs",
                 "1e-3", "1e-2", "--params", "mup", "--tokens", "256", "--batch-size", "4"),
    "compress-importance": ("compress", "importance", "{assets}/gpt", "--data",
                            "{assets}/text.txt", "--out", "{case}/o"),
    "compress-supernet-train": ("compress", "supernet-train", "{assets}/gpt", "--data",
                                "{assets}/text.txt", "--tokens", "256", "--batch-size", "4",
                                "--out", "{case}/s"),
    "compress-search": ("compress", "search", "{assets}/gpt", "--data", "{assets}/text.txt",
                        "--method", "random", "--trials", "2", "--run-dir", "{case}/study"),
    "compress-extract": ("compress", "extract", "{assets}/gpt", "--front", "{assets}/front.json",
                         "--params-fraction", "1", "--out", "{case}/x"),
    "compress-prune": ("compress", "prune", "{assets}/gpt", "--data", "{assets}/text.txt",
                       "--recover-tokens", "0", "--params-fraction", "0.5", "--out", "{case}/p"),
    "compress-eval": ("compress", "eval", "{assets}/gpt", "--data", "{assets}/text.txt",
                      "--blocks", "2"),
    "finetune-meta-train": ("finetune", "meta-train", "{assets}/md", "--out", "{case}/tuner"),
    "finetune-suggest": ("finetune", "suggest", "{assets}/ft-train.csv", "--tuner",
                         "{assets}/tuner", "--model", "{assets}/ft-gpt"),
    "finetune-run": ("finetune", "run", "{assets}/ft-train.csv", "--test",
                     "{assets}/ft-test.csv", "--budget", "1", "--tuner", "{assets}/tuner",
                     "--model", "{assets}/ft-gpt"),
    "finetune-bench": ("finetune", "bench", "{assets}/md", "--seeds", "1", "--strategies",
                       "default"),
    "fe-suggest": ("fe", "suggest", TABLE, *FE_LLM, "--out", "{case}/t.csv"),
    "fe-audit": ("fe", "audit", TABLE, *FE_LLM, "--calls", "1", "--memorisation-trials", "1",
                 "--impact-splits", "2", "--openfe-features", "3", "--report", "{case}/a.html"),
}
# fmt: on


@pytest.mark.parametrize("command", list(VALID))
def test_the_valid_arguments_work(command: str, assets: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = _run([_fill(arg, tmp_path, assets) for arg in VALID[command]], deadline=None)
    assert code == 0, capsys.readouterr().err


def test_the_table_covers_every_command():
    from autofm.cli import build_parser

    parser = build_parser()
    groups = parser._subparsers._group_actions[0].choices
    commands = set()
    for name, group in groups.items():
        sub = group._subparsers
        if sub is None:
            commands.add(name)
            continue
        commands.update(f"{name}-{command}" for command in sub._group_actions[0].choices)
    covered = {c for c in commands if any(case.id.startswith(f"{c}-") for case in CASES)}
    assert commands - covered == set()
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


# ---- the mechanisms the table relies on ---------------------------------------------------------


@pytest.mark.parametrize(
    "kind, existing, target, message",
    [
        ("file", {"x": FOLDER}, "x", "it is a folder"),
        ("folder", {"x": "text"}, "x", "it is a file, not a folder"),
        ("checkpoint", {"x.safetensors": FOLDER}, "x", "x.safetensors is a folder"),
        ("file", {"x": "text"}, "x/deeper/r.html", "x is a file, not a folder"),
    ],
)
def test_an_output_that_cannot_be_written_is_named_and_nothing_is_created(
    kind: str, existing: dict, target: str, message: str, tmp_path: Path
):
    from autofm.core.errors import ValidationError
    from autofm.core.io import check_writable

    for name, content in existing.items():
        _make(tmp_path / name, content, tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ValidationError, match=message):
        check_writable(tmp_path / target, "output", kind)
    # a new path in new folders is fine: the folders are made when the output is written
    assert check_writable(tmp_path / "new" / "deeper" / "m", "output", kind)
    assert _snapshot(tmp_path) == before


def test_number_flags_refuse_nan_and_out_of_range_values():
    import argparse

    from autofm.core.cli import NON_NEGATIVE_FLOAT, POSITIVE_INT

    assert POSITIVE_INT("3") == 3 and NON_NEGATIVE_FLOAT("0") == 0.0
    for parse, text in ((POSITIVE_INT, "0"), (POSITIVE_INT, "1.5"), (NON_NEGATIVE_FLOAT, "nan"),
                        (NON_NEGATIVE_FLOAT, "-1"), (NON_NEGATIVE_FLOAT, "inf")):  # fmt: skip
        with pytest.raises(argparse.ArgumentTypeError, match=f"got '{text}'"):
            parse(text)
