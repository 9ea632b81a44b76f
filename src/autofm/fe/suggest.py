"""Ask an LLM for new features of a table, read its replies into operators, keep what computes.

`suggest_features` is CAAFE-style prompting (`prompts.feature_prompt`) with schema-constrained
replies where the backend supports them, parsed by `proposals.parse_reply`; every proposal is
counted under its operator (or `other`), so the same call feeds the operator audit. A feature
whose values are NaN or infinite for every row of the table is dropped and counted as failed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from autofm.core.errors import ValidationError
from autofm.fe.llm import ChatClient
from autofm.fe.operators import FeatureSpec, FeatureTransformer, column_kinds
from autofm.fe.prompts import feature_request
from autofm.fe.proposals import parse_reply


@dataclass
class Suggestion:
    """What one or more LLM calls proposed for one table, and what of it is usable."""

    features: list[FeatureSpec]  # valid and computable, duplicates removed
    operators: list[str]  # the operator of every proposal (OTHER where none maps): the audit's data
    n_proposed: int = 0
    n_unparsed: int = 0
    n_invalid: int = 0
    n_failed: int = 0  # valid, but NaN/inf for every row
    replies: list[str] = field(default_factory=list)
    model: str = ""
    strategy: str = "plain"
    seeds: list[int] = field(default_factory=list)
    temperature: float = 0.7
    seconds_per_call: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready summary (features as name/operator/inputs/formula)."""
        return {
            "features": [
                {
                    "name": f.name or f.formula(),
                    "operator": f.operator,
                    "inputs": list(f.inputs),
                    "formula": f.formula(),
                }
                for f in self.features
            ],  # fmt: skip
            "operators": self.operators,
            "n_proposed": self.n_proposed,
            "n_unparsed": self.n_unparsed,
            "n_invalid": self.n_invalid,
            "n_failed": self.n_failed,
            "model": self.model,
            "strategy": self.strategy,
            "seeds": self.seeds,
            "temperature": self.temperature,
            "seconds_per_call": self.seconds_per_call,
        }


def split_target(frame: pd.DataFrame, target: str | None) -> tuple[pd.DataFrame, pd.Series]:
    """(features, target column); `target` None means the last column."""
    if frame.shape[1] < 2:
        raise ValidationError(
            f"the table has {frame.shape[1]} column(s); it needs a target and at least one feature"
        )
    target = frame.columns[-1] if target is None else target
    if target not in frame.columns:
        raise ValidationError(
            f"target column {target!r} is not in the table (columns: "
            f"{', '.join(map(str, frame.columns[:20]))}); pass --target with one of them"
        )
    return frame.drop(columns=[target]), frame[target]


def distinct_names(features: list[FeatureSpec], taken: Iterable[str]) -> list[FeatureSpec]:
    """The features renamed where their name repeats an earlier one or a column in `taken`
    (small models call every feature "short_name"): the formula, else the formula with a
    number."""
    used = set(map(str, taken))
    renamed = []
    for feature in features:
        name = feature.column
        if name in used:
            name = feature.formula()
            number = 2
            while name in used:
                name, number = f"{feature.formula()}_{number}", number + 1
        used.add(name)
        renamed.append(dataclasses.replace(feature, name=name))
    return renamed


def computable(features: list[FeatureSpec], X: pd.DataFrame) -> tuple[list[FeatureSpec], int]:
    """The features with at least one finite value on `X`, and how many were dropped."""
    if not features:
        return [], 0
    values = FeatureTransformer(features).fit(X).transform(X).to_numpy(dtype=float)
    finite = np.isfinite(values).any(axis=0)
    return [f for f, ok in zip(features, finite, strict=True) if ok], int((~finite).sum())


def suggest_features(
    frame: pd.DataFrame,
    target: str | None,
    client: ChatClient,
    *,
    n_features: int = 5,
    n_calls: int = 1,
    strategy: str = "plain",
    seed: int = 0,
    temperature: float = 0.7,
    description: str | None = None,
    reference: dict[str, float] | None = None,
) -> Suggestion:
    """Ask `client` `n_calls` times (seeds seed, seed + 1, …) for `n_features` features of the
    table `frame` (predicting `target`), parse the replies and keep the usable features.

    `strategy`: "plain" (the paper's prompt), "by_class" or "with_reference" (debiasing;
    `reference` gives the operator frequencies shown to the model)."""
    X, _ = split_target(frame, target)
    target = frame.columns[-1] if target is None else target
    kinds = column_kinds(X)
    suggestion = Suggestion(features=[], operators=[], model=client.model, strategy=strategy)
    suggestion.temperature = temperature
    seen: set[tuple[str, tuple[str, ...]]] = set()
    valid: list[FeatureSpec] = []
    started = time.perf_counter()
    for call in range(n_calls):
        call_seed = seed + call
        request = feature_request(
            frame, target, description, n_features, strategy, seed=call_seed, reference=reference
        )
        reply = client.complete(
            request.messages, schema=request.schema, temperature=temperature, seed=call_seed
        )
        parsed = parse_reply(reply, kinds)
        suggestion.replies.append(reply)
        suggestion.seeds.append(call_seed)
        suggestion.operators.extend(parsed.operators)
        suggestion.n_proposed += parsed.n_proposed
        suggestion.n_unparsed += parsed.n_unparsed
        suggestion.n_invalid += parsed.n_invalid
        for feature in parsed.features:
            key = (feature.operator, feature.inputs)
            if key not in seen:
                seen.add(key)
                valid.append(feature)
    suggestion.seconds_per_call = (time.perf_counter() - started) / max(n_calls, 1)
    valid = distinct_names(valid, X.columns)
    suggestion.features, suggestion.n_failed = computable(valid, X)
    return suggestion


def add_features(frame: pd.DataFrame, features: list[FeatureSpec]) -> pd.DataFrame:
    """`frame` with the features' columns appended (statistics learnt on `frame` itself)."""
    if not features:
        return frame.copy()
    new = FeatureTransformer(features).fit(frame).transform(frame)
    clashes = sorted(set(new.columns) & set(frame.columns))
    if clashes:
        raise ValidationError(
            f"new feature names {clashes[:5]} already name columns of the table; rename them"
        )
    return pd.concat([frame, new.set_index(frame.index)], axis=1)
