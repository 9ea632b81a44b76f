"""Prompts: CAAFE-style feature requests, their reply schema, and a memorisation check.

A feature prompt gives the model what CAAFE gives it (a dataset description, each column with
its kinds and a few statistics, a few sample rows) plus the operator list of the audit and the
reply format. It stays within `max_chars` however large the table: rows are sampled with a
seed, and when the columns do not all fit, the listing stops with a note saying how many were
left out. Three strategies:

- "plain": the paper's setting, any operators.
- "by_class" (debiasing): one prompt that requires feature i to come from operator class
  i mod k (the table's applicable classes in OpenFE's order: all/freq, unary, binary,
  group-by, combine), so every class is asked for as often as the others. One prompt rather
  than one request per class keeps the number of calls, and so the cost, equal across
  strategies; `feature_request` also pins each position's class in the schema.
- "with_reference" (debiasing): the operator list shows a reference share per operator
  (e.g. how often OpenFE selected it) and asks the model to follow it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from autofm.core.errors import ValidationError
from autofm.core.validation import check_positive_int
from autofm.fe.llm import ChatClient
from autofm.fe.operators import (
    CATEGORICAL,
    NUMERICAL,
    OPERATORS,
    applicable_operators,
    column_kinds,
)

STRATEGIES = ("plain", "by_class", "with_reference")
FAMILY_ORDER = ("all", "unary", "binary", "groupby", "combine")
FAMILY_TITLES = {
    "all": "frequency encoding",
    "unary": "unary numeric",
    "binary": "binary arithmetic",
    "groupby": "group-by aggregation",
    "combine": "combination of categoricals",
}
# what each operator computes, in the prompt's words (c: categorical input, x, a, b: numerical)
OPERATOR_MEANINGS = {
    "freq": ("freq(c)", "how often the row's value of c occurs in the table"),
    "abs": ("abs(x)", "absolute value |x|"),
    "log": ("log(x)", "natural logarithm of |x|"),
    "sqrt": ("sqrt(x)", "square root of |x|"),
    "square": ("square(x)", "x squared"),
    "sigmoid": ("sigmoid(x)", "1 / (1 + exp(-x))"),
    "round": ("round(x)", "x rounded down to an integer"),
    "residual": ("residual(x)", "x minus x rounded down (its fractional part)"),
    "min": ("min(a, b)", "the smaller of a and b"),
    "max": ("max(a, b)", "the larger of a and b"),
    "+": ("+(a, b)", "a + b"),
    "-": ("-(a, b)", "a - b"),
    "*": ("*(a, b)", "a * b"),
    "/": ("/(a, b)", "a / b"),
    "GroupByThenMin": ("GroupByThenMin(c, x)", "minimum of x over the rows with the same c"),
    "GroupByThenMax": ("GroupByThenMax(c, x)", "maximum of x over the rows with the same c"),
    "GroupByThenMean": ("GroupByThenMean(c, x)", "mean of x over the rows with the same c"),
    "GroupByThenMedian": ("GroupByThenMedian(c, x)", "median of x over the rows with the same c"),
    "GroupByThenStd": ("GroupByThenStd(c, x)", "standard deviation of x within the same c"),
    "GroupByThenRank": ("GroupByThenRank(c, x)", "percentile rank of x among the rows with the same c"),
    "Combine": ("Combine(c1, c2)", "a new category for each pair of values of c1 and c2"),
    "CombineThenFreq": ("CombineThenFreq(c1, c2)", "how often the pair of values (c1, c2) occurs"),
    "GroupByThenNUnique": ("GroupByThenNUnique(c1, c2)", "number of distinct c2 values per value of c1"),
}  # fmt: skip
SYSTEM_PROMPT = (
    "You are an expert data scientist who engineers new features for tabular machine "
    "learning. You answer with JSON only."
)
# 6000 characters are at most about 3300 tokens (numeric tables tokenize at ~1.8 characters a
# token in SmolLM2's and Gemma 3's vocabularies): with a 512-token reply, a 4096-token context
DEFAULT_MAX_CHARS = 6000
MAX_CELL_CHARS = 24  # a sample-row value longer than this is cut
MAX_NAME_CHARS = 60  # the schema's bound on a feature name


@dataclass(frozen=True)
class FeatureRequest:
    """What to send for one feature request: the messages, the reply schema, and the columns
    the prompt lists (the schema's input names)."""

    messages: list[dict]
    schema: dict
    columns: list[str]


def feature_prompt(frame: pd.DataFrame, target: str, *args, **kwargs) -> list[dict]:
    """Chat messages asking for new features of `frame` to predict `target`: the messages of
    `feature_request` (same arguments), for a backend that takes no schema."""
    return feature_request(frame, target, *args, **kwargs).messages


def feature_request(
    frame: pd.DataFrame,
    target: str,
    description: str | None = None,
    n_features: int = 5,
    strategy: str = "plain",
    max_sample_rows: int = 10,
    max_chars: int = DEFAULT_MAX_CHARS,
    *,
    seed: int = 0,
    reference: Mapping[str, float] | None = None,
) -> FeatureRequest:
    """The chat messages asking for `n_features` new features of `frame` to predict `target`,
    with the matching reply schema: the input enum lists the columns the prompt shows, the
    operator enum the table's applicable operators, and for "by_class" each position of the
    list is pinned to its operator class.

    The prompt (all messages together) has at most `max_chars` characters; `seed` picks the
    sample rows; `reference` (operator → share, for "with_reference") is shown per operator."""
    messages, columns, slots = _build(
        frame,
        target,
        description,
        n_features,
        strategy,
        max_sample_rows,
        max_chars,
        seed,
        reference,
    )
    return FeatureRequest(messages, feature_schema(n_features, columns, slots), columns)


def feature_schema(
    n_features: int,
    columns: Sequence[str],
    operators: Sequence[str] | Sequence[Sequence[str]] | None = None,
) -> dict:
    """A JSON schema for `{"features": [{"name", "operator", "inputs"}, ...]}` with exactly
    `n_features` items, operators from `operators` (default: all 23), inputs from `columns`
    (one or two, as the operators take). `operators` may also give one operator list per
    position (a tuple schema, `prefixItems`), which pins each feature's operator class."""
    if n_features < 1:
        raise ValidationError(f"n_features must be at least 1, got {n_features}")
    columns = [str(c) for c in columns]
    if not columns:
        raise ValidationError("feature_schema needs at least one column name")
    if operators is None:
        operators = list(OPERATORS)
    per_position = bool(operators) and not isinstance(operators[0], str)
    if per_position and len(operators) != n_features:
        raise ValidationError(
            f"per-position operators must give {n_features} lists, got {len(operators)}"
        )
    for names in operators if per_position else [operators]:
        unknown = [name for name in names if name not in OPERATORS]
        if unknown or not names:
            raise ValidationError(
                f"feature_schema got unknown operators {unknown} or an empty list; "
                f"use names of OPERATORS"
            )

    def item(names: Sequence[str]) -> dict:
        max_inputs = max(OPERATORS[name].arity for name in names)
        return {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
                "operator": {"type": "string", "enum": list(names)},
                "inputs": {
                    "type": "array",
                    "items": {"type": "string", "enum": columns},
                    "minItems": 1,
                    "maxItems": max_inputs,
                },
            },
            "required": ["name", "operator", "inputs"],
            "additionalProperties": False,
        }

    if per_position:
        features = {"type": "array", "prefixItems": [item(names) for names in operators]}
    else:
        features = {"type": "array", "items": item(operators)}
    features.update(minItems=n_features, maxItems=n_features)
    return {
        "type": "object",
        "properties": {"features": features},
        "required": ["features"],
        "additionalProperties": False,
    }


def _build(
    frame: pd.DataFrame,
    target: str,
    description: str | None,
    n_features: int,
    strategy: str,
    max_sample_rows: int,
    max_chars: int,
    seed: int,
    reference: Mapping[str, float] | None,
) -> tuple[list[dict], list[str], list[list[str]] | None]:
    """(messages, listed columns, per-position operator lists for "by_class" else None)."""
    _check_args(frame, target, n_features, strategy, max_sample_rows, reference)
    X = frame.drop(columns=[target])
    kinds = column_kinds(X)
    applicable = applicable_operators(kinds)
    slots = _class_slots(applicable, n_features) if strategy == "by_class" else None

    head = _task_text(frame, target, description, max_chars)
    tail = "\n".join(
        [_operator_text(applicable, strategy, reference), _request_text(n_features, slots)]
    )

    def size(table_text: str) -> int:
        return len(SYSTEM_PROMPT) + len(head) + len(table_text) + len(tail) + 4

    if size("") > max_chars:
        raise ValidationError(
            f"max_chars={max_chars} is too small for the prompt's instructions "
            f"({size('')} characters); allow more characters"
        )
    budget = max_chars - size("")
    columns_text, listed = _columns_text(X, kinds, budget * 3 // 5)
    rows_text = _rows_text(X[listed], max_sample_rows, seed, budget - len(columns_text) - 1)
    table_text = "\n".join(part for part in (columns_text, rows_text) if part)
    user = "\n\n".join(part for part in (head, table_text, tail) if part)
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user},
    ]
    return messages, listed, slots


def _check_args(frame, target, n_features, strategy, max_sample_rows, reference) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"the table must be a pandas DataFrame, got {type(frame).__name__}")
    if target not in frame.columns:
        raise ValidationError(
            f"target column {target!r} is not in the table; pass one of its columns"
        )
    if frame.shape[1] < 2:
        raise ValidationError("the table needs at least one column besides the target")
    if strategy not in STRATEGIES:
        raise ValidationError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if n_features < 1 or max_sample_rows < 0:
        raise ValidationError(
            f"n_features must be >= 1 and max_sample_rows >= 0, got {n_features}, {max_sample_rows}"
        )
    if strategy == "with_reference":
        if not reference:
            raise ValidationError(
                "strategy 'with_reference' needs reference operator shares (operator → share)"
            )
        unknown = sorted(set(reference) - set(OPERATORS))
        if unknown:
            raise ValidationError(f"reference names unknown operators {unknown}")


def _class_slots(applicable: Sequence[str], n_features: int) -> list[list[str]]:
    """The operators allowed at each position: the applicable classes, round robin."""
    families = [
        [name for name in applicable if OPERATORS[name].family == family] for family in FAMILY_ORDER
    ]
    families = [names for names in families if names]
    return [families[i % len(families)] for i in range(n_features)]


def _task_text(frame: pd.DataFrame, target: str, description: str | None, max_chars: int) -> str:
    lines = []
    if description:
        limit = max(200, max_chars // 5)
        text = " ".join(description.split())
        lines.append("Dataset: " + (text if len(text) <= limit else text[: limit - 1] + "…"))
    y = frame[target]
    n_unique = y.nunique()
    if not pd.api.types.is_numeric_dtype(y) or n_unique <= 20:
        shares = y.value_counts(normalize=True).head(10)
        classes = ", ".join(f"{_cell(v)} ({share:.0%})" for v, share in shares.items())
        more = f", … ({n_unique} classes)" if n_unique > 10 else ""
        task = f"classification; classes: {classes}{more}"
    else:
        task = f"regression; mean {_number(y.mean())}, std {_number(y.std())}"
    lines.append(f"Target column: {_cell(target)} ({task}). Never use it as an input.")
    lines.append(f"The table has {len(frame)} rows and {frame.shape[1] - 1} other columns.")
    return "\n".join(lines)


def _columns_text(
    X: pd.DataFrame, kinds: Mapping[str, frozenset[str]], budget: int
) -> tuple[str, list[str]]:
    """The column listing within `budget` characters, and the columns it lists."""
    header = "Columns (name: kinds; statistics):"
    lines, listed, used = [header], [], len(header)
    for column in X.columns:
        line = f"- {_column_line(X[column], kinds[column])}"
        note = len(f"\n(… and {len(X.columns)} more columns not listed)")
        if used + 1 + len(line) + note > budget:
            break
        lines.append(line)
        listed.append(column)
        used += 1 + len(line)
    if not listed and len(X.columns):
        raise ValidationError(
            "the prompt budget leaves no room for a single column; allow more characters"
        )
    left_out = len(X.columns) - len(listed)
    if left_out:
        lines.append(f"(… and {left_out} more columns not listed)")
    return "\n".join(lines), listed


def _column_line(values: pd.Series, kind: frozenset[str]) -> str:
    kind_text = " and ".join(k for k in (NUMERICAL, CATEGORICAL) if k in kind)
    parts = [f"{_cell(values.name, 40)}: {kind_text}"]
    missing = values.isna().mean()
    if missing:
        parts.append(f"{missing:.0%} missing")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        finite = values[np.isfinite(values.astype("float64"))]
        if len(finite):
            parts.append(
                f"min {_number(finite.min())}, mean {_number(finite.mean())}, "
                f"max {_number(finite.max())}"
            )
    if CATEGORICAL in kind:
        top = values.value_counts().head(3).index
        parts.append(f"{values.nunique()} values, e.g. {', '.join(_cell(v, 16) for v in top)}")
    return "; ".join(parts)


def _rows_text(X: pd.DataFrame, max_rows: int, seed: int, budget: int) -> str:
    """Up to `max_rows` rows sampled with `seed`, as CSV, within `budget` characters."""
    if max_rows == 0 or X.shape[1] == 0 or len(X) == 0:
        return ""
    sample = X.sample(n=min(max_rows, len(X)), random_state=seed)
    header = ",".join(_cell(c, 40) for c in X.columns)
    rows = [",".join(_cell(v) for v in row) for row in sample.itertuples(index=False)]
    title = f"{len(rows)} sample rows (CSV):"
    while rows and len(title) + len(header) + sum(len(r) + 1 for r in rows) + 2 > budget:
        rows.pop()
        title = f"{len(rows)} sample rows (CSV):"
    if not rows:
        return ""
    return "\n".join([title, header, *rows])


def _operator_text(
    applicable: Sequence[str], strategy: str, reference: Mapping[str, float] | None
) -> str:
    lines = [
        "Each new feature applies one operator to existing columns "
        "(c: categorical column, a, b, x: numerical columns):"
    ]
    if strategy == "with_reference":
        lines[0] = (
            "Each new feature applies one operator to existing columns (c: categorical column, "
            "a, b, x: numerical columns). The share after each operator is how often a strong "
            "automated feature-engineering search chose it; choose operators in about these "
            "shares:"
        )
    for family in FAMILY_ORDER:
        names = [name for name in applicable if OPERATORS[name].family == family]
        if not names:
            continue
        lines.append(f"{FAMILY_TITLES[family]}:")
        for name in names:
            signature, meaning = OPERATOR_MEANINGS[name]
            share = ""
            if strategy == "with_reference":
                share = f" [share {(reference or {}).get(name, 0.0):.0%}]"
            lines.append(f"  {signature}: {meaning}{share}")
    return "\n".join(lines)


def _request_text(n_features: int, slots: list[list[str]] | None) -> str:
    example = json.dumps(
        {"features": [{"name": "short_name", "operator": "operator", "inputs": ["column"]}]}
    )
    lines = [f"Propose {n_features} new features that help predict the target."]
    if slots is not None:
        demands = [
            f"feature {i + 1} must use a {FAMILY_TITLES[OPERATORS[names[0]].family]} operator"
            for i, names in enumerate(slots)
        ]
        lines.append("Use every operator class: " + "; ".join(demands) + ".")
    lines.append(
        "Give inputs in the operator's order, using column names exactly as listed. "
        f"Reply with JSON only, in this form: {example}"
    )
    return "\n".join(lines)


def _cell(value: object, limit: int = MAX_CELL_CHARS) -> str:
    """A value as short prompt text (floats rounded, long strings cut, no commas/newlines)."""
    if isinstance(value, float | np.floating):
        text = _number(value)
    else:
        text = str(value)
    text = " ".join(text.replace(",", ";").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: float) -> str:
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def row_completion_prompt(
    frame: pd.DataFrame, n_prefix_rows: int = 10, seed: int = 0, max_chars: int = DEFAULT_MAX_CHARS
) -> tuple[list[dict], str]:
    """(messages, expected row): `n_prefix_rows` consecutive rows of `frame`, from a start
    drawn with `seed`, given as CSV with the header, and the row that follows them, which the
    model is asked to write. A model that saw the table in training tends to complete it
    exactly (the row-completion test of Bordt et al., "Elephants never forget").

    Only as many leading columns as keep the prompt within `max_chars` are used."""
    messages, _, expected = _row_completion(frame, n_prefix_rows, seed, max_chars)
    return messages, expected


def _row_completion(
    frame: pd.DataFrame, n_prefix_rows: int, seed: int, max_chars: int
) -> tuple[list[dict], list[str], str]:
    """(messages, the prefix rows as CSV lines, the expected next row)."""
    if not isinstance(frame, pd.DataFrame) or n_prefix_rows < 1 or len(frame) <= n_prefix_rows:
        rows = len(frame) if isinstance(frame, pd.DataFrame) else 0
        raise ValidationError(
            f"row completion needs n_prefix_rows >= 1 and a DataFrame with more rows than "
            f"that, got n_prefix_rows={n_prefix_rows} and {rows} rows"
        )
    start = int(np.random.default_rng(seed).integers(0, len(frame) - n_prefix_rows))
    block = frame.iloc[start : start + n_prefix_rows + 1]
    system = "You are a helpful assistant that continues CSV files."
    instruction = (
        "Here are consecutive rows of a CSV file, with its header. Write the next row of the "
        "file exactly as it appears in the file, and nothing else."
    )
    for n_columns in range(frame.shape[1], 0, -1):
        # pandas writes the values as a CSV file holds them; cells never hold a newline here
        lines = block.iloc[:, :n_columns].to_csv(index=False, lineterminator="\n").split("\n")[:-1]
        text = "\n".join(lines[:-1])
        if len(system) + len(instruction) + len(text) + 2 <= max_chars:
            break
    else:
        raise ValidationError(
            f"max_chars={max_chars} leaves no room for {n_prefix_rows} rows; allow more"
        )
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{instruction}\n\n{text}"},
    ]
    return messages, lines[1:-1], lines[-1]


def _normalise_row(text: str) -> str:
    return ",".join(cell.strip().strip('"') for cell in text.strip().split(","))


def _first_line(reply: str) -> str:
    """The first line of a reply that is neither blank nor a code fence."""
    for line in reply.splitlines():
        if line.strip() and not line.strip().startswith("```"):
            return line
    return ""


def memorisation_score(
    client: ChatClient,
    frame: pd.DataFrame,
    n_trials: int = 10,
    seed: int = 0,
    n_prefix_rows: int = 10,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> float:
    """The share of `n_trials` row-completion prompts whose next row `client` writes exactly
    (temperature 0; trial i uses seed + i). The paper drops a table when the LLM completes
    ≥ 50% of the rows. Compare with `row_completion_chance`, what a model that copies a row
    it was shown scores without any memorisation."""
    n_trials = check_positive_int(n_trials, "n_trials")
    hits = 0
    for trial in range(n_trials):
        messages, _, expected = _row_completion(frame, n_prefix_rows, seed + trial, max_chars)
        reply = client.complete(messages, temperature=0.0, seed=seed + trial, max_tokens=256)
        hits += _normalise_row(_first_line(reply)) == _normalise_row(expected)
    return hits / n_trials


def row_completion_chance(
    frame: pd.DataFrame,
    n_trials: int = 10,
    seed: int = 0,
    n_prefix_rows: int = 10,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> float:
    """The score of a model that answers with one of the rows it was shown, when one of them
    equals the next row: the share of `memorisation_score`'s trials where that happens."""
    n_trials = check_positive_int(n_trials, "n_trials")
    hits = 0
    for trial in range(n_trials):
        _, shown, expected = _row_completion(frame, n_prefix_rows, seed + trial, max_chars)
        hits += _normalise_row(expected) in {_normalise_row(line) for line in shown}
    return hits / n_trials
