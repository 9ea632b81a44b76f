"""Tour step: a small model pool on breast_cancer, every fast ensembler, and the neural one."""

from __future__ import annotations

from pathlib import Path

from autofm.core.runtime import setup_torch
from autofm.core.tour import TourStep
from autofm.data.tables import load_sklearn
from autofm.ensemble.comparison import compare, comparison_report
from autofm.ensemble.pool import save_pool
from autofm.ensemble.pool_builder import build_pool

TOUR_METHODS = (
    "single-best",
    "top-5",
    "quick",
    "greedy",
    "pseudo-bma",
    "softmax-ma",
    "stacking",
    "neural-ma",
    "neural-stack",
)


def step(workdir: Path, seed: int) -> TourStep:
    """Build a 14-model pool on breast_cancer, compare ensemblers on its test split."""
    setup_torch()
    X, y = load_sklearn("breast_cancer")
    pool = build_pool(X.to_numpy(dtype=float), y.to_numpy(), random_state=seed, grid_size="small")
    save_pool(pool, workdir / "pool")
    comparison = compare(pool, TOUR_METHODS, random_state=seed)
    results = comparison.results
    best = min(results, key=lambda name: results[name]["nll"])
    report = comparison_report(comparison, "ensemble: post-hoc ensembling on breast_cancer")
    summary = (
        f"{pool.n_models} models; test NLL/SingleBest: greedy "
        f"{results['greedy']['normalized_nll']:.3f}, neural-ma "
        f"{results['neural-ma']['normalized_nll']:.3f}; best {best}"
    )
    metrics = {
        f"{name}_normalized_nll": values["normalized_nll"] for name, values in results.items()
    }
    metrics["n_models"] = pool.n_models
    return TourStep("ensemble", summary, metrics, report)
