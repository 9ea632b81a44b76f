"""The HTML report of a search: Pareto fronts, conflict heatmap, trade-offs, the selected model."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from autofm.core.pareto import pareto_mask
from autofm.core.report import Report
from autofm.fairness.metrics import DESCRIPTIONS, LABELS
from autofm.fairness.select import Selection

if TYPE_CHECKING:
    from autofm.fairness.search import ManyFairHPO


def pareto_figure(search: ManyFairHPO, selection: Selection | None = None) -> plt.Figure:
    """One panel per fairness metric: (1 − F1, f) of every trial, fronts and the selected model."""
    many = search.trials()
    runs = search.bi_objective_runs()
    metrics = search.objectives_[1:]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        plane = many[["val_f1", f"val_{metric}"]].to_numpy(float)
        axis.scatter(*plane.T, s=10, c="0.75", label="many-objective trials")
        front = plane[pareto_mask(plane)]
        front = front[np.argsort(front[:, 0])]
        axis.step(*front.T, where="post", c="C0", lw=1.5, label="many-objective front")
        if metric in runs and not runs[metric].empty:
            bi = runs[metric][["val_f1", f"val_{metric}"]].to_numpy(float)
            bi_front = bi[pareto_mask(bi)]
            bi_front = bi_front[np.argsort(bi_front[:, 0])]
            axis.step(
                *bi_front.T, where="post", c="C1", lw=1.5, label="bi-objective (1−F1, f) run front"
            )
        if selection is not None:
            axis.scatter(
                selection.val["f1"],
                selection.val[metric],
                marker="*",
                s=160,
                c="C3",
                zorder=5,
                label="selected",
            )
        axis.set_xlabel("1 − F1 (validation)")
        axis.set_ylabel(LABELS[metric])
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def conflict_figure(contrast) -> plt.Figure:
    """Heatmap of the hypervolume contrast matrix (rows: measured metric, columns: run)."""
    values = contrast.to_numpy(float)
    limit = max(float(np.nanmax(np.abs(values))), 1e-9)
    fig, axis = plt.subplots(figsize=(4.6, 3.8))
    image = axis.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
    names = [LABELS[m] for m in contrast.columns]
    axis.set_xticks(range(len(names)), names)
    axis.set_yticks(range(len(names)), [LABELS[m] for m in contrast.index])
    axis.set_xlabel("run optimised for f_j")
    axis.set_ylabel("measured in (1 − F1, f_i)")
    for (i, j), value in np.ndenumerate(values):
        axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=axis, shrink=0.8)
    fig.tight_layout()
    return fig


def tradeoff_figure(search: ManyFairHPO) -> plt.Figure:
    """Pairwise scatter of the fairness metrics over the many-objective Pareto set (validation)."""
    front = search.pareto_front()
    metrics = search.objectives_[1:]
    pairs = list(itertools.combinations(metrics, 2)) or [(metrics[0], metrics[0])]
    cols = min(len(pairs), 3)
    rows = int(np.ceil(len(pairs) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.0 * rows), squeeze=False)
    for axis, (a, b) in zip(axes.ravel(), pairs):
        axis.scatter(front[f"val_{a}"], front[f"val_{b}"], c=front["val_f1"], cmap="viridis", s=14)
        axis.set_xlabel(LABELS[a])
        axis.set_ylabel(LABELS[b])
    for axis in axes.ravel()[len(pairs) :]:
        axis.axis("off")
    fig.suptitle("Pareto set trade-offs (colour: 1 − F1)", fontsize=10)
    fig.tight_layout()
    return fig


def selection_rows(selection: Selection) -> list[dict]:
    """Group-conditional rates of the selected model and the data's base rates."""
    rows = []
    for suffix, name in (("priv", "privileged"), ("unpriv", "unprivileged")):
        rows.append(
            {
                "group": name,
                "base rate P(y=1)": selection.base_rates[f"base_rate_{suffix}"],
                "selection rate P(ŷ=1)": selection.rates[f"selection_rate_{suffix}"],
                "TPR": selection.rates[f"tpr_{suffix}"],
                "FPR": selection.rates[f"fpr_{suffix}"],
                "precision": selection.rates[f"precision_{suffix}"],
            }
        )
    return rows


def build_report(
    search: ManyFairHPO,
    weights: str | Mapping[str, float] | None = None,
    title: str = "ManyFairHPO",
) -> Report:
    """A report section for `search`; with `weights`, also the selected model and its risks."""
    report = Report(title)
    info = search.info_
    report.text(
        f"model {info['model']}, {info['n_rows']} rows ({info['n_test']} held out for test), "
        f"{info['n_folds']}-fold CV; protected attribute {info['protected']!r} with privileged "
        f"value {info['privileged']!r}; objectives: "
        + "; ".join(DESCRIPTIONS[o] for o in search.objectives_)
    )
    selection = search.select(weights) if weights else None
    front = search.pareto_front()
    report.text(
        f"{len(search.trials())} finished trials, {len(front)} Pareto-optimal on validation."
    )
    report.figure(
        pareto_figure(search, selection), "Pareto fronts on validation, one plane per metric"
    )
    if len(search.bi_studies_) >= 2:
        conflicts = search.conflicts()
        report.figure(
            conflict_figure(conflicts["contrast"]),
            "hypervolume contrast C(i, j): positive = optimising f_j hurts the (1 − F1, f_i) trade-off",
        )
        report.table(conflicts["regret"].reset_index())
    if len(search.objectives_) > 2:
        report.figure(tradeoff_figure(search), "pairwise trade-offs between fairness metrics")
    if selection is not None:
        report.heading("Selected model", 3)
        report.text(
            "weights: "
            + ", ".join(f"{k}={v:.2f}" for k, v in selection.weights.items())
            + f"; trial {selection.trial}; params {selection.params}"
        )
        report.table(
            [{"split": "validation", **selection.val}, {"split": "test", **selection.test}]
        )
        report.table(selection_rows(selection))
        if selection.risks:
            report.table(selection.risks)
        else:
            report.text("no risks flagged")
    return report
