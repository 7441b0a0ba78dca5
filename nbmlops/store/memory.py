"""In-memory store: the reference implementation of the contract, for tests and scratch work.

Process-local and thread-safe (one re-entrant lock around every method). Data and artifact
bytes live in dictionaries and vanish with the process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from nbmlops.entities import (
    Artifact,
    DatasetInput,
    Experiment,
    Heartbeat,
    LifecycleStage,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    RegistryEvent,
    Run,
    RunData,
    RunInfo,
    RunSource,
    RunStatus,
    RunTag,
)
from nbmlops.errors import AlreadyExists, InvalidArgument, NotFound
from nbmlops.store import heartbeat as hb
from nbmlops.store._common import (
    EVENT_CREATE_VERSION,
    EVENT_DELETE_ALIAS,
    EVENT_DELETE_VERSION,
    EVENT_STAGE,
    INITIAL_STAGE,
    STATUS_REASON_TAG,
    alias_event,
    alias_not_found,
    check_action,
    check_alias_changes,
    check_end_status,
    check_event,
    check_max_results,
    check_params_against,
    check_tags,
    check_text,
    decode_page_token,
    encode_page_token,
    latest_by_key,
    media_type_of,
    model_not_found,
    no_versions,
    plan_alias_changes,
    query_fingerprint,
    require_running,
    version_not_found,
)
from nbmlops.store.base import DEFAULT_MAX_RESULTS, AbstractStore
from nbmlops.store.search import (
    compile_predicate,
    like_match,
    parse_filter,
    parse_order_by,
    sort_runs,
)
from nbmlops.validation import (
    is_latest_alias,
    tag_value_to_str,
    validate_alias,
    validate_artifact_path,
    validate_key,
    validate_model_name,
    validate_name,
    validate_run_id,
    validate_stage,
    validate_version,
)


@dataclasses.dataclass
class _RunRecord:
    info: RunInfo
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    history: dict[str, list[Metric]] = dataclasses.field(default_factory=dict)
    latest: dict[str, Metric] = dataclasses.field(default_factory=dict)
    inputs: list[DatasetInput] = dataclasses.field(default_factory=list)
    artifacts: dict[str, tuple[Artifact, bytes]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _ModelRecord:
    name: str
    description: str
    created_at: int
    updated_at: int
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    next_version: int = 1
    #: Versions without their aliases (computed on read from ``aliases``).
    versions: dict[int, ModelVersion] = dataclasses.field(default_factory=dict)
    aliases: dict[str, int] = dataclasses.field(default_factory=dict)
    events: list[RegistryEvent] = dataclasses.field(default_factory=list)


class MemoryStore(AbstractStore):
    """Dictionary-backed store. ``memory:`` URIs resolve to one instance per process."""

    def __init__(self, uri: str = "memory:") -> None:
        self.uri = uri
        self._lock = threading.RLock()
        self._experiments: dict[str, Experiment] = {}
        self._runs: dict[str, _RunRecord] = {}
        self._next_experiment = 1
        self._models: dict[str, _ModelRecord] = {}

    @property
    def location(self) -> str:
        return "memory (this process only)"

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {
                "location": self.location,
                "uri": self.uri,
                "experiments": len(self._experiments),
                "runs": len(self._runs),
                "registered_models": len(self._models),
                "model_versions": sum(len(m.versions) for m in self._models.values()),
            }

    # ----------------------------------------------------------------- experiments
    def create_experiment(self, name: str) -> Experiment:
        validate_name(name, "experiment name")
        with self._lock:
            if any(e.name == name for e in self._experiments.values()):
                raise AlreadyExists(f"experiment {name!r} already exists")
            experiment = Experiment(str(self._next_experiment), name, hb.now_ms())
            self._next_experiment += 1
            self._experiments[experiment.experiment_id] = experiment
            return experiment

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._lock:
            try:
                return self._experiments[str(experiment_id)]
            except KeyError:
                raise NotFound(f"no experiment with id {experiment_id!r}") from None

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._lock:
            return next((e for e in self._experiments.values() if e.name == name), None)

    def search_experiments(self) -> list[Experiment]:
        with self._lock:
            return sorted(self._experiments.values(), key=lambda e: int(e.experiment_id))

    # ----------------------------------------------------------------- runs
    def _record(self, run_id: str) -> _RunRecord:
        validate_run_id(run_id)
        try:
            record = self._runs[run_id]
        except KeyError:
            raise NotFound(f"no run with id {run_id!r}") from None
        self._reap(record)
        return record

    def _reap(self, record: _RunRecord) -> None:
        info = record.info
        if info.status is RunStatus.RUNNING and hb.is_dead(info.heartbeat):
            beat = info.heartbeat
            assert beat is not None
            record.info = dataclasses.replace(
                info, status=RunStatus.KILLED, end_time=beat.time, heartbeat=None
            )
            record.tags[STATUS_REASON_TAG] = (
                f"process {beat.pid} on {beat.host} stopped without ending the run"
            )

    def create_run(
        self,
        experiment_id: str,
        run_name: str,
        start_time: int,
        user: str,
        parent_run_id: str | None = None,
        tags: Sequence[RunTag] = (),
        source: RunSource | None = None,
        heartbeat: Heartbeat | None = None,
        run_id: str | None = None,
    ) -> RunInfo:
        with self._lock:
            experiment = self.get_experiment(experiment_id)
            if parent_run_id is not None:
                self._record(parent_run_id)
            run_id = validate_run_id(run_id) if run_id else uuid.uuid4().hex
            if run_id in self._runs:
                raise AlreadyExists(f"run id {run_id} is already in use")
            info = RunInfo(
                run_id=run_id,
                experiment_id=experiment.experiment_id,
                run_name=run_name,
                status=RunStatus.RUNNING,
                start_time=start_time,
                end_time=None,
                parent_run_id=parent_run_id,
                user=user,
                artifact_uri=f"memory:/artifacts/{run_id}",
                source=source or RunSource(),
                heartbeat=heartbeat,
            )
            self._runs[run_id] = _RunRecord(info, tags={t.key: t.value for t in tags})
            return info

    def _to_run(self, record: _RunRecord) -> Run:
        return Run(
            info=record.info,
            data=RunData(
                params=dict(record.params),
                metrics={k: m.value for k, m in record.latest.items()},
                tags=dict(record.tags),
            ),
            inputs=tuple(record.inputs),
        )

    def get_run(self, run_id: str) -> Run:
        with self._lock:
            return self._to_run(self._record(run_id))

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> RunInfo:
        status = RunStatus.parse(status)
        with self._lock:
            record = self._record(run_id)
            if check_end_status(run_id, record.info.status, status):
                record.info = dataclasses.replace(
                    record.info, status=status, end_time=end_time, heartbeat=None
                )
            return record.info

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        with self._lock:
            record = self._record(run_id)
            if metrics or params:
                require_running(run_id, record.info.status, "params or metrics")
            fresh = check_params_against(run_id, record.params, params)
            for param in fresh:
                record.params[param.key] = param.value
            for tag in tags:
                record.tags[tag.key] = tag.value
            for metric in metrics:
                record.history.setdefault(metric.key, []).append(metric)
            for key, metric in latest_by_key(metrics).items():
                current = record.latest.get(key)
                if current is None or (metric.step, metric.timestamp) >= (
                    current.step,
                    current.timestamp,
                ):
                    record.latest[key] = metric

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        with self._lock:
            record = self._record(run_id)
            for item in inputs:
                if not any(
                    (i.name, i.digest, i.context) == (item.name, item.digest, item.context)
                    for i in record.inputs
                ):
                    record.inputs.append(item)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        with self._lock:
            points = list(self._record(run_id).history.get(key, []))
        # Stable sort keeps insertion order among equal (step, timestamp).
        return sorted(points, key=lambda m: (m.step, m.timestamp))

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> tuple[list[Run], str | None]:
        check_max_results(max_results)
        predicate = compile_predicate(parse_filter(filter_string))
        order = parse_order_by(order_by)
        ids = None if experiment_ids is None else {str(e) for e in experiment_ids}
        fingerprint = query_fingerprint(
            sorted(ids) if ids is not None else None,
            filter_string,
            list(order_by or []),
            include_deleted,
        )
        offset = decode_page_token(page_token, fingerprint)
        with self._lock:
            runs = []
            for record in self._runs.values():
                self._reap(record)
                info = record.info
                if ids is not None and info.experiment_id not in ids:
                    continue
                if not include_deleted and info.lifecycle_stage is LifecycleStage.DELETED:
                    continue
                run = self._to_run(record)
                if predicate(run):
                    runs.append(run)
        ordered = sort_runs(runs, order)
        page = ordered[offset : offset + max_results]
        more = offset + max_results < len(ordered)
        return page, encode_page_token(offset + max_results, fingerprint) if more else None

    def set_run_lifecycle(self, run_id: str, deleted: bool) -> None:
        stage = LifecycleStage.DELETED if deleted else LifecycleStage.ACTIVE
        with self._lock:
            record = self._record(run_id)
            record.info = dataclasses.replace(record.info, lifecycle_stage=stage)

    def beat(self, run_ids: Iterable[str], heartbeat: Heartbeat) -> None:
        with self._lock:
            for run_id in run_ids:
                record = self._runs.get(run_id)
                if record is not None and record.info.status is RunStatus.RUNNING:
                    record.info = dataclasses.replace(record.info, heartbeat=heartbeat)

    # ----------------------------------------------------------------- artifacts
    def log_artifact(self, run_id: str, path: str, source: bytes | Path) -> Artifact:
        path = validate_artifact_path(path)
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        else:
            try:
                data = Path(source).read_bytes()
            except OSError as exc:
                raise InvalidArgument(
                    f"cannot read artifact source {str(source)!r}: {exc}"
                ) from None
        with self._lock:
            record = self._record(run_id)
            if any(p.startswith(path + "/") for p in record.artifacts) or any(
                path.startswith(p + "/") for p in record.artifacts
            ):
                raise InvalidArgument(
                    f"artifact path {path!r} clashes with an existing file or folder"
                )
            artifact = Artifact(
                path=path,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                media_type=media_type_of(path),
                created_at=hb.now_ms(),
            )
            record.artifacts[path] = (artifact, data)
            return artifact

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        with self._lock:
            record = self._record(run_id)
            return sorted(
                (a for a, _ in record.artifacts.values() if a.path.startswith(prefix)),
                key=lambda a: a.path,
            )

    def read_artifact(self, run_id: str, path: str) -> bytes:
        path = validate_artifact_path(path)
        with self._lock:
            record = self._record(run_id)
            try:
                return record.artifacts[path][1]
            except KeyError:
                raise NotFound(f"run {run_id} has no artifact {path!r}") from None

    # ----------------------------------------------------------------- model registry
    def _model(self, name: str) -> _ModelRecord:
        try:
            return self._models[name]
        except KeyError:
            raise model_not_found(name) from None

    @staticmethod
    def _version(model: _ModelRecord, version: int) -> ModelVersion:
        try:
            return model.versions[version]
        except KeyError:
            raise version_not_found(model.name, version, model.next_version) from None

    @staticmethod
    def _to_model(model: _ModelRecord) -> RegisteredModel:
        return RegisteredModel(
            name=model.name,
            description=model.description,
            tags=dict(sorted(model.tags.items())),
            created_at=model.created_at,
            updated_at=model.updated_at,
            aliases=dict(sorted(model.aliases.items())),
            latest_version=max(model.versions, default=None),
        )

    @staticmethod
    def _to_version(model: _ModelRecord, version: ModelVersion) -> ModelVersion:
        aliases = tuple(sorted(a for a, v in model.aliases.items() if v == version.version))
        return dataclasses.replace(
            version, tags=dict(sorted(version.tags.items())), aliases=aliases
        )

    def create_registered_model(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        validate_model_name(name)
        description = check_text(description, "model description")
        clean_tags = check_tags(tags)
        with self._lock:
            if name in self._models:
                raise AlreadyExists(f"registered model {name!r} already exists")
            now = hb.now_ms()
            model = _ModelRecord(name, description, now, now, tags=clean_tags)
            self._models[name] = model
            return self._to_model(model)

    def get_registered_model(self, name: str) -> RegisteredModel:
        validate_model_name(name)
        with self._lock:
            return self._to_model(self._model(name))

    def search_registered_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        if name_like is not None and not isinstance(name_like, str):
            raise InvalidArgument(f"name_like must be a string pattern, got {name_like!r}")
        with self._lock:
            return [
                self._to_model(model)
                for name, model in sorted(self._models.items())
                if name_like is None or like_match(name, name_like, True)
            ]

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        validate_model_name(name)
        description = check_text(description, "model description")
        with self._lock:
            model = self._model(name)
            model.description = description
            model.updated_at = hb.now_ms()
            return self._to_model(model)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        validate_model_name(name)
        validate_key(key, "tag")
        value = tag_value_to_str(key, value)
        with self._lock:
            model = self._model(name)
            model.tags[key] = value
            model.updated_at = hb.now_ms()

    def create_model_version(
        self,
        name: str,
        source_run_id: str,
        model_path: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        user: str = "",
    ) -> ModelVersion:
        validate_model_name(name)
        validate_run_id(source_run_id)
        model_path = validate_artifact_path(model_path)
        description = check_text(description, "version description")
        user = check_text(user, "user")
        clean_tags = check_tags(tags)
        with self._lock:
            if source_run_id not in self._runs:
                raise NotFound(f"no run with id {source_run_id!r}")
            now = hb.now_ms()
            model = self._models.get(name)
            if model is None:
                model = self._models[name] = _ModelRecord(name, "", now, now)
            number = model.next_version
            version = ModelVersion(
                name=name,
                version=number,
                source_run_id=source_run_id,
                model_path=model_path,
                description=description,
                tags=clean_tags,
                created_at=now,
                created_by=user,
                stage=INITIAL_STAGE,
                aliases=(),
            )
            model.next_version = number + 1
            model.versions[number] = version
            model.updated_at = now
            model.events.append(
                RegistryEvent(
                    name, number, EVENT_CREATE_VERSION, None, version.source, "", user, now
                )
            )
            return self._to_version(model, version)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        validate_model_name(name)
        number = validate_version(version)
        with self._lock:
            model = self._model(name)
            return self._to_version(model, self._version(model, number))

    def search_model_versions(
        self, name: str | None = None, run_id: str | None = None
    ) -> list[ModelVersion]:
        if name is not None:
            validate_model_name(name)
        if run_id is not None:
            validate_run_id(run_id)
        with self._lock:
            models = [self._models[name]] if name in self._models else []
            if name is None:
                models = [model for _, model in sorted(self._models.items())]
            return [
                self._to_version(model, version)
                for model in models
                for _, version in sorted(model.versions.items())
                if run_id is None or version.source_run_id == run_id
            ]

    def update_model_version(self, name: str, version: int | str, description: str) -> ModelVersion:
        validate_model_name(name)
        number = validate_version(version)
        description = check_text(description, "version description")
        with self._lock:
            model = self._model(name)
            current = self._version(model, number)
            model.versions[number] = dataclasses.replace(current, description=description)
            model.updated_at = hb.now_ms()
            return self._to_version(model, model.versions[number])

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        validate_model_name(name)
        number = validate_version(version)
        validate_key(key, "tag")
        value = tag_value_to_str(key, value)
        with self._lock:
            model = self._model(name)
            current = self._version(model, number)
            model.versions[number] = dataclasses.replace(current, tags={**current.tags, key: value})
            model.updated_at = hb.now_ms()

    def set_model_version_stage(
        self, name: str, version: int | str, stage: str, user: str = "", reason: str = ""
    ) -> ModelVersion:
        validate_model_name(name)
        number = validate_version(version)
        stage = validate_stage(stage)
        user = check_text(user, "user")
        reason = check_text(reason, "reason")
        with self._lock:
            model = self._model(name)
            current = self._version(model, number)
            if current.stage != stage:
                now = hb.now_ms()
                model.versions[number] = dataclasses.replace(current, stage=stage)
                model.updated_at = now
                model.events.append(
                    RegistryEvent(
                        name, number, EVENT_STAGE, current.stage, stage, reason, user, now
                    )
                )
            return self._to_version(model, model.versions[number])

    def delete_model_version(
        self, name: str, version: int | str, user: str = "", reason: str = ""
    ) -> None:
        validate_model_name(name)
        number = validate_version(version)
        user = check_text(user, "user")
        reason = check_text(reason, "reason")
        with self._lock:
            model = self._model(name)
            current = self._version(model, number)
            now = hb.now_ms()
            for alias in sorted(a for a, v in model.aliases.items() if v == number):
                del model.aliases[alias]
                model.events.append(
                    alias_event(name, alias, number, None, EVENT_DELETE_ALIAS, user, reason, now)
                )
            del model.versions[number]
            model.updated_at = now
            model.events.append(
                RegistryEvent(
                    name, number, EVENT_DELETE_VERSION, current.source, None, reason, user, now
                )
            )

    def set_aliases(
        self,
        name: str,
        changes: Mapping[str, int | None],
        expected: Mapping[str, int | None] | None = None,
        user: str = "",
        reason: str = "",
        action: str = "set_alias",
    ) -> None:
        validate_model_name(name)
        wanted = check_alias_changes(changes)
        want_before = None if expected is None else check_alias_changes(expected, "expected")
        user = check_text(user, "user")
        reason = check_text(reason, "reason")
        action = check_action(action)
        with self._lock:
            model = self._model(name)
            for target in wanted.values():
                if target is not None:
                    self._version(model, target)
            plan = plan_alias_changes(name, model.aliases, wanted, want_before)
            if not plan:
                return
            now = hb.now_ms()
            for alias, old, new in plan:
                if new is None:
                    del model.aliases[alias]
                else:
                    model.aliases[alias] = new
                model.events.append(alias_event(name, alias, old, new, action, user, reason, now))
            model.updated_at = now

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        validate_model_name(name)
        latest = is_latest_alias(alias)
        if not latest:
            validate_alias(alias)
        with self._lock:
            model = self._model(name)
            if latest:
                if not model.versions:
                    raise no_versions(name)
                number = max(model.versions)
            else:
                try:
                    number = model.aliases[alias]
                except KeyError:
                    raise alias_not_found(name, alias) from None
            return self._to_version(model, model.versions[number])

    def record_registry_event(self, event: RegistryEvent) -> None:
        event = check_event(event)
        with self._lock:
            self._model(event.name).events.append(event)

    def get_model_history(self, name: str) -> list[RegistryEvent]:
        validate_model_name(name)
        with self._lock:
            return list(self._model(name).events)
