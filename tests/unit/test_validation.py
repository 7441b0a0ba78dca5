"""Input rules in nbmlops/validation.py: refuse with a clear message, never truncate."""

from __future__ import annotations

import fractions
import math

import numpy as np
import pytest

from nbmlops.errors import InvalidArgument
from nbmlops.validation import (
    INT64_MAX,
    INT64_MIN,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PARAM_VALUE_BYTES,
    MAX_TAG_VALUE_BYTES,
    metric_value_to_float,
    param_value_to_str,
    short,
    tag_value_to_str,
    validate_artifact_path,
    validate_key,
    validate_name,
    validate_run_id,
    validate_step,
    validate_timestamp,
)

# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "key", ["f1", "val loss", "a.b", "a-b_c:d", "ü", "x" * MAX_KEY_LENGTH, "...", ".hidden"]
)
def test_valid_keys_are_returned_unchanged(key: str) -> None:
    """Ordinary keys, including spaces inside and dots, are accepted as they are."""
    assert validate_key(key, "metric") == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "x" * (MAX_KEY_LENGTH + 1),
        "a/b",
        "a\\b",
        "tab\there",
        "nl\n",
        "nul\x00",
        "del\x7f",
        " lead",
        "trail ",
        ".",
        "..",
    ],
)
def test_invalid_keys_are_refused_with_the_rule(key: str) -> None:
    """Bad keys are InvalidArgument naming the kind of key and stating the rule."""
    with pytest.raises(InvalidArgument) as excinfo:
        validate_key(key, "param")
    message = str(excinfo.value)
    assert message.startswith("invalid param key")
    assert f"1-{MAX_KEY_LENGTH} characters" in message


@pytest.mark.parametrize("key", [None, 3, b"bytes"])
def test_non_string_keys_are_refused(key: object) -> None:
    """A key that is not a str is InvalidArgument naming its type."""
    with pytest.raises(
        InvalidArgument, match=f"tag key must be a string, got {type(key).__name__}"
    ):
        validate_key(key, "tag")


# --------------------------------------------------------------------------- param and tag values


def test_param_values_are_stringified() -> None:
    """Non-string param values are stored as their str()."""
    assert param_value_to_str("n", 100) == "100"
    assert param_value_to_str("lr", 0.1) == "0.1"
    assert param_value_to_str("flag", None) == "None"
    assert param_value_to_str("s", "text") == "text"


def test_param_value_at_limit_is_kept_whole() -> None:
    """A value of exactly the limit is accepted unchanged."""
    value = "x" * MAX_PARAM_VALUE_BYTES
    assert param_value_to_str("big", value) == value


def test_oversize_param_value_is_refused_not_truncated() -> None:
    """One byte over the limit is refused; the message names the key, size and limit."""
    with pytest.raises(InvalidArgument) as excinfo:
        param_value_to_str("big", "x" * (MAX_PARAM_VALUE_BYTES + 1))
    message = str(excinfo.value)
    assert "'big'" in message
    assert f"{MAX_PARAM_VALUE_BYTES + 1} bytes" in message
    assert f"limit is {MAX_PARAM_VALUE_BYTES} bytes" in message
    assert "never truncated" in message


def test_value_size_counts_utf8_bytes() -> None:
    """The limit is in UTF-8 bytes: 2-byte characters hit it at half the length."""
    half = MAX_PARAM_VALUE_BYTES // 2
    assert param_value_to_str("k", "é" * half) == "é" * half
    with pytest.raises(InvalidArgument, match=f"{MAX_PARAM_VALUE_BYTES + 2} bytes"):
        param_value_to_str("k", "é" * (half + 1))


def test_tag_value_limit() -> None:
    """Tags have their own, larger limit, also refused rather than truncated."""
    big = "t" * MAX_TAG_VALUE_BYTES
    assert tag_value_to_str("note", big) == big
    assert tag_value_to_str("n", 5) == "5"
    with pytest.raises(InvalidArgument, match=f"limit is {MAX_TAG_VALUE_BYTES} bytes") as excinfo:
        tag_value_to_str("note", big + "!")
    assert "tag 'note'" in str(excinfo.value)


# --------------------------------------------------------------------------- metric values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (0.25, 0.25),
        (-3, -3.0),
        (math.inf, math.inf),
        (-math.inf, -math.inf),
        (fractions.Fraction(1, 4), 0.25),
        (np.float32(0.5), 0.5),
        (np.float64(1.25), 1.25),
        (np.int64(7), 7.0),
        (np.uint8(255), 255.0),
        (np.array(2.5), 2.5),
        (np.array(3, dtype=np.int32), 3.0),
    ],
)
def test_metric_values_become_floats(value: object, expected: float) -> None:
    """Python and numpy real scalars (and 0-d arrays) become plain floats."""
    result = metric_value_to_float("m", value)
    assert type(result) is float
    assert result == expected


def test_nan_metric_values_are_allowed() -> None:
    """NaN (Python or numpy) is a valid metric value."""
    assert math.isnan(metric_value_to_float("m", math.nan))
    assert math.isnan(metric_value_to_float("m", np.float32("nan")))


@pytest.mark.parametrize(
    "value",
    [
        "0.5",
        None,
        b"1",
        [1.0],
        1j,
        10**400,  # too large for a float: refused, not an OverflowError
        np.array([1.0]),
        np.array([[1.0]]),
        np.array("1.5"),
        np.array(b"2"),
        np.complex128(1 + 0j),
        np.array(1 + 0j),
        np.timedelta64(5, "s"),
        np.datetime64("2024-01-01"),
    ],
)
def test_non_real_metric_values_are_refused(value: object) -> None:
    """Text, None, sequences, non-scalar arrays, complex and time values are refused."""
    with pytest.raises(InvalidArgument) as excinfo:
        metric_value_to_float("loss", value)
    message = str(excinfo.value)
    assert "metric 'loss' must be a real number" in message
    assert type(value).__name__ in message


# --------------------------------------------------------------------------- steps and timestamps


@pytest.mark.parametrize(
    ("step", "expected"),
    [(None, 0), (0, 0), (-5, -5), (INT64_MAX, INT64_MAX), (INT64_MIN, INT64_MIN), (np.int64(9), 9)],
)
def test_valid_steps(step: object, expected: int) -> None:
    """Steps are int64 integers (numpy ints too); None means 0."""
    result = validate_step(step)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("step", [True, False, 1.0, "1", np.float64(2.0)])
def test_non_integer_steps_are_refused(step: object) -> None:
    """Bools, floats and strings are not steps."""
    with pytest.raises(InvalidArgument, match="metric step must be an integer"):
        validate_step(step)


@pytest.mark.parametrize("step", [INT64_MAX + 1, INT64_MIN - 1, 10**30])
def test_steps_outside_int64_are_refused(step: int) -> None:
    """Steps beyond int64 are refused naming the value."""
    with pytest.raises(InvalidArgument, match=f"metric step {step} is outside the 64-bit"):
        validate_step(step)


def test_timestamps() -> None:
    """Timestamps are non-negative int64 milliseconds; others are refused."""
    assert validate_timestamp(0) == 0
    assert validate_timestamp(1_700_000_000_000) == 1_700_000_000_000
    assert validate_timestamp(INT64_MAX) == INT64_MAX
    for bad in (-1, INT64_MAX + 1):
        with pytest.raises(InvalidArgument, match=r"outside 0\.\.2\*\*63-1"):
            validate_timestamp(bad)
    for bad in (1.5, "1", True, None):
        with pytest.raises(InvalidArgument, match="integer milliseconds"):
            validate_timestamp(bad)


# --------------------------------------------------------------------------- run ids and names


def test_run_ids() -> None:
    """Run ids are exactly 32 lowercase hex characters."""
    good = "0123456789abcdef" * 2
    assert validate_run_id(good) == good
    for bad in ("", good[:-1], good + "0", good.upper(), "g" * 32, good + "\n", None, 5):
        with pytest.raises(InvalidArgument, match="run ids are 32 lowercase hex characters"):
            validate_run_id(bad)


def test_names() -> None:
    """Names are 1..MAX_NAME_LENGTH characters, not blank, no control characters."""
    assert validate_name("my experiment", "experiment name") == "my experiment"
    assert validate_name("n" * MAX_NAME_LENGTH, "run name") == "n" * MAX_NAME_LENGTH
    for bad in ("", "   ", "n" * (MAX_NAME_LENGTH + 1), "a\tb", "a\x00"):
        with pytest.raises(InvalidArgument, match="invalid run name"):
            validate_name(bad, "run name")
    with pytest.raises(InvalidArgument, match="run name must be a string"):
        validate_name(42, "run name")


# --------------------------------------------------------------------------- artifact paths


@pytest.mark.parametrize(
    ("path", "normalised"),
    [
        ("model.pkl", "model.pkl"),
        ("plots/roc.png", "plots/roc.png"),
        ("./a//b/./c.txt", "a/b/c.txt"),
        ("dir/", "dir"),
        ("...", "..."),
        ("a..b/c", "a..b/c"),
        ("with space/ü.txt", "with space/ü.txt"),
    ],
)
def test_artifact_paths_are_normalised(path: str, normalised: str) -> None:
    """Relative paths are accepted with empty and '.' components removed."""
    assert validate_artifact_path(path) == normalised


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../x", "must not contain '..'"),
        ("a/../../b", "must not contain '..'"),
        ("a/../b", "must not contain '..'"),
        ("..", "must not contain '..'"),
        ("/abs", "must be relative"),
        ("/", "must be relative"),
        ("\\\\server\\share", "must be relative"),
        ("a\\b", "use '/' separators"),
        ("C:/x", "must be relative"),
        ("c:x", "must be relative"),
        ("a\x00b", "control characters"),
        ("a\nb", "control characters"),
        (".", "names no file"),
        ("./", "names no file"),
        ("", "non-empty string"),
        (None, "non-empty string"),
        (b"a", "non-empty string"),
    ],
)
def test_unsafe_artifact_paths_are_refused(path: object, problem: str) -> None:
    """Absolute, traversing, backslashed, control-character and empty paths are refused."""
    with pytest.raises(InvalidArgument) as excinfo:
        validate_artifact_path(path)
    assert problem in str(excinfo.value)
    assert "artifact path" in str(excinfo.value)


# --------------------------------------------------------------------------- short


def test_short_cuts_long_values() -> None:
    """short() keeps short reprs and cuts long ones to the limit with an ellipsis."""
    assert short("abc") == "'abc'"
    cut = short("x" * 100, limit=20)
    assert len(cut) == 20 and cut.endswith("...")
