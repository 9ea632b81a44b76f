"""The operator-bias study of arXiv:2410.17787 over one or more tables.

Per table: a memorisation check (row completion; a table the LLM completes at ≥ 50% is dropped,
as in the paper), `n_calls` LLM feature requests, OpenFE's selection on the same rows, and
optionally the downstream ROC AUC of original / + LLM / + OpenFE features on the same splits.
Then the LLM's operator counts, per table and pooled, are tested against each reference: OpenFE's
selected operators, OpenFE's first-order candidate pool, and uniform over applicable operators.
A pooled reference weighs each table's reference by the number of LLM proposals on that table,
so a table the LLM said more about counts more in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from autofm.core.errors import ValidationError
from autofm.core.progress import status
from autofm.data.tables import read_table
from autofm.fe.audit import (
    REFERENCE_KINDS,
    compare_to_reference,
    operator_counts,
    reference_distribution,
)
from autofm.fe.impact import downstream_auc, summarise_auc
from autofm.fe.llm import ChatClient
from autofm.fe.operators import OTHER, FeatureSpec, column_kinds
from autofm.fe.prompts import memorisation_score, row_completion_chance
from autofm.fe.reference import openfe_select
from autofm.fe.suggest import Suggestion, split_target, suggest_features

MEMORISATION_DROP = 0.5  # the paper's rule: drop a table the LLM completes at least this often
ROWS_PER_BLOCK = 20  # OpenFE's smallest successive-halving block (it needs n_data_blocks × 20 rows)


@dataclass
class TableStudy:
    """One table's part of the study."""

    name: str
    n_rows: int
    n_columns: int
    kinds: dict[str, frozenset[str]]
    memorisation: float | None = None
    memorisation_chance: float | None = None
    dropped: str | None = None  # why the table was left out of the audit
    suggestion: Suggestion | None = None
    openfe: list[FeatureSpec] = field(default_factory=list)
    auc: pd.DataFrame | None = None

    def counts(self) -> pd.Series:
        return operator_counts(self.suggestion.operators if self.suggestion else [])

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "memorisation": self.memorisation,
            "memorisation_chance": self.memorisation_chance,
            "dropped": self.dropped,
            "llm": self.suggestion.to_dict() if self.suggestion else None,
            "openfe": [
                {"operator": f.operator, "inputs": list(f.inputs), "formula": f.formula()}
                for f in self.openfe
            ],  # fmt: skip
            "operator_counts": {k: int(v) for k, v in self.counts().items() if v},
            "auc": summarise_auc(self.auc).to_dict("records") if self.auc is not None else None,
        }


def study_table(
    name: str,
    frame: pd.DataFrame,
    target: str | None,
    client: ChatClient,
    *,
    n_calls: int = 5,
    n_features: int = 5,
    strategy: str = "plain",
    seed: int = 0,
    temperature: float = 0.7,
    openfe_features: int = 10,
    memorisation_trials: int = 0,
    impact_splits: int = 0,
    description: str | None = None,
    openfe: list[FeatureSpec] | None = None,
) -> TableStudy:
    """Run the study's steps on one table (memorisation and impact only when their counts > 0).

    `openfe`: OpenFE's selection for this table when already known (it does not depend on the
    LLM), else it is computed here."""
    X, y = split_target(frame, target)
    study = TableStudy(name, len(frame), X.shape[1], column_kinds(X))
    if memorisation_trials > 0:
        status(f"{name}: memorisation check ({memorisation_trials} row completions)")
        study.memorisation = memorisation_score(client, frame, memorisation_trials, seed)
        study.memorisation_chance = row_completion_chance(frame, memorisation_trials, seed)
        if study.memorisation >= MEMORISATION_DROP:
            study.dropped = (
                f"the LLM completed {study.memorisation:.0%} of rows (chance "
                f"{study.memorisation_chance:.0%}): probably memorised"
            )
            return study
    status(f"{name}: {n_calls} LLM call(s) with {client.model}")
    study.suggestion = suggest_features(
        frame, target, client, n_features=n_features, n_calls=n_calls, strategy=strategy,
        seed=seed, temperature=temperature, description=description,
    )  # fmt: skip
    study.openfe = openfe if openfe is not None else select_reference(X, y, openfe_features, seed)
    if impact_splits > 0:
        sets = {"llm": study.suggestion.features, "openfe": study.openfe}
        study.auc = downstream_auc(X, y, sets, n_splits=impact_splits, seed=seed)
    return study


def select_reference(
    X: pd.DataFrame, y: pd.Series, n_features: int, seed: int
) -> list[FeatureSpec]:
    """OpenFE's top `n_features` on (X, y); a small table gets fewer successive-halving blocks,
    so that OpenFE's first block keeps about ROWS_PER_BLOCK rows."""
    status(f"OpenFE selection on {len(X)} rows × {X.shape[1]} columns")
    blocks = next((b for b in (8, 4, 2) if len(X) >= ROWS_PER_BLOCK * b), 1)
    return openfe_select(X, y, n_features=n_features, seed=seed, n_data_blocks=blocks)


def pooled_reference(studies: list[TableStudy], kind: str) -> pd.Series | None:
    """The reference of `kind` pooled over tables, weighted by each table's LLM proposals."""
    parts = []
    for study in studies:
        n = int(study.counts().drop(OTHER).sum())
        if n == 0:
            continue
        if kind == "openfe":
            if not study.openfe:
                continue
            distribution = reference_distribution(kind, features=study.openfe)
        else:
            distribution = reference_distribution(kind, kinds=study.kinds)
        parts.append(n * distribution)
    if not parts:
        return None
    total = sum(parts)
    return total / total.sum()


def audit_studies(studies: list[TableStudy], *, z_threshold: float = 2.5, seed: int = 0) -> dict:
    """The statistics of the pooled LLM operator counts against each reference, and per table."""
    kept = [s for s in studies if s.dropped is None and s.suggestion is not None]
    pooled = sum((s.counts() for s in kept), operator_counts([]))
    result: dict = {
        "tables": len(studies),
        "tables_audited": len(kept),
        "counts": {k: int(v) for k, v in pooled.items() if v},
        "against": {},
        "per_table": {},
    }
    if int(pooled.drop(OTHER).sum()) == 0:
        result["note"] = "no proposal mapped to an operator: nothing to test"
        return result
    for kind in REFERENCE_KINDS:
        reference = pooled_reference(kept, kind)
        if reference is not None:
            result["against"][kind] = compare_to_reference(
                pooled, reference, z_threshold=z_threshold, seed=seed
            )
    for study in kept:
        counts = study.counts()
        if int(counts.drop(OTHER).sum()) == 0:
            continue
        if study.openfe:
            reference = reference_distribution("openfe", features=study.openfe)
            result["per_table"][study.name] = compare_to_reference(
                counts, reference, z_threshold=z_threshold, seed=seed
            )
    return result


def auc_table(studies: list[TableStudy]) -> pd.DataFrame:
    """Mean ± std downstream ROC AUC per table and feature set."""
    frames = [
        summarise_auc(s.auc).assign(table=s.name) for s in studies if s.auc is not None
    ]  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=["table", "features", "mean", "std", "delta_vs_original"])
    table = pd.concat(frames, ignore_index=True)
    return table[["table", "features", "mean", "std", "delta_vs_original"]]


def read_tables(source: str, target: str | None) -> Mapping[str, tuple[pd.DataFrame, str | None]]:
    """{name: (frame, target)} for a table file or each table of a folder (last column target
    unless `target` is given)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.suffix.lower() in (".csv", ".tsv", ".parquet")
        )
        if not files:
            raise ValidationError(f"{path} holds no .csv, .tsv or .parquet table")
        return {p.stem: (read_table(p), target) for p in files}
    return {path.stem: (read_table(path), target)}
