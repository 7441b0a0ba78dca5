"""The search language: parse_filter / parse_order_by, like_match and to_number."""

from __future__ import annotations

import math

import pytest

from nbmlops.errors import InvalidArgument
from nbmlops.store.search import (
    And,
    Comparison,
    Field,
    Not,
    Or,
    OrderKey,
    like_match,
    parse_filter,
    parse_order_by,
    to_number,
)

# --------------------------------------------------------------------------- parse_filter: ASTs


def test_empty_filters_parse_to_none() -> None:
    """None, '' and blanks mean 'no filter'."""
    assert parse_filter(None) is None
    assert parse_filter("") is None
    assert parse_filter("  \t ") is None


def test_comparison_kinds_and_values() -> None:
    """Numbers become floats, quoted strings are unquoted, fields get their kind."""
    assert parse_filter("metrics.f1 > 0.8") == Comparison(Field("metric", "f1"), ">", 0.8)
    assert parse_filter("params.model = 'rf'") == Comparison(Field("param", "model"), "=", "rf")
    assert parse_filter('tags.stage != "prod"') == Comparison(Field("tag", "stage"), "!=", "prod")
    assert parse_filter("status = 'RUNNING'") == Comparison(
        Field("attribute", "status"), "=", "RUNNING"
    )
    assert parse_filter("params.n >= -1.5e3") == Comparison(Field("param", "n"), ">=", -1500.0)


def test_operator_spellings() -> None:
    """<> means !=; keywords are case-insensitive; NOT LIKE / NOT IN / IS NOT NULL parse."""
    assert parse_filter("params.a <> 'x'") == Comparison(Field("param", "a"), "!=", "x")
    assert parse_filter("params.a like 'x%'") == Comparison(Field("param", "a"), "LIKE", "x%")
    assert parse_filter("params.a not ilike 'x%'") == Comparison(
        Field("param", "a"), "NOT ILIKE", "x%"
    )
    assert parse_filter("params.a NOT IN ('x', 'y')") == Comparison(
        Field("param", "a"), "NOT IN", ("x", "y")
    )
    assert parse_filter("metrics.a IN (1, 2)") == Comparison(Field("metric", "a"), "IN", (1.0, 2.0))
    assert parse_filter("metrics.a is not null") == Comparison(Field("metric", "a"), "IS NOT NULL")
    assert parse_filter("tags.t IS NULL") == Comparison(Field("tag", "t"), "IS NULL")


def test_quoted_keys_and_escapes() -> None:
    """Keys with spaces via backticks or double quotes; doubled or escaped quotes in strings."""
    assert parse_filter("metrics.`val loss` < 1") == Comparison(
        Field("metric", "val loss"), "<", 1.0
    )
    assert parse_filter("params.\"my key\" = 'v'") == Comparison(Field("param", "my key"), "=", "v")
    assert parse_filter("params.a = 'it''s'") == Comparison(Field("param", "a"), "=", "it's")
    assert parse_filter(r"params.a = 'it\'s'") == Comparison(Field("param", "a"), "=", "it's")
    assert parse_filter("metrics.val.loss > 1") == Comparison(Field("metric", "val.loss"), ">", 1.0)


def test_attribute_prefixes_and_aliases() -> None:
    """attributes./attr./run. prefixes and the MLflow aliases name the same attributes."""
    expected = Comparison(Field("attribute", "run_id"), "=", "x")
    for spelling in ("run_id", "attributes.run_id", "attr.run_id", "run_uuid", "run.run_uuid"):
        assert parse_filter(f"{spelling} = 'x'") == expected
    assert parse_filter("name = 'a'") == Comparison(Field("attribute", "run_name"), "=", "a")
    assert parse_filter("metric.a > 1") == Comparison(Field("metric", "a"), ">", 1.0)
    assert parse_filter("parameters.a = 'b'") == Comparison(Field("param", "a"), "=", "b")


def test_precedence_not_and_or() -> None:
    """NOT binds tightest, then AND, then OR; parentheses override."""
    a = Comparison(Field("param", "a"), "=", "1")
    b = Comparison(Field("param", "b"), "=", "1")
    c = Comparison(Field("param", "c"), "=", "1")
    assert parse_filter("params.a = '1' OR params.b = '1' AND params.c = '1'") == Or(
        (a, And((b, c)))
    )
    assert parse_filter("(params.a = '1' OR params.b = '1') AND params.c = '1'") == And(
        (Or((a, b)), c)
    )
    assert parse_filter("NOT params.a = '1' AND params.b = '1'") == And((Not(a), b))
    assert parse_filter("NOT (params.a = '1' AND params.b = '1')") == Not(And((a, b)))
    assert parse_filter("not not params.a = '1'") == Not(Not(a))
    assert parse_filter("params.a = '1' and params.b = '1' and params.c = '1'") == And((a, b, c))


# --------------------------------------------------------------------------- parse_filter: errors

FILTER_ERRORS = [
    ("params.model = rf", "expected a quoted string or a number"),
    ("metrics.a > 1 and", "ends unexpectedly"),
    ("(metrics.a > 1", "missing ')'"),
    ("metrics.a > 1)", "unexpected token at position 13"),
    ("foo.a = 1", "unknown field prefix 'foo'"),
    ("bogus = 1", "unknown attribute 'bogus'"),
    ("metrics.a = 'x'", "metrics.a is numeric"),
    ("start_time > 'yesterday'", "start_time is numeric"),
    ("params.a LIKE 1", "LIKE needs a string field"),
    ("metrics.a LIKE 'x'", "LIKE needs a string field"),
    ("params.a IN (1, 'x')", "IN list mixes numbers and strings"),
    ("params.a IN 1", "expected '(' to start the IN list"),
    ("params.a IN (1 2)", "expected ',' or ')' in the IN list"),
    ("params.a IN ()", "expected a quoted string or a number"),
    ("params.a IS 1", "expected NULL after IS"),
    ("params.a ~ 1", "cannot parse filter at position 9"),
    ("params.a BETWEEN 1", "expected a comparison operator"),
    ("metrics. = 1", "expected a key after the dot"),
    ("= 1", "expected a field"),
    ("params.a = 'unclosed", "cannot parse filter at position 11"),
    ("params.a", "ends unexpectedly"),
]


@pytest.mark.parametrize(("text", "problem"), FILTER_ERRORS)
def test_filter_errors_name_the_problem(text: str, problem: str) -> None:
    """Each malformed filter is InvalidArgument whose message says what is wrong."""
    with pytest.raises(InvalidArgument) as excinfo:
        parse_filter(text)
    assert problem in str(excinfo.value)


@pytest.mark.parametrize("bad", [123, ["status = 'x'"], b"status = 'x'"])
def test_filter_must_be_a_string(bad: object) -> None:
    """A filter that is not a string is InvalidArgument, not a crash."""
    with pytest.raises(InvalidArgument, match="filter must be a string"):
        parse_filter(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- parse_order_by


def test_order_by_parses_keys_and_directions() -> None:
    """Entries parse to fields with ASC default; a single string is one entry."""
    assert parse_order_by(None) == ()
    assert parse_order_by([]) == ()
    assert parse_order_by(["metrics.f1 DESC", "params.model", "start_time asc"]) == (
        OrderKey(Field("metric", "f1"), True),
        OrderKey(Field("param", "model"), False),
        OrderKey(Field("attribute", "start_time"), False),
    )
    assert parse_order_by("metrics.`val loss` desc") == (
        OrderKey(Field("metric", "val loss"), True),
    )


ORDER_ERRORS = [
    (["metrics.a sideways"], "order_by entries look like"),
    ([""], "order_by entries look like"),
    (["   "], "order_by entries look like"),
    ([1], "order_by entries look like"),
    (["metrics.a DESC x"], "order_by entries look like"),
    (["bogus"], "unknown attribute 'bogus'"),
    (["foo.x"], "unknown field prefix 'foo'"),
    (["metrics."], "ends unexpectedly"),
]


@pytest.mark.parametrize(("entries", "problem"), ORDER_ERRORS)
def test_order_by_errors_name_the_entry_and_problem(entries: list[object], problem: str) -> None:
    """A malformed order_by entry is InvalidArgument naming the entry and what is wrong."""
    with pytest.raises(InvalidArgument) as excinfo:
        parse_order_by(entries)  # type: ignore[arg-type]
    message = str(excinfo.value)
    assert message.startswith(f"invalid order_by entry {entries[0]!r}")
    assert problem in message


# --------------------------------------------------------------------------- like_match

LIKE_CASES = [
    ("abc", "abc", False, True),
    ("abc", "ab", False, False),  # whole value, not a substring
    ("abc", "a%", False, True),
    ("a", "a%", False, True),  # % matches the empty string
    ("abc", "%c", False, True),
    ("abc", "%b%", False, True),
    ("abc", "a_c", False, True),
    ("ac", "a_c", False, False),  # _ is exactly one character
    ("abbc", "a_c", False, False),
    ("ABC", "abc", False, False),  # LIKE is case-sensitive
    ("ABC", "abc", True, True),  # ILIKE is not
    ("Straße", "STRASSE", True, False),  # per character, no full case folding
    ("Élan", "élan", True, True),
    ("a.c", "a.c", False, True),
    ("abc", "a.c", False, False),  # regex metacharacters are literal
    ("a+b(c)", "a+b(c)", False, True),
    ("line1\nline2", "line1%", False, True),  # % spans newlines
    ("50%", "50\\%", False, True),  # backslash escapes a wildcard
    ("500", "50\\%", False, False),
    ("a_b", "a\\_b", False, True),
    ("axb", "a\\_b", False, False),
    ("ends\\", "ends\\", False, True),  # a trailing backslash is literal
    ("", "%", False, True),
    ("", "_", False, False),
]


@pytest.mark.parametrize(("value", "pattern", "ci", "expected"), LIKE_CASES)
def test_like_match(value: str, pattern: str, ci: bool, expected: bool) -> None:
    """SQL LIKE semantics: % any run, _ one character, backslash escapes, anchored."""
    assert like_match(value, pattern, ci) is expected


# --------------------------------------------------------------------------- to_number

NUMBER_CASES = [
    ("1", 1.0),
    ("-2.5", -2.5),
    ("1e-2", 0.01),
    (" 3 ", 3.0),
    ("inf", math.inf),
    ("-Infinity", -math.inf),
    (7, 7.0),
    (2.5, 2.5),
    ("nan", None),  # NaN is missing, not a number
    (math.nan, None),
    ("abc", None),
    ("", None),
    ("1,5", None),
    (None, None),
    ([1], None),
]


@pytest.mark.parametrize(("value", "expected"), NUMBER_CASES)
def test_to_number(value: object, expected: float | None) -> None:
    """Numeric strings become floats; anything else (and NaN) is None."""
    assert to_number(value) == expected


def test_backslash_in_a_filter_string_reaches_like_as_an_escape() -> None:
    """``LIKE '50\\%'`` matches a literal percent sign: the parser keeps the backslash."""
    node = parse_filter("params.rate LIKE '50\\%'")
    assert isinstance(node, Comparison) and node.value == "50\\%"
    assert like_match("50%", node.value, False) and not like_match("500", node.value, False)
    quoted = parse_filter("params.name = 'it\\'s'")
    assert isinstance(quoted, Comparison) and quoted.value == "it's"
