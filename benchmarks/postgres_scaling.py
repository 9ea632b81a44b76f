"""Speed-up of 2 and 3 worker processes over 1 on one fairness study stored in PostgreSQL.

The same search (ManyFairHPO, five objectives, random forest, no bi-objective runs, German
credit) is run by 1, 2 and 3 worker processes that share one study through a PostgreSQL URL, as
`autofm fair run --storage URL` started on several machines would. Each worker count gets a fresh
study in the same database. Reported per count: wall seconds from the workers' start until all
have exited (with their start-up), finished trials per second between the first trial's start
and the last trial's end, and both as a speed-up over one worker. Each worker stops once the study
holds SCALING_TRIALS finished trials, so k workers may finish up to k − 1 more. The speed-up needs
a free core per worker: run it on an otherwise idle machine. Every knob is an environment
variable (SCALING_*). Writes benchmarks/results/postgres_scaling.{json,md}.

A throwaway server (Debian's `postgresql` package; as root, prefix initdb and pg_ctl with
`runuser -u postgres --` and use a folder that user owns):

    initdb -D /tmp/pg/data -U autofm -A trust --no-sync
    pg_ctl -D /tmp/pg/data -l /tmp/pg/log -o "-h 127.0.0.1 -p 5433 -k /tmp/pg" -w start
    createdb -h 127.0.0.1 -p 5433 -U autofm scaling
    SCALING_URL=postgresql+psycopg2://autofm@127.0.0.1:5433/scaling AUTOFM_THREADS=1 \\
        python -m benchmarks.postgres_scaling
    pg_ctl -D /tmp/pg/data stop
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time

import numpy as np
import optuna
from optuna.trial import TrialState

from autofm.core.study import open_storage
from autofm.fairness.search import ManyFairHPO
from benchmarks.common import markdown_table, require_data, save_results
from benchmarks.fairness import load

URL = os.environ.get("SCALING_URL", "")
DATASET = os.environ.get("SCALING_DATASET", "german")
MODEL = os.environ.get("SCALING_MODEL", "rf")
TRIALS = int(os.environ.get("SCALING_TRIALS", "60"))
FOLDS = int(os.environ.get("SCALING_FOLDS", "3"))
WORKERS = [int(w) for w in os.environ.get("SCALING_WORKERS", "1,2,3").split(",")]
SEEDS = [int(s) for s in os.environ.get("SCALING_SEEDS", "0").split(",")]
RESULTS_NAME = os.environ.get("SCALING_RESULTS_NAME", "postgres_scaling")


def study_name(workers: int, seed: int) -> str:
    return f"scaling-{DATASET}-{MODEL}-{workers}w-seed{seed}"


def work(url: str, name: str, seed: int) -> None:
    """One worker process: the search, resumed on the shared study until it holds TRIALS."""
    X, y, protected, meta = load(DATASET, require_data("fairness"), seed)
    ManyFairHPO(
        model=MODEL, bi_objective_trials=0, n_folds=FOLDS, study_name=name, random_state=seed
    ).run(
        X,
        y,
        protected,
        n_trials=TRIALS,
        storage=url,
        privileged=meta["privileged"],
        positive=meta["positive"],
    )


def measure(url: str, workers: int, seed: int) -> dict:
    """Run the search with `workers` processes on a fresh study; its timings."""
    name = study_name(workers, seed)
    storage = open_storage(url)
    if name in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
        optuna.delete_study(study_name=name, storage=storage)  # a fresh study, not a resume
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=work, args=(url, name, seed)) for _ in range(workers)]
    started = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    wall = time.perf_counter() - started
    if any(p.exitcode != 0 for p in processes):
        sys.exit(f"a worker of {name} failed (exit codes {[p.exitcode for p in processes]})")
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(
        states=(TrialState.COMPLETE,)
    )
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return {
        "workers": workers,
        "seed": seed,
        "finished_trials": len(trials),
        "wall_seconds": wall,
        "trial_seconds": span.total_seconds(),
        "trials_per_second": len(trials) / span.total_seconds(),
    }


def summarise(runs: list[dict]) -> tuple[dict, str]:
    rows = []
    for workers in WORKERS:
        mine = [r for r in runs if r["workers"] == workers]
        rows.append(
            {
                "workers": workers,
                "finished trials": float(np.mean([r["finished_trials"] for r in mine])),
                "wall s": float(np.mean([r["wall_seconds"] for r in mine])),
                "trials/s": float(np.mean([r["trials_per_second"] for r in mine])),
            }
        )
    one = next((r for r in rows if r["workers"] == 1), None)
    for row in rows:
        row["speed-up (trials/s)"] = row["trials/s"] / one["trials/s"] if one else float("nan")
        row["speed-up (wall)"] = one["wall s"] / row["wall s"] if one else float("nan")
    settings = {
        "dataset": DATASET,
        "model": MODEL,
        "trials": TRIALS,
        "folds": FOLDS,
        "workers": WORKERS,
        "cpu_count": os.cpu_count(),
    }
    markdown = (
        f"# Fairness search on PostgreSQL: {MODEL} on {DATASET}, {TRIALS} trials, {FOLDS} folds, "
        f"{os.cpu_count()} CPUs\n\n" + markdown_table(rows, digits=2)
    )
    return {"settings": settings, "runs": runs, "summary": rows}, markdown


def main() -> None:
    if not URL.startswith("postgresql"):
        sys.exit("set SCALING_URL to a PostgreSQL database URL (see this module's docstring)")
    require_data("fairness")
    runs = []
    for seed in SEEDS:
        for workers in WORKERS:
            runs.append(measure(URL, workers, seed))
            print(runs[-1], file=sys.stderr, flush=True)
    results, markdown = summarise(runs)
    save_results(RESULTS_NAME, results, markdown, SEEDS)


if __name__ == "__main__":
    main()
