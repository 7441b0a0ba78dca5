"""Heartbeats: how a store tells a live RUNNING run from one whose process died.

A run records the pid, host and the pid's start time of the process that owns it, plus the
time of its last beat. A reader decides the run is dead when either

* the owner is on this host and that pid is gone, or now belongs to another process (the
  start time differs: pid reuse), which is known at once; or
* the owner is on another host and the last beat is older than the timeout.

Dead runs are then read, and persisted, as KILLED; never RUNNING forever, never FINISHED.
"""

from __future__ import annotations

import functools
import os
import socket
import time

from nbmlops.entities import Heartbeat

#: A process beats this often for its RUNNING runs (seconds).
BEAT_INTERVAL_S = float(os.environ.get("NBMLOPS_HEARTBEAT_INTERVAL", "10"))
#: A run on another host is dead after this long without a beat (seconds).
STALE_AFTER_S = float(os.environ.get("NBMLOPS_HEARTBEAT_TIMEOUT", "120"))


def now_ms() -> int:
    """Current wall-clock time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


@functools.cache
def host_name() -> str:
    """This machine's host name, as recorded in heartbeats."""
    return socket.gethostname()


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state first), or None where unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return stat[stat.rfind(")") + 2 :].split()


def process_start_marker(pid: int) -> str:
    """An opaque token that changes when ``pid`` is reused by another process.

    On Linux it is the start time in clock ticks from ``/proc/<pid>/stat``; elsewhere it is
    empty and only pid liveness is checked.
    """
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else ""


def current_heartbeat() -> Heartbeat:
    """A heartbeat for this process, stamped now."""
    pid = os.getpid()
    return Heartbeat(pid=pid, host=host_name(), pid_start=_own_start(pid), time=now_ms())


@functools.cache
def _own_start(pid: int) -> str:
    return process_start_marker(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    fields = _proc_stat(pid)
    # A zombie (killed, not yet reaped by its parent) still answers kill(pid, 0).
    return not (fields and fields[0] == "Z")


def is_dead(heartbeat: Heartbeat | None, now: int | None = None) -> bool:
    """True when the process behind ``heartbeat`` is known or presumed dead."""
    if heartbeat is None:
        return False
    if heartbeat.host == host_name():
        if heartbeat.pid == os.getpid():
            return False
        if not _pid_alive(heartbeat.pid):
            return True
        return bool(
            heartbeat.pid_start
            and process_start_marker(heartbeat.pid) not in ("", heartbeat.pid_start)
        )
    now = now_ms() if now is None else now
    return now - heartbeat.time > STALE_AFTER_S * 1000
