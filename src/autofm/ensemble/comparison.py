"""Every strategy under one name, fitted on a pool's validation split and scored on its test split."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np

from autofm.core.progress import progress
from autofm.core.report import Report
from autofm.ensemble.base import BaseEnsembler
from autofm.ensemble.methods import DEFAULT_METHODS, make_ensembler
from autofm.ensemble.metrics import all_metrics, ambiguity, disagreement, reliability_curve
from autofm.ensemble.pool import Pool

REFERENCE = "single-best"


@dataclass
class Comparison:
    """Test metrics per method, the fitted ensemblers and their test probabilities."""

    pool: Pool
    results: dict[str, dict[str, float]]
    ensemblers: dict[str, BaseEnsembler] = field(default_factory=dict)
    test_proba: dict[str, np.ndarray] = field(default_factory=dict)
    dropped_models: list[str] = field(default_factory=list)


def fit_and_score(ensembler: BaseEnsembler, pool: Pool) -> tuple[dict[str, float], np.ndarray]:
    """Fit on the pool's validation split; test metrics (+ fit seconds, diversity) and test probs."""
    started = time.perf_counter()
    ensembler.fit(pool.val_predictions, pool.val_labels)
    fit_seconds = time.perf_counter() - started
    proba = ensembler.predict_proba(pool.test_predictions)
    metrics = all_metrics(proba, pool.test_labels)
    metrics["fit_seconds"] = fit_seconds
    mean_weights = ensembler.weights(pool.test_predictions).mean(axis=0)
    metrics["n_models_used"] = int(np.sum(mean_weights > 1e-3))
    metrics["disagreement"] = disagreement(pool.test_predictions, mean_weights)
    metrics["ambiguity"] = ambiguity(pool.test_predictions, mean_weights)
    return metrics, proba


def compare(
    pool: Pool, methods: Sequence[str] | None = None, random_state: int | None = 0
) -> Comparison:
    """Fit every method in `methods` (default DEFAULT_METHODS) and normalise by SingleBest.

    Failed models are dropped first. normalized_nll/normalized_error are a method's test NLL/error
    divided by SingleBest's (fitted here even if not asked for); below 1 is better; NaN where
    SingleBest's value is 0.
    """
    methods = list(methods or DEFAULT_METHODS)
    for method in methods:
        make_ensembler(method)
    usable = pool.usable()
    dropped = [n for n, bad in zip(pool.model_names, pool.failed()) if bad]
    comparison = Comparison(usable, {}, dropped_models=dropped)
    to_fit = methods if REFERENCE in methods else [REFERENCE, *methods]
    for method in progress(to_fit, desc="ensembling"):
        ensembler = make_ensembler(method, random_state)
        metrics, proba = fit_and_score(ensembler, usable)
        comparison.results[method] = metrics
        comparison.ensemblers[method] = ensembler
        comparison.test_proba[method] = proba
    reference = comparison.results[REFERENCE]
    for metrics in comparison.results.values():
        metrics["normalized_nll"] = normalized(metrics["nll"], reference["nll"])
        metrics["normalized_error"] = normalized(metrics["error"], reference["error"])
    if REFERENCE not in methods:
        for store in (comparison.results, comparison.ensemblers, comparison.test_proba):
            store.pop(REFERENCE)
    return comparison


def normalized(value: float, reference: float) -> float:
    """value / reference; NaN when the reference is 0 (a perfect SingleBest: the ratio is undefined)."""
    if reference == 0:
        return float("nan")
    return value / reference


def comparison_report(comparison: Comparison, title: str = "ensemble comparison") -> Report:
    """HTML report: metrics table, normalised NLL/error bars, weights heatmap, reliability."""
    pool = comparison.pool
    report = Report(title)
    report.text(
        f"{pool.n_models} base models, {pool.n_classes} classes, "
        f"{len(pool.val_labels)} validation and {len(pool.test_labels)} test samples."
        + (
            f" Dropped failed models: {', '.join(comparison.dropped_models)}."
            if comparison.dropped_models
            else ""
        )
    )
    rows = [
        {"method": name, **{k: v for k, v in metrics.items()}}
        for name, metrics in comparison.results.items()
    ]
    report.table(rows)
    names = list(comparison.results)
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.35 * len(names) + 1.5), sharey=True)
    for axis, key in zip(axes, ("normalized_nll", "normalized_error")):
        values = [comparison.results[n][key] for n in names]
        axis.barh(
            names, values, color=["#3a7" if v < 1 else "#c55" if v > 1 else "#999" for v in values]
        )
        axis.axvline(1.0, color="k", lw=0.8)
        axis.set_title(f"test {key.replace('_', ' ')} (SingleBest = 1)")
    axes[0].invert_yaxis()
    report.figure(
        fig, "Test NLL and error of each method divided by SingleBest's; below 1 is better."
    )
    weights = np.stack(
        [comparison.ensemblers[n].weights(pool.test_predictions).mean(axis=0) for n in names]
    )
    fig, axis = plt.subplots(figsize=(min(16, 2 + 0.25 * pool.n_models), 0.35 * len(names) + 1.5))
    image = axis.imshow(weights, aspect="auto", cmap="viridis")
    axis.set_yticks(range(len(names)), names)
    axis.set_xticks(range(pool.n_models), pool.model_names, rotation=90, fontsize=6)
    fig.colorbar(image, ax=axis, label="mean weight on test samples")
    report.figure(
        fig,
        "Ensemble weights per method (per-sample methods: mean over test samples; stacking: "
        "share of coefficient or saliency).",
    )
    shown = [
        n for n in ("single-best", "greedy", "neural-ma", "neural-stack") if n in names
    ] or names[:3]
    fig, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], "k--", lw=0.8)
    for name in shown:
        confidence, accuracy, counts = reliability_curve(
            comparison.test_proba[name], pool.test_labels
        )
        filled = counts > 0
        axis.plot(confidence[filled], accuracy[filled], "o-", label=name)
    axis.set_xlabel("confidence")
    axis.set_ylabel("accuracy")
    axis.legend()
    report.figure(
        fig, "Reliability diagram on the test split (the diagonal is perfect calibration)."
    )
    return report
