"""Input rules shared by the client, the stores and (later) the REST handlers.

Each check raises :class:`~nbmlops.errors.InvalidArgument` with a message that names the
argument, shows the offending value (shortened) and states the rule, so a user never has to
guess why a call was refused. Nothing is truncated silently: a value over a limit is refused.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

from nbmlops.entities import STAGES
from nbmlops.errors import InvalidArgument

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_BYTES = 64 * 1024
MAX_TAG_VALUE_BYTES = 1024 * 1024
MAX_NAME_LENGTH = 500
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
KEY_RULE = (
    f"keys are 1-{MAX_KEY_LENGTH} characters, contain no '/' or '\\', no control characters, "
    "no leading/trailing whitespace, and are not '.' or '..'"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def short(value: Any, limit: int = 60) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_key(key: Any, kind: str = "key") -> str:
    """Check a param/metric/tag key and return it.

    Args:
        key: the key to check.
        kind: what the key names ("param", "metric", "tag") for the error message.
    """
    if not isinstance(key, str):
        raise InvalidArgument(f"{kind} key must be a string, got {type(key).__name__} {short(key)}")
    if (
        not key
        or len(key) > MAX_KEY_LENGTH
        or "/" in key
        or "\\" in key
        or _CONTROL.search(key)
        or key != key.strip()
        or key in (".", "..")
    ):
        raise InvalidArgument(f"invalid {kind} key {short(key)}: {KEY_RULE}")
    return key


def _check_text_size(value: str, limit: int, what: str) -> str:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidArgument(
            f"{what} is {size} bytes; the limit is {limit} bytes (values are never truncated)"
        )
    return value


def param_value_to_str(key: str, value: Any) -> str:
    """Convert a param value to its stored string form, refusing oversize values."""
    text = value if isinstance(value, str) else str(value)
    return _check_text_size(text, MAX_PARAM_VALUE_BYTES, f"value of param {key!r}")


def tag_value_to_str(key: str, value: Any) -> str:
    """Convert a tag value to its stored string form, refusing oversize values."""
    text = value if isinstance(value, str) else str(value)
    return _check_text_size(text, MAX_TAG_VALUE_BYTES, f"value of tag {key!r}")


#: numpy dtype kinds that are not real numbers: complex, text, bytes, time deltas, dates, void.
_NON_REAL_DTYPE_KINDS = frozenset("cUSmMV")


def metric_value_to_float(key: str, value: Any) -> float:
    """Convert a metric value to float; NaN and ±inf are allowed, non-numbers are refused."""
    if type(value) is float:
        return value
    kind = getattr(getattr(value, "dtype", None), "kind", "")
    if kind not in _NON_REAL_DTYPE_KINDS and (
        isinstance(value, numbers.Real)
        # numpy 0-d arrays and similar scalars that are not registered as numbers.Real.
        or (getattr(value, "ndim", None) == 0 and not isinstance(value, (str, bytes)))
    ):
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            pass
    raise InvalidArgument(
        f"metric {key!r} must be a real number (int, float, NaN or ±inf), "
        f"got {type(value).__name__} {short(value)}"
    )


def validate_step(step: Any) -> int:
    """Check a metric step: an integer (not bool) within int64."""
    if step is None:
        return 0
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidArgument(
            f"metric step must be an integer, got {type(step).__name__} {short(step)}"
        )
    step = int(step)
    if not INT64_MIN <= step <= INT64_MAX:
        raise InvalidArgument(f"metric step {step} is outside the 64-bit integer range")
    return step


def validate_timestamp(timestamp: Any) -> int:
    """Check a timestamp in milliseconds since the epoch (a non-negative int64)."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise InvalidArgument(
            f"timestamp must be integer milliseconds since the epoch, got {short(timestamp)}"
        )
    timestamp = int(timestamp)
    if not 0 <= timestamp <= INT64_MAX:
        raise InvalidArgument(f"timestamp {timestamp} is outside 0..2**63-1 milliseconds")
    return timestamp


def validate_run_id(run_id: Any) -> str:
    """Check a run id: 32 lowercase hex characters."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidArgument(
            f"invalid run id {short(run_id)}: run ids are 32 lowercase hex characters"
        )
    return run_id


def validate_name(name: Any, what: str) -> str:
    """Check a human-facing name (experiment, run): non-empty text without control chars."""
    if not isinstance(name, str):
        raise InvalidArgument(f"{what} must be a string, got {type(name).__name__} {short(name)}")
    if not name.strip() or len(name) > MAX_NAME_LENGTH or _CONTROL.search(name):
        raise InvalidArgument(
            f"invalid {what} {short(name)}: names are 1-{MAX_NAME_LENGTH} characters, not blank, "
            "without control characters"
        )
    return name


def validate_artifact_path(path: Any) -> str:
    """Normalise a relative artifact path (``a/b.png``) or refuse it.

    Absolute paths, ``..`` components, backslashes, empty components and control characters
    are refused: an artifact path can only name a place inside the run's artifact directory.
    """
    if not isinstance(path, str) or not path:
        raise InvalidArgument(f"artifact path must be a non-empty string, got {short(path)}")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or "\\" in path:
        raise InvalidArgument(
            f"artifact path {short(path)} must be relative and use '/' separators"
        )
    if _CONTROL.search(path):
        raise InvalidArgument(f"artifact path {short(path)} contains control characters")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidArgument(f"artifact path {short(path)} names no file")
    if any(p == ".." for p in parts):
        raise InvalidArgument(f"artifact path {short(path)} must not contain '..'")
    return "/".join(parts)


# --------------------------------------------------------------------------- model registry

MAX_MODEL_NAME_LENGTH = 250
MAX_ALIAS_LENGTH = 255
MODEL_NAME_RULE = (
    f"model names are 1-{MAX_MODEL_NAME_LENGTH} characters, contain no '/', '\\', '@' or ':' "
    "(they would break models:/ URIs), no control characters and no leading/trailing whitespace"
)
ALIAS_RULE = (
    f"aliases are 1-{MAX_ALIAS_LENGTH} letters, digits, '_' or '-'; 'latest' and version-like "
    "names such as 'v1' are reserved"
)
#: The reserved alias that always means the newest existing version of a model.
LATEST_ALIAS = "latest"
_ALIAS = re.compile(r"[\w\-]+")
_VERSION_LIKE = re.compile(r"[vV]\d+")
_VERSION_TEXT = re.compile(r"[0-9]+")


def validate_model_name(name: Any) -> str:
    """Check a registered model name and return it (see :data:`MODEL_NAME_RULE`)."""
    if not isinstance(name, str):
        raise InvalidArgument(
            f"model name must be a string, got {type(name).__name__} {short(name)}"
        )
    if (
        not name
        or len(name) > MAX_MODEL_NAME_LENGTH
        or any(ch in name for ch in "/\\@:")
        or _CONTROL.search(name)
        or name != name.strip()
    ):
        raise InvalidArgument(f"invalid model name {short(name)}: {MODEL_NAME_RULE}")
    return name


def is_latest_alias(alias: Any) -> bool:
    """Whether ``alias`` is the reserved ``latest`` (any case)."""
    return isinstance(alias, str) and alias.lower() == LATEST_ALIAS


def validate_alias(alias: Any) -> str:
    """Check an alias name that can be set on a model (MLflow's rule) and return it.

    Letters, digits, ``_`` and ``-``, 1-255 characters. ``latest`` (any case) is refused
    because it always means the newest version, and ``v1``-like names because they read as
    versions. The message starts with "invalid alias name" so callers can tell a malformed
    alias from one that merely does not exist (NotFound).
    """
    if not isinstance(alias, str):
        raise InvalidArgument(
            f"invalid alias name {short(alias)}: an alias must be a string, "
            f"got {type(alias).__name__}"
        )
    if is_latest_alias(alias):
        raise InvalidArgument(
            f"invalid alias name {short(alias)}: 'latest' is reserved, it always means the "
            "newest version of the model"
        )
    if _VERSION_LIKE.fullmatch(alias):
        raise InvalidArgument(
            f"invalid alias name {short(alias)}: names like 'v1' are reserved because they "
            "read as version numbers"
        )
    if len(alias) > MAX_ALIAS_LENGTH or not _ALIAS.fullmatch(alias):
        raise InvalidArgument(f"invalid alias name {short(alias)}: {ALIAS_RULE}")
    return alias


def validate_version(version: Any) -> int:
    """Check a model version number: a positive integer, or its decimal text (``"3"``)."""
    number: int | None = None
    is_integer = isinstance(version, numbers.Integral) and not isinstance(version, bool)
    if is_integer or (isinstance(version, str) and _VERSION_TEXT.fullmatch(version)):
        number = int(version)
    if number is None or not 1 <= number <= INT64_MAX:
        raise InvalidArgument(
            f"invalid model version {short(version)}: versions are positive integers (1, 2, ...)"
        )
    return number


def validate_stage(stage: Any) -> str:
    """Check a model version stage (case-insensitive) and return its canonical spelling."""
    if isinstance(stage, str):
        for canonical in STAGES:
            if stage.lower() == canonical.lower():
                return canonical
    raise InvalidArgument(
        f"invalid model version stage {short(stage)}; expected one of {', '.join(STAGES)}"
    )
