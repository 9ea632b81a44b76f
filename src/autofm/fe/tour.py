"""Tour step: an operator audit of scripted LLM replies on a table with a planted group signal.

The LLM is the scripted chat server (a real HTTP server on 127.0.0.1 speaking the OpenAI
protocol), so the step needs no model: it exercises the real client, the parser, OpenFE's
selection, the audit statistics and the downstream AUC in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from autofm.core.tour import TourStep
from autofm.fe.bias_study import audit_studies, study_table
from autofm.fe.llm import OpenAIClient
from autofm.fe.report import audit_report
from autofm.fe.scripted_server import ScriptedChatServer

# what small LLMs tend to propose: sums and ratios of the numeric columns
SCRIPTED_REPLIES = [
    {"features": [{"name": "income_plus_age", "operator": "+", "inputs": ["income", "age"]},
                  {"name": "income_per_age", "operator": "/", "inputs": ["income", "age"]}]},
    {"features": [{"name": "age_squared", "operator": "square", "inputs": ["age"]},
                  {"name": "income_minus_age", "operator": "-", "inputs": ["income", "age"]}]},
]  # fmt: skip


def planted_table(n_rows: int, seed: int) -> pd.DataFrame:
    """A table whose label depends on income relative to its region's mean income: the
    feature `income - GroupByThenMean(region, income)`, which OpenFE can find."""
    rng = np.random.default_rng(seed)
    region = rng.choice([f"r{i}" for i in range(8)], size=n_rows)
    offset = dict(zip(sorted(set(region)), rng.normal(0, 3, size=8), strict=True))
    income = np.array([offset[r] for r in region]) + rng.normal(size=n_rows)
    age = rng.uniform(20, 70, size=n_rows)
    relative = income - pd.Series(income).groupby(region).transform("mean").to_numpy()
    label = (relative + 0.3 * rng.normal(size=n_rows) > 0).astype(int)
    return pd.DataFrame({"region": region, "income": income, "age": age, "label": label})


def step(workdir: Path, seed: int) -> TourStep:
    """Audit two scripted replies against OpenFE on the planted table; compare downstream AUC."""
    frame = planted_table(400, seed)
    replies = [json.dumps(reply) for reply in SCRIPTED_REPLIES]
    with ScriptedChatServer(replies) as server:
        client = OpenAIClient(server.url, "scripted-llm")
        study = study_table(
            "planted", frame, "label", client, n_calls=len(replies), n_features=2, seed=seed,
            openfe_features=5, impact_splits=3,
        )  # fmt: skip
    result = audit_studies([study], seed=seed)
    auc = study.to_dict()["auc"]
    by_set = {row["features"]: row["mean"] for row in auc}
    openfe_operators = sorted({f.operator for f in study.openfe})
    against = result["against"]["openfe"]
    report = audit_report([study], result, client.model)
    summary = (
        f"scripted LLM: {len(study.suggestion.operators)} proposals, simple share "
        f"{against['simple_share']:.2f} vs OpenFE {against['reference_simple_share']:.2f} "
        f"({', '.join(openfe_operators)}); AUC original {by_set['original']:.3f}, + LLM "
        f"{by_set['llm']:.3f}, + OpenFE {by_set['openfe']:.3f}"
    )
    metrics = {
        "llm_operators": study.suggestion.operators,
        "openfe_operators": [f.operator for f in study.openfe],
        "g_test_p_value": against["g_test"]["p_value"],
        "tvd": against["tvd"],
        "auc": by_set,
    }
    return TourStep("fe", summary, metrics, report)
