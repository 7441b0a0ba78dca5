"""The store contract on an MLflow tracking service (team scale, design doc §4).

URIs::

    mlflow+http://host:5000              an MLflow tracking server (artifacts proxied by it)
    mlflow+https://mlflow.example.org
    mlflow+sqlite:///path/mlflow.db      MLflow's own SQL backend, no server
    mlflow+postgresql+psycopg2://user@host/db

Options in the query string (removed before the URI reaches MLflow):

* ``prefix=team-a.`` — experiment and registered model names get this prefix in MLflow, and
  this store sees only names that carry it (several projects, or the test suite, share one
  server without seeing each other's experiments and models). Run ids stay global.
* ``artifact_root=/path`` — SQL backends only: where new experiments keep their artifacts
  (default: ``mlartifacts/`` beside a SQLite file, else ``./mlartifacts``).

How nbmlops' data maps onto MLflow's is described in :mod:`._mlflow_codec`. Where MLflow
cannot give what the contract promises, this store raises a clear error instead of silently
differing (each case is listed in the README's capability table):

* ``create_run(run_id=...)`` — MLflow assigns run ids itself: InvalidArgument.
* a metric of exactly ±1.7976931348623157e308 — MLflow stores ±inf as that value: InvalidArgument.
* keys outside letters, digits, ``_ - . : /`` and space: InvalidArgument.

Behaviour kept on top of MLflow: param immutability (checked here, and again by the server),
NaN/±inf, heartbeats and dead-run reaping (tags), exact dataset fingerprints, artifact sha256
and media types (an index in tags), values longer than MLflow's field limits (split into
parts), registry timestamps, the audit log (tags on the registered model), alias
compare-and-set (a short lock held as a registered model that only one client can create),
version numbers never reused (MLflow soft-deletes versions) and search with nbmlops' full
filter language (evaluated here, over the runs MLflow returns for the experiments).

Differences that remain (documented): a batch larger than one MLflow request (1 000 metrics,
100 params, 100 tags) is written in several requests; two points of one metric with the same
key, step, timestamp and value are stored once (MLflow's primary key); when two points share
step and timestamp, MLflow reports the larger value as the latest one (history is exact);
registry changes and their audit events are two requests, not one transaction; a process
does not re-read the RUNNING runs it owns before logging to them (one request per batch
instead of two), so if another process ends such a run, the owner's later records still land.

MLflow is imported only when such a store is opened (``pip install 'nbmlops[mlflow]'``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import re
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

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
from nbmlops.errors import AlreadyExists, InvalidArgument, NbMlopsError, NotFound, StoreError
from nbmlops.store import _mlflow_codec as codec
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
    media_type_of,
    model_not_found,
    no_versions,
    plan_alias_changes,
    query_fingerprint,
    require_running,
)
from nbmlops.store.base import DEFAULT_MAX_RESULTS, AbstractStore
from nbmlops.store.search import (
    And,
    Comparison,
    compile_predicate,
    like_match,
    parse_filter,
    parse_order_by,
    sort_runs,
)
from nbmlops.validation import (
    is_latest_alias,
    short,
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

T = TypeVar("T")

INSTALL_HINT = "the mlflow+ backend needs MLflow: pip install 'nbmlops[mlflow]'"
#: Name of the registered model that serves as a lock for one model's aliases.
LOCK_PREFIX = "nbmlops.lock."
#: A lock older than this is taken to belong to a dead process and broken.
LOCK_STALE_S = 30.0
#: How long set_aliases waits for a lock held by someone else.
LOCK_WAIT_S = 60.0
#: MLflow HTTP retry settings applied when the user has not set them (about 7 s in all).
RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
_PREFIX_RULE = re.compile(r"[A-Za-z0-9._\-]{0,64}")
_CANONICAL_ID = re.compile(r"0|[1-9][0-9]{0,18}")
_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql")
#: MLflow's per-request limits for log_batch (mlflow/utils/validation.py).
_BATCH_METRICS = 1000
_BATCH_PARAMS = 100
_BATCH_TAGS = 100
_BATCH_ENTITIES = 1000
_BATCH_BYTES = 900_000
_SEARCH_PAGE = 50_000


@dataclasses.dataclass
class _OwnRun:
    """What this store knows of a RUNNING run it created for this process (saves requests)."""

    info: RunInfo
    params: dict[str, str]
    index: dict[str, Artifact]


def _mlflow_error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "error_code", None)
    return str(code) if code is not None else None


class MlflowStore(AbstractStore):
    """nbmlops' store contract over MLflow's tracking and registry APIs.

    Args:
        uri: ``mlflow+<MLflow tracking URI>`` with the optional ``prefix`` and
            ``artifact_root`` query options described in the module docstring.
    """

    #: MLflow chooses run ids: ``create_run(run_id=...)`` is refused (see nbmlops.sync).
    assigns_run_ids = True

    def __init__(self, uri: str) -> None:
        if not uri.startswith("mlflow+"):
            raise InvalidArgument(f"an MLflow store URI starts with 'mlflow+', got {uri!r}")
        self.uri = uri
        self._tracking_uri, self.prefix, artifact_root = _split_uri(uri)
        if self._tracking_uri.startswith("http"):
            # MLflow's default retries an unreachable server for ~4 minutes; a notebook
            # should hear about it within seconds (its records stay buffered meanwhile).
            for name, value in RETRY_DEFAULTS.items():
                os.environ.setdefault(name, value)
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise StoreError(f"tracking URI {uri!r}: {INSTALL_HINT}") from None
        self._artifact_root = artifact_root
        self._client = MlflowClient(
            tracking_uri=self._tracking_uri, registry_uri=self._tracking_uri
        )
        #: MLflow's own tracking store (RestStore or SqlAlchemyStore): no printing, no extra calls.
        self._tracking: Any = self._client._tracking_client.store
        self._lock = threading.RLock()
        self._experiments: dict[str, Experiment] = {}
        self._repos: dict[str, Any] = {}
        #: RUNNING runs created here whose heartbeat is this process (see _own_run).
        self._own: dict[str, _OwnRun] = {}

    # ----------------------------------------------------------------- plumbing
    @property
    def location(self) -> str:
        where = self._tracking_uri
        return f"MLflow at {where}" + (f" (names prefixed {self.prefix!r})" if self.prefix else "")

    def describe(self) -> dict[str, object]:
        experiments = self.search_experiments()
        return {
            "location": self.location,
            "uri": self.uri,
            "backend": "mlflow",
            "mlflow_tracking_uri": self._tracking_uri,
            "name_prefix": self.prefix,
            "experiments": len(experiments),
            "registered_models": len(self.search_registered_models()),
        }

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call MLflow, turning its errors into nbmlops' (messages kept)."""
        try:
            return fn(*args, **kwargs)
        except NbMlopsError:
            raise
        except Exception as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: BaseException) -> NbMlopsError:
        code = _mlflow_error_code(exc)
        message = str(getattr(exc, "message", None) or exc)
        if code == "RESOURCE_DOES_NOT_EXIST":
            return NotFound(message)
        if code == "RESOURCE_ALREADY_EXISTS" or "Changing param values is not allowed" in message:
            return AlreadyExists(message)
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"):
            return InvalidArgument(message)
        if any(sign in message for sign in ("Max retries exceeded", "Connection refused")):
            return StoreError(
                f"the MLflow server at {self._tracking_uri} is unreachable (is it running? "
                f"NBMLOPS_TRACKING_URI={self.uri}): {_first_line(message)[:300]}"
            )
        return StoreError(f"MLflow at {self._tracking_uri} failed: {_first_line(message)}")

    def _full(self, name: str) -> str:
        return self.prefix + name

    def _mine(self, full_name: str) -> bool:
        return full_name.startswith(self.prefix)

    def _short(self, full_name: str) -> str:
        return full_name[len(self.prefix) :]

    # ----------------------------------------------------------------- experiments
    def _to_experiment(self, exp: Any) -> Experiment:
        return Experiment(
            experiment_id=str(exp.experiment_id),
            name=self._short(exp.name),
            created_at=int(exp.creation_time or 0),
            artifact_location=str(exp.artifact_location or ""),
            lifecycle_stage=LifecycleStage(exp.lifecycle_stage),
        )

    def create_experiment(self, name: str) -> Experiment:
        validate_name(name, "experiment name")
        location = None
        if self._artifact_root is not None:
            location = f"{self._artifact_root.rstrip('/')}/{uuid.uuid4().hex}"
        try:
            experiment_id = self._call(
                self._client.create_experiment, self._full(name), artifact_location=location
            )
        except AlreadyExists:
            raise AlreadyExists(f"experiment {name!r} already exists") from None
        return self.get_experiment(str(experiment_id))

    def get_experiment(self, experiment_id: str) -> Experiment:
        experiment_id = str(experiment_id)
        with self._lock:
            cached = self._experiments.get(experiment_id)
        if cached is not None:
            return cached
        missing = NotFound(f"no experiment with id {experiment_id!r}")
        if not _CANONICAL_ID.fullmatch(experiment_id):
            raise missing
        try:
            exp = self._call(self._tracking.get_experiment, experiment_id)
        except (NotFound, InvalidArgument):
            raise missing from None
        if not self._mine(exp.name):
            raise missing
        experiment = self._to_experiment(exp)
        with self._lock:
            self._experiments[experiment_id] = experiment
        return experiment

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        exp = self._call(self._client.get_experiment_by_name, self._full(name))
        if exp is None or exp.name != self._full(name):
            return None
        experiment = self._to_experiment(exp)
        with self._lock:
            self._experiments[experiment.experiment_id] = experiment
        return experiment

    def search_experiments(self) -> list[Experiment]:
        from mlflow.entities import ViewType

        # A broad pattern ('_' is a wildcard too): names are checked again here.
        pattern = self.prefix + "%"
        found: list[Experiment] = []
        token = None
        while True:
            page = self._call(
                self._client.search_experiments,
                view_type=ViewType.ACTIVE_ONLY,
                max_results=_SEARCH_PAGE,
                filter_string=f"name LIKE '{pattern}'" if self.prefix else None,
                page_token=token,
            )
            found.extend(self._to_experiment(e) for e in page if self._mine(e.name))
            token = page.token
            if not token:
                break
        return sorted(found, key=lambda e: (e.created_at, int(e.experiment_id)))

    # ----------------------------------------------------------------- runs: reading
    def _to_run(self, mlrun: Any) -> Run:
        """An nbmlops Run from an MLflow run (internal tags decoded, mapped tags hidden)."""
        info = mlrun.info
        tags: dict[str, str] = dict(mlrun.data.tags)
        ours = tags.get(codec.FORMAT_TAG) is not None
        status = RunStatus.parse(info.status) if info.status != "SCHEDULED" else RunStatus.RUNNING
        source_text = tags.get(codec.SOURCE_TAG)
        if source_text is not None:
            source_text = codec.decode_value("s", codec.SOURCE_TAG, source_text, tags)
        inputs_text = tags.get(codec.INPUTS_TAG)
        if inputs_text is not None:
            inputs = tuple(
                codec.inputs_from_json(codec.decode_value("i", codec.INPUTS_TAG, inputs_text, tags))
            )
        else:
            inputs = tuple(_mlflow_inputs(mlrun))
        run_info = RunInfo(
            run_id=info.run_id,
            experiment_id=str(info.experiment_id),
            run_name=info.run_name or tags.get(codec.MLFLOW_RUN_NAME, ""),
            status=status,
            start_time=int(info.start_time or 0),
            end_time=None
            if info.end_time is None or status is RunStatus.RUNNING
            else int(info.end_time),
            parent_run_id=tags.get(codec.MLFLOW_PARENT_RUN_ID) or None,
            user=info.user_id or tags.get(codec.MLFLOW_USER, ""),
            lifecycle_stage=LifecycleStage(info.lifecycle_stage),
            artifact_uri=info.artifact_uri or "",
            source=codec.source_from_json(source_text),
            heartbeat=(
                codec.heartbeat_from_tag(tags.get(codec.HEARTBEAT_TAG))
                if status is RunStatus.RUNNING
                else None
            ),
        )
        params = {
            key: codec.decode_value("p", key, value, tags)
            for key, value in mlrun.data.params.items()
        }
        metrics = {key: codec.metric_from_mlflow(v) for key, v in mlrun.data.metrics.items()}
        data = RunData(params=params, metrics=metrics, tags=codec.visible_run_tags(tags, ours))
        return Run(info=run_info, data=data, inputs=inputs)

    def _reap(self, run: Run) -> Run:
        """Persist KILLED for a RUNNING run whose heartbeat is dead; returns the run as read."""
        beat = run.info.heartbeat
        if run.info.status is not RunStatus.RUNNING or not hb.is_dead(beat):
            return run
        assert beat is not None
        from mlflow.entities import RunStatus as MlflowRunStatus
        from mlflow.entities import RunTag as MlflowTag

        reason = f"process {beat.pid} on {beat.host} stopped without ending the run"
        self._call(
            self._tracking.log_batch,
            run.info.run_id,
            [],
            [],
            [MlflowTag(STATUS_REASON_TAG, reason)],
        )
        self._call(
            self._tracking.update_run_info,
            run.info.run_id,
            MlflowRunStatus.from_string("KILLED"),
            beat.time,
            None,
        )
        info = dataclasses.replace(
            run.info, status=RunStatus.KILLED, end_time=beat.time, heartbeat=None
        )
        tags = {**run.data.tags, STATUS_REASON_TAG: reason}
        return Run(
            info=info, data=RunData(run.data.params, run.data.metrics, tags), inputs=run.inputs
        )

    def _get_mlflow_run(self, run_id: str) -> Any:
        validate_run_id(run_id)
        try:
            return self._call(self._tracking.get_run, run_id)
        except (NotFound, InvalidArgument):
            raise NotFound(f"no run with id {run_id!r}") from None

    def get_run(self, run_id: str) -> Run:
        run = self._reap(self._to_run(self._get_mlflow_run(run_id)))
        if run.info.status is not RunStatus.RUNNING:
            with self._lock:
                self._own.pop(run_id, None)
        return run

    def _own_run(self, run_id: str) -> _OwnRun | None:
        """The cached state of a run this process created and keeps alive, if any.

        Such a run is RUNNING until this process ends it (its heartbeat is this process, so no
        reader reaps it), so logging to it skips reading it back first: one request instead of
        two. Params are still checked here and again by the server.
        """
        with self._lock:
            return self._own.get(run_id)

    # ----------------------------------------------------------------- runs: writing
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
        if run_id is not None:
            validate_run_id(run_id)
            raise InvalidArgument(
                f"cannot create run id {run_id}: the MLflow backend assigns run ids itself "
                "(create_run(run_id=...) is not supported on mlflow+ stores)"
            )
        experiment = self.get_experiment(experiment_id)
        if parent_run_id is not None and self._own_run(validate_run_id(parent_run_id)) is None:
            self._get_mlflow_run(parent_run_id)
        for tag in tags:
            codec.check_mlflow_key(tag.key, "tag")
        mlflow_tags: dict[str, str] = {}
        for tag in tags:
            visible, parts = codec.encode_value("t", tag.key, tag.value, codec.TAG_VALUE_LIMIT)
            mlflow_tags.update(parts)
            mlflow_tags[tag.key] = visible
        mlflow_tags[codec.FORMAT_TAG] = codec.FORMAT_VERSION
        mlflow_tags[codec.MLFLOW_USER] = user
        if parent_run_id is not None:
            mlflow_tags[codec.MLFLOW_PARENT_RUN_ID] = parent_run_id
        if heartbeat is not None:
            mlflow_tags[codec.HEARTBEAT_TAG] = codec.heartbeat_to_tag(heartbeat)
        if source is not None and source != RunSource():
            visible, parts = codec.encode_value(
                "s", codec.SOURCE_TAG, codec.source_to_json(source), codec.TAG_VALUE_LIMIT
            )
            mlflow_tags.update(parts)
            mlflow_tags[codec.SOURCE_TAG] = visible
            if source.path:
                mlflow_tags[codec.MLFLOW_SOURCE_NAME] = source.path[: codec.TAG_VALUE_LIMIT]
                kind = "NOTEBOOK" if source.path.endswith(".ipynb") else "LOCAL"
                mlflow_tags[codec.MLFLOW_SOURCE_TYPE] = kind
        from mlflow.entities import RunTag as MlflowTag

        created = self._call(
            self._tracking.create_run,
            experiment_id=experiment.experiment_id,
            user_id=user,
            start_time=start_time,
            tags=[MlflowTag(k, v) for k, v in mlflow_tags.items()],
            run_name=run_name,
        )
        info = self._to_run(created).info
        mine = heartbeat is not None and (heartbeat.pid, heartbeat.host) == (
            os.getpid(),
            hb.host_name(),
        )
        if mine:
            with self._lock:
                self._own[info.run_id] = _OwnRun(info, {}, {})
        return info

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> RunInfo:
        status = RunStatus.parse(status)
        validate_run_id(run_id)
        own = self._own_run(run_id)
        if own is not None:
            check_end_status(run_id, RunStatus.RUNNING, status)
            current = own.info
        else:
            run = self.get_run(run_id)
            if not check_end_status(run_id, run.info.status, status):
                return run.info
            current = run.info
        from mlflow.entities import RunStatus as MlflowRunStatus

        self._call(
            self._tracking.update_run_info,
            run_id,
            MlflowRunStatus.from_string(status.value),
            end_time,
            None,
        )
        with self._lock:
            self._own.pop(run_id, None)
        return dataclasses.replace(current, status=status, end_time=end_time, heartbeat=None)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        for metric in metrics:
            codec.check_mlflow_key(metric.key, "metric")
            codec.check_metric_value(metric.key, metric.value)
        for param in params:
            codec.check_mlflow_key(param.key, "param")
        for tag in tags:
            codec.check_mlflow_key(tag.key, "tag")
        validate_run_id(run_id)
        own = self._own_run(run_id)
        if own is not None:
            known = own.params
        else:
            run = self.get_run(run_id)
            if metrics or params:
                require_running(run_id, run.info.status, "params or metrics")
            known = dict(run.data.params)
        fresh = check_params_against(run_id, known, params)
        self._write_batch(run_id, metrics, fresh, {t.key: t.value for t in tags})
        if own is not None:
            with self._lock:
                own.params.update((p.key, p.value) for p in fresh)

    def _write_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Mapping[str, str],
        internal: Mapping[str, str] | None = None,
    ) -> None:
        """Send params, metrics and tags in as few MLflow requests as its limits allow.

        Parts of long values go first, so a marker never points at parts not yet written.
        """
        from mlflow.entities import Metric as MlflowMetric
        from mlflow.entities import Param as MlflowParam
        from mlflow.entities import RunTag as MlflowTag

        part_tags: dict[str, str] = {}
        mlflow_params = []
        for param in params:
            visible, parts = codec.encode_value(
                "p", param.key, param.value, codec.PARAM_VALUE_LIMIT
            )
            part_tags.update(parts)
            mlflow_params.append(MlflowParam(param.key, visible))
        visible_tags: dict[str, str] = dict(internal or {})
        for key, value in tags.items():
            visible, parts = codec.encode_value("t", key, value, codec.TAG_VALUE_LIMIT)
            part_tags.update(parts)
            visible_tags[key] = visible
        all_tags = [MlflowTag(k, v) for k, v in part_tags.items()]
        all_tags += [MlflowTag(k, v) for k, v in visible_tags.items()]
        # ±inf is sent as is (MLflow stores it as ±largest double; read back as ±inf).
        mlflow_metrics = [MlflowMetric(m.key, m.value, m.timestamp, m.step) for m in metrics]
        for batch in _pack_batches(mlflow_metrics, mlflow_params, all_tags, len(part_tags)):
            self._call(self._tracking.log_batch, run_id, *batch)

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        run = self.get_run(run_id)
        current = list(run.inputs)
        seen = {(i.name, i.digest, i.context) for i in current}
        added: list[DatasetInput] = []
        for item in inputs:
            key = (item.name, item.digest, item.context)
            if key not in seen:
                seen.add(key)
                added.append(item)
        if not added:
            return
        text = codec.inputs_to_json(current + added)
        visible, parts = codec.encode_value("i", codec.INPUTS_TAG, text, codec.TAG_VALUE_LIMIT)
        self._write_batch(run_id, (), (), {}, internal={**parts, codec.INPUTS_TAG: visible})
        # The same fingerprints as MLflow datasets, for MLflow's UI and mlflow.search_runs users.
        self._call(self._tracking.log_inputs, run_id, [_to_mlflow_input(i) for i in added])

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self._get_mlflow_run(run_id)
        points: list[Metric] = []
        token = None
        while True:
            page = self._call(self._tracking.get_metric_history, run_id, key, page_token=token)
            points.extend(
                Metric(m.key, codec.metric_from_mlflow(m.value), int(m.timestamp), int(m.step))
                for m in page
            )
            token = getattr(page, "token", None)
            if not token:
                break
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
        tree = parse_filter(filter_string)
        predicate = compile_predicate(tree)
        order = parse_order_by(order_by)
        ids = None if experiment_ids is None else sorted({str(e) for e in experiment_ids})
        fingerprint = query_fingerprint(ids, filter_string, list(order_by or []), include_deleted)
        offset = decode_page_token(page_token, fingerprint)
        if ids is None:
            wanted = [e.experiment_id for e in self.search_experiments()]
        else:
            wanted = []
            for experiment_id in ids:
                try:
                    wanted.append(self.get_experiment(experiment_id).experiment_id)
                except NotFound:
                    continue
        if not wanted:
            return [], None
        runs = [
            r for r in self._fetch_runs(wanted, _pushdown(tree), include_deleted) if predicate(r)
        ]
        ordered = sort_runs(runs, order)
        page = ordered[offset : offset + max_results]
        more = offset + max_results < len(ordered)
        return page, encode_page_token(offset + max_results, fingerprint) if more else None

    def _fetch_runs(
        self, experiment_ids: list[str], mlflow_filter: str, deleted: bool
    ) -> list[Run]:
        from mlflow.entities import ViewType

        view = ViewType.ALL if deleted else ViewType.ACTIVE_ONLY
        found: list[Run] = []
        token = None
        while True:
            page = self._call(
                self._tracking.search_runs,
                experiment_ids=experiment_ids,
                filter_string=mlflow_filter,
                run_view_type=view,
                max_results=_SEARCH_PAGE,
                page_token=token,
            )
            found.extend(self._reap(self._to_run(r)) for r in page)
            token = page.token
            if not token:
                break
        return found

    def set_run_lifecycle(self, run_id: str, deleted: bool) -> None:
        self._get_mlflow_run(run_id)
        self._call(self._tracking.delete_run if deleted else self._tracking.restore_run, run_id)

    def beat(self, run_ids: Iterable[str], heartbeat: Heartbeat) -> None:
        from mlflow.entities import RunTag as MlflowTag

        value = codec.heartbeat_to_tag(heartbeat)
        for run_id in run_ids:
            # The beat of an ended run is never read back (only RUNNING runs have one).
            with contextlib.suppress(NbMlopsError):
                self._call(
                    self._tracking.log_batch,
                    run_id,
                    [],
                    [],
                    [MlflowTag(codec.HEARTBEAT_TAG, value)],
                )

    # ----------------------------------------------------------------- artifacts
    def _repo(self, artifact_uri: str) -> Any:
        with self._lock:
            repo = self._repos.get(artifact_uri)
            if repo is None:
                from mlflow.store.artifact.artifact_repository_registry import (
                    get_artifact_repository,
                )

                repo = get_artifact_repository(artifact_uri, tracking_uri=self._tracking_uri)
                self._repos[artifact_uri] = repo
            return repo

    @staticmethod
    def _index(mlrun: Any) -> dict[str, Artifact]:
        index: dict[str, Artifact] = {}
        for key, value in mlrun.data.tags.items():
            if key.startswith(codec.ARTIFACT_TAG_PREFIX):
                try:
                    path, size, sha256, media_type, created = json.loads(value)
                except (ValueError, TypeError):
                    continue
                index[path] = Artifact(path, int(size), sha256, media_type, int(created))
        return index

    def log_artifact(self, run_id: str, path: str, source: bytes | Path) -> Artifact:
        path = validate_artifact_path(path)
        if len(path) > 4000:
            raise InvalidArgument(f"artifact path {short(path)} is longer than 4000 characters")
        own = self._own_run(validate_run_id(run_id))
        if own is not None:
            artifact_uri, index = own.info.artifact_uri, own.index
        else:
            mlrun = self._get_mlflow_run(run_id)
            artifact_uri, index = mlrun.info.artifact_uri, self._index(mlrun)
        if any(p.startswith(path + "/") for p in index) or any(
            path.startswith(p + "/") for p in index
        ):
            raise InvalidArgument(f"artifact path {path!r} clashes with an existing file or folder")
        folder, _, name = path.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="nbmlops-upload-") as tmp:
            local = Path(tmp) / name
            digest = hashlib.sha256()
            size = 0
            if isinstance(source, (bytes, bytearray, memoryview)):
                data = bytes(source)
                local.write_bytes(data)
                digest.update(data)
                size = len(data)
            else:
                try:
                    with open(source, "rb") as src, open(local, "wb") as out:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
                except OSError as exc:
                    raise InvalidArgument(
                        f"cannot read artifact source {str(source)!r}: {exc}"
                    ) from None
            repo = self._repo(artifact_uri)
            self._call(repo.log_artifact, str(local), folder or None)
        artifact = Artifact(path, size, digest.hexdigest(), media_type_of(path), hb.now_ms())
        entry = json.dumps(
            [
                artifact.path,
                artifact.size,
                artifact.sha256,
                artifact.media_type,
                artifact.created_at,
            ],
            ensure_ascii=False,
        )
        self._write_batch(run_id, (), (), {}, internal={codec.artifact_tag_key(path): entry})
        if own is not None:
            with self._lock:
                own.index[path] = artifact
        return artifact

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        mlrun = self._get_mlflow_run(run_id)
        if mlrun.data.tags.get(codec.FORMAT_TAG) is not None:
            found = self._index(mlrun).values()
        else:
            found = self._list_foreign(mlrun)
        return sorted((a for a in found if a.path.startswith(prefix)), key=lambda a: a.path)

    def _list_foreign(self, mlrun: Any) -> list[Artifact]:
        """Artifacts of a run nbmlops did not write: listed from MLflow, hashed on the way."""
        repo = self._repo(mlrun.info.artifact_uri)
        out: list[Artifact] = []
        pending: list[str | None] = [None]
        while pending:
            folder = pending.pop()
            for item in self._call(repo.list_artifacts, folder):
                if item.is_dir:
                    pending.append(item.path)
                    continue
                data = self._download(repo, item.path, mlrun.info.run_id)
                out.append(
                    Artifact(
                        item.path,
                        len(data),
                        hashlib.sha256(data).hexdigest(),
                        media_type_of(item.path),
                        int(mlrun.info.start_time or 0),
                    )
                )
        return out

    def _download(self, repo: Any, path: str, run_id: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="nbmlops-download-") as tmp:
            local = os.path.join(tmp, "file")
            try:
                repo._download_file(path, local)
                return Path(local).read_bytes()
            except Exception as exc:
                raise NotFound(
                    f"artifact file {path!r} of run {run_id} is missing from the store "
                    f"({_first_line(str(exc))})"
                ) from None

    def read_artifact(self, run_id: str, path: str) -> bytes:
        path = validate_artifact_path(path)
        mlrun = self._get_mlflow_run(run_id)
        if mlrun.data.tags.get(codec.FORMAT_TAG) is not None and path not in self._index(mlrun):
            raise NotFound(f"run {run_id} has no artifact {path!r}")
        return self._download(self._repo(mlrun.info.artifact_uri), path, run_id)

    # ----------------------------------------------------------------- registry: plumbing
    def _mlflow_model(self, name: str) -> Any:
        try:
            return self._call(self._client.get_registered_model, self._full(name))
        except (NotFound, InvalidArgument):
            raise model_not_found(name) from None

    def _check_name_fits(self, name: str) -> None:
        if name.startswith(LOCK_PREFIX):
            raise InvalidArgument(f"invalid model name {short(name)}: {LOCK_PREFIX!r} is reserved")
        if name in (".", ".."):
            raise InvalidArgument(f"invalid model name {short(name)}: MLflow refuses '.' and '..'")
        if len(self._full(name)) > codec.MODEL_NAME_LIMIT:
            raise InvalidArgument(
                f"invalid model name {short(name)}: with the prefix {self.prefix!r} it is longer "
                f"than MLflow's {codec.MODEL_NAME_LIMIT} characters"
            )

    @staticmethod
    def _events(mlmodel: Any) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for key, value in mlmodel.tags.items():
            if key.startswith(codec.EVENT_TAG_PREFIX):
                with contextlib.suppress(ValueError, TypeError):
                    out.append((key, json.loads(value)))
        out.sort(key=lambda item: item[0])
        return out

    def _deleted_versions(self, mlmodel: Any) -> set[int]:
        return {
            int(e["v"])
            for _, e in self._events(mlmodel)
            if e.get("a") == EVENT_DELETE_VERSION and e.get("v") is not None
        }

    def _version_missing(self, name: str, version: int, mlmodel: Any | None = None) -> NotFound:
        if mlmodel is None:
            mlmodel = self._mlflow_model(name)
        gone = " (it was deleted)" if version in self._deleted_versions(mlmodel) else ""
        return NotFound(f"registered model {name!r} has no version {version}{gone}")

    def _to_model(self, mlmodel: Any, latest: int | None) -> RegisteredModel:
        tags = dict(mlmodel.tags)
        created = _int_or(tags.get(codec.CREATED_AT_TAG), mlmodel.creation_timestamp)
        updated = max(
            [created, _int_or(tags.get(codec.UPDATED_AT_TAG), mlmodel.last_updated_timestamp)]
            + [int(e["ts"]) for _, e in self._events(mlmodel) if e.get("s")]
        )
        aliases = {a: int(v) for a, v in (mlmodel.aliases or {}).items()}
        return RegisteredModel(
            name=self._short(mlmodel.name),
            description=mlmodel.description or "",
            tags={k: v for k, v in sorted(tags.items()) if not codec.is_internal_tag(k)},
            created_at=created,
            updated_at=updated,
            aliases=dict(sorted(aliases.items())),
            latest_version=latest,
        )

    def _latest_number(self, name: str) -> int | None:
        with _quiet_mlflow():
            versions = self._call(self._client.get_latest_versions, self._full(name))
        return max((int(v.version) for v in versions), default=None)

    def _to_version(self, mlversion: Any) -> ModelVersion:
        tags = dict(mlversion.tags or {})
        model_path = tags.get(codec.MODEL_PATH_TAG)
        if model_path is None:  # registered by plain MLflow: the path after /artifacts/
            model_path = str(mlversion.source or "").split("/artifacts/", 1)[-1] or "model"
        return ModelVersion(
            name=self._short(mlversion.name),
            version=int(mlversion.version),
            source_run_id=mlversion.run_id or "",
            model_path=model_path,
            description=mlversion.description or "",
            tags={k: v for k, v in sorted(tags.items()) if not codec.is_internal_tag(k)},
            created_at=_int_or(tags.get(codec.CREATED_AT_TAG), mlversion.creation_timestamp),
            created_by=tags.get(codec.CREATED_BY_TAG, mlversion.user_id or ""),
            stage=mlversion.current_stage or INITIAL_STAGE,
            aliases=tuple(sorted(mlversion.aliases or ())),
        )

    def _mlflow_version(self, name: str, number: int) -> Any:
        try:
            return self._call(self._client.get_model_version, self._full(name), str(number))
        except (NotFound, InvalidArgument):
            raise self._version_missing(name, number) from None

    def _touch(self, name: str) -> None:
        """Move the model's updated_at (nbmlops' clock) after a change that logs no event."""
        self._call(
            self._client.set_registered_model_tag,
            self._full(name),
            codec.UPDATED_AT_TAG,
            str(hb.now_ms()),
        )

    def _append_event(self, event: RegistryEvent, by_store: bool = True) -> None:
        """Write one audit event as a tag on the model; keys sort in the order written."""
        body = {
            "v": event.version,
            "a": event.action,
            "f": event.from_value,
            "t": event.to_value,
            "r": event.reason,
            "u": event.user,
            "ts": event.timestamp,
            "al": event.alias,
            "s": by_store,
        }
        text = json.dumps(body, ensure_ascii=False)
        if len(text) > codec.REGISTRY_TAG_VALUE_LIMIT:
            raise InvalidArgument(
                f"registry event of model {event.name!r} is {len(text)} characters; the MLflow "
                f"backend keeps events up to {codec.REGISTRY_TAG_VALUE_LIMIT}"
            )
        key = f"{codec.EVENT_TAG_PREFIX}{time.time_ns():020d}.{os.getpid():07d}.{uuid.uuid4().hex[:8]}"
        self._call(self._client.set_registered_model_tag, self._full(event.name), key, text)

    @staticmethod
    def _check_event_size(*texts: str) -> None:
        if sum(len(t) for t in texts) > codec.REGISTRY_TAG_VALUE_LIMIT - 2000:
            raise InvalidArgument(
                "user and reason of a registry change are too long for the MLflow backend "
                f"(events are kept up to {codec.REGISTRY_TAG_VALUE_LIMIT} characters)"
            )

    @contextlib.contextmanager
    def _model_lock(self, name: str) -> Iterator[None]:
        """Exclusive access to one model's aliases among nbmlops clients of this server.

        The lock is a registered model named ``nbmlops.lock.<hash>``: creating it succeeds
        for exactly one client; deleting it releases the lock. A lock older than
        :data:`LOCK_STALE_S` belongs to a dead process and is broken.
        """
        lock_name = self._full(LOCK_PREFIX + hashlib.sha1(name.encode()).hexdigest()[:24])
        deadline = time.monotonic() + LOCK_WAIT_S
        delay = 0.005
        while True:
            try:
                self._call(
                    self._client.create_registered_model,
                    lock_name,
                    description=json.dumps(
                        {"pid": os.getpid(), "host": hb.host_name(), "time": time.time()}
                    ),
                )
                break
            except (AlreadyExists, NotFound):
                # NotFound: MLflow lost a creation race against the holder's delete; retry.
                self._break_stale_lock(lock_name)
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"could not lock the aliases of model {name!r} within {LOCK_WAIT_S:.0f} s "
                        f"(lock {lock_name!r} on MLflow is held by another client)"
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            with contextlib.suppress(NbMlopsError):
                self._call(self._client.delete_registered_model, lock_name)

    def _break_stale_lock(self, lock_name: str) -> None:
        try:
            held = self._call(self._client.get_registered_model, lock_name)
        except NotFound:
            return
        try:
            since = float(json.loads(held.description or "{}").get("time", 0))
        except (ValueError, TypeError, AttributeError):
            since = 0.0
        if time.time() - since > LOCK_STALE_S:
            with contextlib.suppress(NbMlopsError):
                self._call(self._client.delete_registered_model, lock_name)

    # ----------------------------------------------------------------- registry: models
    def create_registered_model(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        validate_model_name(name)
        description = check_text(description, "model description")
        clean_tags = check_tags(tags)
        self._check_name_fits(name)
        for key in clean_tags:
            codec.check_mlflow_key(key, "tag")
        _check_registry_values(clean_tags)
        now = str(hb.now_ms())
        all_tags = {**clean_tags, codec.CREATED_AT_TAG: now, codec.UPDATED_AT_TAG: now}
        try:
            created = self._call(
                self._client.create_registered_model,
                self._full(name),
                tags=all_tags,
                description=description,
            )
        except AlreadyExists:
            raise AlreadyExists(f"registered model {name!r} already exists") from None
        return self._to_model(created, None)

    def get_registered_model(self, name: str) -> RegisteredModel:
        validate_model_name(name)
        mlmodel = self._mlflow_model(name)
        return self._to_model(mlmodel, self._latest_number(name))

    def search_registered_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        if name_like is not None and not isinstance(name_like, str):
            raise InvalidArgument(f"name_like must be a string pattern, got {name_like!r}")
        found = []
        token = None
        pattern = self.prefix + "%"  # broad ('_' is a wildcard): names are checked below
        while True:
            page = self._call(
                self._client.search_registered_models,
                filter_string=f"name LIKE '{pattern}'" if self.prefix else None,
                max_results=1000,
                page_token=token,
            )
            found.extend(page)
            token = page.token
            if not token:
                break
        out = []
        for mlmodel in found:
            if not self._mine(mlmodel.name):
                continue
            name = self._short(mlmodel.name)
            if name.startswith(LOCK_PREFIX):
                continue
            if name_like is not None and not like_match(name, name_like, True):
                continue
            latest = max((int(v.version) for v in mlmodel.latest_versions or ()), default=None)
            out.append(self._to_model(mlmodel, latest))
        return sorted(out, key=lambda m: m.name)

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        validate_model_name(name)
        description = check_text(description, "model description")
        self._mlflow_model(name)
        self._call(self._client.update_registered_model, self._full(name), description=description)
        self._touch(name)
        return self.get_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        validate_model_name(name)
        validate_key(key, "tag")
        value = tag_value_to_str(key, value)
        codec.check_mlflow_key(key, "tag")
        _check_registry_values({key: value})
        self._mlflow_model(name)
        self._call(self._client.set_registered_model_tag, self._full(name), key, value)
        self._touch(name)

    # ----------------------------------------------------------------- registry: versions
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
        self._check_name_fits(name)
        for key in clean_tags:
            codec.check_mlflow_key(key, "tag")
        _check_registry_values(clean_tags)
        self._check_event_size(user, model_path)
        mlrun = self._get_mlflow_run(source_run_id)
        now = hb.now_ms()
        all_tags = {
            **clean_tags,
            codec.MODEL_PATH_TAG: model_path,
            codec.CREATED_AT_TAG: str(now),
            codec.CREATED_BY_TAG: user,
        }
        source = f"{(mlrun.info.artifact_uri or '').rstrip('/')}/{model_path}"
        created = None
        for attempt in range(60):
            try:
                created = self._call(
                    self._client.create_model_version,
                    self._full(name),
                    source,
                    run_id=source_run_id,
                    tags=all_tags,
                    description=description,
                    await_creation_for=0,
                )
                break
            except NotFound:
                # The model does not exist yet: create it (another client may win the race).
                with contextlib.suppress(AlreadyExists):
                    stamp = str(now)
                    self._call(
                        self._client.create_registered_model,
                        self._full(name),
                        tags={codec.CREATED_AT_TAG: stamp, codec.UPDATED_AT_TAG: stamp},
                    )
            except StoreError as exc:
                # MLflow retries a version-number collision only 3 times; keep trying.
                if "Model Version creation error" not in str(exc) or attempt == 59:
                    raise
                time.sleep(0.01 * (1 + random.random()) * min(attempt + 1, 10))
        assert created is not None
        version = self._to_version(created)
        self._append_event(
            RegistryEvent(
                name, version.version, EVENT_CREATE_VERSION, None, version.source, "", user, now
            )
        )
        return version

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        validate_model_name(name)
        number = validate_version(version)
        self._mlflow_model(name)
        return self._to_version(self._mlflow_version(name, number))

    def search_model_versions(
        self, name: str | None = None, run_id: str | None = None
    ) -> list[ModelVersion]:
        if name is not None:
            validate_model_name(name)
        if run_id is not None:
            validate_run_id(run_id)
        clauses = []
        if name is not None:
            clauses.append(_name_equals(self._full(name)) or f"name LIKE '{self.prefix}%'")
        if run_id is not None:
            clauses.append(f"run_id = '{run_id}'")
        elif name is None and self.prefix:
            clauses.append(f"name LIKE '{self.prefix}%'")
        found = []
        token = None
        while True:
            page = self._call(
                self._client.search_model_versions,
                filter_string=" AND ".join(clauses) or None,
                max_results=10_000,
                page_token=token,
            )
            found.extend(page)
            token = page.token
            if not token:
                break
        found = [
            v
            for v in found
            if self._mine(v.name)
            and not self._short(v.name).startswith(LOCK_PREFIX)
            and (name is None or v.name == self._full(name))
        ]
        # MLflow's search leaves the aliases out: take them from each model.
        aliases: dict[str, dict[int, list[str]]] = {}
        for full_name in sorted({v.name for v in found}):
            pointing: dict[int, list[str]] = {}
            with contextlib.suppress(NotFound):
                model = self._mlflow_model(self._short(full_name))
                for alias, number in (model.aliases or {}).items():
                    pointing.setdefault(int(number), []).append(alias)
            aliases[full_name] = pointing
        versions = [
            dataclasses.replace(
                self._to_version(v),
                aliases=tuple(sorted(aliases[v.name].get(int(v.version), ()))),
            )
            for v in found
        ]
        return sorted(versions, key=lambda v: (v.name, v.version))

    def update_model_version(self, name: str, version: int | str, description: str) -> ModelVersion:
        validate_model_name(name)
        number = validate_version(version)
        description = check_text(description, "version description")
        self._mlflow_model(name)
        self._mlflow_version(name, number)
        self._call(
            self._client.update_model_version,
            self._full(name),
            str(number),
            description=description,
        )
        self._touch(name)
        return self.get_model_version(name, number)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        validate_model_name(name)
        number = validate_version(version)
        validate_key(key, "tag")
        value = tag_value_to_str(key, value)
        codec.check_mlflow_key(key, "tag")
        _check_registry_values({key: value})
        self._mlflow_model(name)
        self._mlflow_version(name, number)
        self._call(self._client.set_model_version_tag, self._full(name), str(number), key, value)
        self._touch(name)

    def set_model_version_stage(
        self, name: str, version: int | str, stage: str, user: str = "", reason: str = ""
    ) -> ModelVersion:
        validate_model_name(name)
        number = validate_version(version)
        stage = validate_stage(stage)
        user = check_text(user, "user")
        reason = check_text(reason, "reason")
        self._check_event_size(user, reason)
        self._mlflow_model(name)
        current = self._to_version(self._mlflow_version(name, number))
        if current.stage == stage:
            return current
        now = hb.now_ms()
        with _quiet_mlflow():
            self._call(
                self._client.transition_model_version_stage,
                self._full(name),
                str(number),
                stage,
                archive_existing_versions=False,
            )
        self._append_event(
            RegistryEvent(name, number, EVENT_STAGE, current.stage, stage, reason, user, now)
        )
        return self.get_model_version(name, number)

    def delete_model_version(
        self, name: str, version: int | str, user: str = "", reason: str = ""
    ) -> None:
        validate_model_name(name)
        number = validate_version(version)
        user = check_text(user, "user")
        reason = check_text(reason, "reason")
        self._check_event_size(user, reason)
        self._mlflow_model(name)
        with self._model_lock(name):
            current = self._to_version(self._mlflow_version(name, number))
            now = hb.now_ms()
            for alias in current.aliases:
                self._call(self._client.delete_registered_model_alias, self._full(name), alias)
            self._call(self._client.delete_model_version, self._full(name), str(number))
            for alias in current.aliases:
                self._append_event(
                    alias_event(name, alias, number, None, EVENT_DELETE_ALIAS, user, reason, now)
                )
            self._append_event(
                RegistryEvent(
                    name, number, EVENT_DELETE_VERSION, current.source, None, reason, user, now
                )
            )

    # ----------------------------------------------------------------- registry: aliases
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
        self._check_event_size(user, reason)
        mlmodel = self._mlflow_model(name)
        existing = None
        for target in sorted({t for t in wanted.values() if t is not None}):
            if existing is None:
                existing = {v.version for v in self.search_model_versions(name)}
            if target not in existing:
                raise self._version_missing(name, target, mlmodel)
        with self._model_lock(name):
            current = {a: int(v) for a, v in (self._mlflow_model(name).aliases or {}).items()}
            plan = plan_alias_changes(name, current, wanted, want_before)
            if not plan:
                return
            now = hb.now_ms()
            for alias, _old, new in plan:
                if new is None:
                    self._call(self._client.delete_registered_model_alias, self._full(name), alias)
                else:
                    self._call(
                        self._client.set_registered_model_alias, self._full(name), alias, str(new)
                    )
            for alias, old, new in plan:
                self._append_event(alias_event(name, alias, old, new, action, user, reason, now))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        validate_model_name(name)
        latest = is_latest_alias(alias)
        if not latest:
            validate_alias(alias)
        mlmodel = self._mlflow_model(name)
        if latest:
            number = self._latest_number(name)
            if number is None:
                raise no_versions(name)
        else:
            aliases = {a: int(v) for a, v in (mlmodel.aliases or {}).items()}
            if alias not in aliases:
                raise alias_not_found(name, alias)
            number = aliases[alias]
        return self._to_version(self._mlflow_version(name, number))

    def record_registry_event(self, event: RegistryEvent) -> None:
        event = check_event(event)
        self._mlflow_model(event.name)
        self._append_event(event, by_store=False)

    def get_model_history(self, name: str) -> list[RegistryEvent]:
        validate_model_name(name)
        mlmodel = self._mlflow_model(name)
        return [
            RegistryEvent(
                name=name,
                version=None if e.get("v") is None else int(e["v"]),
                action=str(e["a"]),
                from_value=e.get("f"),
                to_value=e.get("t"),
                reason=str(e.get("r", "")),
                user=str(e.get("u", "")),
                timestamp=int(e["ts"]),
                alias=e.get("al"),
            )
            for _, e in self._events(mlmodel)
        ]


# --------------------------------------------------------------------------- helpers


def _split_uri(uri: str) -> tuple[str, str, str | None]:
    """(MLflow tracking URI, name prefix, artifact root) from an ``mlflow+`` URI."""
    inner = uri[len("mlflow+") :]
    base, _, query_text = inner.partition("?")
    scheme = base.split(":", 1)[0].split("+", 1)[0] if ":" in base else ""
    if scheme not in _SCHEMES:
        raise InvalidArgument(
            f"tracking URI {uri!r}: expected mlflow+http://host:port, mlflow+https://..., "
            "mlflow+sqlite:///path.db or mlflow+postgresql://... (MLflow's tracking URI after "
            "'mlflow+')"
        )
    query = urllib.parse.parse_qsl(query_text, keep_blank_values=True)
    prefix = ""
    artifact_root: str | None = None
    rest = []
    for key, value in query:
        if key == "prefix":
            prefix = value
        elif key == "artifact_root":
            artifact_root = value
        else:
            rest.append((key, value))
    if not _PREFIX_RULE.fullmatch(prefix):
        raise InvalidArgument(
            f"tracking URI {uri!r}: prefix must be up to 64 letters, digits, '.', '_' or '-'"
        )
    # Rebuilt by hand: urlunsplit would turn sqlite:////abs/path into sqlite://abs/path.
    tracking = base + ("?" + urllib.parse.urlencode(rest) if rest else "")
    if scheme in ("http", "https"):
        if artifact_root is not None:
            raise InvalidArgument(
                f"tracking URI {uri!r}: artifact_root applies to SQL backends; an MLflow server "
                "decides where artifacts go (--artifacts-destination)"
            )
    elif artifact_root is None:
        if scheme == "sqlite":
            db = Path(base[len("sqlite:///") :] if base.startswith("sqlite:///") else "mlflow.db")
            artifact_root = str(db.expanduser().absolute().parent / "mlartifacts")
        else:
            artifact_root = str(Path("mlartifacts").absolute())
    return tracking, prefix, artifact_root


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _int_or(value: str | None, fallback: Any) -> int:
    try:
        return int(value) if value is not None else int(fallback or 0)
    except (TypeError, ValueError):
        return int(fallback or 0)


def _name_equals(full_name: str) -> str | None:
    """An MLflow filter ``name = ...`` for a model name, or None when no quoting fits.

    MLflow's filter parser takes single- or double-quoted strings without escapes (model
    names hold no backslash); a name with both quote characters is matched here instead.
    """
    if "'" not in full_name:
        return f"name = '{full_name}'"
    if '"' not in full_name:
        return f'name = "{full_name}"'
    return None


def _check_registry_values(tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        if len(value) > codec.REGISTRY_TAG_VALUE_LIMIT:
            raise InvalidArgument(
                f"value of tag {key!r} is {len(value)} characters; the MLflow backend keeps "
                f"registry tag values up to {codec.REGISTRY_TAG_VALUE_LIMIT}"
            )


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's deprecation warnings for the stage API (kept for MLflow users)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


_SAFE_LITERAL = re.compile(r"[^'\"\\`]{1,1000}")


def _pushdown(tree: Any) -> str:
    """An MLflow filter that keeps every run ``tree`` can match (an exact prefilter).

    Only top-level AND-ed equalities MLflow evaluates exactly like nbmlops are sent: the
    parent run, the run id, and string equality on params and tags (values short enough to
    be stored whole). The full filter is always applied afterwards.
    """
    items = tree.items if isinstance(tree, And) else (tree,) if tree is not None else ()
    clauses = []
    for item in items:
        if not isinstance(item, Comparison) or item.op != "=" or not isinstance(item.value, str):
            continue
        value = item.value
        if not _SAFE_LITERAL.fullmatch(value):
            continue
        field = item.field
        if field.kind == "attribute" and field.key == "parent_run_id":
            clauses.append(f"tags.`{codec.MLFLOW_PARENT_RUN_ID}` = '{value}'")
        elif field.kind == "attribute" and field.key == "run_id":
            clauses.append(f"attributes.run_id = '{value}'")
        elif field.kind in ("param", "tag") and not codec.is_internal_tag(field.key):
            limit = codec.PARAM_VALUE_LIMIT if field.kind == "param" else codec.TAG_VALUE_LIMIT
            if len(value) >= limit - 200 or "`" in field.key:
                continue
            try:
                codec.check_mlflow_key(field.key, field.kind)
            except InvalidArgument:
                continue
            clauses.append(f"{field.kind}s.`{field.key}` = '{value}'")
    return " AND ".join(clauses)


def _pack_batches(
    metrics: list[Any], params: list[Any], tags: list[Any], first_tags: int
) -> Iterator[tuple[list[Any], list[Any], list[Any]]]:
    """Split one logical batch into MLflow-sized requests (part tags first, then the rest)."""
    if not (metrics or params or tags):
        return
    # Long-value parts before the fields that point at them.
    head, tail = tags[:first_tags], tags[first_tags:]
    for start in range(0, len(head), _BATCH_TAGS):
        chunk = head[start : start + _BATCH_TAGS]
        while chunk:
            size = 0
            take = []
            for tag in chunk:
                size += len(tag.key) + len(tag.value) * 4 + 64
                if take and size > _BATCH_BYTES:
                    break
                take.append(tag)
            chunk = chunk[len(take) :]
            yield [], [], take
    metrics, params, tail = list(metrics), list(params), list(tail)
    while metrics or params or tail:
        batch_params = params[:_BATCH_PARAMS]
        params = params[len(batch_params) :]
        batch_tags = tail[:_BATCH_TAGS]
        tail = tail[len(batch_tags) :]
        room = min(_BATCH_METRICS, _BATCH_ENTITIES - len(batch_params) - len(batch_tags))
        size = sum(len(p.key) + len(p.value) * 4 + 64 for p in batch_params)
        size += sum(len(t.key) + len(t.value) * 4 + 64 for t in batch_tags)
        batch_metrics = []
        for metric in metrics[:room]:
            size += len(metric.key) + 96
            if batch_metrics and size > _BATCH_BYTES:
                break
            batch_metrics.append(metric)
        metrics = metrics[len(batch_metrics) :]
        yield batch_metrics, batch_params, batch_tags


def _to_mlflow_input(item: DatasetInput) -> Any:
    """An MLflow DatasetInput for MLflow's UI (nbmlops reads its own tag back, not this)."""
    from mlflow.entities import Dataset, InputTag
    from mlflow.entities import DatasetInput as MlflowDatasetInput

    schema = {"mlflow_colspec": [{"name": k, "type": v} for k, v in item.schema.items()]}
    profile = {"num_rows": item.shape[0] if item.shape else None, "shape": list(item.shape)}
    dataset = Dataset(
        name=item.name[:500],
        digest=item.digest[:36],
        source_type="nbmlops",
        source=json.dumps({"source": item.source, "digest": item.digest})[:65000],
        schema=json.dumps(schema),
        profile=json.dumps(profile),
    )
    return MlflowDatasetInput(dataset, [InputTag("mlflow.data.context", item.context)])


def _mlflow_inputs(mlrun: Any) -> list[DatasetInput]:
    """Dataset fingerprints of a run nbmlops did not write, from MLflow's dataset inputs."""
    out = []
    inputs = getattr(mlrun, "inputs", None)
    for dataset_input in getattr(inputs, "dataset_inputs", None) or ():
        dataset = dataset_input.dataset
        context = next(
            (t.value for t in dataset_input.tags or () if t.key == "mlflow.data.context"), ""
        )
        schema: dict[str, str] = {}
        with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
            for col in json.loads(dataset.schema or "{}").get("mlflow_colspec", []):
                schema[str(col["name"])] = str(col["type"])
        out.append(
            DatasetInput(
                name=dataset.name,
                digest=dataset.digest,
                context=context,
                schema=schema,
                source=str(dataset.source or ""),
            )
        )
    return out
