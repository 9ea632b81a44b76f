"""Finetune benchmark: the meta-learned tuner against its baselines on the project's meta-dataset
of real LoRA finetuning runs, the FTC-style ensembles of its finetuned pools, and a live run.

1. Leave-one-task-out (LODO) over the meta-dataset (the left-out task's runs are looked up, never
   re-run), 5 seeds: normalised regret of the incumbent at 1, 3 and 10 × the mean cost of one
   full run, mean ± 95% interval over tasks. Strategies: zero-shot, the default configuration,
   random search, the static portfolio (best on average over the other tasks), Quick-Tune with
   refit, and ours (meta-learned surrogates, no refit).
   Targets fixed before the result: ours has lower mean regret than random search and the
   default at every budget, and is at least as good as refit at the smallest budget.
2. Ensembles of each classification task's finetuned pool (`autofm.ensemble.comparison`): do greedy
   selection and the neural ensembler beat the single best configuration (FTC paper)?
3. Live: on qa_counting, a task kept out of the meta-dataset, the tuner meta-trained on all 8
   tasks really finetunes for a fixed budget; test exact match against the default
   configuration's and the zero-shot model's, same budget.

    python -m benchmarks.finetune [--seeds 5] [--skip-live] [--live-budget SECONDS]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from autofm.core.runtime import setup_torch
from autofm.ensemble.comparison import compare
from autofm.ensemble.ftc import read_ftc
from autofm.finetune.builder import BuildSpec, metadataset_from_study
from autofm.finetune.lodo import run_lodo, summarise
from autofm.finetune.metadataset import MetaDataset
from autofm.finetune.synthetic_qa import synthetic_qa_task
from autofm.finetune.training import evaluate
from autofm.finetune.tuning import meta_train, tune
from autofm.lm.checkpoint import load_gpt
from benchmarks.common import markdown_table, save_results

ROOT = Path(__file__).resolve().parent / "metadatasets" / "finetune"
STORAGE, FOLDER = ROOT / "study.db", ROOT / "metadataset"
STRATEGIES = ("zero_shot", "default", "random", "portfolio", "quicktune", "ours")
ENSEMBLE_METHODS = ("single-best", "top-5", "greedy", "neural-ma", "neural-stack")
LIVE_TASK = "qa_counting"


def load_metadataset() -> MetaDataset:
    """The build's finished runs (exported again when the study has more than the folder)."""
    if STORAGE.is_file():
        metadataset = metadataset_from_study(STORAGE)
        metadataset.save(FOLDER)
    return MetaDataset.load(FOLDER)


def lodo(metadataset: MetaDataset, seeds: list[int]) -> tuple[list[dict], dict]:
    frame = run_lodo(metadataset, STRATEGIES, seeds=seeds)
    summary = summarise(frame)
    rows = summary.to_dict(orient="records")
    mean = {(r["strategy"], r["budget_multiple"]): r["regret_mean"] for r in rows}
    budgets = sorted({r["budget_multiple"] for r in rows})
    checks = {
        "ours_below_random_every_budget": all(mean["ours", b] < mean["random", b] for b in budgets),
        "ours_below_default_every_budget": all(
            mean["ours", b] < mean["default", b] for b in budgets
        ),
        "ours_at_most_refit_smallest_budget": mean["ours", budgets[0]]
        <= mean["quicktune", budgets[0]],
    }
    per_task = (
        frame.groupby(["task", "strategy", "budget_multiple"])["regret"].mean().unstack("strategy")
    )
    return rows, {"checks": checks, "per_task": per_task.reset_index().to_dict(orient="records")}


def ensembles(metadataset: MetaDataset) -> list[dict]:
    rows = []
    for task in metadataset.predictions:
        pool = read_ftc(FOLDER / "ftc" / task)
        results = compare(pool, ENSEMBLE_METHODS, random_state=0).results
        row = {"task": task, "models": pool.n_models}
        for method in ENSEMBLE_METHODS:
            row[f"{method} error"] = results[method]["error"]
            row[f"{method} nll/SB"] = results[method]["normalized_nll"]
        rows.append(row)
    return rows


def live(metadataset: MetaDataset, budget: float | None, seed: int = 0) -> dict:
    build = BuildSpec()
    tuner = meta_train(metadataset, seed=seed)
    model = load_gpt(build.model)[0].float()
    task = synthetic_qa_task(LIVE_TASK, build.n_train, build.n_val, build.n_test, build.seed)
    qa = [i for i, t in enumerate(metadataset.tasks) if metadataset.task_info[t]["kind"] == "qa"]
    full_run = float(np.nanmean(metadataset.costs[qa].sum(axis=2)))
    budget = budget or 3 * full_run
    result = {"task": LIVE_TASK, "budget_seconds": budget, "mean_full_run_seconds": full_run,
              "zero_shot_test": evaluate(model, task, task.test).score}  # fmt: skip
    for strategy in ("quicktune", "default"):
        started = time.perf_counter()
        run = tune(model, task, budget, strategy, tuner, seed=seed)
        result[strategy] = {
            "test_exact_match": run.test_score,
            "val_exact_match": run.val_score,
            "configurations_tried": len(run.runs),
            "epochs_trained": len(run.steps),
            "seconds": time.perf_counter() - started,
            "config": run.candidates[run.incumbent].to_dict(),
        }
    return result


def render(metadataset, rows, lodo_extra, ensemble_rows, live_result) -> str:
    n_runs = int(metadataset.complete().sum())
    lines = [
        "# finetune benchmark\n",
        f"Meta-dataset: {len(metadataset.tasks)} tasks × {len(metadataset.configs)} "
        f"configurations × {metadataset.max_epochs} epochs; {n_runs} complete runs; "
        f"{float(np.nansum(metadataset.costs)) / 3600:.2f} CPU-hours of finetuning (one thread per run).\n",
        "## Leave-one-task-out normalised regret (mean ± 95% interval over tasks)\n",
        markdown_table(
            [
                {
                    "strategy": r["strategy"],
                    "budget × full run": r["budget_multiple"],
                    "regret": f"{r['regret_mean']:.3f} ± {r['regret_ci95']:.3f}",
                }
                for r in rows
            ]
        ),  # fmt: skip
        "(The incumbent's test score is in the JSON only: it is the configuration's test score at "
        "the best epoch of its full run, optimistic for a run the search stopped early.)\n",
        "Checks (fixed before the result): "
        + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in lodo_extra["checks"].items())
        + "\n",
    ]
    if ensemble_rows:
        lines += ["## Ensembles of the finetuned pools (test; nll/SB = NLL ÷ single best's)\n",
                  markdown_table(ensemble_rows)]  # fmt: skip
    if live_result:
        lines += [
            f"## Live run on {live_result['task']} (held out of the meta-dataset)\n",
            f"Budget {live_result['budget_seconds']:.0f} s (3 × the mean full QA run). "
            f"Zero-shot test exact match {live_result['zero_shot_test']:.3f}.\n",
            markdown_table(
                [
                    {"strategy": s, **{k: v for k, v in live_result[s].items() if k != "config"}}
                    for s in ("quicktune", "default")
                ]
            ),  # fmt: skip
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--live-budget", type=float)
    parser.add_argument("--render", action="store_true", help="rewrite the markdown from the JSON")
    args = parser.parse_args()
    if args.render:
        import json

        from benchmarks.common import RESULTS_DIR

        saved = json.loads((RESULTS_DIR / "finetune.json").read_text())
        markdown = render(
            load_metadataset(), saved["lodo"], saved, saved["ensembles"], saved["live"]
        )
        (RESULTS_DIR / "finetune.md").write_text(markdown)
        print(markdown)
        return
    setup_torch(1)
    seeds = list(range(args.seeds))
    metadataset = load_metadataset()
    rows, lodo_extra = lodo(metadataset, seeds)
    ensemble_rows = ensembles(metadataset)
    live_result = None if args.skip_live else live(metadataset, args.live_budget)
    results = {"lodo": rows, **lodo_extra, "ensembles": ensemble_rows, "live": live_result,
               "runs_complete": int(metadataset.complete().sum()),
               "cpu_hours": float(np.nansum(metadataset.costs)) / 3600}  # fmt: skip
    markdown = render(metadataset, rows, lodo_extra, ensemble_rows, live_result)
    save_results("finetune", results, markdown, seeds)


if __name__ == "__main__":
    main()
