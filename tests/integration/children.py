"""Real child interpreters that start their work together, for the multi-process tests.

A test writes a small script (a prelude with ``wait_for_go()`` plus its body), starts several
copies, waits until every child is ready at the barrier, then touches the "go" file so the
children's work truly overlaps. ``communicate_all`` then demands a clean exit from each.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

TIMEOUT_S = 120

BARRIER = """
import os, sys, time
from pathlib import Path

def wait_for_go() -> None:
    go = Path(sys.argv[1])
    go.with_name(f"ready-{os.getpid()}").touch()
    while not go.exists():
        time.sleep(0.001)
"""

#: Children started by :func:`start`; tests/integration/conftest.py kills leftovers.
started: list[subprocess.Popen[str]] = []


def write_script(tmp_path: Path, name: str, body: str, prelude: str = "") -> Path:
    """A child script: the barrier, an optional prelude (imports), then ``body``."""
    script = tmp_path / name
    script.write_text(BARRIER + textwrap.dedent(prelude) + textwrap.dedent(body))
    return script


def start(script: Path, *args: object) -> subprocess.Popen[str]:
    """Start ``script`` in a new interpreter (inheriting the environment), with pipes."""
    process = subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    started.append(process)
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


def communicate_all(processes: list[subprocess.Popen[str]]) -> list[tuple[str, str]]:
    """Wait for every process; each must exit 0 with an empty stderr and no lock error."""
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
        assert "database is locked" not in out + err
    return outputs


def kill_leftovers() -> None:
    """Kill any child a failing test left waiting at the barrier or mid-work."""
    while started:
        process = started.pop()
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=TIMEOUT_S)


def integrity(db: Path, foreign_keys: bool = False) -> list[str]:
    """``PRAGMA integrity_check`` (and optionally foreign-key problems) via plain sqlite3."""
    conn = sqlite3.connect(db)
    try:
        problems = (
            [str(row) for row in conn.execute("PRAGMA foreign_key_check")] if foreign_keys else []
        )
        return [row[0] for row in conn.execute("PRAGMA integrity_check")] + problems
    finally:
        conn.close()
