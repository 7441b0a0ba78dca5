"""Several real processes share one SQLite store: nothing lost, duplicated, locked or broken.

Each test writes small scripts to ``tmp_path`` and starts them with ``subprocess.Popen``;
every child inherits ``NBMLOPS_TRACKING_URI`` (set by the autouse fixture of
``tests/conftest.py``), so they all use the same store file. Children wait for a "go" file
so that their work really overlaps.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from children import communicate_all, integrity, release, start, write_script

import nbmlops
from nbmlops.entities import RunStatus

pytestmark = pytest.mark.slow


def finish(processes: list[subprocess.Popen[str]]) -> list[tuple[str, str]]:
    """Wait for every process; each must exit cleanly (see children.communicate_all)."""
    return communicate_all(processes)


def assert_overlapping(outputs: list[tuple[str, str]]) -> None:
    """The children's work windows (``begin end`` on their last stdout line) overlap."""
    windows = [tuple(map(float, out.splitlines()[-1].split()[-2:])) for out, _ in outputs]
    assert max(begin for begin, _ in windows) < min(end for _, end in windows), windows


@pytest.fixture
def store_db(_isolated_tracking: Path) -> Path:
    """The SQLite file every child writes to."""
    return _isolated_tracking / "nbmlops.db"


# --------------------------------------------------------------------------- (a) metrics

_METRIC_WRITER = """
import nbmlops

wait_for_go()
begin = time.time()
worker, n = int(sys.argv[2]), int(sys.argv[3])
nbmlops.set_experiment("metrics-race")
with nbmlops.start_run(run_name=f"writer-{worker}") as run:
    print(run.run_id, flush=True)
    nbmlops.log_params({"worker": worker, "points": n})
    for step in range(n):
        nbmlops.log_metric("loss", worker + 1.0 / (step + 1), step=step)
        if step % 1000 == 0:
            nbmlops.set_tag("progress", step)
            nbmlops.log_param(f"checkpoint_{step}", step)
        if step % 250 == 249:
            nbmlops.flush()  # many small transactions: maximal lock contention
print(begin, time.time(), flush=True)
"""


def test_four_processes_log_5000_metrics_each(tmp_path: Path, store_db: Path) -> None:
    workers, points = 4, 5000
    script = write_script(tmp_path, "writer.py", _METRIC_WRITER)
    go = tmp_path / "go"
    processes = [start(script, go, worker, points) for worker in range(workers)]
    release(go, processes)
    outputs = finish(processes)
    run_ids = [out.split()[0] for out, _ in outputs]
    assert len(set(run_ids)) == workers
    assert_overlapping(outputs)

    client = nbmlops.Client(f"sqlite:///{store_db}")
    experiment = client.get_experiment_by_name("metrics-race")
    assert experiment is not None
    assert [e.name for e in client.search_experiments()] == ["metrics-race"]
    listed = client.search_runs([experiment.experiment_id], max_results=100)
    assert sorted(r.info.run_id for r in listed) == sorted(run_ids)
    for worker, run_id in enumerate(run_ids):
        run = client.get_run(run_id)
        assert run.info.status is RunStatus.FINISHED
        assert run.data.params["worker"] == str(worker)
        assert run.data.params["checkpoint_4000"] == "4000"
        assert run.data.tags["progress"] == "4000"
        assert run.data.metrics["loss"] == worker + 1.0 / points
        history = client.get_metric_history(run_id, "loss")
        assert len(history) == points
        assert [m.step for m in history] == list(range(points))  # distinct, none missing
        assert all(m.value == worker + 1.0 / (m.step + 1) for m in history)

    conn = sqlite3.connect(store_db)
    try:
        rows = conn.execute(
            "SELECT run_id, COUNT(*), COUNT(DISTINCT step) FROM metrics GROUP BY run_id"
        ).fetchall()
    finally:
        conn.close()
    assert sorted(rows) == sorted((run_id, points, points) for run_id in run_ids)
    assert integrity(store_db) == ["ok"]


# --------------------------------------------------------------------------- (b) runs

_RUN_CREATOR = """
import nbmlops

wait_for_go()
begin = time.time()
worker, n = int(sys.argv[2]), int(sys.argv[3])
experiment = nbmlops.set_experiment("shared")  # get-or-create, racing the other workers
for i in range(n):
    with nbmlops.start_run(run_name=f"w{worker}-r{i}"):
        nbmlops.log_params({"worker": worker, "i": i})
        nbmlops.log_metric("score", i)
print(experiment.experiment_id, begin, time.time(), flush=True)
"""


def test_four_processes_create_50_runs_each_in_one_experiment(
    tmp_path: Path, store_db: Path
) -> None:
    workers, runs_each = 4, 50
    script = write_script(tmp_path, "creator.py", _RUN_CREATOR)
    go = tmp_path / "go"
    processes = [start(script, go, worker, runs_each) for worker in range(workers)]
    release(go, processes)
    outputs = finish(processes)
    assert_overlapping(outputs)
    experiment_ids = {out.split()[0] for out, _ in outputs}
    assert len(experiment_ids) == 1  # every worker got the same experiment

    client = nbmlops.Client(f"sqlite:///{store_db}")
    experiments = client.search_experiments()
    assert [e.name for e in experiments] == ["shared"]
    assert {e.experiment_id for e in experiments} == experiment_ids
    runs = client.search_runs(list(experiment_ids), max_results=1000)
    assert len(runs) == workers * runs_each
    assert runs.token is None
    assert {r.info.run_name for r in runs} == {
        f"w{w}-r{i}" for w in range(workers) for i in range(runs_each)
    }
    assert all(r.info.status is RunStatus.FINISHED for r in runs)
    for run in runs:
        worker, i = run.info.run_name[1:].split("-r")
        assert run.data.params == {"worker": worker, "i": i}
        assert run.data.metrics == {"score": float(i)}
    assert integrity(store_db) == ["ok"]


# --------------------------------------------------------------------------- (c) readers

_READER = """
import json
import pandas  # imported before the barrier: the loop below measures reads, not imports
import nbmlops

wait_for_go()
stop = Path(sys.argv[2])
client = nbmlops.Client()
stamps: list[float] = []
seen_runs = 0
seen_points: dict[str, int] = {}
while not stop.exists() or len(stamps) < 3:
    stamps.append(time.time())
    runs = client.search_runs(None, "", max_results=1000)
    assert len(runs) >= seen_runs, (len(runs), seen_runs)  # runs never disappear
    seen_runs = len(runs)
    for run in runs:
        assert run.info.status.value in ("RUNNING", "FINISHED"), run.info
    client.search_runs(None, "metrics.loss < 0.5 and params.worker != '9'", ["metrics.loss DESC"])
    frame = nbmlops.search_runs(search_all_experiments=True)
    assert len(frame) >= seen_runs
    for run in runs:
        if run.info.run_name.startswith("writer-"):
            points = len(client.get_metric_history(run.info.run_id, "loss"))
            assert points >= seen_points.get(run.info.run_id, 0)  # histories only grow
            seen_points[run.info.run_id] = points
print(json.dumps({"stamps": stamps, "runs": seen_runs}), flush=True)
"""

_BUSY_WRITER = """
import nbmlops

wait_for_go()
begin = time.time()
worker = int(sys.argv[2])
nbmlops.set_experiment("busy")
with nbmlops.start_run(run_name=f"writer-{worker}"):
    nbmlops.log_param("worker", worker)
    for step in range(3000):
        nbmlops.log_metric("loss", 1.0 / (step + 1), step=step)
        if step % 100 == 99:
            nbmlops.flush()
            time.sleep(0.01)  # keep writing for a while: the readers must overlap
        if step % 300 == 0:
            with nbmlops.start_run(run_name=f"child-{worker}-{step}", nested=True):
                nbmlops.log_metric("loss", 0.1)
print(begin, time.time(), flush=True)
"""


def test_readers_never_fail_while_writers_write(tmp_path: Path, store_db: Path) -> None:
    readers_script = write_script(tmp_path, "reader.py", _READER)
    writers_script = write_script(tmp_path, "busy_writer.py", _BUSY_WRITER)
    go, stop = tmp_path / "go", tmp_path / "stop"
    readers = [start(readers_script, go, stop) for _ in range(2)]
    writers = [start(writers_script, go, worker) for worker in range(2)]
    release(go, readers + writers)
    written = finish(writers)
    stop.touch()
    read = finish(readers)
    windows = [tuple(map(float, out.split())) for out, _ in written]
    writing_from, writing_until = min(w[0] for w in windows), max(w[1] for w in windows)
    for out, _ in read:
        report = json.loads(out)
        assert report["runs"] == 22  # 2 writer runs + 2 x 10 children, all visible at the end
        during = [t for t in report["stamps"] if writing_from <= t <= writing_until]
        assert len(during) >= 5, (len(during), len(report["stamps"]))  # really concurrent

    client = nbmlops.Client(f"sqlite:///{store_db}")
    writer_runs = client.search_runs(None, "run_name LIKE 'writer-%'")
    assert len(writer_runs) == 2
    for run in writer_runs:
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 3000
    assert integrity(store_db) == ["ok"]
