"""Process death: what survives a SIGKILL, and how runs end when a script just stops.

The durability rule (``nbmlops/client.py``): records reach the store on ``flush()``, on a
timer of ``NBMLOPS_FLUSH_INTERVAL`` seconds, at run end and at exit; only an abrupt death
within the last interval may lose buffered records. A run whose process died is read, and
persisted, as KILLED.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbmlops
from nbmlops.entities import RunStatus
from nbmlops.store._common import STATUS_REASON_TAG

pytestmark = pytest.mark.slow

TIMEOUT_S = 60


def write_script(tmp_path: Path, name: str, body: str) -> Path:
    script = tmp_path / name
    script.write_text(textwrap.dedent(body))
    return script


_spawned: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """Kill any child a failing test left sleeping."""
    yield
    while _spawned:
        process = _spawned.pop()
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=TIMEOUT_S)


def spawn(script: Path, *args: object, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``script`` with this test's environment (and so its NBMLOPS_TRACKING_URI)."""
    process = subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    _spawned.append(process)
    return process


def read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """stdout lines of ``process`` up to and including the line ``marker``."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            _, err = process.communicate(timeout=TIMEOUT_S)
            raise AssertionError(f"child ended before {marker!r}: rc={process.returncode}\n{err}")
        lines.append(line.strip())
        if line.strip() == marker:
            return lines
    process.kill()
    raise AssertionError(f"no {marker!r} from the child within {TIMEOUT_S} s")


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL the child and reap it (a reaped pid is gone, not a zombie)."""
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == -signal.SIGKILL


def run_to_end(script: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=dict(os.environ),
    )


def integrity(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def steps_of(run_id: str, key: str = "loss") -> list[int]:
    return [m.step for m in nbmlops.get_client().get_metric_history(run_id, key)]


def search_ids(filter_string: str) -> list[str]:
    runs = nbmlops.search_runs(
        filter_string=filter_string, search_all_experiments=True, output_format="list"
    )
    return [run.info.run_id for run in runs]


@pytest.fixture
def store_db(_isolated_tracking: Path) -> Path:
    """The SQLite file the children write to (they inherit NBMLOPS_TRACKING_URI)."""
    return _isolated_tracking / "nbmlops.db"


# --------------------------------------------------------------------------- SIGKILL

_KILLED_CHILD = """
import sys, time
import nbmlops

flushed = int(sys.argv[1])
run = nbmlops.start_run(run_name="doomed")
print(run.run_id, flush=True)
nbmlops.log_param("flushed", flushed)
for step in range(flushed):
    nbmlops.log_metric("loss", 1.0 / (step + 1), step=step)
nbmlops.flush()
print("FLUSHED", flush=True)
for step in range(flushed, flushed + 2000):  # buffered, never flushed explicitly
    nbmlops.log_metric("loss", 1.0 / (step + 1), step=step)
time.sleep(600)
"""

_LATER_WRITER = """
import nbmlops

with nbmlops.start_run(run_name="afterwards") as run:
    for step in range(100):
        nbmlops.log_metric("loss", float(step), step=step)
    print(run.run_id, flush=True)
"""


def test_sigkill_keeps_flushed_points_and_marks_the_run_killed(
    tmp_path: Path, store_db: Path
) -> None:
    flushed = 1500
    script = write_script(tmp_path, "doomed.py", _KILLED_CHILD)
    # A long timer: what survives is what flush() wrote (plus whatever a size flush wrote).
    child = spawn(script, flushed, env={"NBMLOPS_FLUSH_INTERVAL": "30"})
    run_id, _ = read_until(child, "FLUSHED")
    # While the child lives its run is RUNNING: a live owner is never reaped.
    assert nbmlops.get_run(run_id).info.status is RunStatus.RUNNING
    assert run_id in search_ids("status = 'RUNNING'")
    kill(child)

    # Read by search first (so get_run's own reaping cannot have fixed it up already).
    assert search_ids("status = 'KILLED'") == [run_id]
    assert search_ids("status = 'RUNNING'") == []
    run = nbmlops.get_run(run_id)
    assert run.info.status is RunStatus.KILLED
    assert run.info.end_time is not None
    assert run.info.end_time >= run.info.start_time
    assert STATUS_REASON_TAG in run.data.tags
    assert str(child.pid) in run.data.tags[STATUS_REASON_TAG]
    assert run.data.params == {"flushed": str(flushed)}

    steps = steps_of(run_id)
    assert len(steps) >= flushed
    assert steps[:flushed] == list(range(flushed))  # every flushed point, exactly once
    assert steps == list(range(len(steps)))  # anything more is a gap-free, duplicate-free prefix
    assert integrity(store_db) == ["ok"]

    # The store stays usable: a new process writes and ends a run normally.
    later = run_to_end(write_script(tmp_path, "later.py", _LATER_WRITER))
    assert later.returncode == 0, later.stderr
    assert later.stderr == ""
    later_id = later.stdout.strip()
    assert nbmlops.get_run(later_id).info.status is RunStatus.FINISHED
    assert steps_of(later_id) == list(range(100))
    assert nbmlops.get_run(run_id).info.status is RunStatus.KILLED  # still KILLED
    assert integrity(store_db) == ["ok"]


_TIMER_CHILD = """
import sys, time
import nbmlops

points = int(sys.argv[1])
run = nbmlops.start_run(run_name="timer")
print(run.run_id, flush=True)
for step in range(points):
    nbmlops.log_metric("loss", float(step), step=step)
time.sleep(float(sys.argv[2]))  # no flush() anywhere: only the timer writes
print("LOGGED", flush=True)
time.sleep(600)
"""


def test_the_flush_timer_makes_points_durable(tmp_path: Path, store_db: Path) -> None:
    interval, points = 0.2, 300
    script = write_script(tmp_path, "timer.py", _TIMER_CHILD)
    child = spawn(script, points, 3 * interval, env={"NBMLOPS_FLUSH_INTERVAL": str(interval)})
    run_id, _ = read_until(child, "LOGGED")
    kill(child)
    run = nbmlops.get_run(run_id)
    assert run.info.status is RunStatus.KILLED
    assert steps_of(run_id) == list(range(points))
    assert run.data.metrics["loss"] == float(points - 1)
    assert integrity(store_db) == ["ok"]


# --------------------------------------------------------------------------- exit paths

_FALLS_OFF_THE_END = """
import nbmlops

run = nbmlops.start_run(run_name="no-end-run")
print(run.run_id, flush=True)
nbmlops.log_param("p", 1)
for step in range(50):
    nbmlops.log_metric("loss", float(step), step=step)
nbmlops.set_tag("stage", "done")
"""

_RAISES = """
import nbmlops

run = nbmlops.start_run(run_name="crashes")
print(run.run_id, flush=True)
for step in range(50):
    nbmlops.log_metric("loss", float(step), step=step)
raise RuntimeError("training diverged")
"""


def test_script_without_end_run_finishes_at_exit(tmp_path: Path) -> None:
    result = run_to_end(write_script(tmp_path, "no_end.py", _FALLS_OFF_THE_END))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    run = nbmlops.get_run(result.stdout.strip())
    assert run.info.status is RunStatus.FINISHED
    assert run.info.end_time is not None
    assert run.data.params == {"p": "1"}
    assert run.data.tags["stage"] == "done"
    assert steps_of(run.info.run_id) == list(range(50))


def test_uncaught_exception_fails_the_active_run(tmp_path: Path) -> None:
    result = run_to_end(write_script(tmp_path, "raises.py", _RAISES))
    assert result.returncode == 1
    assert "RuntimeError: training diverged" in result.stderr  # the user's traceback is kept
    run = nbmlops.get_run(result.stdout.strip())
    assert run.info.status is RunStatus.FAILED
    assert run.info.end_time is not None
    assert steps_of(run.info.run_id) == list(range(50))
