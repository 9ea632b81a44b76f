"""HTML reports of finetuning: a budgeted search's learning curves and incumbent, and the
leave-one-task-out regret curves of the benchmark."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from autofm.core.report import Report  # noqa: E402


def tune_report(result, task_name: str, default_test: float | None = None) -> Report:
    """Learning curves of every configuration tried, the incumbent and its regret to the best
    validation score found, over wall-clock seconds."""
    steps = result.steps
    report = Report(f"finetune: {result.strategy} on {task_name}")
    report.text(
        f"{len(result.runs)} configurations, {len(steps)} epochs in {steps['elapsed'].iloc[-1]:.0f} s. "
        f"Incumbent: configuration {result.incumbent} (validation {result.val_score:.3f}, "
        f"test {result.test_score:.3f})."
    )
    fig, (curves, incumbent) = plt.subplots(1, 2, figsize=(11, 4))
    for config_id, group in steps.groupby("config_id"):
        width = 2.5 if config_id == result.incumbent else 1.0
        curves.plot(group["epoch"], group["val_score"], marker="o", lw=width, ms=3,
                    label=f"config {config_id}" if config_id == result.incumbent else None)  # fmt: skip
    curves.set(xlabel="epoch", ylabel="validation score", title="learning curves")
    curves.legend(loc="best")
    best = steps["val_score"].max()
    incumbent.step(steps["elapsed"], best - steps["incumbent"], where="post", label="regret")
    incumbent.step(steps["elapsed"], steps["incumbent"], where="post", label="incumbent")
    incumbent.set(xlabel="seconds", ylabel="validation score",
                  title="incumbent and regret to the best found")  # fmt: skip
    incumbent.legend(loc="best")
    fig.tight_layout()
    report.figure(fig)
    plt.close(fig)
    config = result.candidates[result.incumbent].to_dict()
    report.table(pd.DataFrame([config]))
    rows = {"test score (incumbent)": result.test_score}
    if default_test is not None:
        rows["test score (default configuration)"] = default_test
    report.table(pd.DataFrame([rows]))
    return report


def regret_report(frame: pd.DataFrame, summary: pd.DataFrame, title: str) -> Report:
    """Mean normalised regret ± 95% interval per strategy at each budget (LODO benchmark)."""
    report = Report(title)
    fig, axis = plt.subplots(figsize=(6, 4))
    for strategy, group in summary.groupby("strategy"):
        group = group.sort_values("budget_multiple")
        axis.errorbar(group["budget_multiple"], group["regret_mean"], yerr=group["regret_ci95"], marker="o",
                      capsize=3, label=strategy)  # fmt: skip
    axis.set(xscale="log", xlabel="budget (× mean cost of one full run)",
             ylabel="normalised regret", title="leave-one-task-out regret")  # fmt: skip
    axis.legend(loc="best")
    fig.tight_layout()
    report.figure(fig)
    plt.close(fig)
    report.table(summary)
    return report
