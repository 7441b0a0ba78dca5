"""Frozen dataclasses for everything the store holds (design doc §3).

The entities are plain values: they carry no store handle and no behaviour beyond small
conveniences, so every layer (store, client, display, server) can pass them around, compare
them in tests and turn them into JSON with :func:`to_dict`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any


class RunStatus(str, enum.Enum):
    """Lifecycle of a run. ``KILLED`` also covers a run whose process died (stale heartbeat)."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @classmethod
    def parse(cls, value: str | RunStatus) -> RunStatus:
        """Return the status named by ``value`` (case-insensitive) or raise InvalidArgument."""
        from nbmlops.errors import InvalidArgument

        if isinstance(value, RunStatus):
            return value
        try:
            return cls(str(value).upper())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise InvalidArgument(
                f"invalid run status {value!r}; expected one of {allowed}"
            ) from None

    @property
    def is_terminal(self) -> bool:
        """True for every status except RUNNING."""
        return self is not RunStatus.RUNNING


class LifecycleStage(str, enum.Enum):
    """Soft-delete marker for runs and experiments (``delete_run`` / ``restore_run``)."""

    ACTIVE = "active"
    DELETED = "deleted"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named group of runs; the default experiment of a notebook is its file stem."""

    experiment_id: str
    name: str
    created_at: int
    artifact_location: str = ""
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE


@dataclasses.dataclass(frozen=True)
class Heartbeat:
    """Who owns a RUNNING run: used to show runs of dead processes as KILLED."""

    pid: int
    host: str
    pid_start: str
    time: int  # ms since epoch of the last beat


@dataclasses.dataclass(frozen=True)
class RunSource:
    """Where the code of a run came from (a notebook cell, a script, ...)."""

    path: str = ""
    cell_id: str = ""
    execution_count: int | None = None
    code_sha256: str = ""
    code: str = ""


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """Everything about a run except its logged data."""

    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    user: str
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    artifact_uri: str = ""
    source: RunSource = dataclasses.field(default_factory=RunSource)
    heartbeat: Heartbeat | None = None

    @property
    def run_uuid(self) -> str:
        """MLflow's older name for ``run_id``."""
        return self.run_id


@dataclasses.dataclass(frozen=True)
class Param:
    """A run parameter; immutable once logged."""

    key: str
    value: str


@dataclasses.dataclass(frozen=True)
class Metric:
    """One point of a metric's history. NaN and ±inf are stored exactly."""

    key: str
    value: float
    timestamp: int
    step: int = 0


@dataclasses.dataclass(frozen=True)
class RunTag:
    """A mutable key/value label. Keys starting with ``nbmlops.`` are reserved."""

    key: str
    value: str


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A file stored under a run's artifact directory."""

    path: str
    size: int
    sha256: str
    media_type: str
    created_at: int = 0


@dataclasses.dataclass(frozen=True)
class DatasetInput:
    """A fingerprint of data a run read: content digest, shape and column dtypes."""

    name: str
    digest: str
    context: str
    shape: tuple[int, ...] = ()
    schema: Mapping[str, str] = dataclasses.field(default_factory=dict)
    source: str = ""


@dataclasses.dataclass(frozen=True)
class RunData:
    """The logged data of a run: params, latest value of every metric, tags."""

    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    metrics: Mapping[str, float] = dataclasses.field(default_factory=dict)
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Run:
    """A run: its info, its data and the datasets it read."""

    info: RunInfo
    data: RunData
    inputs: tuple[DatasetInput, ...] = ()


#: Deployment stages of a model version (MLflow's classic stages), canonical spelling.
STAGES: tuple[str, ...] = ("None", "Staging", "Production", "Archived")


@dataclasses.dataclass(frozen=True)
class RegisteredModel:
    """A named model in the registry: its versions are :class:`ModelVersion` records.

    ``aliases`` maps each alias (``champion``) to the version it points to;
    ``latest_version`` is the newest version that still exists (None without versions).
    ``updated_at`` moves on every change to the model, its versions or its aliases.
    """

    name: str
    description: str
    tags: Mapping[str, str]
    created_at: int
    updated_at: int
    aliases: Mapping[str, int]
    latest_version: int | None


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model: a model artifact of a run.

    Versions are numbered 1, 2, ... per model, never reused after a deletion. ``stage`` is
    one of :data:`STAGES`; ``aliases`` are the aliases pointing at this version, sorted.
    """

    name: str
    version: int
    source_run_id: str
    model_path: str
    description: str
    tags: Mapping[str, str]
    created_at: int
    created_by: str
    stage: str
    aliases: tuple[str, ...]

    @property
    def source(self) -> str:
        """The model artifact as a URI: ``runs:/<run_id>/<model_path>``."""
        return f"runs:/{self.source_run_id}/{self.model_path}"


@dataclasses.dataclass(frozen=True)
class RegistryEvent:
    """One row of a registered model's audit log: who changed what, when and why.

    ``action`` is what happened (``create_version``, ``delete_version``, ``stage``,
    ``set_alias``, ``delete_alias``, ``promotion_rejected``, ...); ``from_value`` and
    ``to_value`` are the before/after values as text (a stage, or a version number for an
    alias change; None when there was none). ``alias`` names the alias an alias event is
    about (None for other events).
    """

    name: str
    version: int | None
    action: str
    from_value: str | None
    to_value: str | None
    reason: str
    user: str
    timestamp: int
    alias: str | None = None


def to_dict(entity: Any) -> Any:
    """Turn an entity (or nested containers of entities) into JSON-compatible values.

    Enums become their values, tuples become lists; floats are left alone (the JSON layer
    decides how to spell NaN/inf).
    """
    if dataclasses.is_dataclass(entity) and not isinstance(entity, type):
        return {f.name: to_dict(getattr(entity, f.name)) for f in dataclasses.fields(entity)}
    if isinstance(entity, enum.Enum):
        return entity.value
    if isinstance(entity, Mapping):
        return {str(k): to_dict(v) for k, v in entity.items()}
    if isinstance(entity, (list, tuple)):
        return [to_dict(v) for v in entity]
    return entity
