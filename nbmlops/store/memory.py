"""In-memory store: the reference implementation of the contract, for tests and scratch work.

Process-local and thread-safe (one re-entrant lock around every method). Data and artifact
bytes live in dictionaries and vanish with the process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from nbmlops.entities import (
    Artifact,
    DatasetInput,
    Experiment,
    Heartbeat,
    LifecycleStage,
    Metric,
    Param,
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
    STATUS_REASON_TAG,
    check_end_status,
    check_max_results,
    check_params_against,
    decode_page_token,
    encode_page_token,
    latest_by_key,
    media_type_of,
    query_fingerprint,
    require_running,
)
from nbmlops.store.base import DEFAULT_MAX_RESULTS, AbstractStore
from nbmlops.store.search import compile_predicate, parse_filter, parse_order_by, sort_runs
from nbmlops.validation import validate_artifact_path, validate_name, validate_run_id


@dataclasses.dataclass
class _RunRecord:
    info: RunInfo
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    history: dict[str, list[Metric]] = dataclasses.field(default_factory=dict)
    latest: dict[str, Metric] = dataclasses.field(default_factory=dict)
    inputs: list[DatasetInput] = dataclasses.field(default_factory=list)
    artifacts: dict[str, tuple[Artifact, bytes]] = dataclasses.field(default_factory=dict)


class MemoryStore(AbstractStore):
    """Dictionary-backed store. ``memory:`` URIs resolve to one instance per process."""

    def __init__(self, uri: str = "memory:") -> None:
        self.uri = uri
        self._lock = threading.RLock()
        self._experiments: dict[str, Experiment] = {}
        self._runs: dict[str, _RunRecord] = {}
        self._next_experiment = 1

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
