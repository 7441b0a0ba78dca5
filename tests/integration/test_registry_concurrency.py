"""Several real processes use the model registry of one SQLite store at the same moment.

Like tests/integration/test_multiprocess.py: each test writes small scripts to ``tmp_path``
and starts them with ``subprocess.Popen``; children open the store before a barrier, wait
for a "go" file so that their work really overlaps, then report on stdout.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbmlops.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow

TIMEOUT_S = 120
MODEL = "churn"

_PRELUDE = """
import json, os, sys, time
from pathlib import Path

from nbmlops.errors import AlreadyExists
from nbmlops.store.sqlite import SqliteStore

def wait_for_go() -> None:
    go = Path(sys.argv[1])
    go.with_name(f"ready-{os.getpid()}").touch()
    while not go.exists():
        time.sleep(0.001)
"""

_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """Kill any child a failing test left waiting at the barrier or mid-work."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=TIMEOUT_S)


def write_script(tmp_path: Path, name: str, body: str) -> Path:
    """A child script: the prelude (imports, ``wait_for_go``) plus ``body``."""
    script = tmp_path / name
    script.write_text(_PRELUDE + textwrap.dedent(body))
    return script


def start(script: Path, *args: object) -> subprocess.Popen[str]:
    """Start ``script`` in a new interpreter, pipes for stdout and stderr."""
    process = subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    _started.append(process)
    return process


def release(go: Path, processes: list[subprocess.Popen[str]]) -> None:
    """Touch ``go`` once every process waits at the barrier."""
    deadline = time.monotonic() + TIMEOUT_S
    ready = {f"ready-{p.pid}" for p in processes}
    while not ready <= {p.name for p in go.parent.iterdir()}:
        dead = [p for p in processes if p.poll() is not None]
        assert not dead, f"a child exited before the barrier: {dead[0].communicate()}"
        assert time.monotonic() < deadline, "children never reached the barrier"
        time.sleep(0.005)
    go.touch()


def finish(processes: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    """Wait for every process; each must exit 0 with an empty stderr. Their JSON reports."""
    outputs = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        outputs.append((out, err))
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, f"exit {process.returncode}\nstdout:\n{out}\nstderr:\n{err}"
        assert err.strip() == "", err
        assert "database is locked" not in out
    return [json.loads(out.splitlines()[-1]) for out, _ in outputs]


def assert_overlapping(reports: list[dict[str, object]]) -> None:
    """The children's work windows (``begin``/``end`` of their reports) overlap."""
    begins = [float(r["begin"]) for r in reports]  # type: ignore[arg-type]
    ends = [float(r["end"]) for r in reports]  # type: ignore[arg-type]
    assert max(begins) < min(ends), list(zip(begins, ends, strict=True))


def integrity(db: Path) -> list[str]:
    """``PRAGMA integrity_check`` and foreign key problems, through a plain connection."""
    conn = sqlite3.connect(db)
    try:
        problems = [str(row) for row in conn.execute("PRAGMA foreign_key_check")]
        return [row[0] for row in conn.execute("PRAGMA integrity_check")] + problems
    finally:
        conn.close()


@pytest.fixture
def store_db(_isolated_tracking: Path) -> Iterator[Path]:
    """The SQLite file every child uses, holding one finished run to register from."""
    db = _isolated_tracking / "nbmlops.db"
    store = SqliteStore(db)
    experiment = store.create_experiment("registry-race")
    store.create_run(experiment.experiment_id, "train", 0, "alice", run_id="a" * 32)
    store.close()
    yield db


# --------------------------------------------------------------------------- versions

_REGISTRAR = """
import random

db, run_id, worker, n = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
store = SqliteStore(db)  # opened before the barrier: the race is about registering
wait_for_go()
begin = time.time()
got = []
for i in range(n):
    version = store.create_model_version("churn", run_id, "model", user=f"w{worker}")
    got.append(version.version)
    # SQLite's lock is not fair: without a pause, the process holding it would register
    # all its versions before the others wake up, and the numbers would not interleave.
    time.sleep(random.random() * 0.006)
print(json.dumps({"versions": got, "begin": begin, "end": time.time()}), flush=True)
"""


def test_four_processes_register_25_versions_each(tmp_path: Path, store_db: Path) -> None:
    """Versions come out exactly 1..100: no duplicates, no gaps, one event each, in order."""
    workers, each = 4, 25
    script = write_script(tmp_path, "registrar.py", _REGISTRAR)
    go = tmp_path / "go"
    processes = [start(script, go, store_db, "a" * 32, w, each) for w in range(workers)]
    release(go, processes)
    reports = finish(processes)
    assert_overlapping(reports)

    numbers = [list(r["versions"]) for r in reports]  # type: ignore[call-overload]
    for got in numbers:
        assert len(got) == each
        assert got == sorted(got)  # one process sees its own numbers grow
    everything = sorted(itertools.chain.from_iterable(numbers))
    assert everything == list(range(1, workers * each + 1))
    interleaved = [got != list(range(got[0], got[0] + each)) for got in numbers]
    assert sum(interleaved) >= 2, numbers  # the processes really took turns

    store = SqliteStore(store_db)
    try:
        versions = store.search_model_versions(MODEL)
        assert [v.version for v in versions] == list(range(1, workers * each + 1))
        owner = {n: f"w{w}" for w, got in enumerate(numbers) for n in got}
        assert all(v.created_by == owner[v.version] for v in versions)
        model = store.get_registered_model(MODEL)
        assert model.latest_version == workers * each
        history = store.get_model_history(MODEL)
        assert [e.action for e in history] == ["create_version"] * (workers * each)
        assert [e.version for e in history] == list(range(1, workers * each + 1))
        assert store.create_model_version(MODEL, "a" * 32, "model").version == 101
    finally:
        store.close()
    assert integrity(store_db) == ["ok"]


# --------------------------------------------------------------------------- aliases

_ALIAS_WRITER = """
import random

db, worker, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = SqliteStore(db)
mine = [worker + 1, worker + 5]  # disjoint per worker, so every successful write is a change
wait_for_go()
begin = time.time()
last, changes, conflicts = None, 0, 0
for i in range(n):
    target = mine[0] if last != mine[0] else mine[1]
    if i % 2:  # compare-and-set, as a promotion does
        current = store.get_model_version_by_alias("churn", "champion").version
        try:
            store.set_aliases(
                "churn", {"champion": target}, expected={"champion": current},
                user=f"w{worker}", reason=f"cas {i}",
            )
        except AlreadyExists:
            conflicts += 1
            time.sleep(random.random() * 0.004)
            continue
    else:
        store.set_aliases("churn", {"champion": target}, user=f"w{worker}", reason=f"set {i}")
    last, changes = target, changes + 1
    time.sleep(random.random() * 0.004)  # let the others (and the readers) take turns
report = {"changes": changes, "conflicts": conflicts, "begin": begin, "end": time.time()}
print(json.dumps(report), flush=True)
"""

_ALIAS_READER = """
db, stop = sys.argv[2], Path(sys.argv[3])
store = SqliteStore(db)
wait_for_go()
begin = time.time()
stamps, seen = [], set()
while not stop.exists() or len(stamps) < 3:
    stamps.append(time.time())
    version = store.get_model_version_by_alias("churn", "champion")
    assert 1 <= version.version <= 9 and "champion" in version.aliases, version
    seen.add(version.version)
    model = store.get_registered_model("churn")
    assert set(model.aliases) == {"champion"} and 1 <= model.aliases["champion"] <= 9, model
    assert store.get_model_version_by_alias("churn", "latest").version == 9
    holders = [v.version for v in store.search_model_versions("churn") if "champion" in v.aliases]
    assert len(holders) == 1, holders  # one version per alias, in every snapshot
print(json.dumps({"stamps": stamps, "seen": sorted(seen), "begin": begin, "end": time.time()}))
"""


def test_four_processes_race_on_one_alias_while_readers_read(
    tmp_path: Path, store_db: Path
) -> None:
    """The alias always points at one existing version; every change is one chained event."""
    store = SqliteStore(store_db)
    for _ in range(9):
        store.create_model_version(MODEL, "a" * 32, "model")
    store.set_aliases(MODEL, {"champion": 9}, user="setup")  # outside every worker's set
    store.close()

    writers_script = write_script(tmp_path, "alias_writer.py", _ALIAS_WRITER)
    readers_script = write_script(tmp_path, "alias_reader.py", _ALIAS_READER)
    go, stop = tmp_path / "go", tmp_path / "stop"
    writers = [start(writers_script, go, store_db, w, 60) for w in range(4)]
    readers = [start(readers_script, go, store_db, stop) for _ in range(2)]
    release(go, writers + readers)
    written = finish(writers)
    stop.touch()
    read = finish(readers)
    assert_overlapping(written)

    writing_from = min(float(r["begin"]) for r in written)  # type: ignore[arg-type]
    writing_until = max(float(r["end"]) for r in written)  # type: ignore[arg-type]
    for report in read:
        during = [t for t in report["stamps"] if writing_from <= t <= writing_until]  # type: ignore[attr-defined]
        assert len(during) >= 5, (len(during), len(report["stamps"]))  # type: ignore[arg-type]

    changes = sum(int(r["changes"]) for r in written)  # type: ignore[call-overload]
    assert changes >= 4 * 30  # every unconditional set is a change
    store = SqliteStore(store_db)
    try:
        history = [e for e in store.get_model_history(MODEL) if e.alias == "champion"]
        assert len(history) == changes + 1  # + the setup event
        assert all(e.action == "set_alias" for e in history)
        for before, after in itertools.pairwise(history):
            assert after.from_value == before.to_value  # no lost or phantom update
            assert after.from_value != after.to_value
        final = store.get_model_version_by_alias(MODEL, "champion")
        assert history[-1].to_value == str(final.version)
        assert store.get_registered_model(MODEL).aliases == {"champion": final.version}
        holders = [v.version for v in store.search_model_versions(MODEL) if v.aliases]
        assert holders == [final.version]
        by_user: dict[str, int] = {}
        for event in history[1:]:
            by_user[event.user] = by_user.get(event.user, 0) + 1
        assert by_user == {
            f"w{w}": int(r["changes"])  # type: ignore[call-overload]
            for w, r in enumerate(written)
            if int(r["changes"])  # type: ignore[call-overload]
        }
    finally:
        store.close()
    assert integrity(store_db) == ["ok"]
