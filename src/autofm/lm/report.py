"""Figures and report sections for coordinate checks, LR sweeps and warm-starting runs."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from autofm.core.report import Report
from autofm.lm.coordinates import CoordCheckResult
from autofm.lm.sweep import SweepResult

NAMES = {"sp": "SP", "mup": "μP"}


def plot_coord_check(result: CoordCheckResult, max_layers: int = 5) -> plt.Figure:
    """mean |activation| against width, one line per Adam step; a row per parametrisation."""
    names = list(dict.fromkeys(r["parametrization"] for r in result.records))
    layers = result.layers()
    if len(layers) > max_layers:  # embedding, the last block's parts, logits
        layers = [layers[0], *layers[-max_layers + 1 :]]
    fig, axes = plt.subplots(
        len(names), len(layers), figsize=(2.8 * len(layers), 2.4 * len(names)), squeeze=False
    )
    colours = plt.cm.viridis(np.linspace(0, 0.9, result.steps))
    for row, name in enumerate(names):
        for col, layer in enumerate(layers):
            axis = axes[row, col]
            for step in range(result.steps):
                axis.plot(
                    result.widths,
                    result.values(name, layer, step),
                    marker="o",
                    ms=3,
                    color=colours[step],
                    label=f"t={step + 1}",
                )
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_title(f"{NAMES.get(name, name)}: {layer}", fontsize=9)
            if row == len(names) - 1:
                axis.set_xlabel("width")
            if col == 0:
                axis.set_ylabel("mean |activation|")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_lr_sweeps(sweeps: dict[str, SweepResult]) -> plt.Figure:
    """Final validation loss against learning rate, one line per width, a panel per sweep.

    Losses more than 1.5 nats above a panel's best (and diverged runs) are drawn at that level."""
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4.2 * len(sweeps), 3.4), squeeze=False)
    for axis, (label, sweep) in zip(axes[0], sweeps.items()):
        losses = sweep.mean_loss()
        finite = [v for by_lr in losses.values() for v in by_lr.values() if math.isfinite(v)]
        top = min(max(finite), min(finite) + 1.5) if finite else 1.0
        for width, by_lr in sorted(losses.items()):
            lrs = sorted(by_lr)
            values = [min(by_lr[lr], top) for lr in lrs]  # diverged runs drawn at the top
            (line,) = axis.plot(lrs, values, marker="o", ms=3, label=f"width {width}")
            best = min(by_lr, key=by_lr.get)
            axis.plot([best], [by_lr[best]], marker="*", ms=12, color=line.get_color())
        axis.set_xscale("log")
        axis.set_xlabel("learning rate")
        axis.set_ylabel("validation loss (nats/byte)")
        axis.set_title(label)
        axis.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_curves(curves: dict[str, list[dict]], target: float | None = None) -> plt.Figure:
    """Validation loss against training tokens for several runs (history rows of `train`)."""
    fig, axis = plt.subplots(figsize=(6, 3.6))
    for label, history in curves.items():
        rows = [r for r in history if r.get("val_loss") is not None]
        axis.plot(
            [r["tokens"] for r in rows], [r["val_loss"] for r in rows], marker=".", label=label
        )
    if target is not None:
        axis.axhline(target, color="k", lw=0.8, ls="--", label="scratch's final loss")
    axis.set_xlabel("training tokens")
    axis.set_ylabel("validation loss (nats/byte)")
    axis.legend(fontsize=7)
    fig.tight_layout()
    return fig


def coord_check_section(result: CoordCheckResult, lr: float) -> Report:
    """Report section: the coordinate-check figure and the max/min ratio per parametrisation."""
    report = Report("Coordinate check")
    report.text(
        f"Mean |activation| per layer over {result.steps} Adam steps (lr {lr:g}) at widths "
        f"{list(result.widths)}. μP keeps every layer's scale flat in width; SP's grows. "
        "Largest max/min ratio across widths at the last step: "
        + ", ".join(f"{NAMES.get(k, k)} {v:.2f}" for k, v in result.ratios.items())
    )
    report.figure(plot_coord_check(result), "mean |activation| vs width; one line per step")
    return report


def sweep_section(sweeps: dict[str, SweepResult]) -> Report:
    """Report section: LR-sweep figure and the best LR per width for each sweep."""
    report = Report("Learning-rate sweeps")
    rows = []
    for label, sweep in sweeps.items():
        for width, lr in sorted(sweep.best_lr().items()):
            rows.append(
                {
                    "sweep": label,
                    "width": width,
                    "best lr": lr,
                    "val loss": sweep.mean_loss()[width][lr],
                }
            )
    report.table(rows)
    report.figure(
        plot_lr_sweeps(sweeps),
        "validation loss vs learning rate; ★ best per width; losses more than 1.5 nats above the "
        "best (and diverged runs) are drawn at that level",
    )
    return report
