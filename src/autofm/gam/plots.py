"""Figures of fitted GAMs: shape functions over the training data's density."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from autofm.core.errors import ValidationError  # noqa: E402


def _step_points(edges: np.ndarray, low: float, high: float) -> np.ndarray:
    """x positions bounding each bin: [low, edge_1, …, edge_k, high]."""
    if not np.isfinite(low):
        low, high = 0.0, 1.0
    left = min(low, edges[0]) if len(edges) else low
    right = max(high, edges[-1]) if len(edges) else high
    if right <= left:
        right = left + 1.0
    return np.concatenate([[left], edges, [right]])


def plot_shape_functions(estimator, features: list[str] | None = None, max_features: int = 12):
    """One panel per feature (most important first): shape values as steps, density as bars."""
    explanation = estimator.explain()
    curves = explanation["curves"]
    if features is None:
        features = list(explanation["importances"])[:max_features]
    unknown = [f for f in features if f not in curves]
    if unknown:
        raise ValidationError(f"unknown feature(s) {unknown}; fitted features: {list(curves)}")
    n_panels = max(1, len(features))
    n_cols = min(4, n_panels)
    n_rows = math.ceil(n_panels / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 2.8 * n_rows), squeeze=False)
    output_names = explanation["output_names"]
    for axis, name in zip(axes.ravel(), features):
        curve = curves[name]
        values, counts = curve["values"], curve["counts"]
        density = axis.twinx()
        density.set_yticks([])
        if curve["kind"] == "categorical":
            positions = np.arange(len(values))
            density.bar(positions, counts, color="0.85", width=0.8, zorder=0)
            for k in range(values.shape[1]):
                axis.plot(positions, values[:, k], "o-", lw=1.2, label=output_names[k])
            labels = curve["categories"][: len(values)]
            axis.set_xticks(positions, labels, rotation=45, fontsize=7)
        else:
            low, high = curve["range"]
            points = _step_points(curve["bin_edges"], low, high)
            widths = np.diff(points)
            # quantile bins hold similar counts: show rows per unit of x, the data density
            heights = counts / np.where(widths > 0, widths, 1.0)
            density.bar(points[:-1], heights, width=widths, align="edge", color="0.85", zorder=0)
            for k in range(values.shape[1]):
                axis.step(
                    points,
                    np.append(values[:, k], values[-1, k]),
                    where="post",
                    lw=1.4,
                    label=output_names[k],
                )
        axis.set_zorder(density.get_zorder() + 1)
        axis.patch.set_visible(False)
        axis.axhline(0.0, color="0.5", lw=0.5)
        importance = explanation["importances"][name]
        axis.set_title(f"{name} (importance {importance:.3g})", fontsize=9)
    for axis in axes.ravel()[len(features) :]:
        axis.set_visible(False)
    if len(output_names) > 1 and features:
        axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(f"shape functions ({output_names[0] if len(output_names) == 1 else 'logits'})")
    fig.tight_layout()
    return fig
