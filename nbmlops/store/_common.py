"""Pieces every store implementation shares, so their behaviour cannot drift apart."""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from collections.abc import Sequence
from typing import Any

from nbmlops.entities import Metric, Param, RunStatus
from nbmlops.errors import AlreadyExists, InvalidArgument
from nbmlops.store.base import MAX_RESULTS_LIMIT
from nbmlops.validation import short

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
