"""Leave-one-task-out simulation of finetuning searches on a meta-dataset.

Each task in turn is the new task: the surrogates are meta-trained on the other tasks only, and
every strategy searches the left-out task's configurations by looking up their recorded
epochs (score and seconds), never re-running them. A strategy's trajectory is cumulative
seconds vs its incumbent, the best of the zero-shot model and every epoch trained so far, and
is scored by normalised regret (y_best − y_inc) / (y_best − y_worst), best and worst over all
configurations and epochs of that task, clipped to [0, 1], at budgets that are multiples of the
task's mean cost of one full run.

Strategies: `ours` (QuickTuneOptimizer, refit=False: the paper), `quicktune` (refit=True),
`random` (random order, each to max_epochs), `default` (configuration 0, DEFAULT_CONFIG, to
max_epochs), `portfolio` (static order by mean rank of the final score on the other tasks),
`zero_shot` (no finetuning).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from autofm.core.errors import ValidationError
from autofm.finetune.metadataset import MetaDataset
from autofm.finetune.optimizer import QuickTuneOptimizer
from autofm.finetune.surrogates import CostSurrogate, PerformanceSurrogate

STRATEGIES = ("ours", "quicktune", "random", "default", "portfolio", "zero_shot")
SURROGATE_STRATEGIES = {"ours": False, "quicktune": True}  # name → refit
ZERO_SHOT = -1  # incumbent_config of the zero-shot model


def _lookup(metadataset: MetaDataset, task: int, config_id: int, epoch: int) -> tuple[float, float]:
    score = metadataset.curves[task, config_id, epoch - 1]
    seconds = metadataset.costs[task, config_id, epoch - 1]
    if not (np.isfinite(score) and np.isfinite(seconds)):
        raise ValidationError(
            f"{metadataset.tasks[task]}: config {config_id} epoch {epoch} is not in the "
            "meta-dataset; a simulated search may only ask recorded epochs"
        )
    return float(score), float(seconds)


def evaluate_steps(
    metadataset: MetaDataset,
    task: str,
    steps: Iterable[tuple[int, int]],
    budgets_seconds: Sequence[float],
) -> pd.DataFrame:
    """Replay `steps` ((config_id, epoch) in the order trained) on `task` and return one row
    per budget: regret, incumbent_val, incumbent_test, incumbent_config (-1 = zero-shot),
    incumbent_epoch, epochs_trained and configs_tried within the budget.

    Steps are drawn lazily and only until the cumulative seconds pass the largest budget, so a
    strategy that asks and tells (an optimizer) does no work beyond it. The incumbent's test
    score is the configuration's recorded test score (at its best validation epoch).
    """
    t = metadataset.task_index(task)
    info = metadataset.task_info.get(task, {})
    if "zero_shot_val" not in info or "zero_shot_test" not in info:
        raise ValidationError(
            f"task_info[{task!r}] needs zero_shot_val and zero_shot_test (the incumbent before "
            "any finetuning); rebuild the meta-dataset with zero-shot scores"
        )
    best, worst = np.nanmax(metadataset.curves[t]), np.nanmin(metadataset.curves[t])
    limit = max(budgets_seconds)
    spent, records = 0.0, []
    for config_id, epoch in steps:
        score, seconds = _lookup(metadataset, t, config_id, epoch)
        spent += seconds
        records.append((spent, config_id, epoch, score))
        if spent > limit:
            break
    rows = []
    for budget in budgets_seconds:
        within = [r for r in records if r[0] <= budget]
        incumbent = (float(info["zero_shot_val"]), ZERO_SHOT, 0)
        for _, config_id, epoch, score in within:
            if score > incumbent[0]:
                incumbent = (score, config_id, epoch)
        score, config_id, epoch = incumbent
        test = (
            float(info["zero_shot_test"])
            if config_id == ZERO_SHOT
            else float(metadataset.test_scores[t, config_id])
        )
        regret = (best - score) / (best - worst) if best > worst else 0.0
        rows.append(
            {
                "budget_seconds": float(budget),
                "regret": float(np.clip(regret, 0.0, 1.0)),
                "incumbent_val": score,
                "incumbent_test": test,
                "incumbent_config": int(config_id),
                "incumbent_epoch": int(epoch),
                "epochs_trained": len(within),
                "configs_tried": len({r[1] for r in within}),
            }
        )
    return pd.DataFrame(rows)


def _full_runs(order: Iterable[int], max_epochs: int) -> Iterator[tuple[int, int]]:
    for config_id in order:
        for epoch in range(1, max_epochs + 1):
            yield int(config_id), epoch


def _optimizer_steps(
    optimizer: QuickTuneOptimizer, metadataset: MetaDataset, task: int, pool: np.ndarray
) -> Iterator[tuple[int, int]]:
    while (proposal := optimizer.ask()) is not None:
        config_id, epoch = int(pool[proposal["config_id"]]), proposal["epoch"]
        score, seconds = _lookup(metadataset, task, config_id, epoch)
        optimizer.tell(proposal["config_id"], epoch, score, seconds)
        yield config_id, epoch


def portfolio_order(metadataset: MetaDataset, pool: np.ndarray) -> np.ndarray:
    """`pool` ordered by the mean rank of each configuration's final score over the tasks of
    `metadataset` (rank 1 = best; tasks without the run are skipped; never-run ones last)."""
    final = pd.DataFrame(metadataset.curves[:, pool, -1].T)  # [configs, tasks]
    mean_rank = final.rank(axis=0, ascending=False).mean(axis=1).fillna(np.inf).to_numpy()
    return pool[np.lexsort((pool, mean_rank))]


def run_lodo(
    metadataset: MetaDataset,
    strategies: Sequence[str] = STRATEGIES,
    seeds: Sequence[int] = (0,),
    budgets_multiples: Sequence[float] = (1, 3, 10),
    surrogate_kwargs: dict[str, dict[str, Any]] | None = None,
    optimizer_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Leave each task out in turn and run every strategy on it once per seed: one row per
    task × strategy × seed × budget: task, strategy, seed, budget_multiple (of the task's mean
    full-run cost) and the columns of `evaluate_steps`.

    surrogate_kwargs: {"performance": PerformanceSurrogate kwargs, "cost": CostSurrogate
    kwargs}; the surrogates are meta-trained once per left-out task, on the other tasks only,
    and shared by `ours` and `quicktune` across seeds (a refit works on its own copy).
    optimizer_kwargs: extra QuickTuneOptimizer arguments (e.g. refit_iterations). The
    candidates on a task are its configurations with a complete run.
    """
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise ValidationError(f"unknown strategies {unknown}; choose from {STRATEGIES}")
    if len(metadataset.tasks) < 2:
        raise ValidationError("leave-one-task-out needs a meta-dataset with at least 2 tasks")
    surrogate_kwargs = surrogate_kwargs or {}
    optimizer_kwargs = optimizer_kwargs or {}
    max_epochs = metadataset.max_epochs
    frames = []
    for t, task in enumerate(metadataset.tasks):
        training = metadataset.subset([other for other in metadataset.tasks if other != task])
        pool = np.nonzero(metadataset.complete()[t])[0]
        if not len(pool):
            raise ValidationError(f"task {task!r} has no complete run to search over")
        full_run = float(metadataset.costs[t, pool].sum(axis=1).mean())
        budgets = [m * full_run for m in budgets_multiples]
        if SURROGATE_STRATEGIES.keys() & set(strategies):
            perf = PerformanceSurrogate(**surrogate_kwargs.get("performance", {})).fit(training)
            cost = CostSurrogate(**surrogate_kwargs.get("cost", {})).fit(training)
        for strategy in strategies:
            for seed in seeds:
                if strategy in SURROGATE_STRATEGIES:
                    optimizer = QuickTuneOptimizer(
                        perf,
                        cost,
                        [metadataset.configs[i] for i in pool],
                        metadataset.meta.loc[[task]],
                        max_epochs,
                        refit=SURROGATE_STRATEGIES[strategy],
                        seed=seed,
                        **optimizer_kwargs,
                    )
                    steps = _optimizer_steps(optimizer, metadataset, t, pool)
                elif strategy == "random":
                    steps = _full_runs(np.random.default_rng(seed).permutation(pool), max_epochs)
                elif strategy == "default":
                    if 0 not in pool:
                        raise ValidationError(
                            f"task {task!r} has no complete run of config 0 (the default)"
                        )
                    steps = _full_runs([0], max_epochs)
                elif strategy == "portfolio":
                    steps = _full_runs(portfolio_order(training, pool), max_epochs)
                else:
                    steps = iter(())
                frame = evaluate_steps(metadataset, task, steps, budgets)
                frame.insert(0, "budget_multiple", list(budgets_multiples))
                frame.insert(0, "seed", seed)
                frame.insert(0, "strategy", strategy)
                frame.insert(0, "task", task)
                frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Per strategy × budget_multiple: mean regret and its 95% interval (`regret_mean`,
    `regret_ci95` = 1.96·std/√n) and the same for the incumbent's test score, over tasks (each task's seeds averaged first,
    so that a deterministic strategy's repeated seeds do not narrow its interval)."""
    per_task = frame.groupby(["strategy", "budget_multiple", "task"], sort=False).agg(
        regret=("regret", "mean"), test=("incumbent_test", "mean"), n_seeds=("seed", "nunique")
    )
    grouped = per_task.groupby(level=["strategy", "budget_multiple"], sort=False)

    def interval(values: pd.Series) -> float:
        return float(1.96 * values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0

    return grouped.agg(
        regret_mean=("regret", "mean"),
        regret_ci95=("regret", interval),
        test_mean=("test", "mean"),
        test_ci95=("test", interval),
        n_tasks=("regret", "size"),
        n_seeds=("n_seeds", "max"),
    ).reset_index()
