"""ManyFairHPO on COMPAS, Law School and German credit, against fairlearn's ExponentiatedGradient.

Scaled to one CPU thread shared with other jobs (the reference code runs 10 seeds and NSGA-III
with a population of 36 for 40 generations, ~1,440 evaluations per run): random forest only,
3 seeds, 2-fold CV, 50 trials for the five-objective NSGA-III run, 24 for each bi-objective
NSGA-II run, 50 for random search, COMPAS and Law School subsampled to 2,000 rows. Every knob is
an environment variable (FAIR_*), so a bigger machine can run the issue's scale.
Writes benchmarks/results/fairness.{json,md}.

    AUTOFM_THREADS=1 python -m benchmarks.fairness

Two smaller measurements: `python -m benchmarks.fairness deod` compares the paper's DEOD with its
worst case on the trials of NSGA-III searches (benchmarks/results/fairness.deod.{json,md});
`python -m benchmarks.fairness speed` measures trials per minute of RF on COMPAS for one and two
worker processes (`trials_per_minute`; run it on an otherwise idle machine).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from joblib import cpu_count
from optuna.trial import TrialState

from autofm.core.pareto import pareto_mask
from autofm.core.runtime import setup_torch
from autofm.core.study import quiet_logging, recording_worker
from autofm.fairness.baseline import exponentiated_gradient_front
from autofm.fairness.conflicts import normalised_hypervolumes
from autofm.fairness.data import prepare_data
from autofm.fairness.metrics import PAPER_OBJECTIVES
from autofm.fairness.objective import TrialObjective, evaluate, release_fold_workers
from autofm.fairness.search import ManyFairHPO
from autofm.fairness.spaces import suggest_params
from autofm.fairness.storage import open_storage, storage_url
from benchmarks.common import Timer, markdown_table, mean_std, require_data, save_results

SEEDS = [int(s) for s in os.environ.get("FAIR_SEEDS", "0,1,2").split(",")]
DATASETS = os.environ.get("FAIR_DATASETS", "german,compas,lawschool").split(",")
MODELS = os.environ.get("FAIR_MODELS", "rf").split(",")
MAX_ROWS = int(os.environ.get("FAIR_MAX_ROWS", "2000"))
FOLDS = int(os.environ.get("FAIR_FOLDS", "2"))
TRIALS = int(os.environ.get("FAIR_TRIALS", "50"))
BI_TRIALS = int(os.environ.get("FAIR_BI_TRIALS", "24"))
RANDOM_TRIALS = int(os.environ.get("FAIR_RANDOM_TRIALS", "50"))
EG_BOUNDS = tuple(float(b) for b in os.environ.get("FAIR_EG_BOUNDS", "0.01,0.05,0.1").split(","))
EG_ITERATIONS = int(os.environ.get("FAIR_EG_ITERATIONS", "10"))
MAX_EPOCHS = int(os.environ.get("FAIR_MAX_EPOCHS", "30"))
RUN_DIR = Path(os.environ.get("FAIR_RUN_DIR", "runs/bench-fairness"))
RESULTS_NAME = os.environ.get("FAIR_RESULTS_NAME", "fairness")
# ExponentiatedGradient's base learner: a mid-sized forest in the same parametrisation as the search
EG_PARAMS = {
    "rf": {
        "max_depth": 10,
        "min_samples_split": 8,
        "min_samples_leaf": 5,
        "max_features": 0.5,
        "n_estimators": 30,
    },
    "gb": {
        "learning_rate": 0.1,
        "max_depth": 6,
        "max_features": 1.0,
        "l2_regularization": 1.0,
        "max_iter": 50,
    },
    "mlp": {
        "depth": 1,
        "width": 64,
        "batch_size": 64,
        "alpha": 1e-4,
        "learning_rate_init": 1e-3,
        "n_iter_no_change": 5,
    },
    "logreg": {"C": 1.0, "class_weight": "none"},
}
EG_METRIC = {"dp": "dsp", "eo": "deod"}
FAIRNESS_METRICS = PAPER_OBJECTIVES[1:]


def load(
    name: str, root: Path, seed: int, max_rows: int | None = MAX_ROWS
) -> tuple[pd.DataFrame, pd.Series, str, dict]:
    """Features, label, protected column and meta of dataset `name`, at most `max_rows` rows."""
    meta = json.loads((root / "meta.json").read_text())[name]
    frame = pd.read_csv(root / f"{name}.csv")
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=seed).reset_index(drop=True)
    return frame.drop(columns=[meta["label"]]), frame[meta["label"]], meta["protected"], meta


def plane(frame: pd.DataFrame, metric: str, split: str) -> np.ndarray:
    return frame[[f"{split}_f1", f"{split}_{metric}"]].to_numpy(float)


def dominance(hpo: pd.DataFrame, eg: pd.DataFrame, metric: str) -> dict:
    """HPO front (chosen on validation, measured on test) vs EG models on test, in (1−F1, metric)."""
    front = hpo[pareto_mask(plane(hpo, metric, "val"))]
    front_points, eg_points = plane(front, metric, "test"), plane(eg, metric, "test")
    dominated = [bool(np.any(np.all(front_points <= p, axis=1))) for p in eg_points]
    hv_hpo, hv_eg = normalised_hypervolumes([front_points, eg_points])
    return {
        "share_eg_dominated": float(np.mean(dominated)),
        "all_eg_dominated": bool(all(dominated)),
        "hv_hpo": hv_hpo,
        "hv_eg": hv_eg,
        "hpo_hv_larger": bool(hv_hpo > hv_eg),
    }


def run_case(name: str, model: str, seed: int, root: Path, timer: Timer) -> dict:
    X, y, protected, meta = load(name, root, seed)
    folder = RUN_DIR / f"{name}-{model}-{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    common = {
        "model": model,
        "n_folds": FOLDS,
        "random_state": seed,
        "workdir": folder,
        "max_epochs": MAX_EPOCHS,
    }
    kwargs = {"privileged": meta["privileged"], "positive": meta["positive"]}
    with timer(f"{name}/{model}/nsga"):
        search = ManyFairHPO(bi_objective_trials=BI_TRIALS, **common).run(
            X, y, protected, n_trials=TRIALS, **kwargs
        )
    with timer(f"{name}/{model}/random"):
        random = ManyFairHPO(
            sampler="random", bi_objective_trials=0, study_name="random", **common
        ).run(X, y, protected, n_trials=RANDOM_TRIALS, **kwargs)
    conflicts = search.conflicts("val")
    conflicts_test = search.conflicts("test")
    many, rand = search.trials(), random.trials()
    sampler_hv = {}
    for metric in FAIRNESS_METRICS:
        hv_nsga, hv_random = normalised_hypervolumes(
            [plane(many, metric, "val"), plane(rand, metric, "val")]
        )
        sampler_hv[metric] = {"nsga3": hv_nsga, "random": hv_random}
    data = prepare_data(X, y, protected, n_folds=FOLDS, random_state=seed, **kwargs)
    runs = search.bi_objective_runs()
    baseline = {}
    for constraint, metric in EG_METRIC.items():
        with timer(f"{name}/{model}/eg"):
            eg = exponentiated_gradient_front(
                data, model, EG_PARAMS[model], constraint, EG_BOUNDS, EG_ITERATIONS, seed
            )
        baseline[metric] = {
            **dominance(runs[metric], eg, metric),
            "eg_points": eg.to_dict("records"),
        }
    selection = search.select("f1=0.5,dsp=0.3,deop=0.2")
    return {
        "dataset": name,
        "model": model,
        "seed": seed,
        "rows": int(data.info["n_rows"]),
        "base_rates": data.info["base_rates"]["trainval"],
        "contrast_val": conflicts["contrast"].to_dict(),
        "contrast_test": conflicts_test["contrast"].to_dict(),
        "regret_val": conflicts["regret"].to_dict(orient="index"),
        "regret_test": conflicts_test["regret"].to_dict(orient="index"),
        "best_val": conflicts["best"],
        "sampler_hv": sampler_hv,
        "baseline": baseline,
        "selection": {"trial": selection.trial, "test": selection.test, "risks": selection.risks},
        "trials": {"many": len(many), "random": len(rand)} | {m: len(f) for m, f in runs.items()},
    }


def summarise(cases: list[dict], timer: Timer, started: float) -> tuple[dict, str]:
    lines = [
        f"Seeds {SEEDS}; models {MODELS}; {FOLDS}-fold CV; {TRIALS} NSGA-III trials (5 objectives), "
        f"{BI_TRIALS} NSGA-II trials per bi-objective run, {RANDOM_TRIALS} random-search trials; "
        f"rows capped at {MAX_ROWS}; ExponentiatedGradient bounds {list(EG_BOUNDS)}, "
        f"{EG_ITERATIONS} iterations. Wall time {time.perf_counter() - started:.0f} s.\n",
    ]
    groups = sorted({(c["dataset"], c["model"]) for c in cases})
    metrics = list(FAIRNESS_METRICS)
    lines.append("\n### Hypervolume contrast C(i, j) on validation (mean over seeds)\n")
    lines.append(
        "Rows: measured in (1−F1, f_i); columns: run optimised for f_j; positive = conflict.\n"
    )
    contrast_summary = {}
    for dataset, model in groups:
        chosen = [c for c in cases if (c["dataset"], c["model"]) == (dataset, model)]
        rows = []
        for i in metrics:
            row = {"dataset": f"{dataset}/{model}", "f_i": i}
            for j in metrics:
                row[j] = mean_std([c["contrast_val"][j][i] for c in chosen])[0]
            rows.append(row)
        contrast_summary[f"{dataset}/{model}"] = rows
        lines.append(markdown_table(rows, ["dataset", "f_i", *metrics]))
    lines.append("\n### Many-objective (NSGA-III) vs bi-objective runs: hypervolume per plane\n")
    regret_rows = []
    for dataset, model in groups:
        chosen = [c for c in cases if (c["dataset"], c["model"]) == (dataset, model)]
        for m in metrics:
            bi = mean_std([c["regret_val"][m]["hv_bi"] for c in chosen])
            many = mean_std([c["regret_val"][m]["hv_many"] for c in chosen])
            test = mean_std([c["regret_test"][m]["regret"] for c in chosen])
            regret_rows.append(
                {
                    "dataset": f"{dataset}/{model}",
                    "plane": f"(1-F1, {m})",
                    "HV bi (val)": bi[0],
                    "HV many (val)": many[0],
                    "regret val": bi[0] - many[0],
                    "regret test": test[0],
                }
            )
    lines.append(markdown_table(regret_rows))
    lines.append(
        "\n### NSGA-III vs random search (same budget), hypervolume per plane on validation\n"
    )
    sampler_rows = []
    for dataset, model in groups:
        chosen = [c for c in cases if (c["dataset"], c["model"]) == (dataset, model)]
        for m in metrics:
            sampler_rows.append(
                {
                    "dataset": f"{dataset}/{model}",
                    "plane": f"(1-F1, {m})",
                    "NSGA-III": mean_std([c["sampler_hv"][m]["nsga3"] for c in chosen])[0],
                    "random": mean_std([c["sampler_hv"][m]["random"] for c in chosen])[0],
                }
            )
    lines.append(markdown_table(sampler_rows))
    lines.append(
        "\n### HPO front vs fairlearn ExponentiatedGradient (test; HPO front chosen on validation)\n"
    )
    lines.append(
        "`dominates`: every EG model is weakly dominated by a model on the HPO front; "
        "`HV larger`: the HPO front's hypervolume exceeds EG's on a shared box. "
        "Cases are (dataset, model, seed).\n"
    )
    baseline_rows = []
    counts = {}
    for metric in EG_METRIC.values():
        dominated = [c["baseline"][metric]["all_eg_dominated"] for c in cases]
        larger = [c["baseline"][metric]["hpo_hv_larger"] for c in cases]
        counts[metric] = {
            "cases": len(cases),
            "hpo_dominates": int(sum(dominated)),
            "hpo_hv_larger": int(sum(larger)),
        }
        for c in cases:
            b = c["baseline"][metric]
            baseline_rows.append(
                {
                    "metric": metric,
                    "dataset": f"{c['dataset']}/{c['model']}",
                    "seed": c["seed"],
                    "share EG dominated": b["share_eg_dominated"],
                    "dominates": b["all_eg_dominated"],
                    "HV HPO": b["hv_hpo"],
                    "HV EG": b["hv_eg"],
                }
            )
    lines.append(markdown_table(baseline_rows))
    for metric, count in counts.items():
        lines.append(
            f"\n{metric.upper()}: HPO front dominates EG in {count['hpo_dominates']}/{count['cases']} "
            f"cases; larger hypervolume in {count['hpo_hv_larger']}/{count['cases']} "
            f"(paper: {'9/12' if metric == 'dsp' else '7/12'} 'dominates', 4 datasets × 3 models).\n"
        )
    lines.append("\n### Seconds per stage (summed over seeds)\n")
    lines.append(
        markdown_table(
            [{"stage": k, "seconds": v} for k, v in sorted(timer.seconds.items())], digits=1
        )
    )
    results = {
        "settings": {
            "models": MODELS,
            "datasets": DATASETS,
            "folds": FOLDS,
            "trials": TRIALS,
            "bi_trials": BI_TRIALS,
            "random_trials": RANDOM_TRIALS,
            "max_rows": MAX_ROWS,
            "eg_bounds": list(EG_BOUNDS),
            "eg_iterations": EG_ITERATIONS,
            "eg_params": EG_PARAMS,
            "max_epochs": MAX_EPOCHS,
        },
        "cases": cases,
        "contrast_mean": contrast_summary,
        "regret": regret_rows,
        "sampler_hv": sampler_rows,
        "baseline_counts": counts,
        "seconds": timer.seconds,
        "complete": len(cases) == len(SEEDS) * len(DATASETS) * len(MODELS),
    }
    return results, "\n".join(lines)


def deod_comparison(trials: pd.DataFrame, objectives=PAPER_OBJECTIVES) -> dict[str, Any]:
    """The paper's DEOD against its worst case over the trials of one search: their gap per split,
    how often the TPR and FPR gaps have opposite signs (so they cancel in DEOD), and how the
    validation Pareto set changes when DEOD is replaced by the worst case."""
    result: dict[str, Any] = {"trials": len(trials)}
    for split in ("val", "test"):
        paper, worst = trials[f"{split}_deod"], trials[f"{split}_deod_max"]
        gap = worst - paper
        result[split] = {
            "mean_deod": float(paper.mean()),
            "mean_worst_case": float(worst.mean()),
            "mean_gap": float(gap.mean()),
            "median_gap": float(gap.median()),
            "max_gap": float(gap.max()),
            "share_gap_over_0.05": float((gap > 0.05).mean()),
            "share_deod_under_half_worst_case": float((paper < 0.5 * worst).mean()),
            # equal TPRs and FPRs in every fold: both measures are 0 (mostly constant predictors)
            "share_worst_case_zero": float((worst == 0).mean()),
            "spearman": float(paper.corr(worst, method="spearman")),
        }
    # the test rates are means over the fold models, so these are the fold-averaged signed gaps
    tpr_gap = trials["rate_tpr_unpriv"] - trials["rate_tpr_priv"]
    fpr_gap = trials["rate_fpr_unpriv"] - trials["rate_fpr_priv"]
    opposite = (np.sign(tpr_gap) * np.sign(fpr_gap)) < 0
    test_gap = trials["test_deod_max"] - trials["test_deod"]
    result["test_opposite_signs"] = {
        "share": float(opposite.mean()),
        "mean_gap_when_opposite": float(test_gap[opposite].mean()) if opposite.any() else None,
        "mean_gap_when_same_sign": float(test_gap[~opposite].mean()) if (~opposite).any() else None,
    }
    swapped = ["deod_max" if o == "deod" else o for o in objectives]
    pareto = {}
    for name, paper_names, worst_names in (
        ("all objectives", list(objectives), swapped),
        ("(1-F1, DEOD) plane", ["f1", "deod"], ["f1", "deod_max"]),
    ):
        paper_set = pareto_mask(trials[[f"val_{o}" for o in paper_names]].to_numpy(float))
        worst_set = pareto_mask(trials[[f"val_{o}" for o in worst_names]].to_numpy(float))
        both = int((paper_set & worst_set).sum())
        pareto[name] = {
            "paper": int(paper_set.sum()),
            "worst_case": int(worst_set.sum()),
            "both": both,
            "jaccard": both / int((paper_set | worst_set).sum()),
        }
    result["pareto_val"] = pareto
    # the fairest-looking model by DEOD, among those that do treat the groups differently
    unequal = trials[trials["val_deod_max"] > 0]
    fairest = (unequal if len(unequal) else trials).sort_values("val_deod").iloc[0]
    result["fairest_by_deod"] = {
        "trial": int(fairest["number"]),
        **{
            k: float(fairest[k]) for k in ("val_deod", "val_deod_max", "test_deod", "test_deod_max")
        },
    }
    return result


def measure_deod(
    datasets: tuple[str, ...] = ("compas", "german", "lawschool"),
    seeds: tuple[int, ...] = (0,),
    n_trials: int = 80,
    model: str = "rf",
    max_rows: int = 6000,
) -> tuple[dict, str]:
    """NSGA-III searches over the paper's five objectives (3-fold CV, no bi-objective runs), and
    the paper's DEOD against its worst case on every trial (`deod_comparison`)."""
    root = require_data("fairness")
    cases = []
    for seed in seeds:
        for name in datasets:
            X, y, protected, meta = load(name, root, seed, max_rows)
            folder = RUN_DIR / f"deod-{name}-{model}-{seed}"
            shutil.rmtree(folder, ignore_errors=True)
            started = time.perf_counter()
            search = ManyFairHPO(
                model=model, bi_objective_trials=0, workdir=folder, random_state=seed
            ).run(
                X,
                y,
                protected,
                n_trials=n_trials,
                privileged=meta["privileged"],
                positive=meta["positive"],
            )
            cases.append(
                {
                    "dataset": name,
                    "model": model,
                    "seed": seed,
                    "rows": len(X),
                    "seconds": time.perf_counter() - started,
                    **deod_comparison(search.trials()),
                }
            )
    rows = [
        {
            "case": f"{c['dataset']}/{c['model']}/{c['seed']} ({c['rows']} rows)",
            "trials": c["trials"],
            "mean DEOD (val)": c["val"]["mean_deod"],
            "mean worst case (val)": c["val"]["mean_worst_case"],
            "mean gap (val)": c["val"]["mean_gap"],
            "max gap (val)": c["val"]["max_gap"],
            "mean gap (test)": c["test"]["mean_gap"],
            "max gap (test)": c["test"]["max_gap"],
            "share gap > 0.05 (val)": c["val"]["share_gap_over_0.05"],
            "share both 0 (val)": c["val"]["share_worst_case_zero"],
            "share opposite signs (test)": c["test_opposite_signs"]["share"],
            "Spearman (val)": c["val"]["spearman"],
        }
        for c in cases
    ]
    pareto_rows = [
        {
            "case": f"{c['dataset']}/{c['model']}/{c['seed']}",
            "front": front,
            "paper DEOD": counts["paper"],
            "worst case": counts["worst_case"],
            "in both": counts["both"],
            "Jaccard": counts["jaccard"],
        }
        for c in cases
        for front, counts in c["pareto_val"].items()
    ]
    fairest_rows = [
        {"case": f"{c['dataset']}/{c['model']}/{c['seed']}", **c["fairest_by_deod"]} for c in cases
    ]
    markdown = "\n".join(
        [
            "# DEOD (paper, |mean of the TPR and FPR gaps|) vs its worst case (max of |gaps|)\n",
            f"NSGA-III over the paper's five objectives, {n_trials} trials, 3-fold CV, "
            f"25 % test split, rows capped at {max_rows}; seeds {list(seeds)}. "
            "gap = worst case − DEOD (never negative). 'share opposite signs': trials whose "
            "fold-averaged test TPR and FPR gaps have opposite signs, so that they cancel in DEOD.\n",
            markdown_table(rows),
            "\n## Validation Pareto sets with DEOD or with its worst case\n",
            markdown_table(pareto_rows),
            "\n## The trial with the smallest validation DEOD\n",
            "Among trials whose validation worst case is above 0.\n",
            markdown_table(fairest_rows),
        ]
    )
    settings = {"datasets": list(datasets), "n_trials": n_trials, "model": model}
    return {"settings": settings | {"max_rows": max_rows}, "cases": cases}, markdown


class _GivenConfiguration(optuna.samplers.BaseSampler):
    """Samples `configuration`, whatever the trial: set it before each trial."""

    configuration: dict[str, Any] = {}

    def infer_relative_search_space(self, study, trial) -> dict:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def sample_independent(self, study, trial, param_name, distribution) -> Any:
        return self.configuration[param_name]


def _speed_worker(
    storage: str,
    configurations,
    ready,
    model: str,
    dataset: str,
    n_jobs: int | None,
    n_folds: int,
    seed: int,
    max_rows: int | None,
    workers: int,
) -> None:
    """Evaluate configurations from the shared queue until it is empty."""
    X, y, protected, meta = load(dataset, require_data("fairness"), seed, max_rows)
    kwargs = {"privileged": meta["privileged"], "positive": meta["positive"]}
    data = prepare_data(X, y, protected, n_folds=n_folds, random_state=seed, **kwargs)
    # start the fold processes (and their imports) before the first timed trial: once per worker
    evaluate(model, EG_PARAMS[model], data, seed, n_jobs=n_jobs or max(1, cpu_count() // workers))
    sampler = _GivenConfiguration()
    study = optuna.load_study(study_name="speed", storage=open_storage(storage), sampler=sampler)
    objective = recording_worker(
        TrialObjective(model, list(PAPER_OBJECTIVES), data, seed, n_jobs=n_jobs)
    )
    ready.wait()  # every worker starts its first trial together
    with quiet_logging():
        while True:
            try:
                sampler.configuration = configurations.get(timeout=1)
            except queue.Empty:
                break
            study.optimize(objective, n_trials=1)
    release_fold_workers()


def trials_per_minute(
    model: str = "rf",
    dataset: str = "compas",
    n_trials: int = 40,
    n_jobs: int | None = None,
    workers: int = 1,
    n_folds: int = 3,
    seed: int = 0,
    max_rows: int | None = None,
) -> dict[str, Any]:
    """Finished trials per minute of ManyFairHPO's trial (its `TrialObjective` on the paper's five
    objectives, stored in a shared SQLite study) on a real dataset, all rows unless `max_rows`.
    `workers` processes take the same `n_trials` configurations from one queue for every
    setting (drawn at random from the model's space with `seed`), so settings are compared on
    equal work; each
    trial fits its folds with `n_jobs` processes (None: the default, $AUTOFM_THREADS else the
    cores shared among the workers). Time runs from the first trial's start to the last one's
    end, so process start-up, data loading and starting the fold processes (one warm-up per
    worker) are excluded, and so is the time of a search's sampler (NSGA-III)."""
    folder = RUN_DIR / f"speed-{dataset}-{model}-{workers}w-{n_jobs or 'auto'}j"
    shutil.rmtree(folder, ignore_errors=True)
    storage = storage_url(folder, create=True)
    with quiet_logging():
        optuna.create_study(
            storage=open_storage(storage), study_name="speed", directions=["minimize"] * 5
        )
        draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    context = multiprocessing.get_context("spawn")
    configurations, ready = context.Queue(), context.Barrier(workers)
    for _ in range(n_trials):
        configurations.put(suggest_params(model, draws.ask()))
    settings = (model, dataset, n_jobs, n_folds, seed, max_rows, workers)
    started = time.perf_counter()
    processes = [
        context.Process(target=_speed_worker, args=(storage, configurations, ready, *settings))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    wall = time.perf_counter() - started
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"speed workers exited with {failed}")
    study = optuna.load_study(study_name="speed", storage=open_storage(storage))
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    seconds = (
        max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    ).total_seconds()
    return {
        "model": model,
        "dataset": dataset,
        "workers": workers,
        "n_jobs": n_jobs if n_jobs is not None else "default",
        "n_folds": n_folds,
        "seed": seed,
        "trials": len(trials),
        "seconds": seconds,
        "wall_seconds": wall,
        "trials_per_minute": 60 * len(trials) / seconds,
        "cpu_count": cpu_count(),
    }


def measure_speed(n_trials: int = 100, seed: int = 0) -> tuple[dict, str]:
    """`trials_per_minute` of RF on COMPAS for one worker fitting its folds one after another,
    one worker with the default (folds in parallel), two workers with the default and two
    workers fitting folds one after another; speed-ups over the first two."""
    settings = [(1, 1), (None, 1), (None, 2), (1, 2)]
    rows = [
        trials_per_minute(n_trials=n_trials, n_jobs=n_jobs, workers=workers, seed=seed)
        for n_jobs, workers in settings
    ]
    base = rows[0]["trials_per_minute"]
    single = rows[1]["trials_per_minute"]
    for row in rows:
        row["speed-up vs 1 worker, sequential folds"] = row["trials_per_minute"] / base
        row["speed-up vs 1 worker, default"] = row["trials_per_minute"] / single
    markdown = (
        f"# ManyFairHPO trials per minute (RF, COMPAS, {n_trials} trials, seed {seed})\n\n"
        + markdown_table(rows, digits=2)
    )
    return {"rows": rows}, markdown


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "full"
    if what == "deod":
        results, markdown = measure_deod(seeds=tuple(SEEDS))
        save_results(f"{RESULTS_NAME}.deod", results, markdown, SEEDS)
        return
    if what == "speed":
        results, markdown = measure_speed(seed=SEEDS[0])
        save_results(f"{RESULTS_NAME}.speed", results, markdown, SEEDS[:1])
        return
    if what != "full":
        sys.exit(f"unknown measurement {what!r}; choose full (default), deod or speed")
    setup_torch()
    root = require_data("fairness")
    timer, cases, started = Timer(), [], time.perf_counter()
    print(f"seeds {SEEDS}, datasets {DATASETS}, models {MODELS}", flush=True)
    for seed in SEEDS:
        for name in DATASETS:
            for model in MODELS:
                case_started = time.perf_counter()
                cases.append(run_case(name, model, seed, root, timer))
                print(
                    f"{name}/{model}/seed {seed}: {time.perf_counter() - case_started:.0f} s",
                    flush=True,
                )
                # write what is measured so far, so an interrupted run still leaves results
                results, markdown = summarise(cases, timer, started)
                save_results(RESULTS_NAME, results, markdown, SEEDS)


if __name__ == "__main__":
    main()
