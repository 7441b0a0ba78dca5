"""Pieces every store implementation shares, so their behaviour cannot drift apart."""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops.entities import Metric, Param, RegistryEvent, RunStatus
from nbmlops.errors import AlreadyExists, InvalidArgument, NotFound
from nbmlops.store.base import MAX_RESULTS_LIMIT
from nbmlops.validation import (
    MAX_TAG_VALUE_BYTES,
    short,
    tag_value_to_str,
    validate_alias,
    validate_key,
    validate_model_name,
    validate_timestamp,
    validate_version,
)

#: Tag written on a run the store marked KILLED because its process died.
STATUS_REASON_TAG = "nbmlops.status_reason"


def check_max_results(max_results: Any) -> int:
    """Validate a page size: an int in 1..MAX_RESULTS_LIMIT."""
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidArgument(f"max_results must be an integer, got {short(max_results)}")
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidArgument(
            f"max_results must be between 1 and {MAX_RESULTS_LIMIT}, got {max_results}"
        )
    return max_results


def query_fingerprint(*parts: Any) -> str:
    """A short hash of the query a page token belongs to."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_page_token(offset: int, fingerprint: str) -> str:
    """Opaque token for the next page of a search."""
    raw = json.dumps({"offset": offset, "query": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str | None, fingerprint: str) -> int:
    """The offset a token points to; InvalidArgument for a malformed or foreign token."""
    if token is None or token == "":
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["offset"])
        query = data["query"]
    except Exception:
        raise InvalidArgument(f"invalid page_token {short(token)}") from None
    if query != fingerprint or offset < 0:
        raise InvalidArgument(
            "page_token belongs to a different search (filter, order or experiments)"
        )
    return offset


def check_params_against(
    run_id: str, existing: dict[str, str], params: Sequence[Param]
) -> list[Param]:
    """Params of ``params`` not yet stored; AlreadyExists on any conflicting value.

    A param may be logged again with the same value (no-op); a different value is an error
    naming the key and both values. Conflicts inside the batch itself count too.
    """
    seen = dict(existing)
    fresh: list[Param] = []
    for param in params:
        old = seen.get(param.key)
        if old is None:
            seen[param.key] = param.value
            fresh.append(param)
        elif old != param.value:
            raise AlreadyExists(
                f"param {param.key!r} of run {run_id} is already {short(old)}; refusing to change "
                f"it to {short(param.value)} (params are immutable within a run: start a new run)"
            )
    return fresh


def require_running(run_id: str, status: RunStatus, what: str) -> None:
    """InvalidArgument unless the run is RUNNING."""
    if status is not RunStatus.RUNNING:
        raise InvalidArgument(f"cannot log {what} to run {run_id}: it has ended ({status.value})")


def latest_by_key(metrics: Sequence[Metric]) -> dict[str, Metric]:
    """The latest point per key: highest step, then timestamp, then last given."""
    latest: dict[str, Metric] = {}
    for metric in metrics:
        current = latest.get(metric.key)
        if current is None or (metric.step, metric.timestamp) >= (current.step, current.timestamp):
            latest[metric.key] = metric
    return latest


def media_type_of(path: str) -> str:
    """Media type guessed from the file name (``application/octet-stream`` when unknown)."""
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or "application/octet-stream"


def check_end_status(run_id: str, current: RunStatus, requested: RunStatus) -> bool:
    """Whether an end_run must write; InvalidArgument when it contradicts the stored end."""
    if requested is RunStatus.RUNNING:
        raise InvalidArgument("end_run needs a terminal status: FINISHED, FAILED or KILLED")
    if current is RunStatus.RUNNING:
        return True
    if current is requested:
        return False
    raise InvalidArgument(
        f"run {run_id} already ended as {current.value}; cannot end it again as {requested.value}"
    )


# --------------------------------------------------------------------------- model registry

#: Actions the stores themselves write into the registry audit log.
EVENT_CREATE_VERSION = "create_version"
EVENT_DELETE_VERSION = "delete_version"
EVENT_STAGE = "stage"
EVENT_SET_ALIAS = "set_alias"
EVENT_DELETE_ALIAS = "delete_alias"

#: Stage of a freshly registered version.
INITIAL_STAGE = "None"


def model_not_found(name: str) -> NotFound:
    """NotFound for a registered model that does not exist."""
    return NotFound(f"no registered model {name!r}")


def version_not_found(name: str, version: int, next_version: int) -> NotFound:
    """NotFound for a missing version of an existing model (says when it was deleted)."""
    gone = " (it was deleted)" if version < next_version else ""
    return NotFound(f"registered model {name!r} has no version {version}{gone}")


def alias_not_found(name: str, alias: str) -> NotFound:
    """NotFound for an alias that is not set on an existing model."""
    return NotFound(f"registered model {name!r} has no alias {alias!r}")


def no_versions(name: str) -> NotFound:
    """NotFound for alias ``latest`` of a model without versions."""
    return NotFound(
        f"registered model {name!r} has no versions (alias 'latest' means the newest version)"
    )


def check_text(value: Any, what: str, limit: int = MAX_TAG_VALUE_BYTES) -> str:
    """A free-text argument (description, user, reason): None means ""; else a str in size."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, got {type(value).__name__} {short(value)}")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidArgument(f"{what} is {size} bytes; the limit is {limit} bytes")
    return value


def check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Validate registry tags (keys like run tag keys) into a plain dict of strings."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidArgument(f"tags must be a mapping of key to value, got {short(tags)}")
    return {validate_key(k, "tag"): tag_value_to_str(k, v) for k, v in tags.items()}


def check_alias_changes(changes: Any, what: str = "changes") -> dict[str, int | None]:
    """Validate ``{alias: version or None}``: alias names and version numbers."""
    if not isinstance(changes, Mapping):
        raise InvalidArgument(
            f"{what} must be a mapping of alias to version (or None), got {short(changes)}"
        )
    return {
        validate_alias(alias): None if version is None else validate_version(version)
        for alias, version in changes.items()
    }


def _spell(version: int | None) -> str:
    return "unset" if version is None else f"v{version}"


def plan_alias_changes(
    name: str,
    current: Mapping[str, int],
    changes: Mapping[str, int | None],
    expected: Mapping[str, int | None] | None,
) -> list[tuple[str, int | None, int | None]]:
    """The (alias, old, new) triples that really change, after checking ``expected``.

    AlreadyExists when an alias of ``expected`` does not point where the caller expected;
    the caller must then change nothing.
    """
    for alias, want in (expected or {}).items():
        found = current.get(alias)
        if found != want:
            raise AlreadyExists(
                f"alias {alias} of model {name} changed concurrently: "
                f"expected {_spell(want)}, found {_spell(found)}"
            )
    return [
        (alias, current.get(alias), new)
        for alias, new in changes.items()
        if current.get(alias) != new
    ]


def alias_event(
    name: str,
    alias: str,
    old: int | None,
    new: int | None,
    action: str,
    user: str,
    reason: str,
    timestamp: int,
) -> RegistryEvent:
    """The audit row of one alias change (versions spelled as text, None when unset)."""
    return RegistryEvent(
        name=name,
        version=new if new is not None else old,
        action=action,
        from_value=None if old is None else str(old),
        to_value=None if new is None else str(new),
        reason=reason,
        user=user,
        timestamp=timestamp,
        alias=alias,
    )


def check_action(action: Any) -> str:
    """An event action: a non-empty key-like string (``set_alias``, ``promotion_rejected``)."""
    return validate_key(action, "event action")


def check_event(event: Any) -> RegistryEvent:
    """Validate a caller-made registry event; returns it with a canonical version number."""
    if not isinstance(event, RegistryEvent):
        raise InvalidArgument(f"expected a RegistryEvent, got {type(event).__name__}")
    validate_model_name(event.name)
    for field, value in (("from_value", event.from_value), ("to_value", event.to_value)):
        if value is not None:
            check_text(value, f"event {field}")
    if event.alias is not None:
        validate_alias(event.alias)
    return RegistryEvent(
        name=event.name,
        version=None if event.version is None else validate_version(event.version),
        action=check_action(event.action),
        from_value=event.from_value,
        to_value=event.to_value,
        reason=check_text(event.reason, "event reason"),
        user=check_text(event.user, "event user"),
        timestamp=validate_timestamp(event.timestamp),
        alias=event.alias,
    )
