"""The fairness tour step: ManyFairHPO on a generated table with a planted group effect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from autofm.core.tour import TourStep
from autofm.fairness.report import build_report
from autofm.fairness.search import ManyFairHPO

WEIGHTS = "f1=0.5,dsp=0.3,deop=0.2"


def planted_table(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """Admissions-like data: group 'A' (privileged) has higher scores and a higher base rate."""
    rng = np.random.default_rng(seed)
    privileged = rng.random(n) < 0.6
    score = rng.normal(size=n) + 0.8 * privileged
    grades = rng.normal(size=n) + 0.4 * privileged
    other = rng.normal(size=n)
    logit = 1.2 * score + 0.8 * grades + 0.3 * other - 0.6
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "score": score,
            "grades": grades,
            "other": other,
            "region": rng.choice(["north", "south", "east"], n),
            "group": np.where(privileged, "A", "B"),
            "admitted": label,
        }
    )


def step(workdir: Path, seed: int) -> TourStep:
    """Search an RF on the planted table, select with weights, report conflicts and risks."""
    table = planted_table(seed=seed)
    (Path(workdir) / "study.db").unlink(missing_ok=True)  # the tour always starts a fresh study
    search = ManyFairHPO(
        model="rf", bi_objective_trials=10, workdir=workdir, random_state=seed, population_size=10
    ).run(table.drop(columns=["admitted"]), table["admitted"], "group", n_trials=20, privileged="A")
    conflicts = search.conflicts()
    selection = search.select(WEIGHTS)
    report = build_report(search, WEIGHTS, title="fairness: ManyFairHPO")
    gap = selection.base_rates["base_rate_priv"] - selection.base_rates["base_rate_unpriv"]
    summary = (
        f"RF, {len(search.trials())} + 4×10 trials, Pareto set {len(search.pareto_front())}; "
        f"selected test 1−F1 {selection.test['f1']:.3f}, |DSP| {selection.test['dsp']:.3f} "
        f"(base-rate gap {gap:.2f}); risks: {', '.join(r['risk'] for r in selection.risks) or 'none'}"
    )
    metrics = {
        "pareto_size": len(search.pareto_front()),
        "selected_test": selection.test,
        "risks": [r["risk"] for r in selection.risks],
        "max_contrast": float(np.nanmax(conflicts["contrast"].to_numpy())),
    }
    return TourStep("fairness", summary, metrics, report)
