"""The audit as an HTML report: operator shares per source, residuals per table, downstream AUC."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from autofm.core.report import Report
from autofm.fe.bias_study import TableStudy, auc_table, pooled_reference
from autofm.fe.operators import OPERATORS, OTHER


def operator_shares(studies: list[TableStudy]) -> pd.DataFrame:
    """Share of each operator (rows) per source (columns): the LLM's proposals (OTHER left out)
    and each pooled reference."""
    kept = [s for s in studies if s.dropped is None and s.suggestion is not None]
    counts = sum((s.counts() for s in kept), pd.Series(0, index=[*OPERATORS, OTHER]))
    mapped = counts.drop(OTHER)
    shares = {"LLM": mapped / mapped.sum() if mapped.sum() else mapped.astype(float)}
    for kind, label in (("openfe", "OpenFE selected"), ("pool", "OpenFE candidates"),
                        ("uniform", "uniform")):  # fmt: skip
        reference = pooled_reference(kept, kind)
        if reference is not None:
            shares[label] = reference.reindex(list(OPERATORS), fill_value=0.0)
    return pd.DataFrame(shares).fillna(0.0)


def shares_figure(shares: pd.DataFrame) -> plt.Figure:
    """Grouped horizontal bars: operator share per source."""
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(shares) + 1.2))
    height = 0.8 / shares.shape[1]
    positions = np.arange(len(shares))
    for i, source in enumerate(shares.columns):
        ax.barh(positions + i * height, shares[source], height, label=source)
    ax.set_yticks(positions + 0.4 - height / 2, shares.index)
    ax.invert_yaxis()
    ax.set_xlabel("share of features")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def residual_figure(per_table: dict[str, dict]) -> plt.Figure:
    """Heat map of standardised residuals z (LLM vs OpenFE's selection) per table and operator."""
    frame = pd.DataFrame(
        {table: {r["operator"]: r["z"] for r in result["residuals"]}
         for table, result in per_table.items()}
    ).reindex(list(OPERATORS)).astype(float)  # fmt: skip
    fig, ax = plt.subplots(figsize=(max(4.0, 1.5 + 0.6 * frame.shape[1]), 0.3 * len(frame) + 1.5))
    limit = float(np.nanmax(np.abs(frame.to_numpy()))) if np.isfinite(frame.to_numpy()).any() else 1
    image = ax.imshow(frame.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_yticks(range(len(frame)), frame.index)
    ax.set_xticks(range(frame.shape[1]), frame.columns, rotation=45, ha="right")
    fig.colorbar(image, ax=ax, label="z (over-use > 0)")
    fig.tight_layout()
    return fig


def audit_report(studies: list[TableStudy], result: dict, model: str) -> Report:
    """The report of `bias_study.audit_studies`'s `result` on `studies`."""
    report = Report(f"fe: operator audit of {model}")
    kept = result["tables_audited"]
    report.text(
        f"{kept} of {result['tables']} table(s) audited; the LLM's operator use is tested against "
        "OpenFE's selected operators, OpenFE's first-order candidate pool and uniform over the "
        "applicable operators (G-test; |z| > 2.5 flagged)."
    )
    dropped = [(s.name, s.dropped) for s in studies if s.dropped]
    if dropped:
        report.table(pd.DataFrame(dropped, columns=["table", "dropped because"]))
    shares = operator_shares(studies)
    if shares["LLM"].sum() > 0:
        report.figure(shares_figure(shares), "operator shares per source")
    rows = [
        {"reference": kind, "n": r["n"], "other share": r["other_share"], "G": r["g_test"]["statistic"],
         "p": r["g_test"]["p_value"], "p (Monte Carlo)": r["g_test"].get("p_value_monte_carlo"),
         "TVD": r["tvd"], "LLM simple share": r["simple_share"],
         "reference simple share": r["reference_simple_share"],
         "over-used": ", ".join(r["over"]), "under-used": ", ".join(r["under"])}
        for kind, r in result["against"].items()
    ]  # fmt: skip
    if rows:
        report.table(pd.DataFrame(rows))
    if result["per_table"]:
        report.figure(residual_figure(result["per_table"]), "residuals against OpenFE per table")
    auc = auc_table(studies)
    if len(auc):
        report.heading("Downstream ROC AUC (mean ± std over splits)")
        report.table(auc)
    return report
