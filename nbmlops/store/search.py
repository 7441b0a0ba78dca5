"""The ``search_runs`` filter and order-by language, shared by every store.

Syntax (a superset of MLflow's)::

    metrics.f1 > 0.8 and params.model = 'rf' and tags.stage != 'x'
    (status = 'FAILED' or metrics.loss IS NULL) and not run_name LIKE 'tmp%'
    params.n_estimators >= 100          -- numeric literal: compared as a number
    attributes.start_time > 1700000000000
    metrics.`val loss` < 0.3            -- keys with spaces: backticks or double quotes

Identifiers are ``metrics.K``, ``params.K``, ``tags.K`` or an attribute (``status``,
``run_name``, ``run_id``, ``user``, ``experiment_id``, ``parent_run_id``, ``start_time``,
``end_time``, ``source_path``, ``cell_id``; optionally prefixed ``attributes.``).
Operators: ``= != <> < <= > >=``, ``LIKE``/``ILIKE`` (``%`` and ``_`` wildcards; LIKE is
case-sensitive), ``IN (...)``/``NOT IN (...)``, ``IS NULL``/``IS NOT NULL``, combined with
``AND``/``OR``/``NOT`` and parentheses (NOT binds tightest, then AND, then OR).

One rule for missing data, kept by every store: a comparison with a value the run does not
have (metric never logged or NaN, param/tag unset, end_time of a running run) is false; ask
for those with ``IS NULL``.

The parser builds a small AST. :func:`compile_predicate` turns it into a Python predicate
over :class:`~nbmlops.entities.Run` (memory store); :func:`compile_sql` turns it into a
parameterised SQL expression (SQLite store). The contract suite checks they agree.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from nbmlops.entities import Run
from nbmlops.errors import InvalidArgument

NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
STRING_ATTRIBUTES = {
    "run_id",
    "run_name",
    "status",
    "user",
    "experiment_id",
    "parent_run_id",
    "source_path",
    "cell_id",
}
ATTRIBUTES = NUMERIC_ATTRIBUTES | STRING_ATTRIBUTES
_ATTRIBUTE_ALIASES = {"run_uuid": "run_id", "name": "run_name", "user_id": "user"}
_KIND_ALIASES = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_COMPARATORS = {"=", "!=", "<", "<=", ">", ">="}
_ORDER_RULE = "order_by entries look like 'metrics.f1 DESC', 'params.model', 'start_time ASC'"


@dataclasses.dataclass(frozen=True)
class Field:
    """What a comparison or sort reads: ``kind`` is metric, param, tag or attribute."""

    kind: str
    key: str

    @property
    def label(self) -> str:
        return self.key if self.kind == "attribute" else f"{self.kind}s.{self.key}"


@dataclasses.dataclass(frozen=True)
class Comparison:
    field: Field
    op: str  # one of _COMPARATORS, LIKE, ILIKE, NOT LIKE, NOT ILIKE, IN, NOT IN, IS NULL, IS NOT NULL
    value: Any = None  # float | str | tuple[float | str, ...] | None


@dataclasses.dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Not:
    item: Node


Node = Comparison | And | Or | Not


@dataclasses.dataclass(frozen=True)
class OrderKey:
    field: Field
    descending: bool


# --------------------------------------------------------------------------- tokenizer

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<backtick>`[^`]*`)
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-:.]*)
    """,
    re.VERBOSE,
)


@dataclasses.dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _unquote(text: str) -> str:
    """Body of a quoted token: a doubled quote or a backslash-quote stands for the quote.

    Other backslashes are kept, so LIKE patterns can escape wildcards: ``'50\\%'``.
    """
    quote = text[0]
    body = text[1:-1]
    return body.replace(quote * 2, quote).replace("\\" + quote, quote)


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise InvalidArgument(
                f"cannot parse filter at position {pos}: {text[pos : pos + 20]!r} "
                "(strings need quotes: params.model = 'rf')"
            )
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, match.group(), pos))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # -- helpers
    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def peek_word(self, *words: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.kind == "word" and tok.text.upper() in words

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise InvalidArgument(f"filter {self.text!r} ends unexpectedly")
        self.i += 1
        return tok

    def error(self, message: str, tok: _Tok | None) -> InvalidArgument:
        where = f"at position {tok.pos} ({tok.text!r})" if tok else "at the end"
        return InvalidArgument(f"invalid filter {self.text!r}: {message} {where}")

    # -- grammar
    def parse(self) -> Node:
        node = self.parse_or()
        if self.peek() is not None:
            raise self.error("unexpected token", self.peek())
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.peek_word("OR"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_not()]
        while self.peek_word("AND"):
            self.take()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_not(self) -> Node:
        if self.peek_word("NOT"):
            self.take()
            return Not(self.parse_not())
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            node = self.parse_or()
            closing = self.peek()
            if closing is None or closing.text != ")":
                raise self.error("missing ')'", closing)
            self.take()
            return node
        return self.parse_comparison()

    def parse_field(self) -> Field:
        tok = self.take()
        if tok.kind != "word":
            raise self.error("expected a field such as metrics.f1, params.model or status", tok)
        prefix, dot, key = tok.text.partition(".")
        if not dot:
            return Field("attribute", _attribute(prefix, self))
        kind = _KIND_ALIASES.get(prefix.lower())
        if kind is None:
            raise self.error(
                f"unknown field prefix {prefix!r}; use metrics., params., tags. or attributes.", tok
            )
        if not key:  # quoted key: metrics.`val loss` or params."my key"
            key_tok = self.take()
            if key_tok.kind not in ("backtick", "string"):
                raise self.error("expected a key after the dot", key_tok)
            key = _unquote(key_tok.text)
        if kind == "attribute":
            return Field("attribute", _attribute(key, self))
        return Field(kind, key)

    def parse_value(self) -> float | str:
        tok = self.take()
        if tok.kind == "string":
            return _unquote(tok.text)
        if tok.kind == "number":
            return float(tok.text)
        raise self.error("expected a quoted string or a number", tok)

    def parse_comparison(self) -> Comparison:
        field = self.parse_field()
        tok = self.take()
        upper = tok.text.upper()
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            value: Any = self.parse_value()
        elif upper == "IS":
            negate = False
            if self.peek_word("NOT"):
                self.take()
                negate = True
            if not self.peek_word("NULL"):
                raise self.error("expected NULL after IS", self.peek())
            self.take()
            return _checked(Comparison(field, "IS NOT NULL" if negate else "IS NULL"), self)
        elif upper in ("LIKE", "ILIKE", "IN") or (
            upper == "NOT" and self.peek_word("LIKE", "ILIKE", "IN")
        ):
            if upper == "NOT":
                upper = "NOT " + self.take().text.upper()
            op = upper
            value = self.parse_list() if op.endswith("IN") else self.parse_value()
        else:
            raise self.error(
                "expected a comparison operator (=, !=, <, LIKE, IN, IS NULL ...)", tok
            )
        return _checked(Comparison(field, op, value), self)

    def parse_list(self) -> tuple[float | str, ...]:
        tok = self.take()
        if tok.text != "(":
            raise self.error("expected '(' to start the IN list", tok)
        values = [self.parse_value()]
        while True:
            tok = self.take()
            if tok.text == ")":
                return tuple(values)
            if tok.text != ",":
                raise self.error("expected ',' or ')' in the IN list", tok)
            values.append(self.parse_value())


def _attribute(name: str, parser: _Parser) -> str:
    key = _ATTRIBUTE_ALIASES.get(name, name)
    if key not in ATTRIBUTES:
        raise InvalidArgument(
            f"invalid filter {parser.text!r}: unknown attribute {name!r}; known attributes: "
            f"{', '.join(sorted(ATTRIBUTES))} (or use metrics./params./tags.)"
        )
    return key


def _checked(cmp: Comparison, parser: _Parser) -> Comparison:
    """Type rules: metrics and time attributes compare to numbers; LIKE needs a string."""
    numeric_field = cmp.field.kind == "metric" or (
        cmp.field.key in NUMERIC_ATTRIBUTES and (cmp.field.kind == "attribute")
    )
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    if cmp.op.endswith("NULL"):
        return cmp
    if "LIKE" in cmp.op:
        if numeric_field or not isinstance(cmp.value, str):
            raise InvalidArgument(
                f"invalid filter {parser.text!r}: {cmp.op} needs a string field and a quoted pattern"
            )
        return cmp
    if numeric_field and not all(isinstance(v, float) for v in values):
        raise InvalidArgument(
            f"invalid filter {parser.text!r}: {cmp.field.label} is numeric; compare it with a number"
        )
    if cmp.op.endswith("IN"):
        kinds = {type(v) for v in values}
        if len(kinds) > 1:
            raise InvalidArgument(
                f"invalid filter {parser.text!r}: IN list mixes numbers and strings"
            )
    return cmp


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter string into an AST (None for an empty filter)."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidArgument(f"filter must be a string, got {type(text).__name__}")
    return _parse_filter_text(text)


@functools.lru_cache(maxsize=256)
def _parse_filter_text(text: str) -> Node | None:
    if not text.strip():
        return None
    return _Parser(text).parse()


def parse_order_by(order_by: Sequence[str] | str | None) -> tuple[OrderKey, ...]:
    """Parse ``["metrics.f1 DESC", "start_time"]`` into order keys."""
    if order_by is None:
        return ()
    if isinstance(order_by, str):
        order_by = [order_by]
    keys: list[OrderKey] = []
    for entry in order_by:
        if not isinstance(entry, str) or not entry.strip():
            raise InvalidArgument(f"invalid order_by entry {entry!r}: {_ORDER_RULE}")
        parser = _Parser(entry)
        try:
            field = parser.parse_field()
        except InvalidArgument as exc:
            raise InvalidArgument(f"invalid order_by entry {entry!r}: {exc}") from None
        descending = False
        if parser.peek_word("ASC", "DESC"):
            descending = parser.take().text.upper() == "DESC"
        if parser.peek() is not None:
            raise InvalidArgument(f"invalid order_by entry {entry!r}: {_ORDER_RULE}")
        keys.append(OrderKey(field, descending))
    return tuple(keys)


# --------------------------------------------------------------------------- python evaluation


def like_match(value: str, pattern: str, case_insensitive: bool) -> bool:
    """SQL LIKE with ``%`` and ``_`` wildcards (``\\`` escapes), evaluated in Python.

    Both stores use this one function (SQLite calls it as a registered SQL function), so
    case folding and wildcards behave the same everywhere.
    """
    return _like_regex(pattern, case_insensitive).fullmatch(value) is not None


@functools.lru_cache(maxsize=512)
def _like_regex(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def to_number(value: Any) -> float | None:
    """A param/tag string as a number, or None when it is not numeric (or is NaN)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def field_value(run: Run, field: Field) -> Any:
    """The value a run has for ``field``; None when missing (NaN metrics count as missing)."""
    if field.kind == "metric":
        value = run.data.metrics.get(field.key)
        return None if value is None or math.isnan(value) else value
    if field.kind == "param":
        return run.data.params.get(field.key)
    if field.kind == "tag":
        return run.data.tags.get(field.key)
    info = run.info
    key = field.key
    if key == "status":
        return info.status.value
    if key == "source_path":
        return info.source.path or None
    if key == "cell_id":
        return info.source.cell_id or None
    return getattr(info, key)


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _eval_comparison(cmp: Comparison, run: Run) -> bool:
    raw = field_value(run, cmp.field)
    if cmp.op == "IS NULL":
        return raw is None
    if cmp.op == "IS NOT NULL":
        return raw is not None
    if raw is None:
        return False
    if "LIKE" in cmp.op:
        matched = like_match(str(raw), cmp.value, "ILIKE" in cmp.op)
        return not matched if cmp.op.startswith("NOT") else matched
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    numeric = isinstance(values[0], float)
    left: Any = raw
    if numeric and not isinstance(raw, (int, float)):
        left = to_number(raw)
        if left is None:
            return False
    elif not numeric:
        left = str(raw)
    if cmp.op == "IN":
        return left in values
    if cmp.op == "NOT IN":
        return left not in values
    return _compare(left, cmp.op, values[0])


def compile_predicate(node: Node | None) -> Callable[[Run], bool]:
    """A Python predicate equivalent to the filter AST (always-true for None)."""
    if node is None:
        return lambda run: True
    if isinstance(node, Comparison):
        return functools.partial(_eval_comparison, node)
    if isinstance(node, And):
        parts = [compile_predicate(n) for n in node.items]
        return lambda run: all(p(run) for p in parts)
    if isinstance(node, Or):
        parts = [compile_predicate(n) for n in node.items]
        return lambda run: any(p(run) for p in parts)
    inner = compile_predicate(node.item)
    return lambda run: not inner(run)


def sort_runs(runs: list[Run], order: Sequence[OrderKey]) -> list[Run]:
    """Sort runs by the order keys; missing values last; ties by start_time DESC, run_id."""
    result = sorted(runs, key=lambda r: r.info.run_id)
    result.sort(key=lambda r: r.info.start_time, reverse=True)
    for key in reversed(order):
        present = [r for r in result if field_value(r, key.field) is not None]
        missing = [r for r in result if field_value(r, key.field) is None]
        present.sort(
            key=lambda r, f=key.field: _sort_value(field_value(r, f)), reverse=key.descending
        )
        result = present + missing
    return result


def _sort_value(value: Any) -> Any:
    return value if isinstance(value, (int, float)) else str(value)


# --------------------------------------------------------------------------- SQL compilation

#: SQL column of the runs table (alias ``r``) for each attribute.
SQL_ATTRIBUTE_COLUMNS = {
    "run_id": "r.run_id",
    "run_name": "r.name",
    "status": "r.status",
    "user": "r.user",
    "experiment_id": "CAST(r.experiment_id AS TEXT)",
    "parent_run_id": "r.parent_run_id",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
    "source_path": "NULLIF(r.source_path, '')",
    "cell_id": "NULLIF(r.cell_id, '')",
}
_SQL_TABLES = {"metric": "latest_metrics", "param": "params", "tag": "tags"}


def sql_value_expr(field: Field, params: list[Any]) -> str:
    """A scalar SQL expression giving the field's value for run ``r`` (NULL when missing)."""
    if field.kind == "attribute":
        return SQL_ATTRIBUTE_COLUMNS[field.key]
    params.append(field.key)
    table = _SQL_TABLES[field.kind]
    return f"(SELECT x.value FROM {table} x WHERE x.run_id = r.run_id AND x.key = ?)"


def _sql_comparison(cmp: Comparison, params: list[Any]) -> str:
    expr = sql_value_expr(cmp.field, params)
    if cmp.op == "IS NULL":
        return f"({expr} IS NULL)"
    if cmp.op == "IS NOT NULL":
        return f"({expr} IS NOT NULL)"
    # Every comparison is two-valued: IFNULL(..., 0) makes a missing value compare false
    # (as in compile_predicate), so NOT around it is true instead of SQL's NULL.
    if "LIKE" in cmp.op:
        params.extend([cmp.value, 1 if "ILIKE" in cmp.op else 0])
        test = f"nb_like({expr}, ?, ?)"
        return f"IFNULL(NOT {test}, 0)" if cmp.op.startswith("NOT") else f"IFNULL({test}, 0)"
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    numeric = isinstance(values[0], float)
    if (numeric and cmp.field.kind in ("param", "tag")) or (
        numeric and cmp.field.kind == "attribute" and cmp.field.key in STRING_ATTRIBUTES
    ):
        expr = f"nb_num({expr})"
    if cmp.op in ("IN", "NOT IN"):
        params.extend(values)
        marks = ", ".join("?" for _ in values)
        return f"IFNULL({expr} {cmp.op} ({marks}), 0)"
    params.append(values[0])
    return f"IFNULL({expr} {cmp.op} ?, 0)"


def compile_sql(node: Node | None, params: list[Any]) -> str:
    """A SQL boolean expression over run alias ``r``; appends bind values to ``params``.

    Requires the SQL functions ``nb_like(value, pattern, ci)`` and ``nb_num(value)`` (see
    :func:`like_match` and :func:`to_number`) to be registered on the connection.
    """
    if node is None:
        return "1"
    if isinstance(node, Comparison):
        return _sql_comparison(node, params)
    if isinstance(node, And):
        return "(" + " AND ".join(compile_sql(n, params) for n in node.items) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(compile_sql(n, params) for n in node.items) + ")"
    return f"(NOT {compile_sql(node.item, params)})"


def compile_sql_order(order: Sequence[OrderKey], params: list[Any]) -> str:
    """ORDER BY terms (missing values last), ending with start_time DESC, run_id."""
    terms: list[str] = []
    for key in order:
        # The value expression is written twice (null test, then value); each binds its key.
        terms.append(f"({sql_value_expr(key.field, params)} IS NULL)")
        value = sql_value_expr(key.field, params)
        terms.append(f"{value} {'DESC' if key.descending else 'ASC'}")
    terms.extend(["r.start_time DESC", "r.run_id ASC"])
    return ", ".join(terms)
