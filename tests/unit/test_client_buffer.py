"""The client's write buffer and its durability rule (see nbmlops/client.py docstring)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import nbmlops.client as client_module
from nbmlops import Client, InvalidArgument
from nbmlops.store.sqlite import SqliteStore


def _stored_points(path: Path, run_id: str, key: str) -> int:
    """Count points straight from a separate store instance (bypassing the client's buffer)."""
    reader = SqliteStore(path)
    try:
        return len(reader.get_metric_history(run_id, key))
    finally:
        reader.close()


@pytest.fixture
def client(sqlite_path: Path) -> Client:
    c = Client(store=SqliteStore(sqlite_path))
    yield c
    c.close()


def _new_run(client: Client) -> str:
    experiment = client.get_or_create_experiment("buffer")
    return client.create_run(experiment.experiment_id).info.run_id


def test_metrics_are_buffered_until_flush(
    client: Client, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "FLUSH_INTERVAL_S", 60.0)
    run_id = _new_run(client)
    for step in range(10):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    assert _stored_points(sqlite_path, run_id, "loss") == 0
    client.flush()
    assert _stored_points(sqlite_path, run_id, "loss") == 10


def test_end_run_and_reads_flush_first(
    client: Client, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "FLUSH_INTERVAL_S", 60.0)
    run_id = _new_run(client)
    client.log_metric(run_id, "a", 1)
    assert client.get_run(run_id).data.metrics == {"a": 1.0}  # read through the client flushes
    client.log_metric(run_id, "b", 2)
    client.set_terminated(run_id)
    assert _stored_points(sqlite_path, run_id, "b") == 1


def test_record_threshold_triggers_a_flush(
    client: Client, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "FLUSH_INTERVAL_S", 60.0)
    monkeypatch.setattr(client_module, "FLUSH_MAX_RECORDS", 100)
    run_id = _new_run(client)
    for step in range(250):
        client.log_metric(run_id, "m", step, step=step)
        assert client._pending_records < 100
    assert _stored_points(sqlite_path, run_id, "m") == 200


def test_byte_threshold_triggers_a_flush(
    client: Client, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "FLUSH_INTERVAL_S", 60.0)
    monkeypatch.setattr(client_module, "FLUSH_MAX_BYTES", 10_000)
    run_id = _new_run(client)
    for i in range(50):
        client.set_tag(run_id, f"t{i}", "v" * 1000)
    assert client._pending_bytes < 10_000
    reader = SqliteStore(sqlite_path)
    try:
        assert len(reader.get_run(run_id).data.tags) >= 40
    finally:
        reader.close()


def test_background_timer_flushes_without_any_call(
    client: Client, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "FLUSH_INTERVAL_S", 0.05)
    run_id = _new_run(client)
    client.log_metric(run_id, "t", 1)
    deadline = time.monotonic() + 5
    while _stored_points(sqlite_path, run_id, "t") == 0:
        assert time.monotonic() < deadline, "timer flush did not happen within 5 s"
        time.sleep(0.05)


def test_a_failing_run_does_not_lose_other_runs_records(
    client: Client, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "FLUSH_INTERVAL_S", 60.0)
    healthy = _new_run(client)
    doomed = _new_run(client)
    client.log_metric(doomed, "x", 1)
    client.log_metric(healthy, "y", 1)
    # Another process ends the doomed run behind this client's back.
    other = SqliteStore(sqlite_path)
    other.end_run(doomed, client_module.RunStatus.FINISHED, 1)
    other.close()
    with pytest.raises(InvalidArgument, match=doomed):
        client.flush()
    assert _stored_points(sqlite_path, healthy, "y") == 1
    assert _stored_points(sqlite_path, doomed, "x") == 0
    with pytest.raises(InvalidArgument, match="ended"):
        client.log_metric(doomed, "x", 2)


def test_heartbeat_thread_refreshes_owned_runs(
    client: Client, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "FLUSH_INTERVAL_S", 0.02)
    monkeypatch.setattr(client_module.hb, "BEAT_INTERVAL_S", 0.05)
    run_id = _new_run(client)
    first = client.store.get_run(run_id).info.heartbeat
    assert first is not None
    deadline = time.monotonic() + 5
    while client.store.get_run(run_id).info.heartbeat.time == first.time:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "heartbeat was not refreshed"
        time.sleep(0.05)
    client.set_terminated(run_id)
    assert client.store.get_run(run_id).info.heartbeat is None
