"""The "Bayes' power" experiments: how close is a trained PFN to the exact posterior predictive?

Three numbers compare a PFN with the exact PPD of its prior on the same data:
  nll_gap            mean over query points of  NLL(PFN) − NLL(exact PPD)  in nats per point
                     (≥ 0 in expectation on draws from the prior: the PPD is the Bayes-optimal
                     predictor there);
  mean_mse           mean squared difference between the PFN's and the PPD's predictive means;
  max_abs_mean_diff  per task, the largest |PFN mean − PPD mean| over its query points, averaged
                     over tasks.
`compare` measures them on fresh prior draws; the four experiment functions reproduce the
paper's demonstrations (steps on linear data, sines + lines, counting, GP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from autofm.core.errors import ValidationError
from autofm.core.report import Report
from autofm.icl.priors import CountingPrior, GPPrior, PhaseSinePrior, SineLinePrior, StepPrior
from autofm.icl.transformer import PFN
from autofm.pfn.bar_distribution import BarDistribution
from autofm.pfn.prior import Prior

DEFAULT_CONTEXT_SIZES = {
    "steps": (0, 5, 10, 20, 50, 100),
    "sine-line": (0, 5, 10, 20, 40, 80),
    "phase-sines": (0, 5, 10, 20, 50),
    "gp": (0, 5, 10, 20, 30, 50),
    "counting": (0, 1, 5, 10, 20, 50, 100),
}


def sine_plus_line(x: torch.Tensor) -> torch.Tensor:
    """The out-of-family function of experiment 2: 0.2·sin(3πx) + 0.23·x."""
    return 0.2 * torch.sin(3 * math.pi * x) + 0.23 * x


def agreement(pfn_prediction, exact, y_query: torch.Tensor) -> dict[str, float]:
    """nll_gap, mean_mse and max_abs_mean_diff between a PFN prediction and an exact predictive."""
    pfn_log = pfn_prediction.log_density(y_query).double()
    exact_log = exact.log_density(y_query).double()
    difference = pfn_prediction.mean.double() - exact.mean.double()
    return {
        "nll_gap": float((exact_log - pfn_log).mean()),
        "mean_mse": float((difference**2).mean()),
        "max_abs_mean_diff": float(difference.abs().amax(-1).mean()),
        "pfn_nll": float(-pfn_log.mean()),
        "exact_nll": float(-exact_log.mean()),
    }


def compare(
    model: PFN,
    prior: Prior,
    *,
    n_tasks: int = 64,
    n_query: int = 20,
    context_sizes: Sequence[int] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """PFN vs exact PPD on fresh prior draws, `n_tasks` per context size; pooled and per size."""
    if n_tasks < 1 or n_query < 1:
        raise ValidationError(f"n_tasks and n_query must be ≥ 1, got {n_tasks}, {n_query}")
    if context_sizes is None:
        name = next((k for k, v in _PRIOR_TYPES.items() if isinstance(prior, v)), "gp")
        context_sizes = DEFAULT_CONTEXT_SIZES[name]
    context_sizes = [n for n in context_sizes if n <= model.config.max_context]
    if not context_sizes:
        raise ValidationError(
            f"no context size within the PFN's max_context ({model.config.max_context})"
        )
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for n_context in context_sizes:
        batch = prior.sample(n_tasks, n_context, n_query, model.config.n_features, generator)
        exact = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
        prediction = model.predict(batch.x_context, batch.y_context, batch.x_query)
        rows.append({"n_context": n_context, **agreement(prediction, exact, batch.y_query)})
    pooled = {
        key: float(np.mean([row[key] for row in rows])) for key in rows[0] if key != "n_context"
    }
    return {
        **pooled,
        "n_tasks_per_size": n_tasks,
        "n_query": n_query,
        "seed": seed,
        "by_context": rows,
    }


def bucket_floor(
    prior: Prior,
    distribution: BarDistribution,
    *,
    n_tasks: int = 64,
    n_query: int = 20,
    context_sizes: Sequence[int] = DEFAULT_CONTEXT_SIZES["gp"],
    seed: int = 0,
) -> dict[str, Any]:
    """The smallest nll_gap any network with these buckets can reach on `prior`'s draws.

    The best logits of a bar distribution for a known predictive are the log of its bucket
    masses (the within-bucket shapes are fixed: flat, or half-normal in the tails), so the NLL of
    the exact PPD discretised onto the buckets, minus the exact NLL, is the part of a PFN's gap
    that comes from the bucket resolution alone and no training can remove. Needs an exact
    predictive with a `cdf` (the GP and the step prior).
    """
    generator = torch.Generator().manual_seed(seed)
    inner = distribution.borders.double().clone()
    inner[0], inner[-1] = -math.inf, math.inf
    rows = []
    for n_context in context_sizes:
        batch = prior.sample(n_tasks, n_context, n_query, 1, generator)
        exact = prior.posterior_predictive(batch.x_context, batch.y_context, batch.x_query)
        if not hasattr(exact, "cdf"):
            raise ValidationError(f"{type(exact).__name__} has no cdf; bucket_floor needs one")
        thresholds = inner.expand(*batch.y_query.shape, -1)
        cdf = exact.cdf(thresholds)
        log_mass = torch.log((cdf[..., 1:] - cdf[..., :-1]).clamp_min(1e-300))
        discretised = distribution.log_density(log_mass.float(), batch.y_query).double()
        gap = exact.log_density(batch.y_query).double() - discretised
        rows.append({"n_context": n_context, "floor": float(gap.mean())})
    return {
        "floor": float(np.mean([row["floor"] for row in rows])),
        "n_buckets": distribution.n_buckets,
        "by_context": rows,
    }


_PRIOR_TYPES = {
    "steps": StepPrior,
    "sine-line": SineLinePrior,
    "phase-sines": PhaseSinePrior,
    "counting": CountingPrior,
    "gp": GPPrior,
}


def _context_and_grid(n_context: int, generator: torch.Generator, n_grid: int = 100):
    x_context = torch.rand(1, n_context, 1, generator=generator)
    grid = torch.linspace(0.0, 1.0, n_grid)[None, :, None]
    return x_context, grid


def steps_on_linear(
    model: PFN,
    prior: StepPrior,
    *,
    n_context: int = 20,
    n_datasets: int = 10,
    slope: float = 1.0,
    intercept: float = -0.5,
    seed: int = 0,
    report: Report | None = None,
) -> dict[str, Any]:
    """Experiment 1: a step-function PFN on noisy linear data y = slope·x + intercept + ε.

    On a 100-point grid: max |PFN mean − PPD mean| per dataset, the agreement numbers against
    noisy targets on the grid, and the largest jump between neighbouring grid points of each mean
    (small for a smooth curve; a single step function jumps by its height).
    """
    generator = torch.Generator().manual_seed(seed)
    rows, curves = [], []
    for dataset in range(n_datasets):
        x_context, grid = _context_and_grid(n_context, generator)
        line = lambda x: slope * x + intercept  # noqa: E731
        y_context = line(x_context[..., 0]) + prior.noise_std * torch.randn(
            1, n_context, generator=generator
        )
        y_grid = line(grid[..., 0]) + prior.noise_std * torch.randn(1, 100, generator=generator)
        exact = prior.posterior_predictive(x_context, y_context, grid)
        prediction = model.predict(x_context, y_context, grid)
        numbers = agreement(prediction, exact, y_grid)
        numbers["max_jump_pfn"] = float(prediction.mean.diff(dim=-1).abs().max())
        numbers["max_jump_exact"] = float(exact.mean.diff(dim=-1).abs().max())
        rows.append({"dataset": dataset, **numbers})
        curves.append((x_context, y_context, grid, prediction, exact))
    result = _summarise(rows, "max_abs_mean_diff")
    result.update(n_context=n_context, slope=slope, intercept=intercept, datasets=rows)
    if report is not None:
        x_context, y_context, grid, prediction, exact = curves[0]
        fig, axis = plt.subplots(figsize=(6.5, 3.6))
        axis.scatter(x_context[0, :, 0], y_context[0], s=14, color="k", label="context (linear)")
        axis.plot(grid[0, :, 0], exact.mean[0], lw=2.5, alpha=0.6, label="exact PPD mean")
        axis.plot(grid[0, :, 0], prediction.mean[0], "--", lw=1.5, label="PFN mean")
        axis.fill_between(
            grid[0, :, 0],
            prediction.quantile(0.05)[0],
            prediction.quantile(0.95)[0],
            alpha=0.15,
            label="PFN 90% interval",
        )
        axis.set_xlabel("x")
        axis.legend(fontsize=8)
        report.heading("1. Step-function prior on linear data", 3)
        report.figure(
            fig,
            "A PFN trained only on step functions, given linear data: like the exact posterior "
            "predictive, it predicts a smooth curve (an average over many steps).",
        )
        report.table([{k: v for k, v in r.items() if k != "dataset"} for r in rows[:5]])
    return result


def _summarise(rows: list[dict[str, Any]], headline: str) -> dict[str, Any]:
    keys = [k for k in rows[0] if k not in ("dataset", "n_context", "k")]
    summary = {key: float(np.mean([row[key] for row in rows])) for key in keys}
    summary[f"{headline}_worst"] = float(np.max([row[headline] for row in rows]))
    return summary


def sines_and_lines(
    model: PFN,
    prior: SineLinePrior,
    *,
    context_sizes: Sequence[int] = (10, 20, 40, 80),
    n_datasets: int = 5,
    seed: int = 0,
    report: Report | None = None,
) -> dict[str, Any]:
    """Experiment 2: data from 0.2·sin(3πx) + 0.23·x, more and more context points.

    Per size (averaged over datasets): P(sine family | data) under the exact posterior, the MSE of
    the exact PPD mean and of the PFN mean to the true function on a 100-point grid, and the
    PFN-vs-PPD agreement numbers against noisy targets on the grid.
    """
    generator = torch.Generator().manual_seed(seed)
    rows, examples = [], {}
    for n_context in context_sizes:
        per_dataset = []
        for _ in range(n_datasets):
            x_context, grid = _context_and_grid(n_context, generator)
            y_context = sine_plus_line(x_context[..., 0]) + prior.noise_std * torch.randn(
                1, n_context, generator=generator
            )
            truth = sine_plus_line(grid[..., 0])
            y_grid = truth + prior.noise_std * torch.randn(truth.shape, generator=generator)
            exact = prior.posterior_predictive(x_context, y_context, grid)
            prediction = model.predict(x_context, y_context, grid)
            numbers = agreement(prediction, exact, y_grid)
            numbers["p_sine_exact"] = float(prior.family_posterior(x_context, y_context)[0])
            numbers["exact_mse_to_truth"] = float(((exact.mean - truth) ** 2).mean())
            numbers["pfn_mse_to_truth"] = float(((prediction.mean - truth) ** 2).mean())
            per_dataset.append(numbers)
            examples.setdefault(n_context, (x_context, y_context, grid, truth, prediction, exact))
        rows.append(
            {
                "n_context": n_context,
                **{k: float(np.mean([d[k] for d in per_dataset])) for k in per_dataset[0]},
            }
        )
    if report is not None:
        fig, axes = plt.subplots(1, len(context_sizes), figsize=(3.2 * len(context_sizes), 3))
        for axis, n_context in zip(np.atleast_1d(axes), context_sizes):
            x_context, y_context, grid, truth, prediction, exact = examples[n_context]
            axis.scatter(x_context[0, :, 0], y_context[0], s=8, color="k")
            axis.plot(grid[0, :, 0], truth[0], color="gray", lw=1, label="0.2 sin(3πx)+0.23x")
            axis.plot(grid[0, :, 0], exact.mean[0], lw=2.5, alpha=0.6, label="exact PPD")
            axis.plot(grid[0, :, 0], prediction.mean[0], "--", lw=1.5, label="PFN")
            axis.set_title(f"{n_context} points")
        np.atleast_1d(axes)[0].legend(fontsize=7)
        report.heading("2. Sines + lines prior on a sine plus a line", 3)
        report.figure(fig, "Exact PPD and PFN means as the context grows.")
        report.table(rows)
    return {"by_context": rows, "n_datasets": n_datasets}


def counting(
    model: PFN,
    prior: CountingPrior,
    *,
    max_ones: int = 64,
    report: Report | None = None,
) -> dict[str, Any]:
    """Experiment 3: k ones in the context (k = 1..max_ones); PFN's P(1) vs the exact PPD.

    `nll_gap` here is KL(exact PPD ‖ PFN) for the next flip: the expected NLL gap if the next flip
    followed the exact PPD.
    """
    ks = [k for k in range(1, max_ones + 1) if k <= model.config.max_context]
    rows = []
    for k in ks:
        x_context, y_context = torch.zeros(1, k, 1), torch.ones(1, k)
        x_query = torch.zeros(1, 1, 1)
        exact = float(prior.posterior_predictive(x_context, y_context, x_query).mean[0, 0])
        pfn = float(model.predict(x_context, y_context, x_query).mean[0, 0])
        kl = exact * math.log(exact / pfn) + (1 - exact) * math.log((1 - exact) / (1 - pfn))
        rows.append({"k": k, "pfn": pfn, "exact": exact, "laplace": (k + 1) / (k + 2), "kl": kl})
    diffs = np.array([r["pfn"] - r["exact"] for r in rows])
    result = {
        "nll_gap": float(np.mean([r["kl"] for r in rows])),
        "mean_mse": float(np.mean(diffs**2)),
        "max_abs_mean_diff": float(np.abs(diffs).max()),
        "exact_vs_laplace_max_abs": float(max(abs(r["exact"] - r["laplace"]) for r in rows)),
        "by_k": rows,
    }
    if report is not None:
        fig, axis = plt.subplots(figsize=(6.5, 3.4))
        k_values = [r["k"] for r in rows]
        axis.plot(k_values, [1 - r["exact"] for r in rows], lw=2.5, alpha=0.6, label="exact PPD")
        axis.plot(k_values, [1 - r["pfn"] for r in rows], "--", label="PFN")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("k ones in the context")
        axis.set_ylabel("P(next flip = 0)")
        axis.legend()
        report.heading("3. Counting: k ones in a row", 3)
        report.figure(fig, "Exact PPD (≈ Laplace's (k+1)/(k+2)) vs the PFN, on log axes.")
        report.table({f"k={r['k']}": r for r in rows if r["k"] in (1, 2, 4, 8, 16, 32, 64)})
    return result


def gp_posterior(
    model: PFN,
    prior: GPPrior,
    *,
    n_tasks: int = 64,
    seed: int = 0,
    report: Report | None = None,
) -> dict[str, Any]:
    """Experiment 4: GP PFN vs the closed-form GP posterior, in-distribution and on 0.2 sin+0.23x."""
    in_distribution = compare(model, prior, n_tasks=n_tasks, n_query=50, seed=seed)
    generator = torch.Generator().manual_seed(seed + 1)
    out_rows = []
    for n_context in (10, 20, 50):
        x_context = torch.rand(n_tasks, n_context, 1, generator=generator)
        x_query = torch.rand(n_tasks, 50, 1, generator=generator)
        y_context = sine_plus_line(x_context[..., 0]) + prior.noise_std * torch.randn(
            n_tasks, n_context, generator=generator
        )
        y_query = sine_plus_line(x_query[..., 0]) + prior.noise_std * torch.randn(
            n_tasks, 50, generator=generator
        )
        exact = prior.posterior_predictive(x_context, y_context, x_query)
        prediction = model.predict(x_context, y_context, x_query)
        out_rows.append({"n_context": n_context, **agreement(prediction, exact, y_query)})
    if report is not None:
        batch = prior.sample(1, 8, 0, 1, torch.Generator().manual_seed(seed + 2))
        grid = torch.linspace(0.0, 1.0, 200)[None, :, None]
        exact = prior.posterior_predictive(batch.x_context, batch.y_context, grid)
        prediction = model.predict(batch.x_context, batch.y_context, grid)
        x = grid[0, :, 0]
        spread = 1.6449 * exact.variance[0].sqrt()
        fig, axis = plt.subplots(figsize=(6.5, 3.6))
        axis.fill_between(
            x, exact.mean[0] - spread, exact.mean[0] + spread, alpha=0.2, label="GP posterior 90%"
        )
        axis.plot(x, exact.mean[0], lw=2.5, alpha=0.6, label="GP posterior mean")
        axis.plot(x, prediction.mean[0], "--", label="PFN mean")
        axis.plot(x, prediction.quantile(0.05)[0], ":", color="C1", lw=1)
        axis.plot(x, prediction.quantile(0.95)[0], ":", color="C1", lw=1, label="PFN 90%")
        axis.scatter(batch.x_context[0, :, 0], batch.y_context[0], color="k", s=14, zorder=3)
        axis.legend(fontsize=8)
        report.heading("4. GP prior: PFN vs the closed-form posterior", 3)
        report.figure(fig, "One GP draw with 8 context points.")
        report.table(in_distribution["by_context"])
    return {"in_distribution": in_distribution, "sine_plus_line": out_rows}


def run_all(
    models: dict[str, PFN], *, seed: int = 0, quick: bool = False, report: Report | None = None
) -> dict[str, Any]:
    """Run the four experiments for the PFNs given ({'steps', 'sine-line', 'counting', 'gp'})."""
    results: dict[str, Any] = {}
    if "steps" in models:
        results["steps_on_linear"] = steps_on_linear(
            models["steps"], StepPrior(), n_datasets=3 if quick else 10, seed=seed, report=report
        )
    if "sine-line" in models:
        results["sines_and_lines"] = sines_and_lines(
            models["sine-line"],
            SineLinePrior(),
            n_datasets=2 if quick else 5,
            seed=seed,
            report=report,
        )
    if "counting" in models:
        results["counting"] = counting(models["counting"], CountingPrior(), report=report)
    if "gp" in models:
        results["gp"] = gp_posterior(
            models["gp"], GPPrior(), n_tasks=16 if quick else 64, seed=seed, report=report
        )
    return results
