"""GAMformer against live GAM anchors on real binary tables, and shape-function recovery.

    python -m benchmarks.gam [--splits 3] [--regimes 500 full] [--models ...] [--recovery-tasks 20]
    python -m benchmarks.gam --validate CHECKPOINT [CHECKPOINT ...]   # synthetic validation only

Tables: ../shared/data/tabular (7) plus scikit-learn's breast cancer. Splits:
StratifiedShuffleSplit(test_size=0.25, random_state=1337); regime "500" draws at most 500
training rows (stratified, seed = split index), "full" uses the whole training split.
`--validate` compares checkpoints on a fixed synthetic validation set instead (no real table is
touched): held-out cross-entropy of classification tasks drawn with seed 2026 from (a) the CPU
preset's prior with real-table features (binary/one-hot, irrelevant, up to 60 features; 300
context rows) and (b) the earlier prior without them (≤10 features).
Anchors (live): interpret's EBM (interactions=0, max_bins=64), pyGAM LogisticGAM, logistic
regression. Seconds are process CPU seconds of fit + predict on one thread (the machine is shared,
so wall-clock times are noisy; both are recorded). Every (table, split, regime, model) result is
cached in the git-ignored runs/benchmarks/gam.runs.jsonl with the date and machine that measured
it, so an interrupted run resumes (and says how many cached rows it reuses, from when and where);
GAMformer results are keyed by the checkpoint's sha256, so a new checkpoint is re-measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from autofm.core.checkpoint import checkpoint_stem, read_checkpoint_meta
from autofm.data.tables import load_sklearn, read_table, split_target
from autofm.gam.estimators import DEFAULT_CHECKPOINT, GAMformerClassifier, load_gamformer
from autofm.gam.metrics import per_feature_recovery, recovery_score
from autofm.gam.priors import sample_additive_task
from autofm.gam.training import gam_loss, get_preset
from benchmarks.common import (
    CACHE_DIR,
    RESULTS_DIR,
    append_run,
    environment,
    markdown_table,
    mean_std,
    require_data,
    save_results,
    timed_fit_predict,
)
from benchmarks.common import (
    read_runs as read_run_records,
)

TABLES = (
    "breast_cancer_sklearn",
    "heart",
    "haberman",
    "breast_cancer",
    "credit_g",
    "compas_two_year_clean",
    "fico",
    "enhancer",
)
MODELS = ("gamformer", "ebm", "pygam", "logistic_regression")
# ablation of the many-rows handling: one pass over all training rows, full regime, split 0 only
SINGLE_PASS = "gamformer_single_pass"
# ablation of the cross-fitted shrinkage (the estimator's default): the plain forward pass
NO_SHRINKAGE = "gamformer_no_shrinkage"
RUNS_PATH = CACHE_DIR / "gam.runs.jsonl"
SPLIT_SEED = 1337
VALIDATION_SEED = 2026


def validation_priors() -> dict:
    """The two synthetic validation priors (classification only; see the module docstring)."""
    new = dataclasses.replace(
        get_preset("cpu").prior, regression_fraction=0.0, wide_token_budget=300 * 60
    )
    old = dataclasses.replace(
        new, wide_fraction=0.0, encoded_probability=0.0, irrelevant_probability=0.0
    )
    return {"real_like_prior": new, "earlier_prior": old}


@torch.no_grad()
def synthetic_validation(checkpoints: list[str], n_batches: int = 40) -> dict:
    """Mean held-out cross-entropy of each checkpoint on the fixed synthetic validation set."""
    results = {}
    for name, prior in validation_priors().items():
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        batches = [prior.sample(8, 300, 100, 10, generator) for _ in range(n_batches)]
        for checkpoint in checkpoints:
            model = load_gamformer(checkpoint)
            losses = [float(gam_loss(model, batch)) for batch in batches]
            results.setdefault(checkpoint, {})[name] = float(np.mean(losses))
    return results


def load(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    if name == "breast_cancer_sklearn":
        X, y = load_sklearn("breast_cancer")
        return X, y.to_numpy()
    X, y = split_target(read_table(require_data("tabular") / f"{name}.csv"), None)
    return X, y.to_numpy()


def benchmark_split(y: np.ndarray, split: int, splits: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices of split `split` of a table with raw labels `y`: the one split
    every GAM benchmark uses (StratifiedShuffleSplit, test 25%, SPLIT_SEED). Split on the labels
    as loaded — relabelling first (e.g. minority = 1) reorders the classes and moves rows
    between train and test."""
    splitter = StratifiedShuffleSplit(n_splits=splits, test_size=0.25, random_state=SPLIT_SEED)
    return list(splitter.split(np.zeros((len(y), 1)), y))[split]


def make_model(name: str, seed: int, checkpoint: str):
    if name == "gamformer":
        return GAMformerClassifier(checkpoint=checkpoint, random_state=seed)
    if name == NO_SHRINKAGE:
        return GAMformerClassifier(checkpoint=checkpoint, random_state=seed, shrinkage="none")
    if name == SINGLE_PASS:
        return GAMformerClassifier(checkpoint=checkpoint, max_context_rows=10**9, shrinkage="none")
    if name == "ebm":
        from interpret.glassbox import ExplainableBoostingClassifier

        return ExplainableBoostingClassifier(
            interactions=0, max_bins=64, n_jobs=1, random_state=seed
        )
    if name == "pygam":
        return _PyGAM()
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


class _PyGAM:
    """pyGAM's LogisticGAM (10 splines per numeric column, linear terms for binary columns)."""

    def fit(self, X, y):
        from pygam import LogisticGAM, l, s

        X = np.asarray(X, float)
        terms = None
        for j in range(X.shape[1]):
            term = s(j, n_splines=10) if len(np.unique(X[:, j])) > 10 else l(j)
            terms = term if terms is None else terms + term
        for lam in (0.6, 10.0, 100.0):  # pyGAM's default first; PIRLS can diverge on
            try:  # (nearly) separable data, where more smoothing helps
                self.model = LogisticGAM(terms, lam=lam, max_iter=100).fit(X, y)
                return self
            except Exception as err:  # pygam raises OptimizationError or numerical errors
                error = err
        raise RuntimeError(f"pyGAM failed for every lam: {error}")

    def predict_proba(self, X):
        positive = self.model.predict_proba(np.asarray(X, float))
        return np.stack([1 - positive, positive], axis=1)


SPEED_SEED = 19


def speed_table(n_rows: int, n_features: int = 60, seed: int = SPEED_SEED):
    """A synthetic table like the real ones: a fifth continuous columns, the rest binary
    indicators (prevalence 2–50%), and a binary target with about 10% positives."""
    rng = np.random.default_rng(seed)
    n_continuous = max(1, n_features // 5)
    X = np.empty((n_rows, n_features))
    X[:, :n_continuous] = rng.normal(size=(n_rows, n_continuous))
    prevalence = rng.uniform(0.02, 0.5, n_features - n_continuous)
    X[:, n_continuous:] = rng.random((n_rows, n_features - n_continuous)) < prevalence
    logit = -3.0 + X[:, 0] - 0.5 * X[:, 1 % n_features] ** 2
    logit += 1.5 * X[:, n_continuous % n_features] + X[:, (n_continuous + 1) % n_features]
    y = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return X, y


def _median_fit_predict_seconds(make, X, y, X_test, repeats: int) -> tuple[float, float]:
    """Median (CPU, wall) seconds of `make().fit(X, y).predict_proba(X_test)` over `repeats`."""
    cpu, wall = [], []
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            make().fit(X, y).predict_proba(X_test)
            cpu.append(time.process_time() - started_cpu)
            wall.append(time.perf_counter() - started_wall)
    return float(np.median(cpu)), float(np.median(wall))


def speed_rows(
    sizes: tuple[int, ...] = (500, 10_000),
    n_features: int = 60,
    threads: tuple[int, ...] = (1,),
    repeats: int = 3,
    n_test: int = 2_000,
    seed: int = SPEED_SEED,
    checkpoint: str = DEFAULT_CHECKPOINT,
) -> list[dict]:
    """Fit + predict seconds of GAMformer (defaults) beside EBM (interactions=0, max_bins=64) on
    `speed_table` data: one row per (size, torch threads) with CPU and wall seconds of both.

    Medians of `repeats` runs after one warm-up fit of each on a small table (the checkpoint
    load and EBM's library load are not timed). EBM runs with n_jobs=1: it parallelises over
    processes, whose CPU time the process clock would miss; `threads` sets torch's threads for
    GAMformer only. ratio = EBM CPU s / ours (above 1: we are faster); wall_ratio the same in
    wall seconds. Seeds: the table (`seed`), the estimators (random_state=0).
    """
    from interpret.glassbox import ExplainableBoostingClassifier

    def gamformer():
        return GAMformerClassifier(checkpoint=checkpoint, random_state=0)

    def ebm():
        return ExplainableBoostingClassifier(interactions=0, max_bins=64, n_jobs=1, random_state=0)

    X_warm, y_warm = speed_table(200, n_features, seed + 1)
    rows = []
    threads_before = torch.get_num_threads()
    try:
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            for make in (gamformer, ebm):  # warm-up
                _median_fit_predict_seconds(make, X_warm, y_warm, X_warm, 1)
            for n_rows in sizes:
                X, y = speed_table(n_rows + n_test, n_features, seed)
                train = (X[:n_rows], y[:n_rows], X[n_rows:])
                ours_cpu, ours_wall = _median_fit_predict_seconds(gamformer, *train, repeats)
                ebm_cpu, ebm_wall = _median_fit_predict_seconds(ebm, *train, repeats)
                rows.append(
                    {
                        "rows": n_rows,
                        "features": n_features,
                        "threads": n_threads,
                        "positives": float(y[:n_rows].mean()),
                        "ours_cpu_s": ours_cpu,
                        "ours_wall_s": ours_wall,
                        "ebm_cpu_s": ebm_cpu,
                        "ebm_wall_s": ebm_wall,
                        "ratio": ebm_cpu / ours_cpu,
                        "wall_ratio": ebm_wall / ours_wall,
                        # issue #19: ≥ 5× EBM at ≤ 500 rows, ≥ 2× on full training sets
                        "target_ratio": 5.0 if n_rows <= 500 else 2.0,
                        "repeats": repeats,
                        "seed": seed,
                    }
                )
    finally:
        torch.set_num_threads(threads_before)
    return rows


def checkpoint_tag(checkpoint: str) -> str:
    return read_checkpoint_meta(checkpoint_stem(checkpoint))["sha256"][:12]


def read_runs() -> list[dict]:
    runs = read_run_records(RUNS_PATH)
    for run in runs:  # records from before the shrinkage option used the plain forward pass
        if run["model"] == "gamformer" and "shrinkage" not in run:
            run["model"] = NO_SHRINKAGE
    return runs


def run_one(model_name, X_train, y_train, X_test, y_test, seed, checkpoint) -> dict:
    model = make_model(model_name, seed, checkpoint)
    probabilities, seconds = timed_fit_predict(model, X_train, y_train, X_test, "predict_proba")
    return {"roc_auc": float(roc_auc_score(y_test, probabilities[:, 1])), **seconds}


def table_benchmark(args, checkpoint: str) -> list[dict]:
    tag = checkpoint_tag(checkpoint) if "gamformer" in args.models else None
    extra = [NO_SHRINKAGE, SINGLE_PASS] if "gamformer" in args.models else []
    models = list(args.models) + extra
    runs = read_runs()
    if runs:
        when = sorted({r.get("measured", {}).get("date", "?")[:10] for r in runs})
        where = sorted({r.get("measured", {}).get("host", "?") for r in runs})
        print(
            f"reusing {len(runs)} cached rows from {RUNS_PATH} (measured {', '.join(when)} on "
            f"{', '.join(where)}); delete the file to re-measure them",
            file=sys.stderr,
        )
    done = {(r["table"], r["split"], r["regime"], r["model"], r.get("tag")) for r in runs}
    measured = environment()
    for regime in args.regimes:
        for table in args.tables:
            X, y = load(table)
            n_splits = args.splits if regime == "500" else min(args.splits, args.full_splits)
            for split in range(n_splits):
                train_index, test_index = benchmark_split(y, split, args.splits)
                X_train, y_train = X.iloc[train_index], y[train_index]
                if regime == "500" and len(train_index) > 500:
                    X_train, _, y_train, _ = train_test_split(
                        X_train, y_train, train_size=500, stratify=y_train, random_state=split
                    )
                X_test, y_test = X.iloc[test_index], y[test_index]
                for model_name in models:
                    if model_name == SINGLE_PASS and (regime != "full" or split > 0):
                        continue
                    model_tag = tag if model_name.startswith("gamformer") else None
                    if (table, split, regime, model_name, model_tag) in done:
                        continue
                    same_as_500 = (table, split, "500", model_name, model_tag) in done
                    if regime == "full" and len(train_index) <= 500 and same_as_500:
                        # the full training split is the ≤500-row one: reuse that result
                        record = next(
                            r
                            for r in read_runs()
                            if (r["table"], r["split"], r["regime"], r["model"], r.get("tag"))
                            == (table, split, "500", model_name, model_tag)
                        )
                        append_run(RUNS_PATH, {**record, "regime": "full"})
                        continue
                    try:
                        result = run_one(
                            model_name, X_train, y_train, X_test, y_test, split, checkpoint
                        )
                    except RuntimeError as err:  # recorded, reported as a failure
                        result = {"roc_auc": float("nan"), "error": str(err)[:200]}
                        result.update(fit_cpu=float("nan"), predict_cpu=float("nan"))
                    record = {
                        "table": table,
                        "split": split,
                        "regime": regime,
                        "model": model_name,
                        "tag": model_tag,
                        "n_train": len(y_train),
                        "n_features": X.shape[1],
                        **({"shrinkage": "crossfit"} if model_name == "gamformer" else {}),
                        **result,
                        "measured": {k: measured[k] for k in ("date", "host", "machine")},
                    }
                    append_run(RUNS_PATH, record)
                    done.add((table, split, regime, model_name, model_tag))
                    print(
                        f"{regime:>4} {table:<24} split {split} {model_name:<20} "
                        f"AUC {result['roc_auc']:.4f} cpu {result['fit_cpu'] + result['predict_cpu']:.2f}s",
                        flush=True,
                    )
    return read_runs()


RECOVERY_SEED = 10_000  # task i of the benchmark: seed RECOVERY_SEED + i


def recovery_benchmark(
    n_tasks: int, checkpoint: str, seed: int = RECOVERY_SEED, ebm: bool = True
) -> dict:
    """Correlation of recovered and true contributions on additive tasks (GAMformer and EBM);
    task i is drawn with seed `seed` + i."""
    from interpret.glassbox import ExplainableBoostingClassifier

    names = ["gamformer", NO_SHRINKAGE] + (["ebm"] if ebm else [])
    scores = {name: [] for name in names}
    feature_scores = {name: [] for name in names}
    for task_index in range(n_tasks):
        rng = np.random.default_rng(seed + task_index)
        task = sample_additive_task(400, 6, rng, signal=3.0)
        X_fit, truth = task.x[:300], task.contributions[:300]
        for name, shrinkage in (("gamformer", "crossfit"), (NO_SHRINKAGE, "none")):
            gam = GAMformerClassifier(checkpoint=checkpoint, shrinkage=shrinkage)
            gam.fit(X_fit, task.y[:300])
            estimated = next(iter(gam.explain(X_fit)["contributions"].values())).to_numpy()
            scores[name].append(recovery_score(estimated, truth))
            feature_scores[name].extend(per_feature_recovery(estimated, truth))
        if not ebm:
            continue
        anchor = ExplainableBoostingClassifier(
            interactions=0, max_bins=64, n_jobs=1, random_state=task_index
        ).fit(X_fit, task.y[:300])
        ebm_terms = anchor.eval_terms(X_fit)
        scores["ebm"].append(recovery_score(ebm_terms, truth))
        feature_scores["ebm"].extend(per_feature_recovery(ebm_terms, truth))
    summary = {}
    for name in scores:
        mean, std = mean_std(scores[name])
        summary[name] = {
            "recovery_mean": mean,
            "recovery_std": std,
            "per_feature_median": float(np.nanmedian(feature_scores[name])),
            "scores": scores[name],
        }
    return summary


def summarise(runs: list[dict], tag: str | None, splits: int, full_splits: int) -> dict:
    """Per-table rows, per-regime means over complete tables, the single-pass ablation."""
    frame = pd.DataFrame(runs)
    frame = frame[frame["split"] < splits]
    is_gamformer = frame["model"].str.startswith("gamformer")
    frame = frame[~is_gamformer | (frame["tag"] == tag)].copy()
    frame["seconds"] = frame["fit_cpu"] + frame["predict_cpu"]
    ablation_frame = frame[frame["model"] == SINGLE_PASS]
    frame = frame[frame["model"] != SINGLE_PASS]
    rows, aggregates = [], {}
    for regime, regime_frame in frame.groupby("regime", sort=False):
        expected = splits if regime == "500" else min(splits, full_splits)
        regime_frame = regime_frame[regime_frame["split"] < expected]
        for (table, model), group in regime_frame.groupby(["table", "model"], sort=False):
            auc_mean, auc_std = mean_std(group["roc_auc"])
            rows.append(
                {
                    "regime": regime,
                    "table": table,
                    "model": model,
                    "splits": len(group),
                    "failed": int(group["roc_auc"].isna().sum()),
                    "roc_auc": f"{auc_mean:.3f} ± {auc_std:.3f}",
                    "cpu_seconds": float(group["seconds"].mean()),
                }
            )
        # average only over tables every model finished on every split (like with like)
        counts = regime_frame.groupby(["table", "model"]).size().unstack()
        counts = counts.reindex(columns=list(MODELS))
        complete = counts[(counts == expected).all(axis=1)]
        subset = regime_frame[regime_frame["table"].isin(complete.index)]
        means = subset.groupby(["model", "table"])[["roc_auc", "seconds"]].mean()
        aggregates[regime] = {
            "tables": list(complete.index),
            "splits": expected,
            "mean_roc_auc": means["roc_auc"].groupby("model").mean().to_dict(),
            "mean_cpu_seconds": means["seconds"].groupby("model").mean().to_dict(),
        }
    ablation = []
    for _, single in ablation_frame.iterrows():
        averaged = frame[  # like with like: the single pass has no shrinkage either
            (frame["model"] == NO_SHRINKAGE)
            & (frame["regime"] == "full")
            & (frame["table"] == single["table"])
            & (frame["split"] == 0)
        ]
        if len(averaged):
            ablation.append(
                {
                    "table": single["table"],
                    "n_train": int(single["n_train"]),
                    "subsample_averaged_auc": float(averaged["roc_auc"].iloc[0]),
                    "single_pass_auc": float(single["roc_auc"]),
                    "single_pass_cpu_seconds": float(single["seconds"]),
                }
            )
    return {"per_table": rows, "aggregates": aggregates, "single_pass_ablation": ablation}


def cached_recovery(n_tasks: int, checkpoint: str, tag: str) -> dict:
    path = RESULTS_DIR / "gam.recovery.json"
    cache = json.loads(path.read_text()) if path.is_file() else {}
    key = f"{tag}:{n_tasks}:shrinkage"
    if key not in cache:
        cache[key] = recovery_benchmark(n_tasks, checkpoint)
        path.write_text(json.dumps(cache, indent=1))
    return cache[key]


def render(summary: dict, recovery: dict, n_tasks: int) -> str:
    lines = ["## GAMformer vs GAM anchors (ROC AUC; CPU seconds of fit + predict, one thread)\n"]
    for regime, aggregate in summary["aggregates"].items():
        lines.append(
            f"\n### regime {regime} ({aggregate['splits']} split(s)): mean over {len(aggregate['tables'])} tables "
            f"({', '.join(aggregate['tables'])})\n\n"
        )
        lines.append(
            markdown_table(
                [
                    {
                        "model": model,
                        "mean_roc_auc": aggregate["mean_roc_auc"][model],
                        "mean_cpu_seconds": aggregate["mean_cpu_seconds"][model],
                    }
                    for model in aggregate["mean_roc_auc"]
                ]
            )
        )
    lines.append("\n### per table (mean ± std over splits)\n\n")
    lines.append(markdown_table(summary["per_table"]))
    if summary["single_pass_ablation"]:
        lines.append("\n### many rows: subsample averaging vs one pass over all rows (split 0)\n\n")
        lines.append(markdown_table(summary["single_pass_ablation"]))
    if recovery:
        lines.append(
            f"\n### shape-function recovery on the additive prior ({n_tasks} tasks, "
            "300 rows, 6 features)\n\n"
        )
        lines.append(
            markdown_table(
                [
                    {"model": name, **{k: v for k, v in values.items() if k != "scores"}}
                    for name, values in recovery.items()
                ]
            )
        )
    return "".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument(
        "--full-splits", type=int, default=1, help="splits in the full regime (EBM is slow)"
    )
    parser.add_argument("--regimes", nargs="+", default=["500", "full"])
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--recovery-tasks", type=int, default=20)
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    parser.add_argument("--anchors-only", action="store_true", help="cache anchor results only")
    parser.add_argument(
        "--summary-only", action="store_true", help="summarise the cached runs, run nothing new"
    )
    parser.add_argument("--validate", nargs="+", default=None, metavar="CHECKPOINT")
    parser.add_argument("--validation-batches", type=int, default=40)
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("AUTOFM_THREADS", "1")))
    if args.validate:
        results = synthetic_validation(args.validate, args.validation_batches)
        path = RESULTS_DIR / "gam.validation.json"
        cache = json.loads(path.read_text()) if path.is_file() else {}
        cache.update({f"{c} ({checkpoint_tag(c)})": v for c, v in results.items()})
        path.write_text(json.dumps(cache, indent=1))
        print(json.dumps(results, indent=1))
        return
    if args.anchors_only:
        args.models = [m for m in args.models if m != "gamformer"]
        table_benchmark(args, args.checkpoint)
        return
    runs = read_runs() if args.summary_only else table_benchmark(args, args.checkpoint)
    tag = checkpoint_tag(args.checkpoint)
    summary = summarise(runs, tag, args.splits, args.full_splits)
    recovery = (
        cached_recovery(args.recovery_tasks, args.checkpoint, tag) if args.recovery_tasks else {}
    )
    save_results(
        "gam",
        {
            "checkpoint": args.checkpoint,
            "checkpoint_sha256_prefix": tag,
            "splits": args.splits,
            "regimes": args.regimes,
            **summary,
            "recovery": recovery,
        },
        render(summary, recovery, args.recovery_tasks),
        seeds=[SPLIT_SEED] + list(range(args.splits)),
    )


if __name__ == "__main__":
    main()
