"""Benchmark of autofm.icl: the shipped PFNs against the exact posterior predictive of their priors.

For each shipped checkpoint (icl-steps, icl-sine-line, icl-gp, icl-counting) on fresh prior draws
(seeds below, never used in training, whose generator seeds were 0): the NLL gap to the exact PPD
in nats per query point, the mean squared difference of the predictive means and the per-task
maximum absolute mean difference; then the four experiments of the paper (steps on linear data,
sines + lines on 0.2·sin(3πx)+0.23·x, counting, GP). The exact posterior is the anchor; timings
are the PFN's forward pass against the exact computation, in the same run.

Targets (issue 4): GP nll_gap ≤ 0.05 nats/point with ≤ 50 context points; step PFN on linear data
within 0.05 (max abs) of the exact PPD mean on a 100-point grid.

Also reported: each PFN's bucket floor (`experiments.bucket_floor`), the part of the nll_gap that
its bar distribution's resolution alone imposes, and that floor for 100, 400 and 1000 buckets.

Run: AUTOFM_THREADS=1 python -m benchmarks.icl   (a few minutes on one thread)
"""

from __future__ import annotations

import time

import numpy as np
import torch

from autofm.core.errors import ValidationError
from autofm.core.progress import status
from autofm.core.report import Report
from autofm.core.runtime import setup_torch
from autofm.icl import experiments
from autofm.icl.pretrained import RECIPES, load_pfn, make_prior, prior_borders
from autofm.pfn.bar_distribution import BarDistribution
from benchmarks.common import RESULTS_DIR, markdown_table, mean_std, save_results

SEEDS = (101, 102, 103)
N_TASKS = 64  # per context size and seed
N_QUERY = 50
LINEAR_CONTEXT_SIZES = (5, 10, 20, 40)


def _timing(model, prior, seed: int) -> dict[str, float]:
    """Seconds per task: the PFN's forward pass vs the exact posterior predictive."""
    batch = prior.sample(64, 20, N_QUERY, 1, torch.Generator().manual_seed(seed))
    started = time.perf_counter()
    _ = model.predict(batch.x_context, batch.y_context, batch.x_query).mean
    pfn_seconds = time.perf_counter() - started
    started = time.perf_counter()
    exact = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
    _ = exact.mean
    exact_seconds = time.perf_counter() - started
    return {
        "pfn_ms_per_task": 1000 * pfn_seconds / 64,
        "exact_ms_per_task": 1000 * exact_seconds / 64,
    }


def _bucket_floor(name: str, model, prior) -> dict | None:
    """The nll_gap the PFN's buckets alone impose (None where the PPD has no cdf)."""
    if model.distribution is None:
        return None
    try:
        return experiments.bucket_floor(
            prior,
            model.distribution,
            n_tasks=16,
            n_query=N_QUERY,
            context_sizes=experiments.DEFAULT_CONTEXT_SIZES[name],
            seed=SEEDS[0],
        )
    except ValidationError:
        return None


def _floors_by_bucket_count(counts=(100, 400, 1000)) -> list[dict]:
    """Bucket floors of the GP and step priors for several bucket counts (why 1000 buckets)."""
    rows = []
    for name in ("gp", "steps"):
        prior = make_prior(name)
        row: dict = {"prior": name}
        for count in counts:
            borders = prior_borders(prior, count, RECIPES[name].model.max_context)
            floor = experiments.bucket_floor(
                prior,
                BarDistribution(borders),
                n_tasks=16,
                n_query=N_QUERY,
                context_sizes=experiments.DEFAULT_CONTEXT_SIZES[name],
                seed=SEEDS[0],
            )
            row[f"{count} buckets"] = floor["floor"]
        rows.append(row)
    return rows


def main() -> None:
    setup_torch()
    report = Report("autofm icl benchmark: PFNs vs exact posteriors")
    models, metas = {}, {}
    for name in RECIPES:
        models[name], metas[name] = load_pfn(name)
    results: dict = {
        "checkpoints": {},
        "in_distribution": {},
        "in_distribution_floor": {},
        "experiments": {},
        "timing": {},
    }
    rows = []
    for name, model in models.items():
        provenance = metas[name]["provenance"]
        results["checkpoints"][name] = {
            "steps": provenance.get("steps"),
            "train_seconds": provenance.get("train_seconds"),
            "n_parameters": metas[name]["n_parameters"],
        }
        prior = make_prior(name)
        per_seed = []
        for seed in SEEDS:
            status(f"icl benchmark: {name}, seed {seed}")
            per_seed.append(
                experiments.compare(model, prior, n_tasks=N_TASKS, n_query=N_QUERY, seed=seed)
            )
        results["in_distribution"][name] = per_seed
        results["timing"][name] = _timing(model, prior, SEEDS[0])
        floor = _bucket_floor(name, model, prior)
        results["in_distribution_floor"][name] = floor
        gap, gap_std = mean_std([r["nll_gap"] for r in per_seed])
        mse, _ = mean_std([r["mean_mse"] for r in per_seed])
        max_diff, _ = mean_std([r["max_abs_mean_diff"] for r in per_seed])
        rows.append(
            {
                "prior": name,
                "train steps": provenance.get("steps"),
                "nll_gap (nats/pt)": gap,
                "± (seeds)": gap_std,
                "mean_mse": mse,
                "max_abs_mean_diff": max_diff,
                "bucket floor": floor["floor"] if floor else None,
                "exact NLL": float(np.mean([r["exact_nll"] for r in per_seed])),
                "PFN ms/task": results["timing"][name]["pfn_ms_per_task"],
                "exact ms/task": results["timing"][name]["exact_ms_per_task"],
            }
        )
    by_context_rows = []
    for name, per_seed in results["in_distribution"].items():
        for index, row in enumerate(per_seed[0]["by_context"]):
            gaps = [r["by_context"][index]["nll_gap"] for r in per_seed]
            by_context_rows.append(
                {
                    "prior": name,
                    "n_context": row["n_context"],
                    "nll_gap": float(np.mean(gaps)),
                    "mean_mse": float(
                        np.mean([r["by_context"][index]["mean_mse"] for r in per_seed])
                    ),
                }
            )

    status("icl benchmark: experiments")
    report.heading("The four experiments")
    exp = results["experiments"]
    exp["steps_on_linear_by_n"] = {
        n: experiments.steps_on_linear(
            models["steps"],
            make_prior("steps"),
            n_context=n,
            n_datasets=10,
            seed=SEEDS[0],
            report=report if n == 20 else None,
        )
        for n in LINEAR_CONTEXT_SIZES
    }
    exp["steps_on_linear"] = exp["steps_on_linear_by_n"][20]
    exp["sines_and_lines"] = experiments.sines_and_lines(
        models["sine-line"], make_prior("sine-line"), n_datasets=10, seed=SEEDS[0], report=report
    )
    exp["counting"] = experiments.counting(
        models["counting"], make_prior("counting"), report=report
    )
    exp["gp"] = experiments.gp_posterior(
        models["gp"], make_prior("gp"), n_tasks=N_TASKS, seed=SEEDS[0], report=report
    )

    steps = exp["steps_on_linear"]
    gp_gap = rows[[r["prior"] for r in rows].index("gp")]["nll_gap (nats/pt)"]
    targets = [
        {
            "target": "GP nll_gap ≤ 0.05 nats/point (≤ 50 context points)",
            "measured": gp_gap,
            "met": bool(gp_gap <= 0.05),
        },
        {
            "target": "steps PFN on linear data (20 points): max abs(PFN − PPD mean) ≤ 0.05, 100-pt grid",
            "measured": steps["max_abs_mean_diff"],
            "met": bool(steps["max_abs_mean_diff"] <= 0.05),
        },
    ]
    results["targets"] = targets
    sine_rows = [
        {
            "n_context": r["n_context"],
            "P(sine) exact": r["p_sine_exact"],
            "exact MSE to truth": r["exact_mse_to_truth"],
            "PFN MSE to truth": r["pfn_mse_to_truth"],
            "nll_gap": r["nll_gap"],
            "max_abs_mean_diff": r["max_abs_mean_diff"],
        }
        for r in exp["sines_and_lines"]["by_context"]
    ]
    counting_rows = [
        {"k": r["k"], "PFN P(1)": r["pfn"], "exact P(1)": r["exact"], "(k+1)/(k+2)": r["laplace"]}
        for r in exp["counting"]["by_k"]
        if r["k"] in (1, 2, 4, 8, 16, 32, 64)
    ]
    gp_out = [
        {
            "n_context": r["n_context"],
            "nll_gap": r["nll_gap"],
            "mean_mse": r["mean_mse"],
            "max_abs_mean_diff": r["max_abs_mean_diff"],
        }
        for r in exp["gp"]["sine_plus_line"]
    ]
    floor_rows = _floors_by_bucket_count()
    results["bucket_floor_by_count"] = floor_rows
    markdown = (
        "### In distribution (fresh prior draws; mean over seeds "
        f"{list(SEEDS)}, {N_TASKS} tasks × {N_QUERY} queries per context size and seed)\n\n"
        + markdown_table(rows, digits=4)
        + "\n### By context size (nll_gap, nats per query point)\n\n"
        + markdown_table(by_context_rows, digits=4)
        + "\n### Bucket floor: the nll_gap the bar distribution alone imposes (exact PPD "
        "discretised onto K buckets from the prior's quantiles; 16 tasks × 50 queries per context "
        f"size, seed {SEEDS[0]})\n\n"
        + markdown_table(floor_rows, digits=4)
        + "\n### Targets\n\n"
        + markdown_table(targets, digits=4)
        + "\n### 1. Steps PFN on linear data y = x − 0.5 + ε (10 datasets per size; the target "
        "row is n = 20)\n\n"
        + markdown_table(
            [
                {
                    "n_context": n,
                    "max_abs_mean_diff (mean)": r["max_abs_mean_diff"],
                    "max_abs_mean_diff (worst)": r["max_abs_mean_diff_worst"],
                    "mean_mse": r["mean_mse"],
                    "nll_gap": r["nll_gap"],
                    "largest jump, PFN": r["max_jump_pfn"],
                    "largest jump, exact": r["max_jump_exact"],
                }
                for n, r in exp["steps_on_linear_by_n"].items()
            ],
            digits=4,
        )
        + "\n### 2. Sines + lines on 0.2·sin(3πx) + 0.23·x (10 datasets per size)\n\n"
        + markdown_table(sine_rows, digits=4)
        + "\n### 3. Counting: k ones in a row\n\n"
        + markdown_table(counting_rows, digits=4)
        + f"\nmax |PFN − exact| over k = 1…64: {exp['counting']['max_abs_mean_diff']:.4f}; "
        f"mean KL(exact ‖ PFN): {exp['counting']['nll_gap']:.4f} nats\n"
        + "\n### 4. GP PFN on 0.2·sin(3πx) + 0.23·x (out of the training draws)\n\n"
        + markdown_table(gp_out, digits=4)
    )
    report.heading("Tables")
    report.table(rows)
    report.table(targets)
    report.save(RESULTS_DIR / "icl.html")
    save_results("icl", results, markdown, SEEDS)


if __name__ == "__main__":
    main()
