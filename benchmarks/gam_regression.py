"""GAMformer's regressor against EBM and ridge on small regression tasks (issue #19).

    python -m benchmarks.gam_regression [--splits 3] [--tasks ...] [--summary-only]

Tasks: scikit-learn's bundled diabetes set, and, for each development table of
`benchmarks.gam` (`TABLES`, loaded by its `load`), its numeric columns with at least 20
distinct values (at most 2 per table: those with the most distinct values, ties by column
order), each predicted from all the other feature columns (the table's binary target is
dropped). That gives 15 tasks: diabetes; breast_cancer_sklearn (smoothness error, fractal
dimension error); heart (att_5, att_8); haberman (age, positive nodes; 2 features each);
credit_g (credit_amount, age); compas_two_year_clean (c_jail_time, age); fico
(MSinceOldestTradeOpen, AverageMInFile); enhancer (51, 78). breast_cancer has no such column.
Splits: ShuffleSplit(n_splits=3, test_size=0.25, random_state=1337); regime "≤500": the
training split subsampled to 500 rows (seed = split index) when larger; the test split is whole.
Models: GAMformerRegressor (defaults, shipped checkpoint), interpret's
ExplainableBoostingRegressor (interactions=0, max_bins=64, n_jobs=1, random_state=split), and
ridge (median imputation fitted on the training rows, StandardScaler, RidgeCV over
alphas 10^-3..10^3, 13 values). Nothing else is standardised.
Metrics per task and split: test R², test RMSE / std of the test target (ddof=0, so it equals
sqrt(1 - R²); recorded so that tasks in different units read alike), and process CPU seconds of
fit + predict on one thread (wall seconds are recorded too; the machine is shared).
Every (task, split, model) result is cached in the git-ignored
runs/benchmarks/gam.regression.runs.jsonl with the date and machine that measured it, so an
interrupted run resumes; GAMformer rows are keyed by the checkpoint's sha256 prefix.
Results: benchmarks/results/gam.regression.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd
import torch
from sklearn.impute import SimpleImputer
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import ShuffleSplit, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from autofm.data.tables import load_sklearn
from autofm.gam.estimators import DEFAULT_CHECKPOINT, GAMformerRegressor
from benchmarks.common import (
    CACHE_DIR,
    append_run,
    environment,
    markdown_table,
    mean_std,
    read_runs,
    save_results,
    timed_fit_predict,
)
from benchmarks.gam import SPLIT_SEED, TABLES, checkpoint_tag, load

MODELS = ("gamformer", "ebm", "ridge")
RUNS_PATH = CACHE_DIR / "gam.regression.runs.jsonl"
REGIME = "≤500"
MAX_TRAIN_ROWS = 500
MIN_DISTINCT = 20
TARGETS_PER_TABLE = 2
WITHIN_EBM = 0.02


def target_columns(X: pd.DataFrame) -> list[str]:
    """The numeric columns with ≥ MIN_DISTINCT distinct values, most distinct first (ties by
    column order), at most TARGETS_PER_TABLE of them."""
    counts = X.select_dtypes("number").nunique()
    counts = counts[counts >= MIN_DISTINCT]
    order = sorted(range(len(counts)), key=lambda i: -counts.iloc[i])  # stable: ties by order
    return [str(counts.index[i]) for i in order[:TARGETS_PER_TABLE]]


def regression_tasks() -> list[str]:
    """Task names: "diabetes", then "<table>:<column>" for each development table's targets."""
    tasks = ["diabetes"]
    for table in TABLES:
        X, _ = load(table)
        tasks += [f"{table}:{column}" for column in target_columns(X)]
    return tasks


def load_task(task: str) -> tuple[pd.DataFrame, np.ndarray]:
    if task == "diabetes":
        X, y = load_sklearn("diabetes")
        return X, y.to_numpy(dtype=float)
    table, column = task.split(":", 1)
    X, _ = load(table)  # the table's own (binary) target is dropped
    return X.drop(columns=[column]), X[column].to_numpy(dtype=float)


def make_model(name: str, seed: int, checkpoint: str):
    if name == "gamformer":
        return GAMformerRegressor(checkpoint=checkpoint)
    if name == "ebm":
        from interpret.glassbox import ExplainableBoostingRegressor

        return ExplainableBoostingRegressor(
            interactions=0, max_bins=64, n_jobs=1, random_state=seed
        )
    return make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))
    )


def run_one(model_name, X_train, y_train, X_test, y_test, seed, checkpoint) -> dict:
    model = make_model(model_name, seed, checkpoint)
    predicted, seconds = timed_fit_predict(model, X_train, y_train, X_test)
    rmse = float(np.sqrt(mean_squared_error(y_test, predicted)))
    return {
        "r2": float(r2_score(y_test, predicted)),
        "nrmse": rmse / float(np.std(y_test)),
        **seconds,
    }


def task_benchmark(tasks: list[str], models: list[str], splits: int, checkpoint: str) -> None:
    """Measure every (task, split, model) not yet in the cache and append it there."""
    tag = checkpoint_tag(checkpoint)
    runs = read_runs(RUNS_PATH)
    if runs:
        when = sorted({r["measured"]["date"][:10] for r in runs})
        where = sorted({r["measured"]["host"] for r in runs})
        print(
            f"reusing {len(runs)} cached rows from {RUNS_PATH} (measured {', '.join(when)} on "
            f"{', '.join(where)}); delete the file to re-measure them",
            file=sys.stderr,
        )
    done = {(r["task"], r["split"], r["model"], r["tag"]) for r in runs}
    measured = environment()
    splitter = ShuffleSplit(n_splits=splits, test_size=0.25, random_state=SPLIT_SEED)
    for task in tasks:
        X, y = load_task(task)
        for split, (train_index, test_index) in enumerate(splitter.split(X)):
            X_train, y_train = X.iloc[train_index], y[train_index]
            if len(train_index) > MAX_TRAIN_ROWS:
                X_train, _, y_train, _ = train_test_split(
                    X_train, y_train, train_size=MAX_TRAIN_ROWS, random_state=split
                )
            X_test, y_test = X.iloc[test_index], y[test_index]
            for model_name in models:
                model_tag = tag if model_name == "gamformer" else None
                if (task, split, model_name, model_tag) in done:
                    continue
                try:
                    result = run_one(
                        model_name, X_train, y_train, X_test, y_test, split, checkpoint
                    )
                except (RuntimeError, ValueError) as err:  # recorded, reported as a failure
                    result = {"r2": float("nan"), "nrmse": float("nan"), "error": str(err)[:200]}
                    result.update(fit_cpu=float("nan"), predict_cpu=float("nan"))
                record = {
                    "task": task,
                    "split": split,
                    "regime": REGIME,
                    "model": model_name,
                    "tag": model_tag,
                    "n_train": len(y_train),
                    "n_test": len(y_test),
                    "n_features": X.shape[1],
                    **result,
                    "measured": {k: measured[k] for k in ("date", "host", "machine")},
                }
                append_run(RUNS_PATH, record)
                done.add((task, split, model_name, model_tag))
                seconds = result["fit_cpu"] + result["predict_cpu"]
                print(
                    f"{task:<48} split {split} {model_name:<10} "
                    f"R² {result['r2']:7.4f} cpu {seconds:6.2f}s",
                    flush=True,
                )


def summarise(runs: list[dict], tasks: list[str], splits: int, tag: str) -> dict:
    """Per-task rows (mean ± std over splits) and the summary over tasks every model finished."""
    frame = pd.DataFrame(runs)
    frame = frame[frame["task"].isin(tasks) & (frame["split"] < splits)]
    frame = frame[(frame["model"] != "gamformer") | (frame["tag"] == tag)].copy()
    frame["seconds"] = frame["fit_cpu"] + frame["predict_cpu"]
    rows, means = [], {}
    for task in tasks:
        task_frame = frame[frame["task"] == task]
        if task_frame.empty:
            continue
        first = task_frame.iloc[0]
        row = {
            "task": task,
            "n_train": int(first["n_train"]),
            "n_test": int(first["n_test"]),
            "features": int(first["n_features"]),
        }
        complete = True
        for model in MODELS:
            group = task_frame[task_frame["model"] == model]
            r2_mean, r2_std = mean_std(group["r2"])
            row[f"{model}_r2"] = f"{r2_mean:.3f} ± {r2_std:.3f}"
            failed = int(group["r2"].isna().sum())
            if failed:
                row[f"{model}_r2"] += f" ({failed} failed)"
            complete &= len(group) == splits and failed == 0
            means[(task, model)] = (r2_mean, float(group["seconds"].mean()))
        rows.append(row)
        row["complete"] = complete
    complete_tasks = [row["task"] for row in rows if row.pop("complete")]
    r2 = {m: [means[(t, m)][0] for t in complete_tasks] for m in MODELS}
    seconds = {m: [means[(t, m)][1] for t in complete_tasks] for m in MODELS}
    summary = {
        "tasks": len(complete_tasks),
        **{f"{m}_mean_r2": float(np.mean(r2[m])) for m in MODELS},
        **{f"{m}_mean_cpu_s": float(np.mean(seconds[m])) for m in MODELS},
        "gamformer_within_0.02_of_ebm": int(
            sum(g >= e - WITHIN_EBM for g, e in zip(r2["gamformer"], r2["ebm"], strict=True))
        ),
        "gamformer_beats_ridge": int(
            sum(g > r for g, r in zip(r2["gamformer"], r2["ridge"], strict=True))
        ),
    }
    nrmse = frame.groupby(["task", "model"])["nrmse"].mean().unstack().reindex(columns=MODELS)
    return {
        "per_task": rows,
        "summary": summary,
        "complete_tasks": complete_tasks,
        "mean_nrmse_per_task": nrmse.to_dict(orient="index"),
    }


def render(result: dict, splits: int) -> str:
    summary = result["summary"]
    lines = [
        "## GAMformerRegressor vs EBM and ridge (test R²; regime ≤500 training rows)\n\n",
        f"### summary: mean over {summary['tasks']} tasks ({splits} splits each); "
        "CPU seconds of fit + predict, one thread\n\n",
        markdown_table([summary]),
        "\n### per task (R², mean ± std over splits)\n\n",
        markdown_table(result["per_task"]),
    ]
    return "".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--tasks", nargs="+", default=None, help="default: all (see docstring)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    parser.add_argument(
        "--summary-only", action="store_true", help="summarise the cached runs, run nothing new"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("AUTOFM_THREADS", "1")))
    tasks = args.tasks or regression_tasks()
    if not args.summary_only:
        task_benchmark(tasks, args.models, args.splits, args.checkpoint)
    tag = checkpoint_tag(args.checkpoint)
    result = summarise(read_runs(RUNS_PATH), tasks, args.splits, tag)
    save_results(
        "gam.regression",
        {
            "checkpoint": args.checkpoint,
            "checkpoint_sha256_prefix": tag,
            "splits": args.splits,
            "regime": REGIME,
            "split_seed": SPLIT_SEED,
            **result,
        },
        render(result, args.splits),
        seeds=[SPLIT_SEED, *range(args.splits)],
    )


if __name__ == "__main__":
    main()
