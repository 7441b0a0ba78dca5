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
file is never re-initialised or modified in that case.
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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

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
from nbmlops.errors import AlreadyExists, InvalidArgument, NotFound, StoreError
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
from nbmlops.validation import validate_artifact_path, validate_name, validate_run_id

SCHEMA_VERSION = 1
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

_RUN_COLUMNS = (
    "r.run_id, r.experiment_id, r.parent_run_id, r.name, r.status, r.start_time, r.end_time, "
    "r.user, r.lifecycle_stage, r.source_path, r.cell_id, r.execution_count, r.code_sha256, "
    "r.code, r.hb_pid, r.hb_host, r.hb_pid_start, r.hb_time"
)


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
        if version < SCHEMA_VERSION:  # pragma: no cover - first schema, nothing to migrate yet
            raise StoreError(f"{self.path}: no migration from schema {version}")

    def _create_schema(self) -> None:
        def create(conn: sqlite3.Connection) -> None:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' LIMIT 1"
            ).fetchone()
            if exists:  # another process created it first
                return
            for statement in _SCHEMA_V1.split(";"):
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
        heartbeat = None
        if row[14] is not None:
            heartbeat = Heartbeat(pid=row[14], host=row[15], pid_start=row[16] or "", time=row[17])
        return RunInfo(
            run_id=row[0],
            experiment_id=str(row[1]),
            parent_run_id=row[2],
            run_name=row[3],
            status=RunStatus(row[4]),
            start_time=row[5],
            end_time=row[6],
            user=row[7],
            lifecycle_stage=LifecycleStage(row[8]),
            artifact_uri=str(self.artifacts.run_dir(row[0])),
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
