"""Opening a schema-1 store file with this code migrates it to schema 2 (the model registry).

The schema-1 file is built here from a frozen copy of the schema-1 DDL (below, as the first
released nbmlops wrote it), not from the store code, so the test keeps describing real old
files even if the store's own DDL were edited by mistake (which a test below also catches).
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from nbmlops.errors import StoreError
from nbmlops.store import sqlite as sqlite_module
from nbmlops.store.sqlite import SCHEMA_VERSION, SqliteStore

T0 = 1_700_000_000_000
RUN_ID = "0123456789abcdef0123456789abcdef"
CHILD_ID = "fedcba9876543210fedcba9876543210"
STORE_ID = "5" * 32
REGISTRY_TABLES = {
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "model_aliases",
    "registry_events",
}

# Verbatim copy of nbmlops/store/sqlite.py's _SCHEMA_V1 at schema 1. Never edit.
V1_SCHEMA = """
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


def _raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, independent of the store."""
    return sqlite3.connect(str(path))


def make_v1_store(path: Path) -> Path:
    """A schema-1 store file as nbmlops schema 1 wrote it, with one experiment and two runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _raw(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(V1_SCHEMA)
        with conn:
            conn.executemany(
                "INSERT INTO nbmlops_meta (key, value) VALUES (?, ?)",
                [("schema_version", "1"), ("created_at", str(T0)), ("store_id", STORE_ID)],
            )
            conn.execute("INSERT INTO experiments (name, created_at) VALUES ('churn', ?)", (T0,))
            conn.execute(
                "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time, "
                "user, source_path, cell_id, execution_count, code_sha256, code) "
                "VALUES (?, 1, 'train', 'FINISHED', ?, ?, 'alice', 'nb.ipynb', 'c1', 3, 'ab', "
                "'fit()')",
                (RUN_ID, T0, T0 + 10),
            )
            conn.execute(
                "INSERT INTO runs (run_id, experiment_id, parent_run_id, name, status, "
                "start_time, user) VALUES (?, 1, ?, 'child', 'FAILED', ?, 'alice')",
                (CHILD_ID, RUN_ID, T0 + 1),
            )
            conn.executemany(
                "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(RUN_ID, "alpha", "0.5"), (RUN_ID, "model", "ridge")],
            )
            conn.execute(
                "INSERT INTO tags (run_id, key, value) VALUES (?, 'team', 'growth')", (RUN_ID,)
            )
            conn.executemany(
                "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)",
                [
                    (RUN_ID, "loss", 1.0, 0, T0),
                    (RUN_ID, "loss", 0.5, 1, T0 + 1),
                    (RUN_ID, "nan", None, 0, T0),
                ],
            )
            conn.executemany(
                "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) "
                "VALUES (?, ?, ?, ?, ?)",
                [(RUN_ID, "loss", 0.5, 1, T0 + 1), (RUN_ID, "nan", None, 0, T0)],
            )
            conn.execute(
                "INSERT INTO inputs (run_id, name, digest, context, shape, schema, source, seq) "
                "VALUES (?, 'train', 'd1', 'training', '[10, 2]', ?, '', 1)",
                (RUN_ID, '{"x": "float64"}'),
            )
            conn.execute(
                "INSERT INTO artifacts (run_id, path, size, sha256, media_type, created_at) "
                "VALUES (?, 'model/model.pkl', 3, 'abc', 'application/octet-stream', ?)",
                (RUN_ID, T0),
            )
    finally:
        conn.close()
    return path


def _meta(path: Path) -> dict[str, str]:
    conn = _raw(path)
    try:
        return dict(conn.execute("SELECT key, value FROM nbmlops_meta"))
    finally:
        conn.close()


def _tables(path: Path) -> set[str]:
    conn = _raw(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def _schema_sql(path: Path) -> list[tuple[str, str, str]]:
    """(type, name, sql) of every table and index, for comparing two files' schemas."""
    conn = _raw(path)
    try:
        return sorted(
            conn.execute(
                "SELECT type, name, COALESCE(sql, '') FROM sqlite_master "
                "WHERE name NOT LIKE 'sqlite_%'"
            )
        )
    finally:
        conn.close()


@pytest.fixture
def v1_path(sqlite_path: Path) -> Path:
    """A fresh schema-1 store file."""
    return make_v1_store(sqlite_path)


def _normalised(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


# --------------------------------------------------------------------------- tests


def test_schema_1_ddl_in_the_store_is_unchanged() -> None:
    """The store still carries the schema-1 DDL verbatim; schema 2 only adds to it."""
    assert _normalised(sqlite_module._SCHEMA_V1) == _normalised(V1_SCHEMA)
    assert SCHEMA_VERSION == 2


def test_v1_store_is_migrated_and_old_data_is_intact(v1_path: Path) -> None:
    """Opening a schema-1 file migrates it to 2; runs, params, metrics, inputs all survive."""
    assert _meta(v1_path)["schema_version"] == "1"
    store = SqliteStore(v1_path)
    try:
        assert store.schema_version() == 2
        meta = _meta(v1_path)
        assert meta["schema_version"] == "2"
        assert (meta["store_id"], meta["created_at"]) == (STORE_ID, str(T0))
        assert "migrated_to_2_at" in meta
        assert _tables(v1_path) >= REGISTRY_TABLES

        run = store.get_run(RUN_ID)
        assert (run.info.run_name, run.info.status.value, run.info.user) == (
            "train",
            "FINISHED",
            "alice",
        )
        assert (run.info.source.path, run.info.source.execution_count, run.info.source.code) == (
            "nb.ipynb",
            3,
            "fit()",
        )
        assert run.data.params == {"alpha": "0.5", "model": "ridge"}
        assert run.data.tags == {"team": "growth"}
        assert run.data.metrics["loss"] == 0.5 and math.isnan(run.data.metrics["nan"])
        assert [m.value for m in store.get_metric_history(RUN_ID, "loss")] == [1.0, 0.5]
        assert run.inputs[0].schema == {"x": "float64"} and run.inputs[0].shape == (10, 2)
        assert [a.path for a in store.list_artifacts(RUN_ID)] == ["model/model.pkl"]
        assert store.get_run(CHILD_ID).info.parent_run_id == RUN_ID
        runs, _ = store.search_runs(None, "params.alpha = '0.5'")
        assert [r.info.run_id for r in runs] == [RUN_ID]
        assert [e.name for e in store.search_experiments()] == ["churn"]

        facts = store.describe()
        assert facts["schema_version"] == 2
        assert facts["integrity_check"] == "ok"
        counts = facts["counts"]
        assert isinstance(counts, dict)
        assert (counts["runs"], counts["params"], counts["metrics"]) == (2, 2, 3)
        assert (counts["registered_models"], counts["model_versions"]) == (0, 0)
    finally:
        store.close()
    conn = _raw(v1_path)
    try:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        conn.close()


def test_registry_is_usable_after_migration(v1_path: Path) -> None:
    """An old run can be registered, aliased and promoted in the migrated file."""
    store = SqliteStore(v1_path)
    try:
        version = store.create_model_version("churn", RUN_ID, "model", user="alice")
        assert version.version == 1 and version.source == f"runs:/{RUN_ID}/model"
        store.set_aliases("churn", {"champion": 1})
        store.set_model_version_stage("churn", 1, "Production")
        assert store.get_model_version_by_alias("churn", "champion").stage == "Production"
        assert [e.action for e in store.get_model_history("churn")] == [
            "create_version",
            "set_alias",
            "stage",
        ]
        counts = store.describe()["counts"]
        assert isinstance(counts, dict)
        assert (counts["registered_models"], counts["model_versions"]) == (1, 1)
    finally:
        store.close()


def test_model_versions_reference_runs(v1_path: Path) -> None:
    """The migrated schema has the foreign key from model_versions to runs."""
    SqliteStore(v1_path).close()
    conn = _raw(v1_path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(
            "INSERT INTO registered_models (name, created_at, updated_at) VALUES ('m', 0, 0)"
        )
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            conn.execute(
                "INSERT INTO model_versions (name, version, source_run_id, model_path, "
                "created_at) VALUES ('m', 1, ?, 'model', 0)",
                ("f" * 32,),
            )
        fks = conn.execute("PRAGMA foreign_key_list(model_versions)").fetchall()
        assert ("runs", "source_run_id", "run_id") in {(fk[2], fk[3], fk[4]) for fk in fks}
    finally:
        conn.close()


def test_migrated_schema_equals_fresh_schema(v1_path: Path, tmp_path: Path) -> None:
    """A migrated file and a file created at schema 2 have the same tables and indexes."""
    SqliteStore(v1_path).close()
    fresh = tmp_path / "fresh" / "nbmlops.db"
    SqliteStore(fresh).close()
    assert _schema_sql(v1_path) == _schema_sql(fresh)
    assert "migrated_to_2_at" not in _meta(fresh)
    assert _meta(fresh)["schema_version"] == "2"


def test_second_open_does_not_migrate_again(v1_path: Path) -> None:
    """Once at schema 2, reopening changes nothing in the metadata."""
    SqliteStore(v1_path).close()
    meta = _meta(v1_path)
    store = SqliteStore(v1_path)
    store.close()
    assert _meta(v1_path) == meta


def test_concurrent_opens_migrate_once(v1_path: Path) -> None:
    """Several stores opening the same old file at once: one migration, every open works."""
    barrier = threading.Barrier(6)
    stores: list[SqliteStore] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            barrier.wait()
            stores.append(SqliteStore(v1_path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert all(store.schema_version() == 2 for store in stores)
        stores[0].create_model_version("m", RUN_ID, "model")
        assert stores[-1].get_model_version("m", 1).source_run_id == RUN_ID
    finally:
        for store in stores:
            store.close()


def test_failed_migration_rolls_back_completely(v1_path: Path) -> None:
    """A migration that fails half way leaves the file exactly at schema 1, and says so."""
    conn = _raw(v1_path)
    with conn:  # a stray table makes the last CREATE TABLE of the migration fail
        conn.execute("CREATE TABLE registry_events (x)")
    conn.close()
    with pytest.raises(StoreError) as excinfo:
        SqliteStore(v1_path)
    message = str(excinfo.value)
    assert str(v1_path) in message and "from schema 1 to 2" in message
    assert "left at schema 1" in message
    assert _meta(v1_path)["schema_version"] == "1"
    assert _tables(v1_path) & REGISTRY_TABLES == {"registry_events"}  # only the stray one

    conn = _raw(v1_path)
    with conn:
        conn.execute("DROP TABLE registry_events")
    conn.close()
    store = SqliteStore(v1_path)  # the cause removed, the next open migrates
    try:
        assert store.schema_version() == 2
        assert store.get_run(RUN_ID).data.params["alpha"] == "0.5"
    finally:
        store.close()


@pytest.mark.parametrize("claimed", ["3", "99"])
def test_newer_schema_is_refused_untouched(v1_path: Path, claimed: str) -> None:
    """A file claiming a schema newer than 2 is refused, and not migrated or modified."""
    conn = _raw(v1_path)
    with conn:
        conn.execute("UPDATE nbmlops_meta SET value = ? WHERE key = 'schema_version'", (claimed,))
    conn.close()
    before = v1_path.read_bytes()
    with pytest.raises(StoreError) as excinfo:
        SqliteStore(v1_path)
    message = str(excinfo.value)
    assert str(v1_path) in message
    assert f"schema {claimed}" in message and "newer" in message
    assert v1_path.read_bytes() == before
    assert _tables(v1_path) & REGISTRY_TABLES == set()


def test_migrated_store_refused_after_claiming_schema_3(sqlite_path: Path) -> None:
    """A schema-2 file bumped to 3 (a future nbmlops) is refused untouched too."""
    SqliteStore(make_v1_store(sqlite_path)).close()
    conn = _raw(sqlite_path)
    with conn:
        conn.execute("UPDATE nbmlops_meta SET value = '3' WHERE key = 'schema_version'")
    conn.close()
    before = sqlite_path.read_bytes()
    with pytest.raises(StoreError, match="schema 3"):
        SqliteStore(sqlite_path)
    assert sqlite_path.read_bytes() == before


def test_unknown_older_schema_is_refused_untouched(v1_path: Path) -> None:
    """A schema this code has no migration for (0) is refused, not guessed at."""
    conn = _raw(v1_path)
    with conn:
        conn.execute("UPDATE nbmlops_meta SET value = '0' WHERE key = 'schema_version'")
    conn.close()
    before = v1_path.read_bytes()
    with pytest.raises(StoreError, match=r"schema 0.*cannot migrate"):
        SqliteStore(v1_path)
    assert v1_path.read_bytes() == before
