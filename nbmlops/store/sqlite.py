"""The default store: one SQLite file plus artifact files beside it (design doc §4).

Layout: ``<dir>/nbmlops.db`` and ``<dir>/artifacts/<run_id>/...`` where ``<dir>`` is usually
a ``.nbmlops`` folder next to the notebooks.

How several processes share one file safely:

* WAL journal (readers never block the writer), ``synchronous=NORMAL`` (a crashed process
  cannot corrupt or lose a committed transaction; only an OS crash or power loss may roll
  back the last commits), foreign keys on.
* Every write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so a
  read-then-write can never fail half way with SQLITE_BUSY. Lock waits use SQLite's busy
  timeout plus a bounded retry loop here; "database is locked" never reaches the caller
  unless the store stayed locked for :data:`LOCK_PATIENCE_S` seconds, and then it is a
  :class:`StoreError` naming the file.
* One connection per thread and per process (a connection is never used across ``fork``).

The schema version is stored in ``nbmlops_meta``. A newer unknown schema, a file that is not
SQLite, or a SQLite file without our tables is refused with an error naming the path; the
file is never re-initialised or modified in that case. An older schema is migrated on open,
each step in one ``BEGIN IMMEDIATE`` transaction (all of it or none of it; a process that
finds the step already done by another process skips it).

Schema history: 1 = tracking (experiments, runs, params, metrics, tags, inputs, artifacts);
2 = adds the model registry (registered models, versions, their tags, aliases, audit log).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

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
from nbmlops.errors import AlreadyExists, InvalidArgument, NotFound, StoreError
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
from nbmlops.store.artifacts import LocalArtifactRepository
from nbmlops.store.base import DEFAULT_MAX_RESULTS, AbstractStore
from nbmlops.store.search import (
    compile_sql,
    compile_sql_order,
    like_match,
    parse_filter,
    parse_order_by,
    to_number,
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

SCHEMA_VERSION = 2
DB_FILENAME = "nbmlops.db"
LOCK_PATIENCE_S = float(os.environ.get("NBMLOPS_LOCK_PATIENCE", "120"))
_BUSY_TIMEOUT_MS = 5_000
_CHUNK = 900  # bound on bind variables per IN (...) list

_SCHEMA_V1 = """
CREATE TABLE nbmlops_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE experiments (
    experiment_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    lifecycle_stage TEXT NOT NULL DEFAULT 'active'
);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    parent_run_id TEXT REFERENCES runs(run_id),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('RUNNING', 'FINISHED', 'FAILED', 'KILLED')),
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    user TEXT NOT NULL DEFAULT '',
    lifecycle_stage TEXT NOT NULL DEFAULT 'active',
    source_path TEXT NOT NULL DEFAULT '',
    cell_id TEXT NOT NULL DEFAULT '',
    execution_count INTEGER,
    code_sha256 TEXT NOT NULL DEFAULT '',
    code TEXT NOT NULL DEFAULT '',
    hb_pid INTEGER,
    hb_host TEXT,
    hb_pid_start TEXT,
    hb_time INTEGER
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time DESC);
CREATE INDEX runs_by_start ON runs (start_time DESC);
CREATE INDEX runs_by_parent ON runs (parent_run_id);
CREATE INDEX runs_running ON runs (status) WHERE status = 'RUNNING';
CREATE TABLE params (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE tags (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
-- value NULL means NaN: SQLite turns a bound NaN into NULL, so NaN is spelled explicitly.
CREATE TABLE metrics (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value REAL,
    step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL
);
CREATE INDEX metrics_by_run_key ON metrics (run_id, key, step, timestamp);
CREATE TABLE latest_metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value REAL,
    step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE inputs (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    context TEXT NOT NULL,
    shape TEXT NOT NULL,
    schema TEXT NOT NULL,
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (run_id, name, digest, context)
) WITHOUT ROWID;
CREATE TABLE artifacts (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, path)
) WITHOUT ROWID;
"""

# Schema 2: the model registry. Added to a schema-1 file by _migrate(); a new file gets
# _SCHEMA_V1 then this, so both paths produce the same tables.
_SCHEMA_V2 = """
CREATE TABLE registered_models (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    next_version INTEGER NOT NULL DEFAULT 1 CHECK (next_version >= 1)
) WITHOUT ROWID;
CREATE TABLE registered_model_tags (
    name TEXT NOT NULL REFERENCES registered_models(name) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
CREATE TABLE model_versions (
    name TEXT NOT NULL REFERENCES registered_models(name) ON DELETE CASCADE,
    version INTEGER NOT NULL CHECK (version >= 1),
    source_run_id TEXT NOT NULL REFERENCES runs(run_id),
    model_path TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    stage TEXT NOT NULL DEFAULT 'None'
        CHECK (stage IN ('None', 'Staging', 'Production', 'Archived')),
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE INDEX model_versions_by_run ON model_versions (source_run_id);
CREATE TABLE model_version_tags (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE model_aliases (
    name TEXT NOT NULL REFERENCES registered_models(name) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX model_aliases_by_version ON model_aliases (name, version);
-- The audit log outlives what it talks about (a deleted version): no foreign keys.
CREATE TABLE registry_events (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER,
    action TEXT NOT NULL,
    alias TEXT,
    from_value TEXT,
    to_value TEXT,
    reason TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL DEFAULT '',
    timestamp INTEGER NOT NULL
);
CREATE INDEX registry_events_by_model ON registry_events (name, id);
"""

#: DDL that takes a store from schema ``n - 1`` to schema ``n``.
_MIGRATIONS = {2: _SCHEMA_V2}

_VERSION_COLUMNS = (
    "v.name, v.version, v.source_run_id, v.model_path, v.description, v.created_at, "
    "v.created_by, v.stage"
)

_RUN_COLUMNS = (
    "r.run_id, r.experiment_id, r.parent_run_id, r.name, r.status, r.start_time, r.end_time, "
    "r.user, r.lifecycle_stage, r.source_path, r.cell_id, r.execution_count, r.code_sha256, "
    "r.code, r.hb_pid, r.hb_host, r.hb_pid_start, r.hb_time"
)


_STATUSES = {status.value: status for status in RunStatus}
_STAGES = {stage.value: stage for stage in LifecycleStage}


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


def _sqlite_like(value: Any, pattern: Any, case_insensitive: Any) -> int | None:
    if value is None or pattern is None:
        return None
    return int(like_match(str(value), str(pattern), bool(case_insensitive)))


def _sqlite_num(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    return to_number(value)


def _experiment_key(experiment_id: Any) -> int:
    """The integer key of an id spelled as the store spells it ('7'; not '07' or ' 7').

    ValueError otherwise, so ids match exactly as in the memory store.
    """
    text = str(experiment_id)
    key = int(text)
    if str(key) != text:
        raise ValueError(f"non-canonical experiment id {text!r}")
    return key


def _metric_out(value: float) -> float | None:
    return None if value != value else value  # NaN -> NULL


def _metric_in(value: float | None) -> float:
    return float("nan") if value is None else float(value)


class SqliteStore(AbstractStore):
    """Store backed by ``<dir>/nbmlops.db`` and ``<dir>/artifacts``.

    Args:
        path: the database file; its folder also holds the artifacts.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self.uri = f"sqlite:///{self.path}"
        self.artifacts = LocalArtifactRepository(self.path.parent / "artifacts")
        self._artifact_root = str(self.artifacts.root)
        self._local = threading.local()
        self._pid = os.getpid()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {self.path.parent}: {exc}") from None
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a folder, expected an SQLite file")
        try:
            self._open_schema()
        except BaseException:
            self.close()  # a refused file is not kept open
            raise
        self._reap_dead_runs()

    @property
    def location(self) -> str:
        return str(self.path)

    # ----------------------------------------------------------------- connections
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path),
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None
        conn.create_function("nb_like", 3, _sqlite_like, deterministic=True)
        conn.create_function("nb_num", 1, _sqlite_num, deterministic=True)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:  # forked: never reuse the parent's connections
            self._pid = os.getpid()
            self._local = threading.local()
            self._connections = []
            self._connections_lock = threading.Lock()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _damaged(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"{self.path} is not a usable nbmlops store ({exc}); it was left untouched. "
            "Move it aside or point NBMLOPS_TRACKING_URI at another store."
        )

    def _retrying(self, operation: Any) -> Any:
        """Run ``operation(conn)``, retrying while another process holds the lock."""
        deadline = time.monotonic() + LOCK_PATIENCE_S
        delay = 0.005
        while True:
            try:
                return operation(self._conn())
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() > deadline:
                    if _is_locked(exc):
                        raise StoreError(
                            f"the store {self.path} stayed locked by another process for "
                            f"{LOCK_PATIENCE_S:.0f} s"
                        ) from None
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.IntegrityError):
                    raise
                raise self._damaged(exc) from None

    def _write(self, body: Any) -> Any:
        """Run ``body(conn)`` inside one BEGIN IMMEDIATE transaction (retried on lock)."""

        def transaction(conn: sqlite3.Connection) -> Any:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            return result

        return self._retrying(transaction)

    def _read(self, body: Any) -> Any:
        """Run ``body(conn)`` in one read transaction (a consistent snapshot)."""

        def transaction(conn: sqlite3.Connection) -> Any:
            conn.execute("BEGIN")
            try:
                return body(conn)
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("COMMIT")

        return self._retrying(transaction)

    # ----------------------------------------------------------------- schema
    def _open_schema(self) -> None:
        def inspect(conn: sqlite3.Connection) -> tuple[set[str], int | None]:
            tables = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            version = None
            if "nbmlops_meta" in tables:
                row = conn.execute(
                    "SELECT value FROM nbmlops_meta WHERE key='schema_version'"
                ).fetchone()
                version = int(row[0]) if row else None
            return tables, version

        tables, version = self._retrying(inspect)
        if not tables:
            self._create_schema()
            tables, version = self._retrying(inspect)
        self._check_version(tables, version)
        assert version is not None
        if version < SCHEMA_VERSION:
            self._migrate(version)
        # WAL is persistent in the file; switching needs no concurrent transaction, so retry.
        mode = self._retrying(lambda c: c.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot switch {self.path} to WAL journal mode (got {mode!r})")

    def _check_version(self, tables: set[str], version: int | None) -> None:
        user_tables = {t for t in tables if not t.startswith("sqlite_")}
        if "nbmlops_meta" not in tables or version is None:
            raise StoreError(
                f"{self.path} is an SQLite file but not an nbmlops store (tables: "
                f"{', '.join(sorted(user_tables)) or 'none'}); it was left untouched"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} uses store schema {version}, written by a newer nbmlops; this "
                f"version understands schema {SCHEMA_VERSION} at most. Upgrade nbmlops."
            )
        if version < SCHEMA_VERSION and any(
            step not in _MIGRATIONS for step in range(version + 1, SCHEMA_VERSION + 1)
        ):
            raise StoreError(
                f"{self.path} uses store schema {version}, which this nbmlops cannot migrate; "
                "it was left untouched"
            )

    def _migrate(self, found: int) -> None:
        """Bring a store at schema ``found`` up to :data:`SCHEMA_VERSION`, step by step.

        Each step is one BEGIN IMMEDIATE transaction that re-reads the version first, so
        processes opening the same old file at once migrate it exactly once. A failing step
        is rolled back whole and reported as a StoreError naming the file.
        """

        def step_to(target: int) -> Any:
            def migrate(conn: sqlite3.Connection) -> None:
                row = conn.execute(
                    "SELECT value FROM nbmlops_meta WHERE key='schema_version'"
                ).fetchone()
                if int(row[0]) >= target:  # another process migrated meanwhile
                    return
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "UPDATE nbmlops_meta SET value = ? WHERE key = 'schema_version'",
                    (str(target),),
                )
                conn.execute(
                    "INSERT OR REPLACE INTO nbmlops_meta (key, value) VALUES (?, ?)",
                    (f"migrated_to_{target}_at", str(hb.now_ms())),
                )

            return migrate

        for target in range(found + 1, SCHEMA_VERSION + 1):
            try:
                self._write(step_to(target))
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot migrate the store {self.path} from schema {target - 1} to "
                    f"{target} ({exc}); the file was left at schema {target - 1}"
                ) from None

    def _create_schema(self) -> None:
        def create(conn: sqlite3.Connection) -> None:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' LIMIT 1"
            ).fetchone()
            if exists:  # another process created it first
                return
            for script in (_SCHEMA_V1, *(_MIGRATIONS[v] for v in range(2, SCHEMA_VERSION + 1))):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.executemany(
                "INSERT INTO nbmlops_meta (key, value) VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("created_at", str(hb.now_ms())),
                    ("store_id", uuid.uuid4().hex),
                ],
            )

        self._write(create)

    def schema_version(self) -> int:
        row = self._read(
            lambda c: c.execute(
                "SELECT value FROM nbmlops_meta WHERE key='schema_version'"
            ).fetchone()
        )
        return int(row[0])

    def describe(self) -> dict[str, object]:
        def facts(conn: sqlite3.Connection) -> dict[str, object]:
            counts = {
                table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in (
                    "experiments",
                    "runs",
                    "params",
                    "metrics",
                    "tags",
                    "artifacts",
                    "inputs",
                    "registered_models",
                    "model_versions",
                )
            }
            by_status = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"))
            return {"counts": counts, "runs_by_status": by_status}

        self._reap_dead_runs()
        integrity = [
            row[0]
            for row in self._retrying(lambda c: c.execute("PRAGMA integrity_check").fetchall())
        ]
        info = self._read(facts)
        return {
            "location": str(self.path),
            "uri": self.uri,
            "artifact_root": str(self.artifacts.root),
            "schema_version": self.schema_version(),
            "journal_mode": self._retrying(
                lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]
            ),
            "integrity_check": "ok" if integrity == ["ok"] else "; ".join(integrity[:20]),
            "size_bytes": self.path.stat().st_size,
            **info,
        }

    # ----------------------------------------------------------------- experiments
    @staticmethod
    def _experiment(row: Sequence[Any]) -> Experiment:
        return Experiment(
            experiment_id=str(row[0]),
            name=row[1],
            created_at=row[2],
            lifecycle_stage=LifecycleStage(row[3]),
        )

    def create_experiment(self, name: str) -> Experiment:
        validate_name(name, "experiment name")

        def create(conn: sqlite3.Connection) -> Experiment:
            try:
                cursor = conn.execute(
                    "INSERT INTO experiments (name, created_at) VALUES (?, ?)", (name, hb.now_ms())
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"experiment {name!r} already exists") from None
            row = conn.execute(
                "SELECT experiment_id, name, created_at, lifecycle_stage FROM experiments "
                "WHERE experiment_id = ?",
                (cursor.lastrowid,),
            ).fetchone()
            return self._experiment(row)

        return self._write(create)

    def get_experiment(self, experiment_id: str) -> Experiment:
        try:
            key = _experiment_key(experiment_id)
        except (TypeError, ValueError):
            raise NotFound(f"no experiment with id {experiment_id!r}") from None
        row = self._read(
            lambda c: c.execute(
                "SELECT experiment_id, name, created_at, lifecycle_stage FROM experiments "
                "WHERE experiment_id = ?",
                (key,),
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"no experiment with id {experiment_id!r}")
        return self._experiment(row)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        row = self._read(
            lambda c: c.execute(
                "SELECT experiment_id, name, created_at, lifecycle_stage FROM experiments "
                "WHERE name = ?",
                (name,),
            ).fetchone()
        )
        return None if row is None else self._experiment(row)

    def search_experiments(self) -> list[Experiment]:
        rows = self._read(
            lambda c: c.execute(
                "SELECT experiment_id, name, created_at, lifecycle_stage FROM experiments "
                "ORDER BY experiment_id"
            ).fetchall()
        )
        return [self._experiment(row) for row in rows]

    # ----------------------------------------------------------------- runs: rows -> entities
    def _info(self, row: Sequence[Any]) -> RunInfo:
        # Hot path of search (1 000 rows in a few ms): plain dict lookups instead of enum
        # calls, and one precomputed artifact root instead of a pathlib join per run.
        heartbeat = None
        if row[14] is not None:
            heartbeat = Heartbeat(pid=row[14], host=row[15], pid_start=row[16] or "", time=row[17])
        return RunInfo(
            run_id=row[0],
            experiment_id=str(row[1]),
            parent_run_id=row[2],
            run_name=row[3],
            status=_STATUSES[row[4]],
            start_time=row[5],
            end_time=row[6],
            user=row[7],
            lifecycle_stage=_STAGES[row[8]],
            artifact_uri=f"{self._artifact_root}{os.sep}{row[0]}",
            source=RunSource(
                path=row[9],
                cell_id=row[10],
                execution_count=row[11],
                code_sha256=row[12],
                code=row[13],
            ),
            heartbeat=heartbeat,
        )

    def _load_runs(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[Run]:
        infos = [self._info(row) for row in rows]
        ids = [info.run_id for info in infos]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        inputs: dict[str, list[DatasetInput]] = {i: [] for i in ids}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for run_id, key, value in conn.execute(
                f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})", chunk
            ):
                params[run_id][key] = value
            for run_id, key, value in conn.execute(
                f"SELECT run_id, key, value FROM latest_metrics WHERE run_id IN ({marks})", chunk
            ):
                metrics[run_id][key] = _metric_in(value)
            for run_id, key, value in conn.execute(
                f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})", chunk
            ):
                tags[run_id][key] = value
            for run_id, name, digest, context, shape, schema, source in conn.execute(
                "SELECT run_id, name, digest, context, shape, schema, source FROM inputs "
                f"WHERE run_id IN ({marks}) ORDER BY seq",
                chunk,
            ):
                inputs[run_id].append(
                    DatasetInput(
                        name=name,
                        digest=digest,
                        context=context,
                        shape=tuple(json.loads(shape)),
                        schema=json.loads(schema),
                        source=source,
                    )
                )
        return [
            Run(
                info=info,
                data=RunData(
                    params=params[info.run_id], metrics=metrics[info.run_id], tags=tags[info.run_id]
                ),
                inputs=tuple(inputs[info.run_id]),
            )
            for info in infos
        ]

    # ----------------------------------------------------------------- dead runs
    def _reap_dead_runs(self, run_id: str | None = None) -> None:
        """Persist KILLED for RUNNING runs (all, or just ``run_id``) whose process is dead.

        Cheap: a partial index holds only RUNNING runs, usually a handful.
        """
        sql = "SELECT run_id, hb_pid, hb_host, hb_pid_start, hb_time FROM runs WHERE status = 'RUNNING'"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " AND run_id = ?"
            args = (run_id,)
        rows = self._read(lambda c: c.execute(sql, args).fetchall())
        dead = []
        for rid, pid, host, pid_start, beat_time in rows:
            if pid is None:
                continue
            beat = Heartbeat(pid=pid, host=host, pid_start=pid_start or "", time=beat_time)
            if hb.is_dead(beat):
                dead.append((rid, beat))
        if not dead:
            return

        def kill(conn: sqlite3.Connection) -> None:
            for rid, beat in dead:
                cursor = conn.execute(
                    "UPDATE runs SET status = 'KILLED', end_time = ?, hb_pid = NULL, hb_host = NULL, "
                    "hb_pid_start = NULL, hb_time = NULL "
                    "WHERE run_id = ? AND status = 'RUNNING' AND hb_pid = ? AND hb_time = ?",
                    (beat.time, rid, beat.pid, beat.time),
                )
                if cursor.rowcount:
                    conn.execute(
                        "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                        (
                            rid,
                            STATUS_REASON_TAG,
                            f"process {beat.pid} on {beat.host} stopped without ending the run",
                        ),
                    )

        self._write(kill)

    # ----------------------------------------------------------------- runs
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
        run_id = validate_run_id(run_id) if run_id else uuid.uuid4().hex
        if parent_run_id is not None:
            validate_run_id(parent_run_id)
        source = source or RunSource()
        try:
            experiment_key = _experiment_key(experiment_id)
        except (TypeError, ValueError):
            raise NotFound(f"no experiment with id {experiment_id!r}") from None

        def create(conn: sqlite3.Connection) -> None:
            if (
                conn.execute(
                    "SELECT 1 FROM experiments WHERE experiment_id = ?", (experiment_key,)
                ).fetchone()
                is None
            ):
                raise NotFound(f"no experiment with id {experiment_id!r}")
            if (
                parent_run_id is not None
                and conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (parent_run_id,)).fetchone()
                is None
            ):
                raise NotFound(f"no parent run with id {parent_run_id!r}")
            try:
                conn.execute(
                    "INSERT INTO runs (run_id, experiment_id, parent_run_id, name, status, start_time, "
                    "user, source_path, cell_id, execution_count, code_sha256, code, hb_pid, hb_host, "
                    "hb_pid_start, hb_time) VALUES (?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        experiment_key,
                        parent_run_id,
                        run_name,
                        start_time,
                        user,
                        source.path,
                        source.cell_id,
                        source.execution_count,
                        source.code_sha256,
                        source.code,
                        heartbeat.pid if heartbeat else None,
                        heartbeat.host if heartbeat else None,
                        heartbeat.pid_start if heartbeat else None,
                        heartbeat.time if heartbeat else None,
                    ),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"run id {run_id} is already in use") from None
            if tags:
                conn.executemany(
                    "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                    [(run_id, t.key, t.value) for t in tags],
                )

        self._write(create)
        return RunInfo(
            run_id=run_id,
            experiment_id=str(experiment_key),
            run_name=run_name,
            status=RunStatus.RUNNING,
            start_time=start_time,
            end_time=None,
            parent_run_id=parent_run_id,
            user=user,
            artifact_uri=str(self.artifacts.run_dir(run_id)),
            source=source,
            heartbeat=heartbeat,
        )

    def _run_row(self, conn: sqlite3.Connection, run_id: str) -> Sequence[Any]:
        row = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs r WHERE r.run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no run with id {run_id!r}")
        return row

    def _status(self, conn: sqlite3.Connection, run_id: str) -> RunStatus:
        row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"no run with id {run_id!r}")
        return RunStatus(row[0])

    def get_run(self, run_id: str) -> Run:
        validate_run_id(run_id)
        self._reap_dead_runs(run_id=run_id)
        return self._read(lambda c: self._load_runs(c, [self._run_row(c, run_id)])[0])

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> RunInfo:
        validate_run_id(run_id)
        status = RunStatus.parse(status)
        self._reap_dead_runs(run_id=run_id)

        def end(conn: sqlite3.Connection) -> RunInfo:
            current = self._status(conn, run_id)
            if check_end_status(run_id, current, status):
                conn.execute(
                    "UPDATE runs SET status = ?, end_time = ?, hb_pid = NULL, hb_host = NULL, "
                    "hb_pid_start = NULL, hb_time = NULL WHERE run_id = ?",
                    (status.value, end_time, run_id),
                )
            return self._info(self._run_row(conn, run_id))

        return self._write(end)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        validate_run_id(run_id)
        if not (metrics or params or tags):
            self._read(lambda c: self._status(c, run_id))  # unknown run: NotFound, as memory
            return
        latest = latest_by_key(metrics)

        def log(conn: sqlite3.Connection) -> None:
            status = self._status(conn, run_id)
            if metrics or params:
                require_running(run_id, status, "params or metrics")
            if params:
                keys = sorted({p.key for p in params})
                existing: dict[str, str] = {}
                for start in range(0, len(keys), _CHUNK):
                    chunk = keys[start : start + _CHUNK]
                    existing.update(
                        conn.execute(
                            f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({','.join('?' * len(chunk))})",
                            [run_id, *chunk],
                        ).fetchall()
                    )
                fresh = check_params_against(run_id, existing, params)
                conn.executemany(
                    "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                    [(run_id, p.key, p.value) for p in fresh],
                )
            if tags:
                conn.executemany(
                    "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                    [(run_id, t.key, t.value) for t in tags],
                )
            if metrics:
                conn.executemany(
                    "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)",
                    [(run_id, m.key, _metric_out(m.value), m.step, m.timestamp) for m in metrics],
                )
                conn.executemany(
                    "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, "
                    "step = excluded.step, timestamp = excluded.timestamp "
                    "WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step "
                    "AND excluded.timestamp >= latest_metrics.timestamp)",
                    [
                        (run_id, m.key, _metric_out(m.value), m.step, m.timestamp)
                        for m in latest.values()
                    ],
                )

        self._write(log)

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        validate_run_id(run_id)

        def log(conn: sqlite3.Connection) -> None:
            self._status(conn, run_id)
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM inputs WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            for offset, item in enumerate(inputs, start=1):
                conn.execute(
                    "INSERT OR IGNORE INTO inputs (run_id, name, digest, context, shape, schema, source, seq) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        item.name,
                        item.digest,
                        item.context,
                        json.dumps(list(item.shape)),
                        json.dumps(dict(item.schema)),
                        item.source,
                        seq + offset,
                    ),
                )

        self._write(log)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        validate_run_id(run_id)

        def read(conn: sqlite3.Connection) -> list[Metric]:
            self._status(conn, run_id)
            return [
                Metric(key=key, value=_metric_in(value), timestamp=timestamp, step=step)
                for value, step, timestamp in conn.execute(
                    "SELECT value, step, timestamp FROM metrics WHERE run_id = ? AND key = ? "
                    "ORDER BY step, timestamp, id",
                    (run_id, key),
                )
            ]

        return self._read(read)

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
        node = parse_filter(filter_string)
        order = parse_order_by(order_by)
        ids = None if experiment_ids is None else sorted({str(e) for e in experiment_ids})
        fingerprint = query_fingerprint(ids, filter_string, list(order_by or []), include_deleted)
        offset = decode_page_token(page_token, fingerprint)
        # Every read shows dead runs as KILLED (contract), so no throttling here.
        self._reap_dead_runs()

        binds: list[Any] = []
        where: list[str] = []
        if ids is not None:
            numeric = []
            for experiment_id in ids:
                try:
                    numeric.append(_experiment_key(experiment_id))
                except ValueError:
                    continue  # an id this store cannot have matches nothing
            if not numeric:
                return [], None
            where.append(f"r.experiment_id IN ({','.join('?' * len(numeric))})")
            binds.extend(numeric)
        if not include_deleted:
            where.append("r.lifecycle_stage = 'active'")
        where.append(compile_sql(node, binds))
        order_sql = compile_sql_order(order, binds)
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM runs r WHERE {' AND '.join(where)} "
            f"ORDER BY {order_sql} LIMIT ? OFFSET ?"
        )
        binds.extend([max_results + 1, offset])

        def search(conn: sqlite3.Connection) -> tuple[list[Run], bool]:
            rows = conn.execute(sql, binds).fetchall()
            more = len(rows) > max_results
            return self._load_runs(conn, rows[:max_results]), more

        runs, more = self._read(search)
        return runs, encode_page_token(offset + max_results, fingerprint) if more else None

    def set_run_lifecycle(self, run_id: str, deleted: bool) -> None:
        validate_run_id(run_id)
        stage = (LifecycleStage.DELETED if deleted else LifecycleStage.ACTIVE).value

        def update(conn: sqlite3.Connection) -> None:
            self._status(conn, run_id)
            conn.execute("UPDATE runs SET lifecycle_stage = ? WHERE run_id = ?", (stage, run_id))

        self._write(update)

    def beat(self, run_ids: Iterable[str], heartbeat: Heartbeat) -> None:
        ids = list(run_ids)
        if not ids:
            return

        def update(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE runs SET hb_pid = ?, hb_host = ?, hb_pid_start = ?, hb_time = ? "
                "WHERE run_id = ? AND status = 'RUNNING'",
                [
                    (heartbeat.pid, heartbeat.host, heartbeat.pid_start, heartbeat.time, rid)
                    for rid in ids
                ],
            )

        self._write(update)

    # ----------------------------------------------------------------- artifacts
    def log_artifact(self, run_id: str, path: str, source: bytes | Path) -> Artifact:
        validate_run_id(run_id)
        path = validate_artifact_path(path)
        self._read(lambda c: self._status(c, run_id))  # unknown run: refuse before writing a file

        def clash(conn: sqlite3.Connection) -> bool:
            # A file cannot also be a folder: refuse "a" when "a/b" exists, and the reverse.
            return (
                conn.execute(
                    "SELECT 1 FROM artifacts WHERE run_id = ? AND "
                    "(substr(path, 1, ?) = ? OR substr(?, 1, length(path) + 1) = path || '/')",
                    (run_id, len(path) + 1, path + "/", path),
                ).fetchone()
                is not None
            )

        if self._read(clash):
            raise InvalidArgument(f"artifact path {path!r} clashes with an existing file or folder")
        size, sha256 = self.artifacts.write(run_id, path, source)
        artifact = Artifact(
            path=path,
            size=size,
            sha256=sha256,
            media_type=media_type_of(path),
            created_at=hb.now_ms(),
        )

        def record(conn: sqlite3.Connection) -> None:
            self._status(conn, run_id)
            conn.execute(
                "INSERT OR REPLACE INTO artifacts (run_id, path, size, sha256, media_type, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, path, size, sha256, artifact.media_type, artifact.created_at),
            )

        self._write(record)
        return artifact

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        validate_run_id(run_id)

        def read(conn: sqlite3.Connection) -> list[Artifact]:
            self._status(conn, run_id)
            rows = conn.execute(
                "SELECT path, size, sha256, media_type, created_at FROM artifacts "
                "WHERE run_id = ? AND substr(path, 1, ?) = ? ORDER BY path",
                (run_id, len(prefix), prefix),
            ).fetchall()
            return [Artifact(*row) for row in rows]

        return self._read(read)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        target = self.artifact_file(run_id, path)
        assert target is not None
        return self.artifacts.read(run_id, validate_artifact_path(path))

    def artifact_file(self, run_id: str, path: str) -> Path | None:
        validate_run_id(run_id)
        path = validate_artifact_path(path)

        def read(conn: sqlite3.Connection) -> bool:
            self._status(conn, run_id)
            return (
                conn.execute(
                    "SELECT 1 FROM artifacts WHERE run_id = ? AND path = ?", (run_id, path)
                ).fetchone()
                is not None
            )

        if not self._read(read):
            raise NotFound(f"run {run_id} has no artifact {path!r}")
        target = self.artifacts.resolve(run_id, path)
        if not target.is_file():
            raise NotFound(f"artifact file {path!r} of run {run_id} is missing from the store")
        return target

    # ----------------------------------------------------------------- model registry
    @staticmethod
    def _model_exists(conn: sqlite3.Connection, name: str) -> int:
        """The model's next_version counter; NotFound when there is no such model."""
        row = conn.execute(
            "SELECT next_version FROM registered_models WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise model_not_found(name)
        return int(row[0])

    def _version_exists(self, conn: sqlite3.Connection, name: str, version: int) -> str:
        """The version's stage; NotFound naming the missing model or version."""
        next_version = self._model_exists(conn, name)
        row = conn.execute(
            "SELECT stage FROM model_versions WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        if row is None:
            raise version_not_found(name, version, next_version)
        return str(row[0])

    @staticmethod
    def _touch(conn: sqlite3.Connection, name: str, now: int) -> None:
        conn.execute("UPDATE registered_models SET updated_at = ? WHERE name = ?", (now, name))

    @staticmethod
    def _add_event(conn: sqlite3.Connection, event: RegistryEvent) -> None:
        conn.execute(
            "INSERT INTO registry_events (name, version, action, alias, from_value, to_value, "
            "reason, user, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.name,
                event.version,
                event.action,
                event.alias,
                event.from_value,
                event.to_value,
                event.reason,
                event.user,
                event.timestamp,
            ),
        )

    @staticmethod
    def _load_models(
        conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]
    ) -> list[RegisteredModel]:
        """Models from (name, description, created_at, updated_at) rows, with their extras."""
        names = [row[0] for row in rows]
        tags: dict[str, dict[str, str]] = {n: {} for n in names}
        aliases: dict[str, dict[str, int]] = {n: {} for n in names}
        latest: dict[str, int] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for name, key, value in conn.execute(
                f"SELECT name, key, value FROM registered_model_tags WHERE name IN ({marks}) "
                "ORDER BY name, key",
                chunk,
            ):
                tags[name][key] = value
            for name, alias, version in conn.execute(
                f"SELECT name, alias, version FROM model_aliases WHERE name IN ({marks}) "
                "ORDER BY name, alias",
                chunk,
            ):
                aliases[name][alias] = version
            latest.update(
                conn.execute(
                    f"SELECT name, MAX(version) FROM model_versions WHERE name IN ({marks}) "
                    "GROUP BY name",
                    chunk,
                )
            )
        return [
            RegisteredModel(
                name=name,
                description=description,
                tags=tags[name],
                created_at=created_at,
                updated_at=updated_at,
                aliases=aliases[name],
                latest_version=latest.get(name),
            )
            for name, description, created_at, updated_at in rows
        ]

    def _get_model(self, conn: sqlite3.Connection, name: str) -> RegisteredModel:
        row = conn.execute(
            "SELECT name, description, created_at, updated_at FROM registered_models "
            "WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise model_not_found(name)
        return self._load_models(conn, [row])[0]

    @staticmethod
    def _load_versions(
        conn: sqlite3.Connection, where: str, args: Sequence[Any]
    ) -> list[ModelVersion]:
        """Versions ``v`` matching ``where`` (SQL over ``model_versions v``), by name, version."""
        rows = conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM model_versions v WHERE {where} "
            "ORDER BY v.name, v.version",
            args,
        ).fetchall()
        if not rows:
            return []
        tags: dict[tuple[str, int], dict[str, str]] = {(r[0], r[1]): {} for r in rows}
        aliases: dict[tuple[str, int], list[str]] = {(r[0], r[1]): [] for r in rows}
        for name, version, key, value in conn.execute(
            "SELECT t.name, t.version, t.key, t.value FROM model_version_tags t "
            f"JOIN model_versions v ON v.name = t.name AND v.version = t.version WHERE {where} "
            "ORDER BY t.key",
            args,
        ):
            tags[(name, version)][key] = value
        for name, version, alias in conn.execute(
            "SELECT a.name, a.version, a.alias FROM model_aliases a "
            f"JOIN model_versions v ON v.name = a.name AND v.version = a.version WHERE {where} "
            "ORDER BY a.alias",
            args,
        ):
            aliases[(name, version)].append(alias)
        return [
            ModelVersion(
                name=name,
                version=version,
                source_run_id=run_id,
                model_path=model_path,
                description=description,
                tags=tags[(name, version)],
                created_at=created_at,
                created_by=created_by,
                stage=stage,
                aliases=tuple(aliases[(name, version)]),
            )
            for name, version, run_id, model_path, description, created_at, created_by, stage in rows
        ]

    def _get_version(self, conn: sqlite3.Connection, name: str, version: int) -> ModelVersion:
        found = self._load_versions(conn, "v.name = ? AND v.version = ?", (name, version))
        if not found:
            raise version_not_found(name, version, self._model_exists(conn, name))
        return found[0]

    def create_registered_model(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        validate_model_name(name)
        description = check_text(description, "model description")
        clean_tags = check_tags(tags)

        def create(conn: sqlite3.Connection) -> RegisteredModel:
            now = hb.now_ms()
            try:
                conn.execute(
                    "INSERT INTO registered_models (name, description, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?)",
                    (name, description, now, now),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"registered model {name!r} already exists") from None
            conn.executemany(
                "INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?)",
                [(name, k, v) for k, v in clean_tags.items()],
            )
            return self._get_model(conn, name)

        return self._write(create)

    def get_registered_model(self, name: str) -> RegisteredModel:
        validate_model_name(name)
        return self._read(lambda c: self._get_model(c, name))

    def search_registered_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        if name_like is not None and not isinstance(name_like, str):
            raise InvalidArgument(f"name_like must be a string pattern, got {name_like!r}")
        sql = "SELECT name, description, created_at, updated_at FROM registered_models"
        args: tuple[Any, ...] = ()
        if name_like is not None:
            sql += " WHERE nb_like(name, ?, 1)"
            args = (name_like,)
        sql += " ORDER BY name"
        return self._read(lambda c: self._load_models(c, c.execute(sql, args).fetchall()))

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        validate_model_name(name)
        description = check_text(description, "model description")

        def update(conn: sqlite3.Connection) -> RegisteredModel:
            self._model_exists(conn, name)
            conn.execute(
                "UPDATE registered_models SET description = ?, updated_at = ? WHERE name = ?",
                (description, hb.now_ms(), name),
            )
            return self._get_model(conn, name)

        return self._write(update)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        validate_model_name(name)
        validate_key(key, "tag")
        value = tag_value_to_str(key, value)

        def update(conn: sqlite3.Connection) -> None:
            self._model_exists(conn, name)
            conn.execute(
                "INSERT OR REPLACE INTO registered_model_tags (name, key, value) VALUES (?, ?, ?)",
                (name, key, value),
            )
            self._touch(conn, name, hb.now_ms())

        self._write(update)

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

        def create(conn: sqlite3.Connection) -> ModelVersion:
            self._status(conn, source_run_id)  # NotFound before anything is written
            now = hb.now_ms()
            conn.execute(
                "INSERT OR IGNORE INTO registered_models (name, description, created_at, "
                "updated_at) VALUES (?, '', ?, ?)",
                (name, now, now),
            )
            # Read and advance the counter inside this BEGIN IMMEDIATE transaction: no other
            # writer can run in between, so numbers are unique and gap-free across processes.
            number = self._model_exists(conn, name)
            conn.execute(
                "UPDATE registered_models SET next_version = ?, updated_at = ? WHERE name = ?",
                (number + 1, now, name),
            )
            conn.execute(
                "INSERT INTO model_versions (name, version, source_run_id, model_path, "
                "description, created_at, created_by, stage) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, number, source_run_id, model_path, description, now, user, INITIAL_STAGE),
            )
            conn.executemany(
                "INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?)",
                [(name, number, k, v) for k, v in clean_tags.items()],
            )
            version = self._get_version(conn, name, number)
            self._add_event(
                conn,
                RegistryEvent(
                    name, number, EVENT_CREATE_VERSION, None, version.source, "", user, now
                ),
            )
            return version

        return self._write(create)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        validate_model_name(name)
        number = validate_version(version)
        return self._read(lambda c: self._get_version(c, name, number))

    def search_model_versions(
        self, name: str | None = None, run_id: str | None = None
    ) -> list[ModelVersion]:
        where, args = ["1"], []
        if name is not None:
            where.append("v.name = ?")
            args.append(validate_model_name(name))
        if run_id is not None:
            where.append("v.source_run_id = ?")
            args.append(validate_run_id(run_id))
        return self._read(lambda c: self._load_versions(c, " AND ".join(where), args))

    def update_model_version(self, name: str, version: int | str, description: str) -> ModelVersion:
        validate_model_name(name)
        number = validate_version(version)
        description = check_text(description, "version description")

        def update(conn: sqlite3.Connection) -> ModelVersion:
            self._version_exists(conn, name, number)
            conn.execute(
                "UPDATE model_versions SET description = ? WHERE name = ? AND version = ?",
                (description, name, number),
            )
            self._touch(conn, name, hb.now_ms())
            return self._get_version(conn, name, number)

        return self._write(update)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        validate_model_name(name)
        number = validate_version(version)
        validate_key(key, "tag")
        value = tag_value_to_str(key, value)

        def update(conn: sqlite3.Connection) -> None:
            self._version_exists(conn, name, number)
            conn.execute(
                "INSERT OR REPLACE INTO model_version_tags (name, version, key, value) "
                "VALUES (?, ?, ?, ?)",
                (name, number, key, value),
            )
            self._touch(conn, name, hb.now_ms())

        self._write(update)

    def set_model_version_stage(
        self, name: str, version: int | str, stage: str, user: str = "", reason: str = ""
    ) -> ModelVersion:
        validate_model_name(name)
        number = validate_version(version)
        stage = validate_stage(stage)
        user = check_text(user, "user")
        reason = check_text(reason, "reason")

        def update(conn: sqlite3.Connection) -> ModelVersion:
            current = self._version_exists(conn, name, number)
            if current != stage:
                now = hb.now_ms()
                conn.execute(
                    "UPDATE model_versions SET stage = ? WHERE name = ? AND version = ?",
                    (stage, name, number),
                )
                self._touch(conn, name, now)
                self._add_event(
                    conn,
                    RegistryEvent(name, number, EVENT_STAGE, current, stage, reason, user, now),
                )
            return self._get_version(conn, name, number)

        return self._write(update)

    def delete_model_version(
        self, name: str, version: int | str, user: str = "", reason: str = ""
    ) -> None:
        validate_model_name(name)
        number = validate_version(version)
        user = check_text(user, "user")
        reason = check_text(reason, "reason")

        def delete(conn: sqlite3.Connection) -> None:
            current = self._get_version(conn, name, number)
            now = hb.now_ms()
            for alias in current.aliases:
                conn.execute(
                    "DELETE FROM model_aliases WHERE name = ? AND alias = ?", (name, alias)
                )
                self._add_event(
                    conn,
                    alias_event(name, alias, number, None, EVENT_DELETE_ALIAS, user, reason, now),
                )
            conn.execute(
                "DELETE FROM model_version_tags WHERE name = ? AND version = ?", (name, number)
            )
            conn.execute(
                "DELETE FROM model_versions WHERE name = ? AND version = ?", (name, number)
            )
            self._touch(conn, name, now)
            self._add_event(
                conn,
                RegistryEvent(
                    name, number, EVENT_DELETE_VERSION, current.source, None, reason, user, now
                ),
            )

        self._write(delete)

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

        def apply(conn: sqlite3.Connection) -> None:
            self._model_exists(conn, name)
            for target in wanted.values():
                if target is not None:
                    self._version_exists(conn, name, target)
            current = dict(
                conn.execute("SELECT alias, version FROM model_aliases WHERE name = ?", (name,))
            )
            plan = plan_alias_changes(name, current, wanted, want_before)
            if not plan:
                return
            now = hb.now_ms()
            for alias, old, new in plan:
                if new is None:
                    conn.execute(
                        "DELETE FROM model_aliases WHERE name = ? AND alias = ?", (name, alias)
                    )
                else:
                    conn.execute(
                        "INSERT INTO model_aliases (name, alias, version) VALUES (?, ?, ?) "
                        "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
                        (name, alias, new),
                    )
                self._add_event(conn, alias_event(name, alias, old, new, action, user, reason, now))
            self._touch(conn, name, now)

        self._write(apply)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        validate_model_name(name)
        latest = is_latest_alias(alias)
        if not latest:
            validate_alias(alias)

        def read(conn: sqlite3.Connection) -> ModelVersion:
            self._model_exists(conn, name)
            if latest:
                row = conn.execute(
                    "SELECT MAX(version) FROM model_versions WHERE name = ?", (name,)
                ).fetchone()
                if row[0] is None:
                    raise no_versions(name)
            else:
                row = conn.execute(
                    "SELECT version FROM model_aliases WHERE name = ? AND alias = ?",
                    (name, alias),
                ).fetchone()
                if row is None:
                    raise alias_not_found(name, alias)
            return self._get_version(conn, name, int(row[0]))

        return self._read(read)

    def record_registry_event(self, event: RegistryEvent) -> None:
        event = check_event(event)

        def record(conn: sqlite3.Connection) -> None:
            self._model_exists(conn, event.name)
            self._add_event(conn, event)

        self._write(record)

    def get_model_history(self, name: str) -> list[RegistryEvent]:
        validate_model_name(name)

        def read(conn: sqlite3.Connection) -> list[RegistryEvent]:
            self._model_exists(conn, name)
            return [
                RegistryEvent(
                    name=name,
                    version=version,
                    action=action,
                    from_value=from_value,
                    to_value=to_value,
                    reason=reason,
                    user=user,
                    timestamp=timestamp,
                    alias=alias,
                )
                for version, action, alias, from_value, to_value, reason, user, timestamp in (
                    conn.execute(
                        "SELECT version, action, alias, from_value, to_value, reason, user, "
                        "timestamp FROM registry_events WHERE name = ? ORDER BY id",
                        (name,),
                    )
                )
            ]

        return self._read(read)
