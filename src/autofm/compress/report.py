"""Figures and HTML for compression results: Pareto fronts per method and objective, their
hypervolumes, and the chosen sub-networks' dimensions per layer."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

from autofm.core.report import Report


def front_figure(results: Sequence[dict]) -> plt.Figure:
    """Every result's trials (faint) and Pareto front (line), one panel per objective pair."""
    pairs = sorted({tuple(r["objectives"]) for r in results})
    fig, axes = plt.subplots(1, len(pairs), figsize=(6 * len(pairs), 4), squeeze=False)
    for axis, pair in zip(axes[0], pairs):
        quality, size = pair
        for result in (r for r in results if tuple(r["objectives"]) == pair):
            front = sorted(result["front"], key=lambda p: p[size])
            label = f"{result['study_name']}: HV {result['hypervolume']:.3g}"
            axis.step(
                [p[size] for p in front],
                [p["objective"] for p in front],
                where="post",
                marker="o",
                markersize=3,
                label=label,
            )
        axis.set_xlabel(size)
        axis.set_ylabel(quality)
        axis.set_title(f"{quality} vs {size}: Pareto fronts")
        axis.legend(fontsize=7)
    fig.tight_layout()
    return fig


def chosen_point(front: Sequence[dict], size: str) -> dict:
    """The best-quality front point with at most half the front's largest `size` (else the
    smallest one): what `extract --params-fraction 0.5` would take."""
    half = 0.5 * max(p[size] for p in front)
    fitting = [p for p in front if p[size] <= half] or [min(front, key=lambda p: p[size])]
    return min(fitting, key=lambda p: p["objective"])


def dimensions_rows(point: dict) -> list[dict]:
    """One row per kept layer of a front point's sub-network."""
    sub = point["sub_network"]
    return [
        {"layer": layer, "heads": heads, "mlp": mlp, "embed": sub["embed"]}
        for layer, heads, mlp in zip(sub["layers"], sub["heads"], sub["mlp"])
    ]


def search_report(results: Sequence[dict], title: str = "autofm compress: search") -> Report:
    """The report of one or more `SearchResult.to_dict()` summaries."""
    report = Report(title)
    report.table(
        [
            {
                "method": r["method"],
                "objectives": " vs ".join(r["objectives"]),
                "trials": r["n_trials"],
                "front size": len(r["front"]),
                "hypervolume": r["hypervolume"],
                "reference": str(tuple(round(v, 4) for v in r["reference"])),
            }
            for r in results
        ]
    )
    report.figure(front_figure(results), "trials on the Pareto front of each search")
    for result in results:
        size = result["objectives"][1]
        report.heading(f"{result['method']}: front", level=3)
        report.table(
            [
                {
                    "objective": p["objective"],
                    size: p[size],
                    "layers": len(p["sub_network"]["layers"]),
                }
                for p in sorted(result["front"], key=lambda p: p[size])
            ]
        )
        chosen = chosen_point(result["front"], size)
        report.text(
            f"dimensions of the chosen model, the best front point with at most half the largest "
            f"{size} ({chosen[size]:.4g}, {result['objectives'][0]} {chosen['objective']:.4g}):"
        )
        report.table(dimensions_rows(chosen))
    return report
