"""``Client``: the one object every layer above the store talks to (design doc §2).

It validates input, buffers writes and keeps run heartbeats. Method names follow MLflow's
``MlflowClient`` so code moves over with few edits.

Durability rule (stated once, tested in ``tests/unit/test_client_buffer.py``): params,
metrics and tags are buffered in memory and reach the store

* when the run ends (``set_terminated`` / ``end_run``),
* on :meth:`Client.flush` and before every read through the client,
* when the buffer holds :data:`FLUSH_MAX_RECORDS` records or :data:`FLUSH_MAX_BYTES` bytes,
* within :data:`FLUSH_INTERVAL_S` seconds, from a background thread,
* at interpreter exit.

Only an abrupt process death (SIGKILL, power loss) within that last interval can lose
buffered records; the notebook layer also flushes at the end of every cell.
"""

from __future__ import annotations

import atexit
import dataclasses
import getpass
import json
import logging
import os
import random
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nbmlops.entities import (
    Artifact,
    DatasetInput,
    Experiment,
    Metric,
    Param,
    Run,
    RunInfo,
    RunSource,
    RunStatus,
    RunTag,
)
from nbmlops.errors import AlreadyExists, InvalidArgument, NbMlopsError, NotFound, StoreError
from nbmlops.registry import RegistryClientMixin
from nbmlops.store import heartbeat as hb
from nbmlops.store import resolve_store
from nbmlops.store._common import check_params_against
from nbmlops.store.base import DEFAULT_MAX_RESULTS, AbstractStore
from nbmlops.validation import (
    metric_value_to_float,
    param_value_to_str,
    tag_value_to_str,
    validate_artifact_path,
    validate_key,
    validate_name,
    validate_run_id,
    validate_step,
    validate_timestamp,
)

logger = logging.getLogger("nbmlops")

FLUSH_MAX_RECORDS = 10_000
FLUSH_MAX_BYTES = 8 * 1024 * 1024
FLUSH_INTERVAL_S = float(os.environ.get("NBMLOPS_FLUSH_INTERVAL", "1.0"))
_RECORD_OVERHEAD = 64  # rough bytes per buffered record beyond its strings

_ADJECTIVES = [
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "daring",
    "eager",
    "fair",
    "gentle",
    "glad",
    "keen",
    "lively",
    "lucid",
    "merry",
    "neat",
    "nimble",
    "noble",
    "quiet",
    "rapid",
    "sharp",
    "shiny",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "zesty",
]
_NOUNS = [
    "badger",
    "bear",
    "crane",
    "deer",
    "dolphin",
    "eagle",
    "falcon",
    "fox",
    "gecko",
    "hare",
    "heron",
    "ibis",
    "koala",
    "lark",
    "lemur",
    "lynx",
    "marten",
    "moose",
    "otter",
    "owl",
    "panda",
    "puffin",
    "quail",
    "raven",
    "robin",
    "seal",
    "stork",
    "swan",
    "tiger",
    "wren",
]


def generate_run_name() -> str:
    """A readable default run name such as ``swift-otter-042``."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randrange(1000):03d}"


def current_user() -> str:
    """The user name recorded on runs."""
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "unknown")


class PagedList(list):  # type: ignore[type-arg]
    """A page of results with the ``token`` of the next page (None after the last)."""

    def __init__(self, items: Iterable[Any], token: str | None) -> None:
        super().__init__(items)
        self.token = token


@dataclasses.dataclass
class _Pending:
    metrics: list[Metric] = dataclasses.field(default_factory=list)
    params: list[Param] = dataclasses.field(default_factory=list)
    tags: dict[str, RunTag] = dataclasses.field(default_factory=dict)


_clients: weakref.WeakSet[Client] = weakref.WeakSet()


class Client(RegistryClientMixin):
    """Validated, buffered access to one store.

    Args:
        tracking_uri: the store URI; None applies the default-location rule.
        store: an already-open store (takes precedence over ``tracking_uri``).

    Thread-safe: several threads may log through one client.
    """

    def __init__(self, tracking_uri: str | None = None, store: AbstractStore | None = None) -> None:
        self.store = store if store is not None else resolve_store(tracking_uri)
        self._lock = threading.RLock()
        self._flush_lock = threading.RLock()
        self._pending: dict[str, _Pending] = {}
        self._pending_records = 0
        self._pending_bytes = 0
        # Runs this client knows to be RUNNING, with the params they hold (for instant
        # conflict errors). Runs created here are also kept alive by heartbeats.
        self._writable: dict[str, dict[str, str]] = {}
        self._owned: set[str] = set()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._worker_pid = 0
        self._closed = False
        _clients.add(self)

    @property
    def tracking_uri(self) -> str:
        return self.store.uri

    # ----------------------------------------------------------------- background work
    def _ensure_worker(self) -> None:
        if self._worker is not None and self._worker_pid == os.getpid() and self._worker.is_alive():
            return
        with self._lock:
            if (
                self._worker is not None
                and self._worker_pid == os.getpid()
                and self._worker.is_alive()
            ):
                return
            self._worker_pid = os.getpid()
            self._worker = threading.Thread(
                target=self._background, name="nbmlops-flush", daemon=True
            )
            self._worker.start()

    def _background(self) -> None:
        next_beat = hb.now_ms() + hb.BEAT_INTERVAL_S * 1000
        while not self._closed:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                self._flush(raise_errors=False)
                if hb.now_ms() >= next_beat:
                    next_beat = hb.now_ms() + hb.BEAT_INTERVAL_S * 1000
                    with self._lock:
                        owned = list(self._owned)
                    if owned:
                        self.store.beat(owned, hb.current_heartbeat())
            except Exception:  # never let the daemon die; the next explicit flush reports
                logger.warning("nbmlops background flush failed", exc_info=True)

    # ----------------------------------------------------------------- buffering
    def _run_writable(self, run_id: str) -> dict[str, str]:
        """Known params of a RUNNING run; raises for unknown or ended runs.

        Called without ``self._lock`` held: it may flush and read the store.
        """
        known = self._writable.get(run_id)
        if known is not None:
            return known
        validate_run_id(run_id)
        self._flush_run(run_id)
        run = self.store.get_run(run_id)
        if run.info.status is not RunStatus.RUNNING:
            raise InvalidArgument(
                f"cannot log to run {run_id}: it has ended ({run.info.status.value})"
            )
        with self._lock:
            return self._writable.setdefault(run_id, dict(run.data.params))

    def _enqueue(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        if metrics or params:
            known = self._run_writable(run_id)
        elif run_id not in self._writable:
            validate_run_id(run_id)
            self._flush_run(run_id)
            self.store.get_run(run_id)  # NotFound for an unknown run
        with self._lock:
            if params:
                # Conflicts raise at once; re-logging a known value is a no-op, not buffered.
                params = check_params_against(run_id, known, params)
                for param in params:
                    known[param.key] = param.value
                if not (metrics or params or tags):
                    return
            pending = self._pending.get(run_id)
            if pending is None:
                pending = self._pending[run_id] = _Pending()
            size = 0
            if metrics:
                pending.metrics.extend(metrics)
                size += sum(len(m.key) for m in metrics) + _RECORD_OVERHEAD * len(metrics)
            if params:
                pending.params.extend(params)
                size += sum(len(p.key) + len(p.value) for p in params) + _RECORD_OVERHEAD * len(
                    params
                )
            for tag in tags:
                pending.tags[tag.key] = tag
                size += len(tag.key) + len(tag.value) + _RECORD_OVERHEAD
            self._pending_records += len(metrics) + len(params) + len(tags)
            self._pending_bytes += size
            full = (
                self._pending_records >= FLUSH_MAX_RECORDS or self._pending_bytes >= FLUSH_MAX_BYTES
            )
        if full:
            self.flush()
        else:
            self._ensure_worker()

    def _take(self, run_id: str | None = None) -> dict[str, _Pending]:
        with self._lock:
            if run_id is None:
                taken, self._pending = self._pending, {}
                self._pending_records = 0
                self._pending_bytes = 0
            else:
                pending = self._pending.pop(run_id, None)
                taken = {run_id: pending} if pending else {}
                if pending:
                    records = len(pending.metrics) + len(pending.params) + len(pending.tags)
                    self._pending_records = max(0, self._pending_records - records)
                    if not self._pending:
                        self._pending_bytes = 0
            return taken

    def _write_pending(self, taken: dict[str, _Pending], raise_errors: bool) -> None:
        first_error: BaseException | None = None
        for run_id, pending in taken.items():
            try:
                self.store.log_batch(
                    run_id, pending.metrics, pending.params, list(pending.tags.values())
                )
            except StoreError as exc:  # transient (locked too long): keep the records
                with self._lock:
                    again = self._pending.setdefault(run_id, _Pending())
                    again.metrics[:0] = pending.metrics
                    again.params[:0] = pending.params
                    again.tags = {**pending.tags, **again.tags}
                    self._pending_records += (
                        len(pending.metrics) + len(pending.params) + len(pending.tags)
                    )
                first_error = first_error or exc
            except NbMlopsError as exc:  # the run cannot take them: report, do not retry
                with self._lock:
                    self._writable.pop(run_id, None)
                first_error = first_error or exc
                if not raise_errors:
                    logger.warning("nbmlops dropped records for run %s: %s", run_id, exc)
        if first_error is not None and raise_errors:
            raise first_error

    def _flush(self, raise_errors: bool = True) -> None:
        # The flush lock makes a flush wait for one already writing (e.g. the timer's), so
        # "flushed" always means "committed". Lock order: _flush_lock, then _lock.
        with self._flush_lock:
            taken = self._take()
            if taken:
                self._write_pending(taken, raise_errors)

    def _flush_run(self, run_id: str) -> None:
        with self._flush_lock:
            taken = self._take(run_id)
            if taken:
                self._write_pending(taken, raise_errors=True)

    def flush(self) -> None:
        """Write every buffered record to the store now (raises the first write error)."""
        self._flush(raise_errors=True)

    def close(self) -> None:
        """Flush and stop the background thread (the store stays open for other clients)."""
        try:
            self.flush()
        finally:
            self._closed = True
            self._wake.set()

    # ----------------------------------------------------------------- experiments
    def create_experiment(self, name: str) -> str:
        """Create an experiment and return its id (AlreadyExists if the name is taken)."""
        return self.store.create_experiment(validate_name(name, "experiment name")).experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(validate_name(name, "experiment name"))

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if missing (safe against a racing creator)."""
        existing = self.get_experiment_by_name(name)
        if existing is not None:
            return existing
        try:
            return self.store.create_experiment(name)
        except AlreadyExists:
            found = self.store.get_experiment_by_name(name)
            assert found is not None
            return found

    def search_experiments(self) -> list[Experiment]:
        return self.store.search_experiments()

    # ----------------------------------------------------------------- runs
    def create_run(
        self,
        experiment_id: str,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        start_time: int | None = None,
        source: RunSource | None = None,
    ) -> Run:
        """Create a RUNNING run owned (heartbeat) by this process."""
        name = validate_name(run_name, "run name") if run_name is not None else generate_run_name()
        tag_list = [
            RunTag(validate_key(k, "tag"), tag_value_to_str(k, v)) for k, v in (tags or {}).items()
        ]
        if parent_run_id is not None:
            validate_run_id(parent_run_id)
            self._flush_run(parent_run_id)
        info = self.store.create_run(
            experiment_id=str(experiment_id),
            run_name=name,
            start_time=validate_timestamp(start_time) if start_time is not None else hb.now_ms(),
            user=current_user(),
            parent_run_id=parent_run_id,
            tags=tag_list,
            source=source,
            heartbeat=hb.current_heartbeat(),
        )
        with self._lock:
            self._writable[info.run_id] = {}
            self._owned.add(info.run_id)
        self._ensure_worker()
        return Run(info=info, data=_data_with_tags(tag_list))

    def get_run(self, run_id: str) -> Run:
        """The run as stored, after flushing what this client buffered for it."""
        validate_run_id(run_id)
        self._flush_run(run_id)
        return self.store.get_run(run_id)

    def set_terminated(
        self, run_id: str, status: str | RunStatus = "FINISHED", end_time: int | None = None
    ) -> RunInfo:
        """End a run: flush its buffer, then record the status and end time; returns its info."""
        validate_run_id(run_id)
        status = RunStatus.parse(status)
        end = validate_timestamp(end_time) if end_time is not None else hb.now_ms()
        self._flush_run(run_id)
        info = self.store.end_run(run_id, status, end)
        with self._lock:
            self._writable.pop(run_id, None)
            self._owned.discard(run_id)
        return info

    end_run = set_terminated

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run: hidden from searches until :meth:`restore_run`."""
        self._flush_run(validate_run_id(run_id))
        self.store.set_run_lifecycle(run_id, deleted=True)

    def restore_run(self, run_id: str) -> None:
        """Undo :meth:`delete_run`."""
        self.store.set_run_lifecycle(validate_run_id(run_id), deleted=False)

    # ----------------------------------------------------------------- logging
    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Log a param (immutable: the same value again is a no-op, another is an error)."""
        key = validate_key(key, "param")
        self._enqueue(run_id, params=[Param(key, param_value_to_str(key, value))])

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: Any,
        timestamp: int | None = None,
        step: int | None = None,
    ) -> None:
        """Log one metric point (NaN and ±inf allowed; non-numbers refused)."""
        key = validate_key(key, "metric")
        metric = Metric(
            key,
            metric_value_to_float(key, value),
            hb.now_ms() if timestamp is None else validate_timestamp(timestamp),
            validate_step(step),
        )
        self._enqueue(run_id, metrics=(metric,))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set a tag (mutable; allowed on ended runs too, e.g. for review notes)."""
        key = validate_key(key, "tag")
        self._enqueue(run_id, tags=[RunTag(key, tag_value_to_str(key, value))])

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Log entity lists at once; every item is validated before any is buffered."""
        checked_metrics = [
            Metric(
                validate_key(m.key, "metric"),
                metric_value_to_float(m.key, m.value),
                validate_timestamp(m.timestamp),
                validate_step(m.step),
            )
            for m in metrics
        ]
        checked_params = [
            Param(validate_key(p.key, "param"), param_value_to_str(p.key, p.value)) for p in params
        ]
        checked_tags = [
            RunTag(validate_key(t.key, "tag"), tag_value_to_str(t.key, t.value)) for t in tags
        ]
        self._enqueue(run_id, checked_metrics, checked_params, checked_tags)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Record dataset fingerprints (see :func:`nbmlops.data.fingerprint`)."""
        validate_run_id(run_id)
        self._flush_run(run_id)
        self.store.log_inputs(run_id, list(datasets))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point logged for ``key``, by step then time."""
        self._flush_run(validate_run_id(run_id))
        return self.store.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> PagedList:
        """One page of matching runs; ``.token`` of the result fetches the next page."""
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        if not isinstance(filter_string, str):
            raise InvalidArgument(
                f"filter_string must be a string, got {type(filter_string).__name__}"
            )
        self.flush()
        runs, token = self.store.search_runs(
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
        )
        return PagedList(runs, token)

    # ----------------------------------------------------------------- artifacts
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Artifact:
        """Copy a local file into the run's artifacts (under folder ``artifact_path``)."""
        source = Path(local_path)
        if not source.is_file():
            raise InvalidArgument(f"log_artifact: {str(local_path)!r} is not a file")
        target = f"{artifact_path.strip('/')}/{source.name}" if artifact_path else source.name
        return self.store.log_artifact(
            validate_run_id(run_id), validate_artifact_path(target), source
        )

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Copy every file under a local folder, keeping the relative layout."""
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidArgument(f"log_artifacts: {str(local_dir)!r} is not a folder")
        logged = []
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = file.relative_to(root).as_posix()
            target = f"{artifact_path.strip('/')}/{rel}" if artifact_path else rel
            logged.append(
                self.store.log_artifact(
                    validate_run_id(run_id), validate_artifact_path(target), file
                )
            )
        return logged

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> Artifact:
        """Store ``data`` as artifact ``artifact_file``."""
        return self.store.log_artifact(
            validate_run_id(run_id), validate_artifact_path(artifact_file), data
        )

    def log_text(self, run_id: str, text: str, artifact_file: str) -> Artifact:
        """Store a string (UTF-8) as an artifact."""
        if not isinstance(text, str):
            raise InvalidArgument(f"log_text needs a str, got {type(text).__name__}")
        return self.log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str) -> Artifact:
        """Store a mapping as JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
        if not isinstance(dictionary, Mapping):
            raise InvalidArgument(f"log_dict needs a mapping, got {type(dictionary).__name__}")
        if artifact_file.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError:
                raise InvalidArgument(
                    "log_dict to .yaml needs PyYAML (pip install pyyaml)"
                ) from None
            text = yaml.safe_dump(dict(dictionary), sort_keys=False)
        else:
            try:
                text = json.dumps(dictionary, indent=2, allow_nan=True)
            except TypeError as exc:
                raise InvalidArgument(f"log_dict: value is not JSON-serialisable ({exc})") from None
        return self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> Artifact:
        """Store a matplotlib figure, in the format its extension names (png, svg, pdf, jpg)."""
        if not hasattr(figure, "savefig"):
            raise InvalidArgument(
                f"log_figure needs a matplotlib Figure, got {type(figure).__name__}"
            )
        fmt = Path(artifact_file).suffix.lstrip(".").lower() or "png"
        if fmt not in ("png", "svg", "pdf", "jpg", "jpeg"):
            raise InvalidArgument(
                f"log_figure: unsupported format {fmt!r}; use .png, .svg, .pdf or .jpg"
            )
        import io

        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, bbox_inches="tight")
        return self.log_bytes(run_id, buffer.getvalue(), artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        """Artifacts of a run under folder ``path`` (all when None)."""
        prefix = "" if not path else validate_artifact_path(path) + "/"
        return self.store.list_artifacts(validate_run_id(run_id), prefix)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of one artifact."""
        return self.store.read_artifact(validate_run_id(run_id), path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | os.PathLike[str]) -> Path:
        """Copy an artifact (or every artifact under a folder) to ``dst_path``; returns the copy."""
        validate_run_id(run_id)
        rel = validate_artifact_path(path)
        destination = Path(dst_path)
        files = [
            a
            for a in self.store.list_artifacts(run_id, "")
            if a.path == rel or a.path.startswith(rel + "/")
        ]
        if not files:
            raise NotFound(f"run {run_id} has no artifact {rel!r}")
        for artifact in files:
            out = destination.joinpath(*artifact.path.split("/"))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(self.store.read_artifact(run_id, artifact.path))
        return destination.joinpath(*rel.split("/"))


def _data_with_tags(tags: Sequence[RunTag]) -> Any:
    from nbmlops.entities import RunData

    return RunData(tags={t.key: t.value for t in tags})


def _flush_all_at_exit() -> None:
    for client in list(_clients):
        try:
            client.flush()
        except Exception as exc:  # exit must go on; say what was lost
            logger.warning("nbmlops could not flush at exit: %s", exc)


atexit.register(_flush_all_at_exit)
