"""Figures of fitted GAMs: each feature's shape function over the training data's density.

Continuous features are drawn as steps over their quantile bins. Categorical features, and numeric
ones with few distinct training values (0/1 indicators, small counts, levels), are drawn as one bar
per value, as interpret's EBM report does; with several outputs (multiclass logits) the bars of a
value are grouped, one per class. Bins that hold no training rows are not drawn. The grey bars in a
strip at the bottom are the training rows per value (bars) or per unit of x (steps).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from autofm.core.errors import ValidationError  # noqa: E402
from autofm.gam.binning import apply_bins  # noqa: E402

MAX_LEVELS = 12  # integer features spanning at most this many values are drawn as bars
MAX_COLUMNS = 3
DENSITY_COLOR = "0.85"


def plot_shape_functions(
    estimator, features: list[str] | None = None, max_features: int = 12
) -> plt.Figure:
    """One grid of panels, one per feature (most important first, or those in `features`).

    `max_features` caps the panels when `features` is not given. Raises ValidationError for a
    name in `features` that the estimator was not fitted on.
    """
    explanation = estimator.explain()
    curves, importances = explanation["curves"], explanation["importances"]
    if features is None:
        features = list(importances)[:max_features]
    unknown = [name for name in features if name not in curves]
    if unknown:
        raise ValidationError(f"unknown feature(s) {unknown}; fitted features: {list(curves)}")
    output_names = explanation["output_names"]
    fig, axes = _panel_grid(len(features))
    for axis, name in zip(axes.ravel(), features):
        levels = _levels(curves[name])
        if levels is None:
            _draw_steps(axis, curves[name])
        else:
            _draw_bars(axis, *levels)
        axis.axhline(0.0, color="0.5", lw=0.5)
        axis.tick_params(labelsize=8)
        axis.set_title(f"{name} (importance {importances[name]:.3g})", fontsize=9)
    for axis in axes.ravel()[len(features) :]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel(output_names[0] if len(output_names) == 1 else "logit", fontsize=8)
    fig.tight_layout()
    if len(output_names) > 1:
        _class_legend(fig, output_names)
    return fig


def _panel_grid(n_panels: int) -> tuple[plt.Figure, np.ndarray]:
    """A figure with `n_panels` axes in rows of up to MAX_COLUMNS (a 2-d array of axes)."""
    n_rows = max(1, math.ceil(n_panels / MAX_COLUMNS))
    n_columns = max(1, math.ceil(n_panels / n_rows))  # balanced rows: 4 panels are 2 × 2
    return plt.subplots(n_rows, n_columns, figsize=(3.6 * n_columns, 2.6 * n_rows), squeeze=False)


def _levels(curve: dict) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """(labels, shape values [levels, outputs], training rows) when drawn as bars, else None."""
    if curve["kind"] == "categorical":
        return list(curve["categories"]), curve["values"], curve["counts"]
    return _numeric_levels(curve)


def _numeric_levels(curve: dict) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """The bars of a numeric feature with few distinct values, else None (draw it as steps).

    Every edge is a training value (a "lower" quantile), and so are the range's ends. A feature
    with at most two such values (an indicator), or with integer values spanning at most
    MAX_LEVELS integers (counts, ratings, months), gets one bar per bin with training rows,
    labelled with the values that fall in it ("2–3" when a rare 3 shares the bin of 2).
    """
    low, high = curve["range"]
    edges = curve["bin_edges"]
    if not np.isfinite(low):  # no value seen in training, only missing ones
        return [], curve["values"][:0], curve["counts"][:0]
    known = np.unique(np.concatenate([[low], edges, [high]]))
    if len(known) <= 2:
        candidates = known
    elif np.all(known == np.round(known)) and high - low + 1 <= MAX_LEVELS:
        candidates = np.arange(low, high + 1)
    else:
        return None
    # only bins with training rows hold a candidate: an empty bin is [edge, same edge)
    # (candidates are never missing, so the missing-value bin, the last argument, is unused)
    bins = apply_bins(candidates, edges, len(edges) + 1)
    occupied, first = np.unique(bins, return_index=True)
    last = np.append(first[1:], len(candidates)) - 1
    labels = [
        _format_value(candidates[a])
        if a == b
        else f"{_format_value(candidates[a])}–{_format_value(candidates[b])}"
        for a, b in zip(first, last)
    ]
    return labels, curve["values"][occupied], curve["counts"][occupied]


def _format_value(value: float) -> str:
    """A tick label: integers in full, other values to 4 significant digits."""
    return str(int(value)) if value == round(value) else f"{value:.4g}"


def _draw_bars(axis: plt.Axes, labels: list[str], values: np.ndarray, counts: np.ndarray) -> None:
    """One group of bars per level (one bar per output) over grey bars of its training rows."""
    positions = np.arange(len(labels))
    _draw_density(axis, positions, counts, width=0.9)
    n_outputs = values.shape[1]
    width = 0.7 / n_outputs
    for k in range(n_outputs):
        offsets = (k - (n_outputs - 1) / 2) * width
        axis.bar(positions + offsets, values[:, k], width=width, color=f"C{k}")
    if sum(len(label) for label in labels) <= 24:
        axis.set_xticks(positions, labels)
    else:  # long labels slanted, each ending under its bar
        axis.set_xticks(positions, labels, rotation=40, ha="right", rotation_mode="anchor")
    axis.set_xlim(-0.6, len(labels) - 0.4)


def _draw_steps(axis: plt.Axes, curve: dict) -> None:
    """The shape values as steps over the bins with training rows, density bars behind."""
    points = _step_points(curve["bin_edges"], *curve["range"])
    counts = curve["counts"]
    widths = np.diff(points)
    # quantile bins hold similar counts: show rows per unit of x, the data density
    heights = counts / np.where(widths > 0, widths, 1.0)
    _draw_density(axis, points[:-1], heights, width=widths, align="edge")
    # a bin without training rows has width 0 and an arbitrary value: leave it out
    occupied = counts > 0
    starts = np.append(points[:-1][occupied], points[-1])
    values = curve["values"][occupied]
    for k in range(values.shape[1]):
        axis.step(
            starts, np.append(values[:, k], values[-1, k]), where="post", lw=1.4, color=f"C{k}"
        )


def _step_points(edges: np.ndarray, low: float, high: float) -> np.ndarray:
    """x positions bounding each bin: [low, edge_1, …, edge_k, high]."""
    if not np.isfinite(low):
        low, high = 0.0, 1.0
    left = min(low, edges[0]) if len(edges) else low
    right = max(high, edges[-1]) if len(edges) else high
    if right <= left:
        right = left + 1.0
    return np.concatenate([[left], edges, [right]])


def _draw_density(axis: plt.Axes, x: np.ndarray, heights: np.ndarray, **bar_options) -> None:
    """Grey bars on a twin axis without ticks, behind `axis` and in its lower third."""
    density = axis.twinx()
    density.set_yticks([])
    density.bar(x, heights, color=DENSITY_COLOR, **bar_options)
    # a strip at the bottom, so that the grey bars are not read as shape values
    top = float(np.max(heights, initial=0.0))
    density.set_ylim(0.0, 3.0 * top if top > 0 else 1.0)
    axis.set_zorder(density.get_zorder() + 1)
    axis.patch.set_visible(False)


def _class_legend(fig: plt.Figure, output_names: list[str]) -> None:
    """One legend for the whole grid, above it: the colour of each output."""
    handles = [Patch(color=f"C{k}", label=name) for k, name in enumerate(output_names)]
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(len(handles), 6),
        fontsize=8,
        frameon=False,
    )
