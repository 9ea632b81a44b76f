"""OpenFE's 23 feature operators on pandas columns, the column kinds they apply to, and
OpenFE's first-order candidate pool.

The operators follow `openfe/FeatureGenerator.py` (IIIS-Li-Group/OpenFE, `Node.calculate`):

- "log" is log|x| with log(0) → NaN; "sqrt" is sqrt|x|.
- "round" is floor(x), as in OpenFE, and "residual" is x − floor(x), in [0, 1).
- "/" gives NaN where the divisor is 0; every result that is ±inf becomes NaN.
- NaN in any input gives NaN in the output (min/max included).
- "GroupByThenRank" is the mid-rank percentile of the value among its group's fit values
  (pandas' `rank(pct=True)` on the fit data itself).
- "GroupByThenNUnique" counts distinct values of its second input per group of its first.
- "Combine" is an integer code per pair of categories, numbered by first appearance in the fit data.

Unlike OpenFE, which computes group statistics on train and test rows together, every statistic
(group aggregates, frequencies, category codes) is learnt by `FeatureTransformer.fit` on the fit
rows only and then looked up: a category unseen at fit time gives NaN for group statistics and
codes, and a frequency of 0 for "freq"/"CombineThenFreq" (it occurred 0 times in the fit data;
NaN stays reserved for missing inputs).

Input order differs from OpenFE's trees for the group operators: OpenFE writes
`GroupByThenMean(x,c)` (aggregate x, group by c); here inputs and formulas put the group column
first, `GroupByThenMean(c,x)`, and `GroupByThenNUnique(c1,c2)` counts distinct c2 per c1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from autofm.core.errors import ValidationError

NUMERICAL = "numerical"
CATEGORICAL = "categorical"
ANY = "any"


@dataclass(frozen=True)
class Operator:
    """One OpenFE operator: its family, the kind of each input, and simple/complex class."""

    name: str
    family: str  # "all" | "unary" | "binary" | "groupby" | "combine"
    input_kinds: tuple[str, ...]  # per input: "any" | "numerical" | "categorical"
    complexity: str  # "simple" | "complex"

    @property
    def arity(self) -> int:
        return len(self.input_kinds)


def _family(family: str, names: Sequence[str], kinds: tuple[str, ...], complexity: str):
    return {name: Operator(name, family, kinds, complexity) for name in names}


# In OpenFE's order (FeatureGenerator.py: all, num, num_num, cat_num, cat_cat operators).
OPERATORS: dict[str, Operator] = {
    **_family("all", ["freq"], (ANY,), "complex"),
    **_family(
        "unary",
        ["abs", "log", "sqrt", "square", "sigmoid", "round", "residual"],
        (NUMERICAL,),
        "simple",
    ),
    **_family("binary", ["min", "max", "+", "-", "*", "/"], (NUMERICAL, NUMERICAL), "simple"),
    **_family(
        "groupby",
        [
            "GroupByThenMin",
            "GroupByThenMax",
            "GroupByThenMean",
            "GroupByThenMedian",
            "GroupByThenStd",
            "GroupByThenRank",
        ],
        (CATEGORICAL, NUMERICAL),
        "complex",
    ),
    **_family(
        "combine",
        ["Combine", "CombineThenFreq", "GroupByThenNUnique"],
        (CATEGORICAL, CATEGORICAL),
        "complex",
    ),
}
OTHER = "other"  # a proposal that maps to no operator

# OpenFE's `symmetry_operators`: enumerated for one order of the inputs only ("-" and "/" too).
SYMMETRIC_OPERATORS = frozenset({"min", "max", "+", "-", "*", "/", "Combine", "CombineThenFreq"})
_INFIX = ("+", "-", "*", "/")


@dataclass(frozen=True)
class FeatureSpec:
    """A new feature: an operator applied to columns, in the operator's input order."""

    operator: str
    inputs: tuple[str, ...]
    name: str | None = None  # the proposer's name for it; default `formula()`

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))

    def formula(self) -> str:
        """OpenFE-style formula: "(a+b)", "log(a)", "GroupByThenMean(c,x)"."""
        if self.operator in _INFIX and len(self.inputs) == 2:
            return f"({self.inputs[0]}{self.operator}{self.inputs[1]})"
        return f"{self.operator}({','.join(map(str, self.inputs))})"

    @property
    def column(self) -> str:
        """The name of the column `FeatureTransformer` writes for this feature."""
        return self.name or self.formula()


def column_kinds(frame: pd.DataFrame, ordinal_max_unique: int = 100) -> dict[str, frozenset[str]]:
    """Each column's kinds, by OpenFE's rule: non-numeric dtypes (strings, categories, booleans)
    are categorical; numeric columns with at most `ordinal_max_unique` distinct values are
    ordinal, i.e. both numerical and categorical; other numeric columns are numerical."""
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"column_kinds needs a pandas DataFrame, got {type(frame).__name__}")
    categorical = set(frame.select_dtypes(exclude=np.number).columns)
    kinds = {}
    for column in frame.columns:
        if column in categorical:
            kinds[column] = frozenset({CATEGORICAL})
        elif frame[column].nunique() <= ordinal_max_unique:
            kinds[column] = frozenset({NUMERICAL, CATEGORICAL})
        else:
            kinds[column] = frozenset({NUMERICAL})
    return kinds


def check_feature(spec: FeatureSpec, kinds: Mapping[str, frozenset[str]]) -> str | None:
    """None if `spec` is a valid feature for a table with these column kinds, else why not."""
    operator = OPERATORS.get(spec.operator)
    if operator is None:
        return f"unknown operator {spec.operator!r}"
    if len(spec.inputs) != operator.arity:
        return (
            f"wrong number of inputs: {spec.operator} takes {operator.arity}, "
            f"got {len(spec.inputs)}"
        )
    for column in spec.inputs:
        if column not in kinds:
            return f"unknown column {column!r}"
    if len(set(spec.inputs)) < len(spec.inputs):
        return f"{spec.operator} uses the same column twice"
    for column, needed in zip(spec.inputs, operator.input_kinds):
        if needed != ANY and needed not in kinds[column]:
            return f"wrong kind: {spec.operator} needs a {needed} input, {column!r} is not {needed}"
    return None


def _split_kinds(kinds: Mapping[str, frozenset[str]]) -> tuple[list[str], list[str]]:
    """OpenFE's numerical and categorical node lists: numerical-only then ordinal columns, and
    categorical-only then ordinal columns (`get_candidate_features`)."""
    numerical_only = [c for c, k in kinds.items() if k == {NUMERICAL}]
    categorical_only = [c for c, k in kinds.items() if k == {CATEGORICAL}]
    ordinal = [c for c, k in kinds.items() if NUMERICAL in k and CATEGORICAL in k]
    return numerical_only + ordinal, categorical_only + ordinal


def candidate_pool(
    kinds: Mapping[str, frozenset[str]], *, unique: bool = True
) -> list[FeatureSpec]:
    """OpenFE's first-order candidates (`get_candidate_features(..., order=1)`), in its order.

    Symmetric operators (min, max, +, -, *, /, Combine, CombineThenFreq) take each unordered pair
    once, earlier column first; group-by operators every (categorical, other numerical) pair;
    GroupByThenNUnique every ordered pair; the Combine candidates come last. OpenFE lists "freq"
    of an ordinal column twice (once as numerical, once as categorical); `unique=False` keeps
    that duplicate.
    """
    numerical, categorical = _split_kinds(kinds)
    by_family: dict[str, list[str]] = {}
    for operator in OPERATORS.values():
        by_family.setdefault(operator.family, []).append(operator.name)
    pool: list[FeatureSpec] = []
    combine: list[FeatureSpec] = []
    for op in by_family["all"]:
        pool += [FeatureSpec(op, (c,)) for c in numerical + categorical]
    for op in by_family["unary"]:
        pool += [FeatureSpec(op, (c,)) for c in numerical]
    for op in by_family["binary"]:
        for i, first in enumerate(numerical):
            start = i if op in SYMMETRIC_OPERATORS else 0
            pool += [FeatureSpec(op, (first, s)) for s in numerical[start:] if s != first]
    for op in by_family["groupby"]:
        pool += [FeatureSpec(op, (g, x)) for x in numerical for g in categorical if g != x]
    for op in by_family["combine"]:
        for i, first in enumerate(categorical):
            start = i if op in SYMMETRIC_OPERATORS else 0
            for second in categorical[start:]:
                if second == first:
                    continue
                if op == "Combine":
                    combine.append(FeatureSpec(op, (first, second)))
                elif op == "GroupByThenNUnique":
                    # OpenFE's node (first, second) counts distinct `first` per group of `second`
                    pool.append(FeatureSpec(op, (second, first)))
                else:
                    pool.append(FeatureSpec(op, (first, second)))
    pool += combine
    return list(dict.fromkeys(pool)) if unique else pool


def applicable_operators(kinds: Mapping[str, frozenset[str]]) -> list[str]:
    """Operators with at least one valid input combination in a table with these column kinds."""
    numerical, categorical = _split_kinds(kinds)
    has_pair = any(g != x for g in categorical for x in numerical)
    possible = {
        "all": len(kinds) >= 1,
        "unary": len(numerical) >= 1,
        "binary": len(numerical) >= 2,
        "groupby": has_pair,
        "combine": len(categorical) >= 2,
    }
    return [name for name, op in OPERATORS.items() if possible[op.family]]


def _numeric(frame: pd.DataFrame, column: str, spec: FeatureSpec) -> np.ndarray:
    values = frame[column]
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        raise ValidationError(
            f"feature {spec.formula()} needs a numerical column, but {column!r} holds "
            f"{values.dtype} values; use a categorical operator or encode the column"
        )
    return values.astype("float64").to_numpy()


def _keys(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.Index, np.ndarray]:
    """The category key of each row (a value, or a pair of values) and where it is missing."""
    parts = [frame[c] for c in columns]
    missing = np.zeros(len(frame), dtype=bool)
    for part in parts:
        missing |= part.isna().to_numpy()
    if len(parts) == 1:
        return pd.Index(parts[0].to_numpy(dtype=object)), missing
    return pd.MultiIndex.from_arrays([p.to_numpy(dtype=object) for p in parts]), missing


def _lookup(table: pd.Series, keys: pd.Index, missing: np.ndarray, unseen: float) -> np.ndarray:
    """`table[key]` for each row: NaN where the key is missing, `unseen` where it was not fit."""
    out = np.full(len(keys), unseen, dtype="float64")
    if len(table):
        position = table.index.get_indexer(keys)
        found = position >= 0
        out[found] = table.to_numpy(dtype="float64")[position[found]]
    out[missing] = np.nan
    return out


_AGGREGATES = {
    "GroupByThenMin": "min",
    "GroupByThenMax": "max",
    "GroupByThenMean": "mean",
    "GroupByThenMedian": "median",
    "GroupByThenStd": "std",
}


def _fit_statistic(spec: FeatureSpec, frame: pd.DataFrame):
    """What `spec` needs from the fit data (None for row-wise operators)."""
    op = spec.operator
    if op in ("freq", "CombineThenFreq"):
        keys, missing = _keys(frame, spec.inputs)
        return keys[~missing].value_counts()
    if op == "Combine":
        keys, missing = _keys(frame, spec.inputs)
        seen = keys[~missing].unique()
        return pd.Series(np.arange(len(seen), dtype="float64"), index=seen)
    if op in _AGGREGATES or op in ("GroupByThenRank", "GroupByThenNUnique"):
        group, column = spec.inputs
        keys, missing = _keys(frame, [group])
        if op == "GroupByThenNUnique":
            values = pd.Series(frame[column].to_numpy(dtype=object))
        else:
            values = pd.Series(_numeric(frame, column, spec))
        grouped = values[~missing].groupby(np.asarray(keys[~missing], dtype=object), sort=False)
        if op == "GroupByThenNUnique":
            return grouped.nunique()
        if op == "GroupByThenRank":
            groups = [(key, np.sort(v.dropna().to_numpy())) for key, v in grouped]
            return pd.Index([k for k, _ in groups], dtype=object), [v for _, v in groups]
        return grouped.agg(_AGGREGATES[op])
    return None


def _group_rank(statistic: tuple[pd.Index, list[np.ndarray]], frame, spec) -> np.ndarray:
    groups, sorted_values = statistic
    keys, missing = _keys(frame, spec.inputs[:1])
    values = _numeric(frame, spec.inputs[1], spec)
    position = groups.get_indexer(keys)
    position[missing | np.isnan(values)] = -1
    out = np.full(len(frame), np.nan)
    for slot in np.unique(position[position >= 0]):
        rows = np.flatnonzero(position == slot)
        fitted = sorted_values[slot]
        if len(fitted) == 0:
            continue
        below = np.searchsorted(fitted, values[rows], side="left")
        equal = np.searchsorted(fitted, values[rows], side="right") - below
        # mid-rank among the fit values: equals pandas' rank(method="average", pct=True) there
        out[rows] = np.minimum((below + (equal + 1) / 2) / len(fitted), 1.0)
    return out


def _row_wise(spec: FeatureSpec, frame: pd.DataFrame) -> np.ndarray:
    op = spec.operator
    a = _numeric(frame, spec.inputs[0], spec)
    if op == "abs":
        return np.abs(a)
    if op == "log":
        return np.log(np.abs(np.where(a == 0, np.nan, a)))
    if op == "sqrt":
        return np.sqrt(np.abs(a))
    if op == "square":
        return np.square(a)
    if op == "sigmoid":
        return 1 / (1 + np.exp(-a))
    if op == "round":
        return np.floor(a)
    if op == "residual":
        return a - np.floor(a)
    b = _numeric(frame, spec.inputs[1], spec)
    if op == "min":
        return np.minimum(a, b)
    if op == "max":
        return np.maximum(a, b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / np.where(b == 0, np.nan, b)


class FeatureTransformer(TransformerMixin, BaseEstimator):
    """Computes features; statistics (group aggregates, frequencies, category codes) are
    learnt on the rows given to `fit` only, so transforming new rows leaks nothing from them."""

    def __init__(self, features: Sequence[FeatureSpec]):
        self.features = features

    def fit(self, frame: pd.DataFrame, y=None) -> FeatureTransformer:
        """Learn each feature's statistics from `frame`."""
        features = list(self.features)
        self._check(frame, features)
        for spec in features:
            if spec.operator not in OPERATORS:
                raise ValidationError(
                    f"unknown operator {spec.operator!r} in feature {spec.column!r}; "
                    f"use one of {', '.join(OPERATORS)}"
                )
            operator = OPERATORS[spec.operator]
            if len(spec.inputs) != operator.arity:
                raise ValidationError(
                    f"feature {spec.column!r}: {spec.operator} takes {operator.arity} input(s), "
                    f"got {len(spec.inputs)}"
                )
            for column, kind in zip(spec.inputs, operator.input_kinds):
                if kind == NUMERICAL:
                    _numeric(frame.head(0), column, spec)  # checks the dtype only
        columns = [spec.column for spec in features]
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            raise ValidationError(
                f"several features are named {duplicated}; give them distinct names"
            )
        self.features_ = features
        self.statistics_ = [_fit_statistic(spec, frame) for spec in features]
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The new columns only (float; NaN where undefined), indexed like `frame`."""
        if not hasattr(self, "statistics_"):
            raise ValidationError("FeatureTransformer is not fitted; call fit(frame) first")
        self._check(frame, self.features_)
        columns = {}
        with np.errstate(all="ignore"):
            for spec, statistic in zip(self.features_, self.statistics_):
                columns[spec.column] = self._compute(spec, statistic, frame)
        out = pd.DataFrame(columns, index=frame.index, dtype="float64")
        return out.replace([np.inf, -np.inf], np.nan)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray([spec.column for spec in self.features_], dtype=object)

    @staticmethod
    def _compute(spec: FeatureSpec, statistic, frame: pd.DataFrame) -> np.ndarray:
        op = spec.operator
        if statistic is None:
            return _row_wise(spec, frame)
        if op == "GroupByThenRank":
            return _group_rank(statistic, frame, spec)
        if op in ("freq", "CombineThenFreq"):
            keys, missing = _keys(frame, spec.inputs)
            return _lookup(statistic, keys, missing, unseen=0.0)
        if op == "Combine":
            keys, missing = _keys(frame, spec.inputs)
            return _lookup(statistic, keys, missing, unseen=np.nan)
        # group statistics: a row whose own value is missing still gets its group's, as in OpenFE
        keys, missing = _keys(frame, spec.inputs[:1])
        return _lookup(statistic, keys, missing, unseen=np.nan)

    @staticmethod
    def _check(frame: pd.DataFrame, features: Iterable[FeatureSpec]) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise ValidationError(
                f"FeatureTransformer needs a pandas DataFrame, got {type(frame).__name__}"
            )
        missing = sorted({c for spec in features for c in spec.inputs if c not in frame.columns})
        if missing:
            available = ", ".join(map(str, list(frame.columns)[:20]))
            raise ValidationError(
                f"table has no column(s) {missing} that the features use; available: {available}"
            )
