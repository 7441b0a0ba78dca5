"""SQLite-only behaviour of the default store: file format, refusal of foreign files, artifacts."""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbmlops.entities import DatasetInput, Heartbeat, Metric, Param, RunStatus, RunTag
from nbmlops.errors import AlreadyExists, InvalidArgument, StoreError
from nbmlops.store import heartbeat as hb
from nbmlops.store.artifacts import TMP_PREFIX
from nbmlops.store.sqlite import SCHEMA_VERSION, SqliteStore

T0 = 1_700_000_000_000


def _raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, independent of the store."""
    return sqlite3.connect(str(path))


def _listing(folder: Path) -> list[str]:
    """Names in a folder, sorted."""
    return sorted(p.name for p in folder.iterdir())


def _open_fds_to(path: Path) -> list[str]:
    """File descriptors of this process open on ``path`` (Linux /proc)."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if fd.readlink() == path:
                found.append(fd.name)
        except OSError:
            continue
    return found


@pytest.fixture
def store(sqlite_path: Path) -> Iterator[SqliteStore]:
    """A fresh SQLite store, closed after the test."""
    instance = SqliteStore(sqlite_path)
    yield instance
    instance.close()


def _run(store: SqliteStore, name: str = "r") -> str:
    """A RUNNING run in experiment 'e' (created on first use)."""
    experiment = store.get_experiment_by_name("e") or store.create_experiment("e")
    return store.create_run(experiment.experiment_id, name, T0, "alice").run_id


# --------------------------------------------------------------------------- file format


def test_wal_mode_is_on(store: SqliteStore, sqlite_path: Path) -> None:
    """The file is in WAL journal mode, as another connection sees it."""
    with _raw(sqlite_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    assert store.describe()["journal_mode"] == "wal"


def test_schema_version_is_stored(store: SqliteStore, sqlite_path: Path) -> None:
    """nbmlops_meta records the schema version the store reports."""
    with _raw(sqlite_path) as conn:
        row = conn.execute("SELECT value FROM nbmlops_meta WHERE key = 'schema_version'").fetchone()
    assert row == (str(SCHEMA_VERSION),)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.describe()["schema_version"] == SCHEMA_VERSION


def test_newer_schema_is_refused_and_file_untouched(sqlite_path: Path) -> None:
    """A schema newer than this code understands is a StoreError naming the path; no write."""
    SqliteStore(sqlite_path).close()
    with _raw(sqlite_path) as conn:
        conn.execute(
            "UPDATE nbmlops_meta SET value = ? WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION + 1),),
        )
    conn.close()
    before = sqlite_path.read_bytes()
    with pytest.raises(StoreError) as excinfo:
        SqliteStore(sqlite_path)
    message = str(excinfo.value)
    assert str(sqlite_path) in message
    assert f"schema {SCHEMA_VERSION + 1}" in message and "newer" in message
    assert sqlite_path.read_bytes() == before


def test_random_bytes_file_is_refused_and_untouched(sqlite_path: Path) -> None:
    """A file that is not SQLite is a StoreError naming the path; file and folder unchanged."""
    sqlite_path.parent.mkdir(parents=True)
    data = random.Random(1234).randbytes(8192)
    sqlite_path.write_bytes(data)
    before = _listing(sqlite_path.parent)
    with pytest.raises(StoreError, match=re.escape(str(sqlite_path))):
        SqliteStore(sqlite_path)
    assert sqlite_path.read_bytes() == data
    assert _listing(sqlite_path.parent) == before


def test_foreign_sqlite_file_is_refused_and_untouched(sqlite_path: Path) -> None:
    """An SQLite file with other tables and no nbmlops_meta is refused and left as it was."""
    sqlite_path.parent.mkdir(parents=True)
    with _raw(sqlite_path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.close()
    before = sqlite_path.read_bytes()
    listing = _listing(sqlite_path.parent)
    with pytest.raises(StoreError) as excinfo:
        SqliteStore(sqlite_path)
    assert str(sqlite_path) in str(excinfo.value)
    assert "customers" in str(excinfo.value)
    assert sqlite_path.read_bytes() == before
    assert _listing(sqlite_path.parent) == listing


def test_refused_file_is_not_kept_open(sqlite_path: Path) -> None:
    """A store that refuses to open releases its connection to the file at once."""
    sqlite_path.parent.mkdir(parents=True)
    with _raw(sqlite_path) as conn:
        conn.execute("CREATE TABLE other (x)")
    conn.close()
    with pytest.raises(StoreError) as excinfo:
        SqliteStore(sqlite_path)
    assert excinfo.value is not None  # the traceback (and the half-built store) is still alive
    assert _open_fds_to(sqlite_path) == []


def test_empty_file_is_initialised(sqlite_path: Path) -> None:
    """A 0-byte file (e.g. created by touch) becomes a fresh store."""
    sqlite_path.parent.mkdir(parents=True)
    sqlite_path.touch()
    store = SqliteStore(sqlite_path)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.create_experiment("e").name == "e"
    assert sqlite_path.stat().st_size > 0
    store.close()


def test_store_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    """A folder where the database file should be is a StoreError naming it."""
    folder = tmp_path / "nbmlops.db"
    folder.mkdir()
    with pytest.raises(StoreError, match="folder"):
        SqliteStore(folder)


def test_reopened_store_keeps_data(sqlite_path: Path) -> None:
    """Closing and reopening keeps everything, including NaN metrics and inputs."""
    first = SqliteStore(sqlite_path)
    run_id = _run(first)
    first.log_batch(run_id, metrics=[Metric("m", float("nan"), T0, 3)], params=[Param("p", "1")])
    first.log_inputs(run_id, [DatasetInput("d", "x", "training", (2,), {"a": "int"})])
    first.close()
    first.close()  # safe twice
    second = SqliteStore(sqlite_path)
    run = second.get_run(run_id)
    assert dict(run.data.params) == {"p": "1"}
    assert run.data.metrics["m"] != run.data.metrics["m"]  # NaN
    assert run.inputs[0].schema == {"a": "int"}
    second.close()


# --------------------------------------------------------------------------- sharing


def test_two_instances_see_each_others_writes(sqlite_path: Path) -> None:
    """Two SqliteStore objects on one file read each other's committed writes."""
    a = SqliteStore(sqlite_path)
    b = SqliteStore(sqlite_path)
    experiment = a.create_experiment("shared")
    assert b.get_experiment_by_name("shared") == experiment
    with pytest.raises(AlreadyExists):
        b.create_experiment("shared")
    run_id = b.create_run(experiment.experiment_id, "r", T0, "bob").run_id
    a.log_batch(run_id, metrics=[Metric("m", 1.5, T0)], params=[Param("p", "x")])
    assert b.get_run(run_id).data.metrics == {"m": 1.5}
    with pytest.raises(AlreadyExists):
        b.log_batch(run_id, params=[Param("p", "y")])
    b.end_run(run_id, RunStatus.FINISHED, T0 + 1)
    assert a.get_run(run_id).info.status is RunStatus.FINISHED
    b.log_artifact(run_id, "out.txt", b"hello")
    assert a.read_artifact(run_id, "out.txt") == b"hello"
    assert [r.info.run_id for r in a.search_runs()[0]] == [run_id]
    a.close()
    b.close()


def test_dead_run_is_persisted_as_killed(store: SqliteStore, sqlite_path: Path) -> None:
    """A dead run read through the store is written back as KILLED, visible to raw SQL."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    experiment = store.create_experiment("e")
    beat = Heartbeat(pid=proc.pid, host=hb.host_name(), pid_start="", time=T0 + 9)
    run_id = store.create_run(experiment.experiment_id, "r", T0, "u", heartbeat=beat).run_id
    with _raw(sqlite_path) as conn:
        assert conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone() == (
            "RUNNING",
        )
    assert store.get_run(run_id).info.status is RunStatus.KILLED
    with _raw(sqlite_path) as conn:
        row = conn.execute(
            "SELECT status, end_time, hb_pid FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
    assert row == ("KILLED", T0 + 9, None)


def test_integrity_check_ok_after_operations(store: SqliteStore, sqlite_path: Path) -> None:
    """After a mix of writes, failures and deletes the file passes integrity checks."""
    for i in range(5):
        run_id = _run(store, f"r{i}")
        store.log_batch(
            run_id,
            metrics=[Metric("m", float(s), T0 + s, s) for s in range(20)],
            params=[Param("p", str(i))],
            tags=[RunTag("t", "v")],
        )
        with pytest.raises(AlreadyExists):
            store.log_batch(run_id, params=[Param("p", "other")])
        store.log_artifact(run_id, f"a/{i}.txt", b"x" * i)
        store.end_run(run_id, RunStatus.FINISHED, T0 + 100)
        if i % 2:
            store.set_run_lifecycle(run_id, deleted=True)
    with _raw(sqlite_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    facts = store.describe()
    assert facts["integrity_check"] == "ok"
    assert facts["counts"]["runs"] == 5  # type: ignore[index]
    assert facts["counts"]["metrics"] == 100  # type: ignore[index]


# --------------------------------------------------------------------------- artifacts on disk


def test_artifact_is_a_file_under_the_run_directory(store: SqliteStore, sqlite_path: Path) -> None:
    """Artifacts live at <store dir>/artifacts/<run_id>/<path>."""
    run_id = _run(store)
    store.log_artifact(run_id, "plots/roc.png", b"png")
    expected = sqlite_path.parent / "artifacts" / run_id / "plots" / "roc.png"
    assert expected.read_bytes() == b"png"
    assert store.artifact_file(run_id, "plots/roc.png") == expected


def test_symlink_out_of_the_run_directory_refused_for_writing(
    store: SqliteStore, tmp_path: Path
) -> None:
    """Writing through a symlinked folder that leads outside is InvalidArgument; nothing lands."""
    run_id = _run(store)
    outside = tmp_path / "outside"
    outside.mkdir()
    run_dir = store.artifacts.run_dir(run_id)
    run_dir.mkdir(parents=True)
    (run_dir / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidArgument, match="outside"):
        store.log_artifact(run_id, "link/x.txt", b"escaped")
    with pytest.raises(InvalidArgument, match="outside"):
        store.log_artifact(run_id, "link/deeper/x.txt", b"escaped")
    assert list(outside.iterdir()) == []
    assert store.list_artifacts(run_id) == []


def test_symlink_out_of_the_run_directory_refused_for_reading(
    store: SqliteStore, tmp_path: Path
) -> None:
    """Reading an artifact whose folder or file was swapped for an outside symlink is refused."""
    run_id = _run(store)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    store.log_artifact(run_id, "d/secret.txt", b"mine")
    store.log_artifact(run_id, "f.txt", b"mine too")
    run_dir = store.artifacts.run_dir(run_id)
    shutil.rmtree(run_dir / "d")
    (run_dir / "d").symlink_to(outside, target_is_directory=True)
    (run_dir / "f.txt").unlink()
    (run_dir / "f.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(InvalidArgument, match="outside"):
        store.read_artifact(run_id, "d/secret.txt")
    with pytest.raises(InvalidArgument, match="outside"):
        store.read_artifact(run_id, "f.txt")
    with pytest.raises(InvalidArgument, match="outside"):
        store.log_artifact(run_id, "f.txt", b"overwrite")
    assert (outside / "secret.txt").read_bytes() == b"secret"


def test_symlinked_run_directory_is_refused(store: SqliteStore, tmp_path: Path) -> None:
    """A run folder that is itself a symlink out of the artifact root is refused."""
    run_id = _run(store)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_bytes(b"theirs")
    store.artifacts.root.mkdir(parents=True, exist_ok=True)
    store.artifacts.run_dir(run_id).symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidArgument, match="outside"):
        store.log_artifact(run_id, "y.txt", b"escaped")
    assert _listing(outside) == ["x.txt"]
    with pytest.raises(InvalidArgument, match="outside"):
        store.artifacts.read(run_id, "x.txt")


def test_symlinked_artifact_root_is_allowed(sqlite_path: Path, tmp_path: Path) -> None:
    """The artifact root itself may be a symlink (e.g. to a bigger disk)."""
    elsewhere = tmp_path / "big-disk"
    elsewhere.mkdir()
    sqlite_path.parent.mkdir(parents=True)
    (sqlite_path.parent / "artifacts").symlink_to(elsewhere, target_is_directory=True)
    store = SqliteStore(sqlite_path)
    run_id = _run(store)
    store.log_artifact(run_id, "a/b.txt", b"data")
    assert (elsewhere / run_id / "a" / "b.txt").read_bytes() == b"data"
    assert store.read_artifact(run_id, "a/b.txt") == b"data"
    store.close()


def test_symlink_inside_the_run_directory_is_allowed(store: SqliteStore) -> None:
    """A symlink that stays inside the run's directory is followed."""
    run_id = _run(store)
    store.log_artifact(run_id, "real.txt", b"data")
    run_dir = store.artifacts.run_dir(run_id)
    (run_dir / "alias").mkdir()
    (run_dir / "alias" / "x.txt").symlink_to(run_dir / "real.txt")
    store.log_artifact(run_id, "alias/x.txt", b"new")
    assert store.read_artifact(run_id, "alias/x.txt") == b"new"


def test_stale_temp_file_is_not_listed(store: SqliteStore) -> None:
    """A leftover temp file from a crashed write does not appear in list_artifacts."""
    run_id = _run(store)
    store.log_artifact(run_id, "a/b.txt", b"x")
    folder = store.artifacts.run_dir(run_id) / "a"
    (folder / f"{TMP_PREFIX}crashed").write_bytes(b"half")
    (store.artifacts.run_dir(run_id) / f"{TMP_PREFIX}top").write_bytes(b"half")
    assert [a.path for a in store.list_artifacts(run_id)] == ["a/b.txt"]
    assert [a.path for a in store.list_artifacts(run_id, "a/")] == ["a/b.txt"]


def test_failed_write_leaves_no_temp_file(store: SqliteStore, tmp_path: Path) -> None:
    """A write whose source cannot be read removes its temp file and records nothing."""
    run_id = _run(store)
    store.log_artifact(run_id, "keep.txt", b"k")
    with pytest.raises(InvalidArgument):
        store.log_artifact(run_id, "new.txt", tmp_path / "does-not-exist")
    run_dir = store.artifacts.run_dir(run_id)
    assert _listing(run_dir) == ["keep.txt"]
    assert [a.path for a in store.list_artifacts(run_id)] == ["keep.txt"]


def test_clash_with_a_folder_made_outside_the_store(store: SqliteStore) -> None:
    """A path that is a folder on disk cannot be written as a file."""
    run_id = _run(store)
    (store.artifacts.run_dir(run_id) / "dir").mkdir(parents=True)
    with pytest.raises(InvalidArgument, match="folder"):
        store.log_artifact(run_id, "dir", b"x")
    assert store.list_artifacts(run_id) == []
