"""The operator-bias audit of arXiv:2410.17787 on the real tables, with the local LLMs.

Every table of ../shared/data/tabular (binary classification; rows subsampled, stratified, to at
most FE_MAX_ROWS) and scikit-learn's bundled classification sets (breast cancer, wine, iris), each LLM (the local SmolLM2-135M-Instruct and Gemma 3 270M through
llama-cpp-python; also the endpoint in $AUTOFM_LLM_URL when set), FE_CALLS feature requests per
table with the paper's prompt ("plain") and with a debiasing prompt ("by_class": one feature per
operator class). Per table: a memorisation check (FE_MEMORISATION row completions; ≥ 50% exact
drops the table), OpenFE's selection (computed once), and the downstream ROC AUC of a gradient-
boosting model on the original features, + the LLM's, + OpenFE's, over FE_SPLITS splits.
Reported: operator shares per source, the tests against each reference, AUC, parse rates and the
time per call. Replies and OpenFE's selections are kept in benchmarks/metadatasets/fe
(committed), so an interrupted or extended run (more calls, more tables) resumes at no cost. Writes benchmarks/results/fe.{json,md}. FE_TABLES / FE_MODELS (comma-separated) restrict the
run; FE_RESULTS names the results file (default fe); `--render` rewrites the markdown from the JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from autofm.core.io import atomic_write_json
from autofm.data.tables import read_table
from autofm.fe.bias_study import auc_table, audit_studies, select_reference, study_table
from autofm.fe.llm import CachedClient, local_model_installed, make_client
from autofm.fe.operators import OPERATORS, FeatureSpec
from autofm.fe.report import operator_shares
from benchmarks.common import markdown_table, require_data, save_results

SEED = 0
CALLS = int(os.environ.get("FE_CALLS", "5"))
N_FEATURES = int(os.environ.get("FE_N_FEATURES", "5"))
MEMORISATION = int(os.environ.get("FE_MEMORISATION", "3"))
SPLITS = int(os.environ.get("FE_SPLITS", "5"))
MAX_ROWS = int(os.environ.get("FE_MAX_ROWS", "2000"))
OPENFE_FEATURES = 10
STRATEGIES = ("plain", "by_class")
ONLY_TABLES = [t for t in os.environ.get("FE_TABLES", "").split(",") if t]
ONLY_MODELS = [m for m in os.environ.get("FE_MODELS", "").split(",") if m]
WORK = Path(__file__).resolve().parent / "metadatasets" / "fe"  # committed: resumable


SKLEARN_TABLES = ("breast_cancer", "wine", "iris")  # scikit-learn's bundled classification sets


def sklearn_tables() -> dict[str, pd.DataFrame]:
    """scikit-learn's bundled classification sets as tables (features, then `target`)."""
    from sklearn import datasets

    out = {}
    for name in SKLEARN_TABLES:
        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        frame = bunch.frame.copy()
        frame["target"] = bunch.target_names[bunch.target.to_numpy()]
        out[f"sklearn_{name}"] = frame
    return out


def tables() -> dict[str, pd.DataFrame]:
    """The benchmark tables (last column the target), subsampled stratified to MAX_ROWS: every
    table of ../shared/data/tabular and scikit-learn's bundled classification sets."""
    folder = require_data("tabular")
    out = {}
    for path in sorted(folder.glob("*.csv")):
        if ONLY_TABLES and path.stem not in ONLY_TABLES:
            continue
        frame = read_table(path)
        if len(frame) > MAX_ROWS:
            target = frame.columns[-1]
            fraction = MAX_ROWS / len(frame)
            frame = frame.groupby(target, group_keys=False).sample(frac=fraction, random_state=SEED)
        out[path.stem] = frame.reset_index(drop=True)
    for name, frame in sklearn_tables().items():
        if not ONLY_TABLES or name in ONLY_TABLES:
            out[name] = frame
    return out


def models() -> list[str]:
    found = [name for name in ("smollm2", "gemma3") if local_model_installed(name)]
    found = [name for name in found if not ONLY_MODELS or name in ONLY_MODELS]
    if os.environ.get("AUTOFM_LLM_URL"):
        found.append(os.environ["AUTOFM_LLM_URL"])
    if not found:
        sys.exit("no LLM: run `make llm` (local models) or set AUTOFM_LLM_URL")
    return found


def openfe_selection(name: str, frame: pd.DataFrame) -> list[FeatureSpec]:
    """OpenFE's selection for one table, cached in WORK (it does not depend on the LLM)."""
    path = WORK / f"openfe-{name}.json"
    if path.is_file():
        return [
            FeatureSpec(f["operator"], tuple(f["inputs"])) for f in json.loads(path.read_text())
        ]
    X, y = frame.iloc[:, :-1], frame.iloc[:, -1]
    selected = select_reference(X, y, OPENFE_FEATURES, SEED)
    atomic_write_json(path, [{"operator": f.operator, "inputs": list(f.inputs)} for f in selected])
    return selected


def run() -> dict:
    data = tables()
    references = {name: openfe_selection(name, frame) for name, frame in data.items()}
    runs = []
    for model in models():
        client = CachedClient(make_client(model), WORK / "cache")
        for strategy in STRATEGIES:
            started = time.perf_counter()
            studies = [
                study_table(
                    name, frame, None, client, n_calls=CALLS, n_features=N_FEATURES,
                    strategy=strategy, seed=SEED, memorisation_trials=MEMORISATION,
                    impact_splits=SPLITS, openfe=references[name],
                )
                for name, frame in data.items()
            ]  # fmt: skip
            result = audit_studies(studies, seed=SEED)
            runs.append(
                {
                    "model": client.model,
                    "strategy": strategy,
                    "seconds": time.perf_counter() - started,
                    "seconds_per_call": float(np.median(client.call_seconds))
                    if client.call_seconds
                    else None,
                    "audit": result,
                    "shares": operator_shares(studies).to_dict(),
                    "auc": auc_table(studies).to_dict("records"),
                    "tables": [s.to_dict() for s in studies],
                }
            )
            print(f"{client.model} {strategy}: {runs[-1]['seconds']:.0f} s", file=sys.stderr)
    settings = {"calls": CALLS, "n_features": N_FEATURES, "memorisation_trials": MEMORISATION,
                "splits": SPLITS, "max_rows": MAX_ROWS, "openfe_features": OPENFE_FEATURES}  # fmt: skip
    return {"settings": settings, "runs": runs,
            "openfe": {n: [f.formula() for f in fs] for n, fs in references.items()}}  # fmt: skip


def render(results: dict) -> str:
    runs = results["runs"]
    label = {id(r): f"{r['model']} / {r['strategy']}" for r in runs}
    lines = [
        "# LLM feature engineering: operator audit against OpenFE\n",
        f"Settings: {results['settings']}.\n",
        "## Operator shares (LLM proposals mapped to an operator; references pooled over tables)\n",
    ]
    shares = {label[id(r)]: r["shares"]["LLM"] for r in runs}
    shares.update({k: v for k, v in runs[0]["shares"].items() if k != "LLM"} if runs else {})
    table = pd.DataFrame(shares).reindex(list(OPERATORS)).fillna(0.0)
    table = table[(table > 0).any(axis=1)]
    rows = [
        {"operator": op, **{k: float(v) for k, v in row.items()}} for op, row in table.iterrows()
    ]
    lines.append(markdown_table(rows, digits=3))
    lines.append("\n## Tests against each reference (pooled over audited tables)\n")
    rows = []
    for r in runs:
        audit = r["audit"]
        for kind, stats in audit["against"].items():
            rows.append({
                "LLM / prompt": label[id(r)], "reference": kind,
                "tables": f"{audit['tables_audited']}/{audit['tables']}", "n": stats["n"],
                "other share": stats["other_share"], "G p": stats["g_test"]["p_value"],
                "G p (MC)": stats["g_test"]["p_value_monte_carlo"], "TVD": stats["tvd"],
                "simple share": stats["simple_share"],
                "reference simple share": stats["reference_simple_share"],
                "over-used": ", ".join(stats["over"]), "under-used": ", ".join(stats["under"]),
            })  # fmt: skip
    lines.append(markdown_table(rows, digits=3))
    lines.append("\n## Downstream ROC AUC (HistGradientBoosting; mean ± std over splits)\n")
    rows = []
    for r in runs:
        for row in r["auc"]:
            rows.append({"LLM / prompt": label[id(r)], "table": row["table"],
                         "features": row["features"], "AUC": f"{row['mean']:.3f} ± {row['std']:.3f}",
                         "Δ vs original": row["delta_vs_original"]})  # fmt: skip
    lines.append(markdown_table(rows, digits=4))
    lines.append("\n## Parsing, memorisation and time\n")
    rows = []
    for r in runs:
        for t in r["tables"]:
            llm = t["llm"] or {}
            rows.append({"LLM / prompt": label[id(r)], "table": t["name"],
                         "memorisation": t["memorisation"], "chance": t["memorisation_chance"],
                         "dropped": t["dropped"] or "", "proposed": llm.get("n_proposed"),
                         "unreadable": llm.get("n_unparsed"), "invalid": llm.get("n_invalid"),
                         "not computable": llm.get("n_failed"),
                         "usable": len(llm.get("features", []))})  # fmt: skip
    lines.append(markdown_table(rows, digits=2))
    lines.append("\nMedian seconds per LLM call: " + ", ".join(
        f"{label[id(r)]} {r['seconds_per_call']:.1f}" for r in runs if r["seconds_per_call"]
    ) + "\n")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    if "--render" in sys.argv:
        results = json.loads(Path("benchmarks/results/fe.json").read_text())
    else:
        results = run()
    save_results(os.environ.get("FE_RESULTS", "fe"), results, render(results), [SEED])


if __name__ == "__main__":
    main()
