"""Where GAMformer loses AUC on rare positives, binary and wide tables (issue #19, diagnosis only).

    python -m benchmarks.gam_diagnosis [--splits 3] [--tables ...] [--variants ...]

Data of the hard kind, built from what we have (nothing is tuned; every number is reported):

* Development tables (`benchmarks.gam.load`): compas, fico, credit_g (the three with enough rows
  to hold 490 negatives in a training split). The positive class is each table's minority class.
  Splits: StratifiedShuffleSplit(test_size=0.25, random_state=1337), as in benchmarks/gam.py.
  The **test split is untouched** (its natural positive rate: ROC AUC does not depend on the
  prevalence, and the whole test split keeps its variance low); only the training rows change.
* Variants (`VARIANTS`): 500 training rows, drawn with the table's own positive rate
  (stratified, seed = split, as benchmarks/gam.py) or with exactly 10%, 5% or 2% positives (seed
  [19, split, table]); columns as they are, binarised (each column with more than two values →
  indicator x > its training median), or one-hot of training quartiles (each such column → one
  0/1 column per quartile); widened by 20 irrelevant random indicators (prevalence U(2%, 50%)) or
  by 20 duplicated indicators (copies of randomly chosen 0/1 columns).
* Synthetic tasks of the same kind from the additive prior (`sample_additive_task`, 40 features,
  60% binary / 30% one-hot columns, logit spread 3): the intercept is set so that the expected
  positive rate is 30%, 10%, 5% or 2%; 500 training rows with exactly that share of positives,
  4,000 test rows at that rate; one task per split (seed [19, 1000 + split]).
* The prior itself: the class balance and 0/1-column prevalences of 400 classification tasks
  drawn from the CPU preset's prior (seed 2026).

Models: EBM (interactions=0, max_bins=64, n_jobs=1), standardised logistic regression and
GAMformer with its defaults, plus GAMformer ablations (`GAMFORMER_VARIANTS`): the raw forward pass
(no shrinkage), 5 shrinkage folds instead of 2, 8 subsample passes of 128 context rows (the
training context size; out-of-pass shrinkage), rare 0/1 columns flipped (x → 1 − x when the 1 is
in fewer than 1/16 of the training rows: with 32 quantile bins a 0/1 column whose 1 is rarer than
1/32 puts 0 and 1 in the same bin), a balanced ensemble (every positive in each of up to 8 fits,
the negatives split among them so that each fit has ≥ 25% positives where possible; logits
averaged) and positives replicated to 25% of the context (raw pass, one context).
Calibration: mean predicted probability on the training rows against their positive rate, and
on the test split reweighted to the training rate (π·mean p|y=1 + (1 − π)·mean p|y=0). Every
result is cached in the git-ignored runs/benchmarks/gam.diagnosis.runs.jsonl (resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from autofm.gam.binning import apply_column_bins, column_bin_edges
from autofm.gam.estimators import DEFAULT_CHECKPOINT, GAMformerClassifier
from autofm.gam.priors import sample_additive_task
from autofm.gam.training import get_preset
from benchmarks.common import (
    CACHE_DIR,
    append_run,
    environment,
    markdown_table,
    mean_std,
    read_runs,
    save_results,
)
from benchmarks.gam import SPLIT_SEED, benchmark_split, checkpoint_tag, load, make_model

TABLES = ("compas_two_year_clean", "fico", "credit_g")
SYNTHETIC = "synthetic_additive"
VARIANT_SEED = 19
PRIOR_SEED = 2026
TRAIN_ROWS = 500
SYNTHETIC_TEST_ROWS = 4000
RARE_INDICATOR = 1 / 16  # flip 0/1 columns whose 1 is rarer than this (32 bins collapse < 1/32)
BALANCED_RATE = 0.25


@dataclasses.dataclass(frozen=True)
class Variant:
    """How a training set is altered: positive rate, column encoding, added columns."""

    positive_rate: float | None = None  # None: the table's own rate
    encoding: str = "raw"  # raw | binarised | quartiles
    widen: str = "none"  # none | irrelevant | duplicated


VARIANTS = {
    "original": Variant(),
    "pos10": Variant(0.10),
    "pos5": Variant(0.05),
    "pos2": Variant(0.02),
    "binarised": Variant(encoding="binarised"),
    "quartiles": Variant(encoding="quartiles"),
    "binarised+irrelevant20": Variant(encoding="binarised", widen="irrelevant"),
    "binarised+duplicated20": Variant(encoding="binarised", widen="duplicated"),
    "pos5+binarised+irrelevant20": Variant(0.05, "binarised", "irrelevant"),
}
SYNTHETIC_RATES = {"pos30": 0.30, "pos10": 0.10, "pos5": 0.05, "pos2": 0.02}
ANCHORS = ("ebm", "logistic_regression", "pygam")
GAMFORMER_VARIANTS = (
    "gamformer",
    "no_shrinkage",
    "shrinkage_folds5",
    "context128x8",
    "flip_rare",
    "balanced_ensemble",
    "oversample",
)
MODELS = ANCHORS + GAMFORMER_VARIANTS
# v2: the tables are split on their raw labels, as benchmarks/gam.py (v1 relabelled first)
RUNS_PATH = CACHE_DIR / "gam.diagnosis.v2.runs.jsonl"


# --- data --------------------------------------------------------------------------------------
def draw_training_rows(
    y: np.ndarray, rate: float | None, split: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of TRAIN_ROWS rows of y: stratified at y's own rate, or with exactly `rate`
    positives (rows drawn without replacement)."""
    if rate is None:
        if len(y) <= TRAIN_ROWS:
            return np.arange(len(y))
        index, _ = train_test_split(
            np.arange(len(y)), train_size=TRAIN_ROWS, stratify=y, random_state=split
        )
        return np.sort(index)
    n_positive = round(TRAIN_ROWS * rate)
    positives = rng.choice(np.flatnonzero(y == 1), n_positive, replace=False)
    negatives = rng.choice(np.flatnonzero(y == 0), TRAIN_ROWS - n_positive, replace=False)
    return np.sort(np.concatenate([positives, negatives]))


def encode(x_train: np.ndarray, x_test: np.ndarray, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """Columns with more than two training values → a median indicator or quartile one-hots
    (thresholds from the training rows); 0/1 and two-valued columns are kept."""
    if encoding == "raw":
        return x_train, x_test
    train_columns, test_columns = [], []
    for j in range(x_train.shape[1]):
        column, test = x_train[:, j], x_test[:, j]
        if len(np.unique(column)) <= 2:
            train_columns.append(column[:, None])
            test_columns.append(test[:, None])
            continue
        if encoding == "binarised":
            median = np.median(column)
            above = column > median
            strict = 0 < above.sum() < len(column)
            train_columns.append((column > median if strict else column >= median)[:, None])
            test_columns.append((test > median if strict else test >= median)[:, None])
            continue
        edges = np.unique(np.quantile(column, [0.25, 0.5, 0.75]))
        codes = np.searchsorted(edges, column, side="right")
        test_codes = np.searchsorted(edges, test, side="right")
        for level in np.unique(codes):
            train_columns.append((codes == level)[:, None])
            test_columns.append((test_codes == level)[:, None])
    return (
        np.hstack(train_columns).astype(float),
        np.hstack(test_columns).astype(float),
    )


def widen(
    x_train: np.ndarray, x_test: np.ndarray, how: str, rng: np.random.Generator, count: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Append `count` irrelevant random indicators or copies of random 0/1 columns."""
    if how == "none":
        return x_train, x_test
    if how == "irrelevant":
        prevalence = rng.uniform(0.02, 0.5, count)
        extra_train = (rng.random((len(x_train), count)) < prevalence).astype(float)
        extra_test = (rng.random((len(x_test), count)) < prevalence).astype(float)
        return np.hstack([x_train, extra_train]), np.hstack([x_test, extra_test])
    indicators = np.flatnonzero([set(np.unique(c)) <= {0.0, 1.0} for c in x_train.T])
    chosen = rng.choice(indicators, count, replace=len(indicators) < count)
    return np.hstack([x_train, x_train[:, chosen]]), np.hstack([x_test, x_test[:, chosen]])


def table_task(table: str, variant: Variant, split: int, splits: int, table_index: int):
    """(x_train, y_train, x_test, y_test) of one altered development table and split."""
    X, y = load(table)
    train_index, test_index = benchmark_split(y, split, splits)
    y = (y == _minority(y)).astype(int)
    x, x_test = X.iloc[train_index].to_numpy(float), X.iloc[test_index].to_numpy(float)
    y_train_split = y[train_index]
    rng = np.random.default_rng([VARIANT_SEED, split, table_index])
    rows = draw_training_rows(y_train_split, variant.positive_rate, split, rng)
    x_train, x_test = encode(x[rows], x_test, variant.encoding)
    x_train, x_test = widen(x_train, x_test, variant.widen, rng)
    return x_train, y_train_split[rows], x_test, y[test_index]


def _minority(y: np.ndarray):
    values, counts = np.unique(y, return_counts=True)
    return values[np.argmin(counts)]


def synthetic_task(rate: float, split: int, n_features: int = 40):
    """An additive task (mostly 0/1 columns) with exactly `rate` positives in 500 training rows
    and 4,000 test rows at that rate; the intercept sets the expected rate."""
    rng = np.random.default_rng([VARIANT_SEED, 1000 + split])
    pool = 4 * (TRAIN_ROWS + SYNTHETIC_TEST_ROWS)
    task = sample_additive_task(pool, n_features, rng, signal=3.0, binary_rate=0.6, onehot_rate=0.3)
    score = task.contributions.sum(axis=1)
    low, high = -30.0, 30.0
    for _ in range(60):  # bisection: mean sigmoid(score + b) = rate
        middle = (low + high) / 2
        low, high = (middle, high) if expit(score + middle).mean() < rate else (low, middle)
    rng = np.random.default_rng([VARIANT_SEED, 2000 + split, round(rate * 1000)])
    y = (rng.random(pool) < expit(score + low)).astype(int)
    positives, negatives = (
        rng.permutation(np.flatnonzero(y == 1)),
        rng.permutation(np.flatnonzero(y == 0)),
    )
    n_positive = round(TRAIN_ROWS * rate)
    train = np.concatenate([positives[:n_positive], negatives[: TRAIN_ROWS - n_positive]])
    n_test_positive = round(SYNTHETIC_TEST_ROWS * rate)
    test = np.concatenate(
        [
            positives[n_positive : n_positive + n_test_positive],
            negatives[TRAIN_ROWS - n_positive :][: SYNTHETIC_TEST_ROWS - n_test_positive],
        ]
    )
    return task.x[train], y[train], task.x[test], y[test]


# --- models ------------------------------------------------------------------------------------
def collapsed_columns(x_train: np.ndarray, n_bins: int = 32) -> int:
    """Columns with two or more training values that the quantile binning puts in one bin."""
    bins = apply_column_bins(x_train, column_bin_edges(x_train, n_bins), n_bins)
    return int(
        sum(
            len(np.unique(x_train[:, j])) > 1 and len(np.unique(bins[:, j])) == 1
            for j in range(x_train.shape[1])
        )
    )


def flip_rare_indicators(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, ...]:
    """Swap the two values of every two-valued column whose larger value is rarer than
    RARE_INDICATOR in the training rows; returns (x_train, x_test, number flipped)."""
    x_train, x_test = x_train.copy(), x_test.copy()
    flipped = 0
    for j in range(x_train.shape[1]):
        values = np.unique(x_train[:, j])
        if len(values) == 2 and np.mean(x_train[:, j] == values[1]) < RARE_INDICATOR:
            x_train[:, j] = values.sum() - x_train[:, j]
            x_test[:, j] = values.sum() - x_test[:, j]
            flipped += 1
    return x_train, x_test, flipped


class _LogitEnsemble:
    """Average decision values (logits) of already fitted binary classifiers."""

    def __init__(self, models: list):
        self.models = models

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = np.mean([m.decision_function(X) for m in self.models], axis=0)
        positive = expit(logits)
        return np.stack([1 - positive, positive], axis=1)


def balanced_chunks(y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Row sets that each hold every positive and a disjoint share of the negatives, as many
    (≤ 8) as keep ≥ BALANCED_RATE positives per set; one set (all rows) when that is one."""
    positives, negatives = np.flatnonzero(y == 1), rng.permutation(np.flatnonzero(y == 0))
    per_chunk = len(positives) * (1 - BALANCED_RATE) / BALANCED_RATE
    n_chunks = min(8, max(1, int(len(negatives) // per_chunk)))
    chunks = np.array_split(negatives, n_chunks)
    return [np.sort(np.concatenate([positives, chunk])) for chunk in chunks]


def oversample_rows(y: np.ndarray) -> np.ndarray:
    """Row indices with every positive repeated so that positives are ~BALANCED_RATE of them."""
    n_positive, n_negative = int(y.sum()), int((1 - y).sum())
    repeat = max(1, round(n_negative * BALANCED_RATE / (1 - BALANCED_RATE) / n_positive))
    positives = np.flatnonzero(y == 1)
    return np.sort(np.concatenate([np.flatnonzero(y == 0), np.repeat(positives, repeat)]))


def fit_model(name: str, x_train, y_train, x_test, seed: int, checkpoint: str):
    """(fitted model, x_test to predict on, details) for one model name; None when the
    ablation is identical to an already measured model (then `details['same_as']` says which)."""

    def gam(**options) -> GAMformerClassifier:
        return GAMformerClassifier(checkpoint=checkpoint, random_state=seed, **options)

    details: dict = {}
    if name == "ebm":
        from interpret.glassbox import ExplainableBoostingClassifier

        model = ExplainableBoostingClassifier(
            interactions=0, max_bins=64, n_jobs=1, random_state=seed
        )
        return model.fit(x_train, y_train), x_test, details
    if name == "logistic_regression":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        return model.fit(x_train, y_train), x_test, details
    if name == "pygam":  # the benchmark's pyGAM anchor (splines, linear terms for 0/1 columns)
        return make_model("pygam", seed, checkpoint).fit(x_train, y_train), x_test, details
    if name == "gamformer":
        model = gam().fit(x_train, y_train)
        scales = model.feature_scales_[model.informative_features_]
        details.update(
            mean_scale=float(scales.mean()) if scales.size else float("nan"),
            zero_scales=float((scales < 1e-6).mean()) if scales.size else float("nan"),
            # the factors are bounded by 3 (`fit_feature_scales`): the share that hit the bound
            capped_scales=float((scales > 3 - 1e-6).mean()) if scales.size else float("nan"),
        )
        return model, x_test, details
    if name == "no_shrinkage":
        return gam(shrinkage="none").fit(x_train, y_train), x_test, details
    if name == "shrinkage_folds5":
        return gam(shrinkage_folds=5).fit(x_train, y_train), x_test, details
    if name == "context128x8":
        return gam(max_context_rows=128, n_subsamples=8).fit(x_train, y_train), x_test, details
    if name == "flip_rare":
        x_flipped, x_test_flipped, flipped = flip_rare_indicators(x_train, x_test)
        details["flipped"] = flipped
        if not flipped:
            return None, None, {**details, "same_as": "gamformer"}
        return gam().fit(x_flipped, y_train), x_test_flipped, details
    rng = np.random.default_rng([VARIANT_SEED, seed])
    if name == "balanced_ensemble":
        chunks = balanced_chunks(y_train, rng)
        details["fits"] = len(chunks)
        if len(chunks) == 1:
            return None, None, {**details, "same_as": "gamformer"}
        return _LogitEnsemble([gam().fit(x_train[c], y_train[c]) for c in chunks]), x_test, details
    if name == "oversample":
        rows = oversample_rows(y_train)
        details["context_rows"] = len(rows)
        if len(rows) == len(y_train):
            return None, None, {**details, "same_as": "no_shrinkage"}
        model = gam(shrinkage="none", max_context_rows=len(rows))
        return model.fit(x_train[rows], y_train[rows]), x_test, details
    raise ValueError(f"unknown model {name!r}")


def positive_probability(model, x: np.ndarray) -> np.ndarray:
    return model.predict_proba(x)[:, 1]


def measure(name, x_train, y_train, x_test, y_test, seed, checkpoint) -> dict:
    """AUC, calibration and CPU seconds of one model on one task."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.process_time()
        model, x_predict, details = fit_model(name, x_train, y_train, x_test, seed, checkpoint)
        if model is None:
            return details
        test = positive_probability(model, x_predict)
        seconds = time.process_time() - started
        if name == "flip_rare":
            train = positive_probability(model, flip_rare_indicators(x_train, x_train)[0])
        else:
            train = positive_probability(model, x_train)
    rate = float(y_train.mean())
    # the test split reweighted to the training prevalence (the test keeps its natural rate)
    reweighted = rate * test[y_test == 1].mean() + (1 - rate) * test[y_test == 0].mean()
    clipped = np.clip(test, 1e-6, 1 - 1e-6)
    loss = -(
        rate * np.log(clipped[y_test == 1]).mean()
        + (1 - rate) * np.log1p(-clipped[y_test == 0]).mean()
    )
    return {
        "roc_auc": float(roc_auc_score(y_test, test)),
        "mean_p_train": float(train.mean()),
        "mean_p_test_at_train_rate": float(reweighted),
        "log_loss_at_train_rate": float(loss),
        "logit_std_test": float(np.std(logit(clipped))),
        "cpu_seconds": float(seconds),
        **details,
    }


# --- the prior -----------------------------------------------------------------------------
def prior_statistics(n_batches: int = 50, batch_size: int = 8) -> dict:
    """Class balance of classification tasks and prevalence of 0/1 columns in the CPU prior."""
    prior = dataclasses.replace(get_preset("cpu").prior, regression_fraction=0.0)
    generator = torch.Generator().manual_seed(PRIOR_SEED)
    minority_binary, smallest_class, indicator_prevalence = [], [], []
    for _ in range(n_batches):
        batch = prior.sample(batch_size, 100, 28, 10, generator)
        y = torch.cat([batch.y_context, batch.y_query], dim=1).numpy()
        x = torch.cat([batch.x_context, batch.x_query], dim=1).numpy()
        for b, n_classes in enumerate(batch.metadata["n_classes"].tolist()):
            shares = np.bincount(y[b].astype(int), minlength=n_classes) / y.shape[1]
            (minority_binary if n_classes == 2 else smallest_class).append(float(shares.min()))
            for column in x[b].T:
                values = np.unique(column[~np.isnan(column)])
                if len(values) == 2:
                    indicator_prevalence.append(float(np.mean(column == values[1])))
    minority_binary, smallest_class = np.array(minority_binary), np.array(smallest_class)
    prevalence = np.array(indicator_prevalence)
    one_class = float((minority_binary == 0).mean())  # a tied target can leave a class empty
    minority_binary = minority_binary[minority_binary > 0]
    return {
        "tasks": n_batches * batch_size,
        "binary_tasks_with_one_class": one_class,
        "binary_tasks": len(minority_binary),
        "binary_minority_quantiles": {
            f"q{q}": float(np.quantile(minority_binary, q / 100)) for q in (0, 5, 25, 50)
        },
        "binary_minority_below": {
            f"{t:.2f}": float((minority_binary < t).mean()) for t in (0.05, 0.10, 0.15, 0.20)
        },
        "multiclass_smallest_class_below": {
            f"{t:.2f}": float((smallest_class < t).mean()) for t in (0.05, 0.10)
        },
        "indicator_columns": len(prevalence),
        "indicator_one_share_below": {
            f"{t:.3f}": float((prevalence < t).mean()) for t in (1 / 32, 0.05, 0.10)
        },
    }


# --- running and summarising -------------------------------------------------------------------
def tasks(args) -> list[tuple[str, str, int, Callable]]:
    """(table, variant, split, loader) in split-major order, so that a cut-short run has whole
    splits."""
    jobs = []
    for split in range(args.splits):
        for table in args.tables:
            table_index = TABLES.index(table)  # the seed does not depend on which tables run
            for variant in args.variants:
                jobs.append(
                    (
                        table,
                        variant,
                        split,
                        lambda t=table, v=variant, s=split, i=table_index: table_task(
                            t, VARIANTS[v], s, args.splits, i
                        ),
                    )
                )
        if args.synthetic:
            for name, rate in SYNTHETIC_RATES.items():
                jobs.append((SYNTHETIC, name, split, lambda r=rate, s=split: synthetic_task(r, s)))
    return jobs


def run(args, checkpoint: str, tag: str) -> list[dict]:
    done = {
        (r["table"], r["variant"], r["split"], r["model"], r["tag"]) for r in read_runs(RUNS_PATH)
    }
    measured = environment()
    for table, variant, split, loader in tasks(args):
        missing = [m for m in args.models if (table, variant, split, m, tag) not in done]
        if not missing:
            continue
        x_train, y_train, x_test, y_test = loader()
        data = {
            "n_train": len(y_train),
            "n_features": x_train.shape[1],
            "train_positives": int(y_train.sum()),
            "test_positive_rate": float(y_test.mean()),
            "collapsed_columns": collapsed_columns(x_train),
        }
        for model in missing:
            result = measure(model, x_train, y_train, x_test, y_test, split, checkpoint)
            record = {
                "table": table,
                "variant": variant,
                "split": split,
                "model": model,
                "tag": tag,
                **data,
                **result,
                "measured": {k: measured[k] for k in ("date", "host")},
            }
            append_run(RUNS_PATH, record)
            auc = result.get("roc_auc", float("nan"))
            print(
                f"split {split} {table:<22} {variant:<28} {model:<20} AUC {auc:.4f} "
                f"cpu {result.get('cpu_seconds', 0.0):.2f}s",
                flush=True,
            )
    return read_runs(RUNS_PATH)


def resolve(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill ablations identical to another model (`same_as`) with that model's numbers."""
    keys = ["table", "variant", "split"]
    if "same_as" not in frame:
        return frame
    lookup = frame.set_index([*keys, "model"])
    metrics = ["roc_auc", "mean_p_train", "mean_p_test_at_train_rate", "log_loss_at_train_rate"]
    frame = frame.copy()
    for index, row in frame[frame["same_as"].notna()].iterrows():
        source = lookup.loc[(row["table"], row["variant"], row["split"], row["same_as"])]
        frame.loc[index, metrics] = source[metrics].to_numpy()
    return frame


def summarise(runs: list[dict], tag: str, args) -> dict:
    frame = pd.DataFrame(runs)
    frame = frame[(frame["tag"] == tag) & (frame["split"] < args.splits)]
    frame = resolve(frame)
    auc = frame.pivot_table(
        index=["table", "variant", "split"], columns="model", values="roc_auc"
    ).reindex(columns=list(args.models))
    complete = auc.dropna()
    seconds_per_task = frame.pivot_table(
        index=["table", "variant", "split"], columns="model", values="cpu_seconds"
    ).reindex(index=complete.index, columns=list(args.models))
    by_variant, per_table = [], []
    for (table, variant), group in complete.groupby(level=["table", "variant"], sort=False):
        row = {"table": table, "variant": variant, "splits": len(group)}
        for model in args.models:
            mean, std = mean_std(group[model])
            row[model] = f"{mean:.3f} ± {std:.3f}"
        per_table.append(row)
    for variant, group in complete.groupby(
        complete.index.get_level_values("table")
        .map(lambda t: "synthetic" if t == SYNTHETIC else "tables")
        .str.cat(complete.index.get_level_values("variant"), sep=":"),
        sort=False,
    ):
        means = group.mean()
        row = {"data": variant, "tasks": len(group)}
        row.update({model: float(means[model]) for model in args.models})
        row["gamformer − ebm"] = float(means["gamformer"] - means["ebm"])
        # CPU seconds of fit + predict per task, measured in the same runs as the AUCs
        cpu = seconds_per_task.loc[group.index].mean()
        row.update({f"{m} CPU s": float(cpu[m]) for m in ("ebm", "gamformer") if m in cpu})
        by_variant.append(row)
    calibration = []
    info = frame[frame["model"] == "gamformer"]
    for (table_kind, variant), group in frame.groupby(
        [frame["table"].eq(SYNTHETIC).map({True: "synthetic", False: "tables"}), "variant"],
        sort=False,
    ):
        rates = group.drop_duplicates(["table", "split"])
        row = {
            "data": f"{table_kind}:{variant}",
            "train_rate": float(rates["train_positives"].sum() / rates["n_train"].sum()),
        }
        for model in ("gamformer", "no_shrinkage", "ebm", "logistic_regression"):
            chosen = group[group["model"] == model]
            row[f"{model} p̄ train"] = float(chosen["mean_p_train"].mean())
            row[f"{model} p̄ test@rate"] = float(chosen["mean_p_test_at_train_rate"].mean())
            row[f"{model} log loss@rate"] = float(chosen["log_loss_at_train_rate"].mean())
        mine = info[
            info["table"].eq(SYNTHETIC).map({True: "synthetic", False: "tables"}).eq(table_kind)
            & info["variant"].eq(variant)
        ]
        row["mean feature scale"] = float(mine["mean_scale"].mean())
        row["share of scales 0"] = float(mine["zero_scales"].mean())
        row["share of scales at 3"] = float(mine.get("capped_scales", pd.Series(np.nan)).mean())
        for model in ("no_shrinkage", "gamformer", "ebm"):  # spread of the test logits
            row[f"{model} logit std"] = float(
                group[group["model"] == model]["logit_std_test"].mean()
            )
        row["collapsed columns"] = float(mine["collapsed_columns"].mean())
        row["features"] = float(mine["n_features"].mean())
        calibration.append(row)
    seconds = frame.groupby("model")["cpu_seconds"].sum().to_dict()
    return {
        "by_variant": by_variant,
        "per_table": per_table,
        "calibration": calibration,
        "cpu_seconds_by_model": seconds,
    }


def render(summary: dict, prior: dict, args) -> str:
    lines = [
        "## GAMformer diagnosis: rare positives, binary and wide tables (issue #19)\n\n",
        f"Tables {', '.join(args.tables)} and the synthetic additive tasks; {args.splits} splits; "
        f"{TRAIN_ROWS} training rows; test split untouched. ROC AUC, mean over tables × splits.\n\n",
        markdown_table(summary["by_variant"]),
        "\n### calibration (mean predicted probability) and shrinkage of the default\n\n",
        markdown_table(summary["calibration"]),
        "\n### per table (mean ± std over splits)\n\n",
        markdown_table(summary["per_table"]),
        "\n### the CPU prior's classification tasks\n\n```\n",
        json.dumps(prior, indent=1),
        "\n```\n",
    ]
    return "".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--no-synthetic", dest="synthetic", action="store_false")
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    parser.add_argument(
        "--summary-only", action="store_true", help="summarise the cached runs, run nothing new"
    )
    parser.add_argument(
        "--results", default="gam.diagnosis", help="results name under benchmarks/results"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("AUTOFM_THREADS", "1")))
    tag = checkpoint_tag(args.checkpoint)
    started = time.process_time()
    runs = read_runs(RUNS_PATH) if args.summary_only else run(args, args.checkpoint, tag)
    prior = prior_statistics()
    summary = summarise(runs, tag, args)
    save_results(
        args.results,
        {
            "checkpoint": args.checkpoint,
            "checkpoint_sha256_prefix": tag,
            "splits": args.splits,
            "tables": args.tables,
            "variants": {name: dataclasses.asdict(VARIANTS[name]) for name in args.variants},
            "synthetic_rates": SYNTHETIC_RATES if args.synthetic else {},
            "models": list(args.models),
            "test_split": "untouched (natural positive rate)",
            **summary,
            "prior": prior,
            # a --summary-only run measures nothing: its runs' seconds are in the tables
            "cpu_seconds_this_run": None if args.summary_only else time.process_time() - started,
            "summarised_from_cached_runs": args.summary_only,
        },
        render(summary, prior, args),
        seeds=[SPLIT_SEED, VARIANT_SEED, PRIOR_SEED, *range(args.splits)],
    )


if __name__ == "__main__":
    main()
