"""Several real processes use the model registry of one SQLite store at the same moment.

Like tests/integration/test_multiprocess.py: each test writes small scripts to ``tmp_path``
and starts them with ``subprocess.Popen``; children open the store before a barrier, wait
for a "go" file so that their work really overlaps, then report on stdout.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from children import communicate_all, integrity, release, start, write_script

from nbmlops.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow

MODEL = "churn"

_PRELUDE = """
import json

from nbmlops.errors import AlreadyExists
from nbmlops.store.sqlite import SqliteStore
"""


def _script(tmp_path: Path, name: str, body: str) -> Path:
    """A child script: the barrier, the registry imports, then ``body``."""
    return write_script(tmp_path, name, body, prelude=_PRELUDE)


def finish(processes: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    """Wait for every process (each must exit cleanly); their JSON reports."""
    return [json.loads(out.splitlines()[-1]) for out, _ in communicate_all(processes)]


def assert_overlapping(reports: list[dict[str, object]]) -> None:
    """The children's work windows (``begin``/``end`` of their reports) overlap."""
    begins = [float(r["begin"]) for r in reports]  # type: ignore[arg-type]
    ends = [float(r["end"]) for r in reports]  # type: ignore[arg-type]
    assert max(begins) < min(ends), list(zip(begins, ends, strict=True))


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
    script = _script(tmp_path, "registrar.py", _REGISTRAR)
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
    assert integrity(store_db, foreign_keys=True) == ["ok"]


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

    writers_script = _script(tmp_path, "alias_writer.py", _ALIAS_WRITER)
    readers_script = _script(tmp_path, "alias_reader.py", _ALIAS_READER)
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
    assert integrity(store_db, foreign_keys=True) == ["ok"]
