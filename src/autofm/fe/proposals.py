"""Read an LLM's reply into feature proposals, each mapped to one of OpenFE's operators.

A reply is read as JSON first (leniently: inside prose or ``` fences, single quotes or trailing
commas, a bare list, one object, OpenFE formula strings such as "GroupByThenMean(c,x)") and
otherwise as Python code, whose syntax tree (`ast`) maps each new column to an operator:
`a + b` → "+", `np.log(x)` → "log", `x ** 2` → "square", `df.groupby(c)[x].transform("mean")`
→ "GroupByThenMean", `df[c].map(df[c].value_counts())` → "freq", `a.astype(str) + b.astype(str)`
→ "Combine"; code that maps to no operator is labelled OTHER.

Counting, which the audit reports: `n_proposed` proposals were found (an unreadable reply counts
as one); `n_unparsed` of them could not be read at all; every other one has an entry in
`operators` (its operator, or OTHER); `n_invalid` of those give no usable feature (OTHER, an
unknown column, a wrong kind or number of inputs, a nested expression); the rest are
`features`. So `n_proposed == n_unparsed + len(operators)` and
`len(operators) - n_invalid` proposals are valid (`features` holds them without duplicates).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pandas as pd

from autofm.fe.operators import OPERATORS, OTHER, FeatureSpec, check_feature

MAX_NAME_CHARS = 60
MAX_SCAN_CHARS = 20_000  # JSON is looked for in this much of a reply (the scan is quadratic)

# spelled-out operator names that mean exactly one operator (compared in lower case without
# spaces, "_" and "-"); vaguer phrases such as "mean by group" are not guessed
OPERATOR_ALIASES = {
    "add": "+", "addition": "+", "plus": "+", "sum": "+",
    "subtract": "-", "subtraction": "-", "minus": "-", "difference": "-", "diff": "-", "sub": "-",
    "multiply": "*", "multiplication": "*", "times": "*", "product": "*", "mul": "*", "mult": "*",
    "divide": "/", "division": "/", "div": "/", "ratio": "/", "quotient": "/",
    "×": "*", "÷": "/",
    "minimum": "min", "maximum": "max",
    "absolute": "abs", "absolutevalue": "abs",
    "ln": "log", "logarithm": "log", "log1p": "log", "naturallog": "log",
    "squareroot": "sqrt",
    "squared": "square", "pow2": "square", "power2": "square",
    "logistic": "sigmoid", "expit": "sigmoid",
    "floor": "round", "rounding": "round",
    "frac": "residual", "fractionalpart": "residual",
    "frequency": "freq", "count": "freq", "countencoding": "freq",
    "frequencyencoding": "freq", "valuecounts": "freq",
    "combination": "Combine", "concat": "Combine", "concatenate": "Combine",
}  # fmt: skip
_CANONICAL = {name.lower(): name for name in OPERATORS if name.isalpha()} | {
    alias: name for alias, name in OPERATOR_ALIASES.items()
}
_OPERATOR_KEYS = ("operator", "op", "operation", "transformation", "function")
_INPUT_KEYS = (
    "inputs", "input", "columns", "input_columns", "features", "args", "arguments",
    "operands", "cols",
)  # fmt: skip
_NAME_KEYS = ("name", "feature_name", "new_feature", "feature")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass
class ParsedReply:
    """The proposals in one reply: valid features, and the operator of every read proposal."""

    features: list[FeatureSpec]  # valid, mapped features (duplicates removed)
    operators: list[str]  # operator per read proposal, OTHER where none maps: what the audit counts
    n_proposed: int
    n_unparsed: int  # proposals that could not be read at all
    n_invalid: int  # read, but OTHER, unknown column/operator, wrong kinds or number of inputs
    format: str = "none"  # how the reply was read: "json", "code" or "none"
    problems: list[str] = field(default_factory=list)  # one short reason per unusable proposal


@dataclass
class _Proposal:
    operator: str | None  # None: unreadable
    inputs: tuple[str, ...] = ()
    name: str | None = None
    reason: str | None = None  # why it cannot be a feature, when known before checking


def parse_reply(text: str, kinds: Mapping[str, frozenset[str]]) -> ParsedReply:
    """The proposals in an LLM reply, mapped to operators and checked against the table's
    column kinds (`operators.column_kinds`)."""
    text = text if isinstance(text, str) else ""
    proposals, how = _json_proposals(text), "json"
    if proposals is None:
        proposals, how = _code_proposals(text, kinds), "code"
    if proposals is None:
        problem = "reply is empty" if not text.strip() else "reply is neither JSON nor code"
        return ParsedReply([], [], 1, 1, 0, "none", [problem])
    result = ParsedReply([], [], len(proposals), 0, 0, how)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    names: set[str] = set(kinds)
    for proposal in proposals:
        if proposal.operator is None:
            result.n_unparsed += 1
            result.problems.append(proposal.reason or "unreadable proposal")
            continue
        result.operators.append(proposal.operator)
        spec, reason = _checked(proposal, kinds)
        if spec is None:
            result.n_invalid += 1
            result.problems.append(reason)
            continue
        if (spec.operator, spec.inputs) in seen:
            continue
        seen.add((spec.operator, spec.inputs))
        if spec.name is not None and spec.name in names:
            spec = FeatureSpec(spec.operator, spec.inputs)  # a clashing name: use the formula
        names.add(spec.column)
        result.features.append(spec)
    return result


def canonical_operator(name: object) -> str | None:
    """The operator an LLM's operator name means (exact, case-insensitive, or an alias)."""
    if not isinstance(name, str):
        return None
    text = name.strip()
    if text in OPERATORS:
        return text
    return _CANONICAL.get(re.sub(r"[\s_\-]", "", text.lower()))


def _checked(
    proposal: _Proposal, kinds: Mapping[str, frozenset[str]]
) -> tuple[FeatureSpec | None, str]:
    """The valid feature a read proposal gives, or None and why not."""
    if proposal.operator == OTHER:
        return None, proposal.reason or "maps to no operator"
    if proposal.reason is not None:
        return None, proposal.reason
    inputs = tuple(_match_column(c, kinds) for c in proposal.inputs)
    spec = FeatureSpec(proposal.operator, inputs, _clean_name(proposal.name))
    reason = check_feature(spec, kinds)
    if reason is not None and OPERATORS[spec.operator].family == "groupby" and len(inputs) == 2:
        # the group column may come second, as in OpenFE's own trees: unambiguous given kinds
        swapped = FeatureSpec(spec.operator, inputs[::-1], spec.name)
        if check_feature(swapped, kinds) is None:
            return swapped, ""
    return (None, reason) if reason is not None else (spec, "")


def _match_column(name: str, kinds: Mapping[object, frozenset[str]]) -> object:
    """`name` as a column of the table: exact, else stripped (also for columns whose names are
    not strings, such as 0, 1, …), else a unique case-insensitive match; else `name` itself."""
    if name in kinds:
        return name
    stripped = name.strip()
    for same in (
        [c for c in kinds if str(c) == stripped],
        [c for c in kinds if str(c).lower() == stripped.lower()],
    ):
        if len(same) == 1:
            return same[0]
    return name


def _clean_name(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    text = " ".join(name.split())[:MAX_NAME_CHARS]
    return text or None


# --- JSON -------------------------------------------------------------------------------------


def _json_proposals(text: str) -> list[_Proposal] | None:
    """The proposals of the first JSON value in `text` that holds any, else None."""
    for value in _json_values(text):
        items = _feature_items(value)
        if items is not None:
            return [_json_item(item) for item in items]
    return None


def _json_values(text: str) -> Iterator[object]:
    """JSON (or Python-literal) values found in `text`: fenced blocks first, then the whole
    text, then each balanced {...} or [...] in order."""
    fenced = [body for _, body in _FENCE.findall(text)]
    for candidate in [*fenced, text]:
        value = _loads(candidate.strip())
        if value is not None:
            yield value
    for start, char in enumerate(text[:MAX_SCAN_CHARS]):
        if char in "{[":
            end = _balanced_end(text, start)
            if end is not None:
                value = _loads(text[start:end])
                if value is not None:
                    yield value


def _loads(text: str) -> object | None:
    """`text` as JSON, as JSON without trailing commas, or as a Python literal; else None."""
    if not text or text[0] not in "{[":
        return None
    for attempt in (text, re.sub(r",\s*([}\]])", r"\1", text)):
        try:
            return json.loads(attempt)
        except ValueError:
            pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _balanced_end(text: str, start: int) -> int | None:
    """The end of the bracketed value starting at `start` (string-aware), or None."""
    closing = {"{": "}", "[": "]"}
    stack: list[str] = []
    quote: str | None = None
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in closing:
            stack.append(closing[char])
        elif char in "}]":
            if not stack or stack.pop() != char:
                return None
            if not stack:
                return index + 1
    return None


def _feature_items(value: object) -> list | None:
    """The list of proposals a JSON value holds, or None if it holds none."""
    if isinstance(value, dict):
        if any(key in value for key in _OPERATOR_KEYS) or "formula" in value:
            return [value]
        for key, candidate in value.items():
            if str(key).lower() == "features" and isinstance(candidate, list):
                return candidate  # what we asked for, even if empty or odd
        for candidate in value.values():
            if isinstance(candidate, list) and _looks_like_features(candidate):
                return candidate
        return None
    if isinstance(value, list) and _looks_like_features(value):
        return value
    return None


def _looks_like_features(items: list) -> bool:
    return any(
        (isinstance(item, dict) and _lower_keys(item).keys() & {*_OPERATOR_KEYS, "formula"})
        or (isinstance(item, str) and _formula(item) is not None)
        for item in items
    )


def _lower_keys(item: dict) -> dict:
    return {str(key).lower(): value for key, value in item.items()}


def _json_item(item: object) -> _Proposal:
    """One JSON proposal: an object with operator and inputs, or an OpenFE formula string."""
    if isinstance(item, str):
        parsed = _formula(item)
        return parsed or _Proposal(None, reason=f"unreadable proposal {item[:40]!r}")
    if not isinstance(item, dict):
        return _Proposal(None, reason=f"proposal is a {type(item).__name__}, not an object")
    fields = _lower_keys(item)
    name = next((fields[k] for k in _NAME_KEYS if isinstance(fields.get(k), str)), None)
    raw_operator = next((fields[k] for k in _OPERATOR_KEYS if k in fields), None)
    if raw_operator is None:
        parsed = _formula(fields.get("formula"))
        if parsed is None:
            return _Proposal(None, reason="proposal names no operator")
        parsed.name = name
        return parsed
    operator = canonical_operator(raw_operator)
    if operator is None:
        return _Proposal(OTHER, name=name, reason=f"unknown operator {str(raw_operator)[:40]!r}")
    raw_inputs = next((fields[k] for k in _INPUT_KEYS if k in fields), None)
    if raw_inputs is None:
        return _Proposal(operator, name=name, reason="proposal names no input columns")
    if isinstance(raw_inputs, str):
        raw_inputs = [part for part in raw_inputs.split(",") if part.strip()]
    if not isinstance(raw_inputs, list):
        raw_inputs = [raw_inputs]
    return _Proposal(operator, tuple(str(c) for c in raw_inputs), name)


def _formula(text: object) -> _Proposal | None:
    """An OpenFE formula string, "(a+b)" or "Op(a,b)", as a proposal (None if not one)."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    call = re.fullmatch(r"([A-Za-z_+\-*/]+)\s*\((.*)\)", text)
    if call:
        operator = canonical_operator(call.group(1))
        if operator is not None:
            return _Proposal(operator, tuple(p.strip() for p in call.group(2).split(",")))
    infix = re.fullmatch(r"\(\s*([^()+\-*/]+?)\s*([+\-*/])\s*([^()+\-*/]+?)\s*\)", text)
    if infix:
        return _Proposal(infix.group(2), (infix.group(1), infix.group(3)))
    return None


# --- Python code ------------------------------------------------------------------------------

_NUMPY_MODULES = {"np", "numpy", "math", "scipy.special", "special", "sp"}
_FUNCTIONS = {
    "log": "log", "log1p": "log", "log2": "log", "log10": "log",
    "sqrt": "sqrt", "abs": "abs", "fabs": "abs", "absolute": "abs", "square": "square",
    "round": "round", "rint": "round", "around": "round", "floor": "round", "trunc": "round",
    "expit": "sigmoid", "minimum": "min", "fmin": "min", "maximum": "max", "fmax": "max",
    "add": "+", "subtract": "-", "multiply": "*", "divide": "/", "true_divide": "/",
}  # fmt: skip
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_GROUP_AGGREGATES = {
    "min": "GroupByThenMin", "amin": "GroupByThenMin",
    "max": "GroupByThenMax", "amax": "GroupByThenMax",
    "mean": "GroupByThenMean", "average": "GroupByThenMean",
    "median": "GroupByThenMedian", "std": "GroupByThenStd",
    "rank": "GroupByThenRank", "nunique": "GroupByThenNUnique",
    "count": "freq", "size": "freq",
}  # fmt: skip
# calls on a column that keep it the same column for our purposes (type casts, NaN fills, guards)
_PASS_THROUGH = {"astype", "fillna", "copy", "to_numpy", "clip", "replace", "infer_objects"}
_ROW_REDUCTIONS = {"min": "min", "max": "max", "sum": "+", "prod": "*"}


class _Nested(Exception):
    """An operator applied to something that is not a column: a higher-order feature."""


def _code_proposals(text: str, kinds: Mapping[str, frozenset[str]]) -> list[_Proposal] | None:
    """The new columns the code in `text` assigns, each mapped to an operator; None when no
    code assigns any."""
    fenced = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py")]
    statements: list[ast.stmt] = []
    for block in fenced or [text]:
        statements += _statements(block)
    mapper = _CodeMapper(kinds)
    proposals: dict[tuple, _Proposal] = {}
    for statement in statements:
        for proposal in mapper.statement(statement):
            # the same column made the same way twice (say for train and test) is one proposal
            key = (proposal.name, proposal.operator, proposal.inputs, proposal.reason)
            proposals.setdefault(key, proposal)
    return list(proposals.values()) or None


def _statements(code: str) -> list[ast.stmt]:
    """The statements of `code`; if it does not parse as a whole, those of its lines that do."""
    try:
        return ast.parse(code).body
    except (SyntaxError, ValueError):
        pass
    statements = []
    for line in code.splitlines():
        try:
            statements += ast.parse(line.strip()).body
        except (SyntaxError, ValueError):
            continue
    return statements


class _CodeMapper:
    """Maps assignments of new columns to operators; remembers plain variables on the way."""

    def __init__(self, kinds: Mapping[str, frozenset[str]]) -> None:
        self.kinds = kinds
        self.variables: dict[str, ast.expr] = {}

    def statement(self, node: ast.stmt) -> list[_Proposal]:
        """The proposals in one statement (and the blocks nested in it)."""
        proposals: list[_Proposal] = []
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if value is None:
                return []
            for target in targets:
                if isinstance(target, ast.Name):
                    if _assign_call(value) is not None:
                        proposals += self._assign(_assign_call(value))
                    else:
                        self.variables[target.id] = value
                elif (name := self._new_column_name(target)) is not None:
                    proposals.append(self.proposal(value, name))
        elif isinstance(node, ast.Expr) and _assign_call(node.value) is not None:
            proposals += self._assign(_assign_call(node.value))
        for child in ("body", "orelse", "finalbody"):
            for inner in getattr(node, child, []) or []:
                if isinstance(inner, ast.stmt):
                    proposals += self.statement(inner)
        for handler in getattr(node, "handlers", []) or []:
            for inner in handler.body:
                proposals += self.statement(inner)
        return proposals

    def _assign(self, call: ast.Call) -> list[_Proposal]:
        return [self.proposal(k.value, k.arg) for k in call.keywords if k.arg is not None]

    def _new_column_name(self, target: ast.expr) -> str | None:
        """ "x" for `df["x"] = …`, `df.loc[:, "x"] = …` or `df.x = …` (a known frame column)."""
        if isinstance(target, ast.Subscript):
            key = _string_key(target.slice)
            if key is not None:
                return key
        if (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and not hasattr(pd.DataFrame, target.attr)  # df.columns = … makes no feature
        ):
            return target.attr
        return None

    def proposal(self, value: ast.expr, name: str | None) -> _Proposal:
        """The operator and inputs of the expression `value` that defines a new column."""
        try:
            mapped = self.map(value)
        except _Nested as nested:
            return _Proposal(str(nested), name=name, reason="nested expression: not first order")
        except RecursionError:
            mapped = None
        if mapped is None:
            return _Proposal(OTHER, name=name, reason=f"maps to no operator: {_source(value)}")
        operator, inputs = mapped
        return _Proposal(operator, inputs, name)

    # the expression rules --------------------------------------------------------------------

    def map(self, node: ast.expr) -> tuple[str, tuple[str, ...]] | None:
        """(operator, input columns) of an expression, None if it maps to no operator; raises
        _Nested (carrying the operator) when an operator's input is not a column."""
        node = self.resolve(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        return None

    def resolve(self, node: ast.expr, depth: int = 0) -> ast.expr:
        """`node` with variables replaced by their definitions and column-preserving wrappers
        (casts, fills, `+ 1e-9` guards) removed."""
        while depth < 20:
            depth += 1
            if isinstance(node, ast.Name) and node.id in self.variables:
                node = self.variables[node.id]
            elif (
                isinstance(node, ast.Call)
                and _method(node) in _PASS_THROUGH
                and not _is_str_cast(node)
            ):
                node = node.func.value
            elif isinstance(node, ast.Attribute) and node.attr == "values":
                node = node.value
            elif (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Add)
                and _is_number(node.right)
                and self.column(node.left) is not None
            ):
                node = node.left
            else:
                break
        return node

    def column(self, node: ast.expr) -> str | None:
        """The column `node` reads (`df["x"]`, `df.loc[:, "x"]`, `df.x`), if it reads one."""
        node = self.resolve(node)
        if isinstance(node, ast.Subscript):
            return _string_key(node.slice)
        if (
            isinstance(node, ast.Attribute)
            and node.attr in self.kinds
            and not (isinstance(node.value, ast.Name) and node.value.id in _NUMPY_MODULES | {"pd"})
        ):
            return node.attr
        return None

    def _inputs(self, operator: str, *nodes: ast.expr) -> tuple[str, tuple[str, ...]]:
        columns = [self.column(node) for node in nodes]
        if any(c is None for c in columns):
            raise _Nested(operator)
        return operator, tuple(columns)

    def _binary(self, node: ast.BinOp) -> tuple[str, tuple[str, ...]] | None:
        left, right = self.resolve(node.left), self.resolve(node.right)
        if isinstance(node.op, ast.Add) and (combined := self._combine(node)) is not None:
            return combined
        if isinstance(node.op, ast.Pow) and _is_number(right):
            powers = {2: "square", 0.5: "sqrt"}
            operator = powers.get(right.value)
            return self._inputs(operator, left) if operator else None
        if isinstance(node.op, ast.Mod) and _is_number(right, 1):
            return self._inputs("residual", left)
        if isinstance(node.op, ast.FloorDiv) and _is_number(right, 1):
            return self._inputs("round", left)
        if isinstance(node.op, ast.Div) and _is_number(left, 1):
            argument = self._sigmoid_argument(right)
            if argument is not None:
                return self._inputs("sigmoid", argument)
        if isinstance(node.op, ast.Sub) and isinstance(right, ast.Call):
            inner = self._call(right)
            if inner is not None and inner[0] == "round" and inner[1] == (self.column(left),):
                return "residual", inner[1]
        operator = _BINARY.get(type(node.op))
        if operator is None or _is_number(left) or _is_number(right):
            return None  # scaling by a constant, powers other than 2 and 1/2: no operator
        return self._inputs(operator, left, right)

    def _sigmoid_argument(self, node: ast.expr) -> ast.expr | None:
        """x when `node` is `1 + exp(-x)`."""
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
            return None
        if not _is_number(node.left, 1) or not isinstance(node.right, ast.Call):
            return None
        call = node.right
        if _function(call) != "exp" or len(call.args) != 1:
            return None
        argument = call.args[0]
        if isinstance(argument, ast.UnaryOp) and isinstance(argument.op, ast.USub):
            return argument.operand
        return None

    def _combine(self, node: ast.BinOp) -> tuple[str, tuple[str, ...]] | None:
        """`a.astype(str) + "_" + b.astype(str)` → Combine(a, b)."""
        parts: list[ast.expr] = []

        def flatten(part: ast.expr) -> None:
            part = self.resolve(part)
            if isinstance(part, ast.BinOp) and isinstance(part.op, ast.Add):
                flatten(part.left)
                flatten(part.right)
            else:
                parts.append(part)

        flatten(node)
        strings = [p for p in parts if _is_str_cast(p)]
        constants = [p for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)]
        if not strings or len(strings) + len(constants) != len(parts):
            return None
        if len(strings) != 2:
            raise _Nested("Combine")
        return self._inputs("Combine", *(_cast_argument(p) for p in strings))

    def _call(self, node: ast.Call) -> tuple[str, tuple[str, ...]] | None:
        method = _method(node)
        if method == "map" and node.args:
            return self._map_lookup(node)
        if method in ("transform", "agg", "aggregate", "rank"):
            grouped = self._group_by(node)
            if grouped is not None:
                return grouped
        if method in _ROW_REDUCTIONS and isinstance(node.func, ast.Attribute):
            columns = _column_list(node.func.value)
            if columns is not None and _keyword(node, "axis") in (1, "columns"):
                if len(columns) != 2:
                    raise _Nested(_ROW_REDUCTIONS[method])
                return _ROW_REDUCTIONS[method], tuple(columns)
        if method == "pow" and len(node.args) == 1 and _is_number(node.args[0], 2):
            return self._inputs("square", node.func.value)
        if method in ("abs", "round") and not node.args and self.column(node.func.value):
            return self._inputs(method, node.func.value)
        function = _function(node)
        if function is None:
            return None
        operator = _FUNCTIONS.get(function) if function != "power" else None
        if function == "power" and len(node.args) == 2 and _is_number(node.args[1], 2):
            return self._inputs("square", node.args[0])
        if operator is None:
            return None
        if OPERATORS[operator].arity == 2:
            return self._inputs(operator, *node.args[:2]) if len(node.args) >= 2 else None
        return self._inputs(operator, node.args[0]) if node.args else None

    def _map_lookup(self, node: ast.Call) -> tuple[str, tuple[str, ...]] | None:
        """`df[c].map(df[c].value_counts())` → freq(c); `df[c].map(df.groupby(c)[x].mean())` →
        GroupByThenMean(c, x); a map over a Combine of two columns → CombineThenFreq."""
        receiver = self.resolve(node.func.value)
        lookup = self.resolve(node.args[0])
        counts = [
            n for n in ast.walk(lookup) if isinstance(n, ast.Call) and _method(n) == "value_counts"
        ]
        if counts:
            if isinstance(receiver, ast.BinOp):
                combined = self._combine(receiver)
                if combined is not None:
                    return "CombineThenFreq", combined[1]
            return self._inputs("freq", receiver)
        if isinstance(lookup, ast.Call) and _method(lookup) in _GROUP_AGGREGATES:
            grouped = self._grouped_column(lookup.func.value)
            if grouped is not None:
                group, column = grouped
                operator = _GROUP_AGGREGATES[_method(lookup)]
                if operator == "freq":
                    return "freq", (group,)
                return operator, (group, column)
        return None

    def _group_by(self, node: ast.Call) -> tuple[str, tuple[str, ...]] | None:
        """`df.groupby(c)[x].transform("mean")` and friends; `.rank()` → GroupByThenRank."""
        grouped = self._grouped_column(node.func.value)
        if grouped is None:
            return None
        groups, column = grouped
        if _method(node) == "rank":
            aggregate = "rank"
        elif node.args:
            aggregate = _aggregate_name(node.args[0])
        else:
            return None
        operator = _GROUP_AGGREGATES.get(aggregate or "")
        if operator is None:
            return None
        if isinstance(groups, tuple):  # groupby([a, b])[...].transform("count")
            return ("CombineThenFreq", groups) if operator == "freq" and len(groups) == 2 else None
        if operator == "freq":
            return "freq", (groups,)
        return operator, (groups, column)

    def _grouped_column(self, node: ast.expr) -> tuple[str | tuple[str, ...], str] | None:
        """(group column(s), aggregated column) for `<frame>.groupby(G)[X]`."""
        node = self.resolve(node)
        if not isinstance(node, ast.Subscript):
            return None
        column = _string_key(node.slice)
        if column is None and isinstance(node.slice, ast.List) and len(node.slice.elts) == 1:
            column = _string_key(node.slice.elts[0])
        groupby = self.resolve(node.value)
        if column is None or _method(groupby) != "groupby" or not groupby.args:
            return None
        key = self.resolve(groupby.args[0])
        names = _column_list(key)
        if names is not None:
            return (names[0] if len(names) == 1 else tuple(names)), column
        single = _string_key(key) if isinstance(key, ast.Constant) else self.column(key)
        return (single, column) if single is not None else None


def _assign_call(node: ast.expr) -> ast.Call | None:
    """The `.assign(...)` call in `df.assign(x=...)` (possibly after other method calls)."""
    return node if isinstance(node, ast.Call) and _method(node) == "assign" else None


def _method(node: ast.AST) -> str | None:
    """ "m" for a call `obj.m(...)`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _function(node: ast.Call) -> str | None:
    """The numpy/math/builtin function a call names ("log" for np.log), else None."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id if func.id in _FUNCTIONS or func.id == "exp" else None
    if isinstance(func, ast.Attribute):
        try:
            module = ast.unparse(func.value)
        except (ValueError, AttributeError):
            return None
        if module in _NUMPY_MODULES:
            return func.attr
    return None


def _string_key(node: ast.AST) -> str | None:
    """ "x" for a subscript key `"x"` or `:, "x"` (as in `.loc[:, "x"]`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[0], ast.Slice):
        return _string_key(node.elts[1])
    return None


def _column_list(node: ast.AST) -> list[str] | None:
    """["a", "b"] for `["a", "b"]` or `df[["a", "b"]]`."""
    if isinstance(node, ast.Subscript):
        node = node.slice
    if isinstance(node, ast.List | ast.Tuple) and node.elts:
        names = [_string_key(e) for e in node.elts]
        return names if all(n is not None for n in names) else None
    return None


def _aggregate_name(node: ast.expr) -> str | None:
    """ "mean" for `"mean"`, `np.mean`, `mean`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _keyword(node: ast.Call, name: str) -> object:
    for keyword in node.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def _is_number(node: ast.AST, value: float | None = None) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return value is None and _is_number(node.operand)
    is_number = (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )
    return is_number and (value is None or node.value == value)


def _is_str_cast(node: ast.AST) -> bool:
    """`x.astype(str)` or `str(x)` applied to something."""
    if isinstance(node, ast.Call) and _method(node) == "astype" and node.args:
        argument = node.args[0]
        return (isinstance(argument, ast.Name) and argument.id == "str") or (
            isinstance(argument, ast.Constant) and argument.value in ("str", "string")
        )
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str"


def _cast_argument(node: ast.Call) -> ast.expr:
    return node.func.value if _method(node) == "astype" else node.args[0]


def _source(node: ast.AST, limit: int = 60) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 1] + "…"
