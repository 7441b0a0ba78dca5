"""How nbmlops data is spelled in MLflow's data model (used by :mod:`.mlflow_store`).

Pure functions and constants only: nothing here imports MLflow, so the rules can be unit
tested and read without it.

MLflow has a field for most of what nbmlops stores (experiments, runs, params, metrics, tags,
artifacts, registered models, versions, aliases). The rest is kept in **namespaced tags** that
nbmlops reads back and hides from ``run.data.tags`` (MLflow's UI shows them as ordinary tags):

==============================  ==========================================================
``nbmlops.store.format``        marks a run written by nbmlops (its artifact index is complete)
``nbmlops.store.heartbeat``     ``[pid, host, pid_start, time]`` of the owning process
``nbmlops.store.source``        the run's source (notebook path, cell id, execution count,
                                code sha256 and code) as JSON
``nbmlops.store.inputs``        the dataset fingerprints as JSON (exact, with their context)
``nbmlops.store.artifact.<h>``  one artifact: ``[path, size, sha256, media type, created]``
``nbmlops.store.long.<k>.<h>.<i>``  part ``i`` of a value too long for one MLflow field
``nbmlops.store.created_at`` /  registry timestamps from nbmlops' clock (on models and
``nbmlops.store.updated_at``    versions)
``nbmlops.store.model_path``    the artifact path of a registered version inside its run
``nbmlops.store.created_by``    who registered a version
``nbmlops.store.event.<seq>``   one audit-log event of a registered model (JSON)
==============================  ==========================================================

**Long values.** MLflow keeps param values up to 6 000 characters and tag values up to
8 000; nbmlops promises 64 KiB and 1 MiB, never truncated. A longer value is stored whole in
``nbmlops.store.long.*`` parts, and the MLflow field itself holds the beginning of the value
followed by a marker that names the parts (so MLflow's UI shows something sensible and
nbmlops reassembles the exact value, verified by length and sha256).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from nbmlops.entities import DatasetInput, Heartbeat, RunSource
from nbmlops.errors import InvalidArgument
from nbmlops.validation import short

#: Prefix of every tag the MLflow store writes for itself (hidden from ``run.data.tags``).
INTERNAL_PREFIX = "nbmlops.store."
FORMAT_TAG = INTERNAL_PREFIX + "format"
FORMAT_VERSION = "1"
HEARTBEAT_TAG = INTERNAL_PREFIX + "heartbeat"
SOURCE_TAG = INTERNAL_PREFIX + "source"
INPUTS_TAG = INTERNAL_PREFIX + "inputs"
ARTIFACT_TAG_PREFIX = INTERNAL_PREFIX + "artifact."
LONG_TAG_PREFIX = INTERNAL_PREFIX + "long."
CREATED_AT_TAG = INTERNAL_PREFIX + "created_at"
UPDATED_AT_TAG = INTERNAL_PREFIX + "updated_at"
MODEL_PATH_TAG = INTERNAL_PREFIX + "model_path"
CREATED_BY_TAG = INTERNAL_PREFIX + "created_by"
EVENT_TAG_PREFIX = INTERNAL_PREFIX + "event."

#: MLflow system tags that nbmlops maps onto run fields (hidden from ``run.data.tags``).
MLFLOW_RUN_NAME = "mlflow.runName"
MLFLOW_USER = "mlflow.user"
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
MLFLOW_SOURCE_NAME = "mlflow.source.name"
MLFLOW_SOURCE_TYPE = "mlflow.source.type"
MAPPED_MLFLOW_TAGS = frozenset({MLFLOW_RUN_NAME, MLFLOW_USER, MLFLOW_PARENT_RUN_ID})
#: Written by nbmlops for MLflow's UI; hidden again on read for runs nbmlops wrote.
UI_MLFLOW_TAGS = frozenset({MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE})

#: MLflow's limits (mlflow/utils/validation.py), in characters.
PARAM_VALUE_LIMIT = 6000
TAG_VALUE_LIMIT = 8000
REGISTRY_TAG_VALUE_LIMIT = 100_000
MODEL_NAME_LIMIT = 256
#: MLflow's SQL stores keep ±inf as ±(largest double): that value cannot be told from inf.
FLOAT_MAX = 1.7976931348623157e308

#: Keys MLflow accepts for params, metrics and tags (letters, digits, ``_ - . : /`` and space).
_MLFLOW_KEY = re.compile(r"^[/\w.\- :]*$")
_LONG_MARKER = re.compile(r" …\[nbmlops: (\d+) chars in (\d+) parts ([0-9a-f]{16})\]$")
MLFLOW_KEY_RULE = (
    "the MLflow backend stores keys made of letters, digits, '_', '-', '.', ':' and spaces only"
)


def check_mlflow_key(key: str, kind: str) -> str:
    """InvalidArgument when MLflow cannot store ``key`` (beyond nbmlops' own key rule)."""
    if not _MLFLOW_KEY.match(key) or "//" in key or key.startswith(("./", "../")):
        raise InvalidArgument(f"invalid {kind} key {short(key)} for this store: {MLFLOW_KEY_RULE}")
    return key


def check_metric_value(key: str, value: float) -> float:
    """InvalidArgument for ±(largest double), which MLflow would read back as ±inf."""
    if not math.isnan(value) and not math.isinf(value) and abs(value) == FLOAT_MAX:
        raise InvalidArgument(
            f"metric {key!r} is {value!r}: the MLflow backend stores ±inf as ±{FLOAT_MAX!r}, "
            "so this exact value cannot be told apart from infinity; log inf instead"
        )
    return value


def metric_from_mlflow(value: float) -> float:
    """A metric value read from MLflow, with ±(largest double) mapped back to ±inf."""
    value = float(value)
    if value == FLOAT_MAX:
        return math.inf
    if value == -FLOAT_MAX:
        return -math.inf
    return value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _key_hash(kind: str, key: str) -> str:
    return hashlib.sha1(f"{kind}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_value(kind: str, key: str, value: str, limit: int) -> tuple[str, dict[str, str]]:
    """The MLflow field value for ``value`` and the extra part tags it needs.

    ``kind`` separates name spaces (``p`` params, ``t`` tags, ``s`` source, ``i`` inputs).
    A value within ``limit`` (that does not look like a marker itself) is stored as it is.
    """
    if len(value) <= limit and not _LONG_MARKER.search(value):
        return value, {}
    parts = [value[i : i + TAG_VALUE_LIMIT] for i in range(0, len(value), TAG_VALUE_LIMIT)] or [""]
    marker = f" …[nbmlops: {len(value)} chars in {len(parts)} parts {_digest(value)[:16]}]"
    visible = value[: max(0, limit - len(marker))] + marker
    base = f"{LONG_TAG_PREFIX}{kind}.{_key_hash(kind, key)}."
    return visible, {f"{base}{i}": part for i, part in enumerate(parts)}


def decode_value(kind: str, key: str, visible: str, tags: Mapping[str, str]) -> str:
    """The full value behind an MLflow field written by :func:`encode_value`.

    A field without a marker, or whose parts are missing or do not match the marker's length
    and sha256 (a stale marker), is returned as it is.
    """
    match = _LONG_MARKER.search(visible)
    if match is None:
        return visible
    length, count, digest = int(match.group(1)), int(match.group(2)), match.group(3)
    base = f"{LONG_TAG_PREFIX}{kind}.{_key_hash(kind, key)}."
    pieces = [tags.get(f"{base}{i}") for i in range(count)]
    if any(piece is None for piece in pieces):
        return visible
    full = "".join(pieces)  # type: ignore[arg-type]
    if len(full) != length or _digest(full)[:16] != digest:
        return visible
    return full


# --------------------------------------------------------------------------- run fields


def heartbeat_to_tag(heartbeat: Heartbeat) -> str:
    """The heartbeat tag value."""
    return json.dumps([heartbeat.pid, heartbeat.host, heartbeat.pid_start, heartbeat.time])


def heartbeat_from_tag(value: str | None) -> Heartbeat | None:
    """The heartbeat a tag holds (None when absent or unreadable)."""
    if not value:
        return None
    try:
        pid, host, pid_start, time = json.loads(value)
        return Heartbeat(int(pid), str(host), str(pid_start), int(time))
    except (ValueError, TypeError):
        return None


def source_to_json(source: RunSource) -> str:
    """The source tag value (before long-value encoding)."""
    return json.dumps(
        {
            "path": source.path,
            "cell_id": source.cell_id,
            "execution_count": source.execution_count,
            "code_sha256": source.code_sha256,
            "code": source.code,
        },
        ensure_ascii=False,
    )


def source_from_json(value: str | None) -> RunSource:
    """The run source a tag holds (an empty source when absent or unreadable)."""
    if not value:
        return RunSource()
    try:
        data = json.loads(value)
        count = data.get("execution_count")
        return RunSource(
            path=str(data.get("path", "")),
            cell_id=str(data.get("cell_id", "")),
            execution_count=None if count is None else int(count),
            code_sha256=str(data.get("code_sha256", "")),
            code=str(data.get("code", "")),
        )
    except (ValueError, TypeError, AttributeError):
        return RunSource()


def input_to_json(item: DatasetInput) -> dict[str, Any]:
    """One dataset fingerprint as JSON-ready data."""
    return {
        "name": item.name,
        "digest": item.digest,
        "context": item.context,
        "shape": list(item.shape),
        "schema": dict(item.schema),
        "source": item.source,
    }


def inputs_to_json(items: list[DatasetInput]) -> str:
    """The inputs tag value (before long-value encoding)."""
    return json.dumps([input_to_json(i) for i in items], ensure_ascii=False)


def inputs_from_json(value: str | None) -> list[DatasetInput]:
    """The dataset fingerprints an inputs tag holds (empty when absent or unreadable)."""
    if not value:
        return []
    try:
        return [
            DatasetInput(
                name=str(d["name"]),
                digest=str(d["digest"]),
                context=str(d["context"]),
                shape=tuple(int(s) for s in d.get("shape", ())),
                schema={str(k): str(v) for k, v in dict(d.get("schema", {})).items()},
                source=str(d.get("source", "")),
            )
            for d in json.loads(value)
        ]
    except (ValueError, TypeError, KeyError):
        return []


def artifact_tag_key(path: str) -> str:
    """The index tag of artifact ``path``."""
    return ARTIFACT_TAG_PREFIX + hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()


def is_internal_tag(key: str) -> bool:
    """Whether a run/model tag belongs to the store itself (never shown as a user tag)."""
    return key.startswith(INTERNAL_PREFIX)


def visible_run_tags(tags: Mapping[str, str], written_by_nbmlops: bool) -> dict[str, str]:
    """The user tags of a run: internal and mapped MLflow tags removed, long values joined."""
    hidden = MAPPED_MLFLOW_TAGS | (UI_MLFLOW_TAGS if written_by_nbmlops else frozenset())
    return {
        key: decode_value("t", key, value, tags)
        for key, value in tags.items()
        if not is_internal_tag(key) and key not in hidden
    }
