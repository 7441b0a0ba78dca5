"""The store contract (nbmlops/store/base.py): every test runs against every store.

The ``store`` fixture (tests/conftest.py) is parametrized over MemoryStore, SqliteStore and
MlflowStore (a real MLflow server on PostgreSQL), so each expectation below is checked on all
of them and the implementations cannot drift. Where MLflow cannot provide a behaviour, the test
says so and expects the MLflow store's documented error instead.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from nbmlops.entities import (
    DatasetInput,
    Heartbeat,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunSource,
    RunStatus,
    RunTag,
)
from nbmlops.errors import AlreadyExists, InvalidArgument, NotFound
from nbmlops.store import heartbeat as hb
from nbmlops.store._common import STATUS_REASON_TAG
from nbmlops.store.base import MAX_RESULTS_LIMIT, AbstractStore

T0 = 1_700_000_000_000
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


# --------------------------------------------------------------------------- helpers


def is_mlflow_store(store: AbstractStore) -> bool:
    """Whether ``store`` is the MLflow backend (for its documented differences)."""
    return type(store).__name__ == "MlflowStore"


def _new_id() -> str:
    """A fresh 32-hex run id."""
    return uuid.uuid4().hex


def _exp(store: AbstractStore, name: str = "exp") -> str:
    """Create an experiment and return its id."""
    return store.create_experiment(name).experiment_id


def _run(
    store: AbstractStore,
    experiment_id: str,
    name: str = "run",
    start: int = T0,
    **kwargs: Any,
) -> str:
    """Create a RUNNING run and return its id."""
    return store.create_run(experiment_id, name, start, "alice", **kwargs).run_id


def _names(runs: list[Run]) -> list[str]:
    """Run names in the order given."""
    return [r.info.run_name for r in runs]


def _files(root: Path) -> set[str]:
    """Every file below ``root`` (relative paths), to prove nothing was written."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _sha(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _same_float(a: float, b: float) -> bool:
    """Equal, with NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def _exited_pid() -> int:
    """The pid of a real process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------- experiments


def test_create_and_get_experiment(store: AbstractStore) -> None:
    """A created experiment is returned by id with its name and a creation time."""
    before = hb.now_ms()
    experiment = store.create_experiment("churn")
    assert experiment.name == "churn"
    assert before - 1000 <= experiment.created_at <= hb.now_ms() + 1000
    assert store.get_experiment(experiment.experiment_id) == experiment


def test_duplicate_experiment_name_raises_already_exists(store: AbstractStore) -> None:
    """A taken name is refused with AlreadyExists naming it; nothing new is stored."""
    store.create_experiment("churn")
    with pytest.raises(AlreadyExists, match="churn"):
        store.create_experiment("churn")
    assert [e.name for e in store.search_experiments()] == ["churn"]


def test_experiment_names_are_case_sensitive(store: AbstractStore) -> None:
    """Names differing only in case are distinct experiments."""
    first = store.create_experiment("Churn")
    second = store.create_experiment("churn")
    assert first.experiment_id != second.experiment_id


@pytest.mark.parametrize("bad", ["", "   ", "a\nb"])
def test_create_experiment_refuses_invalid_name(store: AbstractStore, bad: str) -> None:
    """Blank names and control characters are InvalidArgument."""
    with pytest.raises(InvalidArgument, match="experiment name"):
        store.create_experiment(bad)
    assert store.search_experiments() == []


@pytest.mark.parametrize("unknown", ["999", "nope", "", "01", " 1", "1.0", "+1"])
def test_get_unknown_experiment_raises_not_found(store: AbstractStore, unknown: str) -> None:
    """An id no experiment has is NotFound, whatever its spelling."""
    store.create_experiment("exists")
    with pytest.raises(NotFound):
        store.get_experiment(unknown)


def test_get_experiment_by_name(store: AbstractStore) -> None:
    """Lookup by name returns the experiment, or None for an unknown name."""
    experiment = store.create_experiment("churn")
    assert store.get_experiment_by_name("churn") == experiment
    assert store.get_experiment_by_name("CHURN") is None
    assert store.get_experiment_by_name("other") is None


def test_search_experiments_oldest_first(store: AbstractStore) -> None:
    """search_experiments lists in creation order, not by name."""
    for name in ("zeta", "alpha", "mid"):
        store.create_experiment(name)
    assert [e.name for e in store.search_experiments()] == ["zeta", "alpha", "mid"]


# --------------------------------------------------------------------------- runs


def test_create_run_returns_running_info(store: AbstractStore) -> None:
    """A new run is RUNNING, has a 32-hex id and the given fields."""
    exp = _exp(store)
    info = store.create_run(exp, "first", T0, "alice")
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert info.experiment_id == exp
    assert info.run_name == "first"
    assert info.status is RunStatus.RUNNING
    assert info.start_time == T0
    assert info.end_time is None
    assert info.parent_run_id is None
    assert info.user == "alice"
    assert info.lifecycle_stage is LifecycleStage.ACTIVE
    assert store.get_run(info.run_id).info == info


def test_create_run_with_tags_source_parent_and_heartbeat(store: AbstractStore) -> None:
    """Tags, source, parent and heartbeat given at creation are stored."""
    exp = _exp(store)
    parent = _run(store, exp, "parent")
    source = RunSource(
        path="nb/train.ipynb", cell_id="c-1", execution_count=7, code_sha256="ab" * 32, code="x = 1"
    )
    beat = hb.current_heartbeat()
    child = store.create_run(
        exp,
        "child",
        T0 + 1,
        "bob",
        parent_run_id=parent,
        tags=[RunTag("stage", "dev"), RunTag("nbmlops.cell_id", "c-1")],
        source=source,
        heartbeat=beat,
    )
    run = store.get_run(child.run_id)
    assert run.info.parent_run_id == parent
    assert run.info.source == source
    assert run.info.heartbeat == beat
    assert run.info.user == "bob"
    assert dict(run.data.tags) == {"stage": "dev", "nbmlops.cell_id": "c-1"}
    assert dict(run.data.params) == {}
    assert dict(run.data.metrics) == {}


def test_nested_runs_any_depth(store: AbstractStore) -> None:
    """Runs nest to depth 4; each level points at its parent and search follows the links."""
    exp = _exp(store)
    ids = [_run(store, exp, "level0", T0)]
    for depth in range(1, 4):
        ids.append(_run(store, exp, f"level{depth}", T0 + depth, parent_run_id=ids[-1]))
    for depth in range(1, 4):
        assert store.get_run(ids[depth]).info.parent_run_id == ids[depth - 1]
    for depth in range(3):
        runs, _ = store.search_runs([exp], f"parent_run_id = '{ids[depth]}'")
        assert _names(runs) == [f"level{depth + 1}"]
    roots, _ = store.search_runs([exp], "parent_run_id IS NULL")
    assert _names(roots) == ["level0"]


def test_create_run_unknown_experiment_raises_not_found(store: AbstractStore) -> None:
    """An unknown experiment is NotFound and no run is created."""
    _exp(store)
    for unknown in ("999", "nope", "01"):
        with pytest.raises(NotFound):
            store.create_run(unknown, "r", T0, "alice")
    assert store.search_runs()[0] == []


def test_create_run_unknown_parent_raises_not_found(store: AbstractStore) -> None:
    """A parent id that no run has is NotFound and no run is created."""
    exp = _exp(store)
    with pytest.raises(NotFound):
        store.create_run(exp, "orphan", T0, "alice", parent_run_id=_new_id())
    assert store.search_runs()[0] == []


def test_create_run_with_explicit_id_and_duplicate(store: AbstractStore) -> None:
    """An explicit run_id is used; using it again is AlreadyExists and the first run stays."""
    exp = _exp(store)
    run_id = _new_id()
    if is_mlflow_store(store):
        # Documented difference (README capability table): MLflow assigns run ids itself,
        # so the MLflow store refuses an explicit id with a clear error and creates nothing.
        with pytest.raises(InvalidArgument, match="MLflow backend assigns run ids itself"):
            store.create_run(exp, "first", T0, "alice", run_id=run_id)
        assert store.search_runs()[0] == []
        return
    assert store.create_run(exp, "first", T0, "alice", run_id=run_id).run_id == run_id
    with pytest.raises(AlreadyExists, match=run_id):
        store.create_run(exp, "second", T0 + 1, "bob", run_id=run_id)
    run = store.get_run(run_id)
    assert (run.info.run_name, run.info.user, run.info.start_time) == ("first", "alice", T0)
    assert len(store.search_runs()[0]) == 1


@pytest.mark.parametrize("bad", ["xyz", "A" * 32, "0" * 31, "g" * 32])
def test_create_run_refuses_malformed_run_id(store: AbstractStore, bad: str) -> None:
    """A run_id that is not 32 lowercase hex characters is InvalidArgument."""
    exp = _exp(store)
    with pytest.raises(InvalidArgument, match="run id"):
        store.create_run(exp, "r", T0, "alice", run_id=bad)
    assert store.search_runs()[0] == []


def test_get_run_unknown_and_malformed(store: AbstractStore) -> None:
    """get_run: NotFound for an unknown id, InvalidArgument for a malformed one."""
    _run(store, _exp(store))
    with pytest.raises(NotFound):
        store.get_run(_new_id())
    with pytest.raises(InvalidArgument):
        store.get_run("not-a-run-id")


def test_get_run_returns_params_latest_metrics_tags_inputs(store: AbstractStore) -> None:
    """get_run carries params, the latest value of each metric, tags and inputs."""
    run_id = _run(store, _exp(store))
    store.log_batch(
        run_id,
        metrics=[
            Metric("loss", 0.5, T0, 0),
            Metric("loss", 0.25, T0 + 1, 1),
            Metric("acc", 0.9, T0),
        ],
        params=[Param("model", "rf"), Param("n", "100")],
        tags=[RunTag("stage", "dev")],
    )
    dataset = DatasetInput("train", "d1", "training", (10, 3), {"a": "int64"}, "train.csv")
    store.log_inputs(run_id, [dataset])
    run = store.get_run(run_id)
    assert dict(run.data.params) == {"model": "rf", "n": "100"}
    assert dict(run.data.metrics) == {"loss": 0.25, "acc": 0.9}
    assert dict(run.data.tags) == {"stage": "dev"}
    assert run.inputs == (dataset,)


@pytest.mark.parametrize("status", [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED])
def test_end_run_sets_status_and_end_time(store: AbstractStore, status: RunStatus) -> None:
    """end_run moves a RUNNING run to the terminal status and stores end_time."""
    run_id = _run(store, _exp(store), heartbeat=hb.current_heartbeat())
    info = store.end_run(run_id, status, T0 + 500)
    assert info.status is status
    assert info.end_time == T0 + 500
    stored = store.get_run(run_id).info
    assert stored.status is status
    assert stored.end_time == T0 + 500
    assert stored.heartbeat is None


def test_end_run_accepts_status_names(store: AbstractStore) -> None:
    """A status given by name (any case) is parsed into a RunStatus."""
    run_id = _run(store, _exp(store))
    info = store.end_run(run_id, "finished", T0 + 1)  # type: ignore[arg-type]
    assert info.status is RunStatus.FINISHED
    assert store.get_run(run_id).info.status is RunStatus.FINISHED


def test_end_run_same_status_is_noop(store: AbstractStore) -> None:
    """Ending again with the same status changes nothing, not even end_time."""
    run_id = _run(store, _exp(store))
    store.end_run(run_id, RunStatus.FINISHED, T0 + 10)
    info = store.end_run(run_id, RunStatus.FINISHED, T0 + 99)
    assert info.status is RunStatus.FINISHED
    assert info.end_time == T0 + 10
    assert store.get_run(run_id).info.end_time == T0 + 10


def test_end_run_conflicting_status_raises(store: AbstractStore) -> None:
    """Ending an ended run with another status is InvalidArgument naming both statuses."""
    run_id = _run(store, _exp(store))
    store.end_run(run_id, RunStatus.FINISHED, T0 + 10)
    with pytest.raises(InvalidArgument) as excinfo:
        store.end_run(run_id, RunStatus.FAILED, T0 + 20)
    assert "FINISHED" in str(excinfo.value) and "FAILED" in str(excinfo.value)
    info = store.get_run(run_id).info
    assert (info.status, info.end_time) == (RunStatus.FINISHED, T0 + 10)


def test_end_run_with_running_status_raises(store: AbstractStore) -> None:
    """RUNNING is not a terminal status: InvalidArgument, the run stays as it was."""
    run_id = _run(store, _exp(store))
    with pytest.raises(InvalidArgument, match="terminal"):
        store.end_run(run_id, RunStatus.RUNNING, T0 + 1)
    info = store.get_run(run_id).info
    assert (info.status, info.end_time) == (RunStatus.RUNNING, None)


def test_end_run_unknown_run_raises_not_found(store: AbstractStore) -> None:
    """Ending a run that does not exist is NotFound."""
    _exp(store)
    with pytest.raises(NotFound):
        store.end_run(_new_id(), RunStatus.FINISHED, T0)


# --------------------------------------------------------------------------- log_batch


def test_log_batch_param_same_value_is_noop(store: AbstractStore) -> None:
    """Re-logging a param with the same value succeeds and keeps one value."""
    run_id = _run(store, _exp(store))
    store.log_batch(run_id, params=[Param("lr", "0.1")])
    store.log_batch(run_id, params=[Param("lr", "0.1"), Param("lr", "0.1")])
    assert dict(store.get_run(run_id).data.params) == {"lr": "0.1"}


def test_log_batch_param_conflict_names_key_and_both_values(store: AbstractStore) -> None:
    """A different value for a stored param is AlreadyExists naming the key and both values."""
    run_id = _run(store, _exp(store))
    store.log_batch(run_id, params=[Param("learning_rate", "0.1")])
    with pytest.raises(AlreadyExists) as excinfo:
        store.log_batch(run_id, params=[Param("learning_rate", "0.25")])
    message = str(excinfo.value)
    assert "learning_rate" in message and "0.1" in message and "0.25" in message
    assert dict(store.get_run(run_id).data.params) == {"learning_rate": "0.1"}


def test_log_batch_param_conflict_inside_one_batch(store: AbstractStore) -> None:
    """Two values for one key in the same batch conflict; nothing of the batch is stored."""
    run_id = _run(store, _exp(store))
    with pytest.raises(AlreadyExists) as excinfo:
        store.log_batch(
            run_id,
            metrics=[Metric("m", 1.0, T0)],
            params=[Param("other", "x"), Param("depth", "3"), Param("depth", "4")],
            tags=[RunTag("t", "v")],
        )
    assert "depth" in str(excinfo.value)
    run = store.get_run(run_id)
    assert (dict(run.data.params), dict(run.data.metrics), dict(run.data.tags)) == ({}, {}, {})
    assert store.get_metric_history(run_id, "m") == []


def test_failing_batch_is_atomic(store: AbstractStore) -> None:
    """A batch that fails stores nothing of itself and leaves stored data unchanged."""
    run_id = _run(store, _exp(store))
    store.log_batch(
        run_id,
        metrics=[Metric("loss", 0.5, T0, 1)],
        params=[Param("model", "rf")],
        tags=[RunTag("stage", "dev")],
    )
    before = store.get_run(run_id)
    with pytest.raises(AlreadyExists):
        store.log_batch(
            run_id,
            metrics=[Metric("loss", 0.1, T0 + 5, 2), Metric("acc", 0.9, T0 + 5)],
            params=[Param("fresh", "1"), Param("model", "lgbm")],
            tags=[RunTag("stage", "prod"), RunTag("new", "x")],
        )
    assert store.get_run(run_id) == before
    assert [m.value for m in store.get_metric_history(run_id, "loss")] == [0.5]
    assert store.get_metric_history(run_id, "acc") == []


@pytest.mark.parametrize("status", [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED])
def test_params_and_metrics_into_ended_run_are_refused(
    store: AbstractStore, status: RunStatus
) -> None:
    """Params or metrics into an ended run are InvalidArgument; tags in that batch are not kept."""
    run_id = _run(store, _exp(store))
    store.end_run(run_id, status, T0 + 1)
    with pytest.raises(InvalidArgument, match=status.value):
        store.log_batch(run_id, params=[Param("p", "1")], tags=[RunTag("t", "v")])
    with pytest.raises(InvalidArgument):
        store.log_batch(run_id, metrics=[Metric("m", 1.0, T0)])
    run = store.get_run(run_id)
    assert (dict(run.data.params), dict(run.data.metrics), dict(run.data.tags)) == ({}, {}, {})


def test_tags_are_mutable_and_allowed_on_ended_runs(store: AbstractStore) -> None:
    """Tags can be set and overwritten on RUNNING and on ended runs."""
    run_id = _run(store, _exp(store), tags=[RunTag("note", "first")])
    store.log_batch(run_id, tags=[RunTag("note", "second")])
    store.end_run(run_id, RunStatus.FINISHED, T0 + 1)
    store.log_batch(run_id, tags=[RunTag("note", "third"), RunTag("reviewed", "yes")])
    assert dict(store.get_run(run_id).data.tags) == {"note": "third", "reviewed": "yes"}


def test_log_batch_unknown_run_raises_not_found(store: AbstractStore) -> None:
    """Logging into a run that does not exist is NotFound, even for an empty batch."""
    _exp(store)
    unknown = _new_id()
    with pytest.raises(NotFound):
        store.log_batch(unknown, metrics=[Metric("m", 1.0, T0)])
    with pytest.raises(NotFound):
        store.log_batch(unknown, tags=[RunTag("t", "v")])
    with pytest.raises(NotFound):
        store.log_batch(unknown)


def test_concurrent_log_batch_from_threads_loses_nothing(store: AbstractStore) -> None:
    """Batches logged from several threads at once are all stored."""
    run_id = _run(store, _exp(store))

    def worker(offset: int) -> None:
        for i in range(25):
            store.log_batch(run_id, metrics=[Metric("m", float(offset + i), T0, offset + i)])

    threads = [threading.Thread(target=worker, args=(100 * t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = store.get_metric_history(run_id, "m")
    assert len(history) == 100
    assert [m.step for m in history] == sorted(100 * t + i for t in range(4) for i in range(25))
    assert store.get_run(run_id).data.metrics["m"] == 324.0


# --------------------------------------------------------------------------- metrics


def test_metric_history_ordered_by_step_timestamp_insertion(store: AbstractStore) -> None:
    """History is ordered by step, then timestamp, then insertion order."""
    run_id = _run(store, _exp(store))
    store.log_batch(run_id, metrics=[Metric("m", 1.0, T0 + 20, 2), Metric("m", 2.0, T0 + 30, 1)])
    store.log_batch(run_id, metrics=[Metric("m", 3.0, T0 + 10, 1), Metric("m", 4.0, T0 + 10, 1)])
    store.log_batch(run_id, metrics=[Metric("m", 5.0, T0 + 10, 1), Metric("other", 9.0, T0, 0)])
    history = store.get_metric_history(run_id, "m")
    assert [(m.value, m.step, m.timestamp) for m in history] == [
        (3.0, 1, T0 + 10),
        (4.0, 1, T0 + 10),
        (5.0, 1, T0 + 10),
        (2.0, 1, T0 + 30),
        (1.0, 2, T0 + 20),
    ]
    assert all(m.key == "m" for m in history)


def test_metric_history_of_unknown_key_and_run(store: AbstractStore) -> None:
    """An unlogged key has an empty history; an unknown run is NotFound."""
    run_id = _run(store, _exp(store))
    assert store.get_metric_history(run_id, "never") == []
    with pytest.raises(NotFound):
        store.get_metric_history(_new_id(), "m")


def test_latest_metric_is_highest_step_across_batches(store: AbstractStore) -> None:
    """A point with a lower step logged later does not replace the latest value."""
    run_id = _run(store, _exp(store))
    store.log_batch(run_id, metrics=[Metric("m", 5.0, T0, 5)])
    store.log_batch(run_id, metrics=[Metric("m", 3.0, T0 + 100, 3)])
    assert store.get_run(run_id).data.metrics["m"] == 5.0
    store.log_batch(run_id, metrics=[Metric("m", 6.0, T0 - 100, 6)])
    assert store.get_run(run_id).data.metrics["m"] == 6.0


def test_latest_metric_same_step_uses_timestamp_then_last_logged(store: AbstractStore) -> None:
    """On equal steps the later timestamp wins; on equal (step, timestamp) the last logged."""
    run_id = _run(store, _exp(store))
    store.log_batch(run_id, metrics=[Metric("m", 1.0, T0 + 50, 1)])
    store.log_batch(run_id, metrics=[Metric("m", 2.0, T0 + 10, 1)])
    assert store.get_run(run_id).data.metrics["m"] == 1.0
    store.log_batch(run_id, metrics=[Metric("m", 3.0, T0 + 50, 1)])
    assert store.get_run(run_id).data.metrics["m"] == 3.0


def test_latest_metric_within_one_batch(store: AbstractStore) -> None:
    """Inside one batch the same rule applies: highest step, then timestamp, then last given."""
    run_id = _run(store, _exp(store))
    store.log_batch(
        run_id,
        metrics=[
            Metric("a", 9.0, T0, 9),
            Metric("a", 1.0, T0 + 99, 1),
            Metric("b", 1.0, T0 + 5, 0),
            Metric("b", 2.0, T0 + 1, 0),
            Metric("c", 1.0, T0, 0),
            Metric("c", 2.0, T0, 0),
        ],
    )
    assert dict(store.get_run(run_id).data.metrics) == {"a": 9.0, "b": 1.0, "c": 2.0}


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, 0.0, 5e-324, 1.7976931348623157e308, -123.456]
)
def test_special_metric_values_round_trip(store: AbstractStore, value: float) -> None:
    """NaN, +inf, -inf and extreme floats come back exactly, in history and latest value."""
    run_id = _run(store, _exp(store))
    if is_mlflow_store(store) and abs(value) == 1.7976931348623157e308:
        # Documented difference (README capability table): MLflow's SQL stores keep ±inf as
        # ±(largest double), so the MLflow store refuses that exact value with a clear error.
        with pytest.raises(InvalidArgument, match="cannot be told apart from infinity"):
            store.log_batch(run_id, metrics=[Metric("m", value, T0, 0)])
        assert store.get_metric_history(run_id, "m") == []
        return
    store.log_batch(run_id, metrics=[Metric("m", value, T0, 0)])
    latest = store.get_run(run_id).data.metrics["m"]
    (point,) = store.get_metric_history(run_id, "m")
    for got in (latest, point.value):
        assert isinstance(got, float)
        assert _same_float(got, value)
        if not math.isnan(value):
            assert math.copysign(1.0, got) == math.copysign(1.0, value)


def test_nan_after_a_number_becomes_the_latest_value(store: AbstractStore) -> None:
    """A NaN at a higher step is the latest value (NaN is stored, not dropped)."""
    run_id = _run(store, _exp(store))
    store.log_batch(run_id, metrics=[Metric("m", 0.5, T0, 0)])
    store.log_batch(run_id, metrics=[Metric("m", math.nan, T0, 1)])
    assert math.isnan(store.get_run(run_id).data.metrics["m"])
    assert store.get_metric_history(run_id, "m")[0].value == 0.5


def test_large_int64_steps_round_trip(store: AbstractStore) -> None:
    """Steps at the int64 limits (and beyond float precision) are stored exactly."""
    run_id = _run(store, _exp(store))
    steps = [INT64_MAX, INT64_MIN, 2**53 + 1, 0, -1]
    store.log_batch(run_id, metrics=[Metric("m", float(i), T0, s) for i, s in enumerate(steps)])
    history = store.get_metric_history(run_id, "m")
    assert [m.step for m in history] == sorted(steps)
    assert all(type(m.step) is int for m in history)
    assert store.get_run(run_id).data.metrics["m"] == 0.0  # the point logged at INT64_MAX
    store.log_batch(run_id, metrics=[Metric("big", 1.0, INT64_MAX, 1)])
    assert store.get_metric_history(run_id, "big")[0].timestamp == INT64_MAX


# --------------------------------------------------------------------------- inputs


def test_log_inputs_dedupes_and_keeps_order(store: AbstractStore) -> None:
    """Same (name, digest, context) is stored once; first-seen order is kept."""
    run_id = _run(store, _exp(store))
    a = DatasetInput("train", "d1", "training", (100, 4), {"x": "float64", "y": "int64"}, "a.csv")
    b = DatasetInput("test", "d2", "evaluation", (20, 4), {"x": "float64"}, "")
    a_other_context = DatasetInput("train", "d1", "evaluation", (100, 4), {}, "")
    a_new_digest = DatasetInput("train", "d9", "training", (101, 4), {}, "")
    a_again = DatasetInput("train", "d1", "training", (1,), {"changed": "str"}, "elsewhere")
    store.log_inputs(run_id, [a, b, a])
    store.log_inputs(run_id, [a_again, a_other_context, b, a_new_digest])
    inputs = store.get_run(run_id).inputs
    assert inputs == (a, b, a_other_context, a_new_digest)
    assert inputs[0].shape == (100, 4) and dict(inputs[0].schema) == {"x": "float64", "y": "int64"}


def test_log_inputs_unknown_run_raises_not_found(store: AbstractStore) -> None:
    """Inputs for a run that does not exist are NotFound."""
    _exp(store)
    with pytest.raises(NotFound):
        store.log_inputs(_new_id(), [DatasetInput("d", "x", "training")])


# --------------------------------------------------------------------------- search: dataset

# Runs by start time (T0 + 1000 * i); the default order is start_time DESC:
DEFAULT_ORDER = ["other", "tmp_1", "delta_x", "gamma", "Alpha-2", "beta", "alpha"]


def _populate(store: AbstractStore) -> dict[str, str]:
    """A small dataset exercising every filter feature; returns names -> ids."""
    e1 = _exp(store, "e1")
    e2 = _exp(store, "e2")
    ids: dict[str, str] = {"e1": e1, "e2": e2}

    def add(
        name: str,
        i: int,
        exp: str = e1,
        params: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        status: RunStatus | None = RunStatus.FINISHED,
        parent: str | None = None,
    ) -> None:
        run_id = _run(store, exp, name, T0 + 1000 * i, parent_run_id=ids.get(parent or ""))
        store.log_batch(
            run_id,
            metrics=[Metric(k, v, T0, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, v) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in (tags or {}).items()],
        )
        if status is not None:
            store.end_run(run_id, status, T0 + 1000 * i + 500)
        ids[name] = run_id

    add(
        "alpha",
        1,
        params={"model": "rf", "n": "100", "lr": "0.1"},
        metrics={"acc": 0.9, "loss": 0.3, "val loss": 0.25},
        tags={"stage": "prod", "team name": "core"},
    )
    add(
        "beta",
        2,
        params={"model": "lgbm", "n": "20", "lr": "1e-2"},
        metrics={"acc": 0.8, "loss": 0.5},
        tags={"stage": "dev"},
        status=RunStatus.FAILED,
    )
    add(
        "Alpha-2",
        3,
        params={"model": "RF", "n": "abc"},
        metrics={"acc": math.nan, "loss": 0.1},
        status=None,
    )
    add(
        "gamma",
        4,
        metrics={"acc": math.inf, "loss": -math.inf},
        tags={"stage": "prod"},
        parent="alpha",
    )
    add("delta_x", 5, params={"model": "rf", "n": "9"}, status=RunStatus.KILLED, parent="alpha")
    add("tmp_1", 6, params={"model": "it's"}, metrics={"acc": 0.95}, tags={"stage": "test"})
    add("other", 7, exp=e2, params={"model": "rf"}, metrics={"acc": 0.99})
    return ids


def _keep(*names: str) -> list[str]:
    """``names`` in the default order (start_time DESC)."""
    return [n for n in DEFAULT_ORDER if n in names]


SEARCH_CASES: list[tuple[str, list[str]]] = [
    ("", DEFAULT_ORDER),
    ("   ", DEFAULT_ORDER),
    # metrics
    ("metrics.acc > 0.85", _keep("other", "tmp_1", "gamma", "alpha")),
    ("metrics.acc <= 0.9", _keep("alpha", "beta")),
    ("metrics.acc = 0.8", ["beta"]),
    ("metrics.acc != 0.8", _keep("other", "tmp_1", "gamma", "alpha")),
    ("metrics.acc <> 0.8", _keep("other", "tmp_1", "gamma", "alpha")),
    ("metrics.acc IS NULL", _keep("delta_x", "Alpha-2")),
    ("metrics.acc IS NOT NULL", _keep("other", "tmp_1", "gamma", "beta", "alpha")),
    ("metrics.acc > 1e308", ["gamma"]),
    ("metrics.loss < 0", ["gamma"]),
    ("metrics.loss >= 0.1", _keep("Alpha-2", "beta", "alpha")),
    ("metrics.acc IN (0.8, 0.9)", _keep("beta", "alpha")),
    ("metrics.acc NOT IN (0.8, 0.9)", _keep("other", "tmp_1", "gamma")),
    ("metrics.`val loss` < 0.3", ["alpha"]),
    ('metrics."val loss" < 0.3', ["alpha"]),
    ("metrics.never > 0", []),
    ("metrics.never IS NULL", DEFAULT_ORDER),
    # params: strings and numbers
    ("params.model = 'rf'", _keep("other", "delta_x", "alpha")),
    ("params.model != 'rf'", _keep("tmp_1", "Alpha-2", "beta")),
    ("params.model = 'it''s'", ["tmp_1"]),
    ('params.model = "it\'s"', ["tmp_1"]),
    ("params.n >= 20", _keep("beta", "alpha")),
    ("params.n >= '20'", _keep("delta_x", "Alpha-2", "beta")),
    ("params.n < 50", _keep("delta_x", "beta")),
    ("params.n IN (9, 100)", _keep("delta_x", "alpha")),
    ("params.n IN ('9', '100')", _keep("delta_x", "alpha")),
    ("params.lr = 0.01", ["beta"]),
    ("params.lr > 0.05", ["alpha"]),
    ("params.model IN ('rf', 'lgbm')", _keep("other", "delta_x", "beta", "alpha")),
    ("params.model NOT IN ('rf', 'lgbm')", _keep("tmp_1", "Alpha-2")),
    ("params.model IS NULL", ["gamma"]),
    ("params.`model` = 'rf' AND metrics.acc >= 0.99", ["other"]),
    # tags
    ("tags.stage = 'prod'", _keep("gamma", "alpha")),
    ("tags.`team name` = 'core'", ["alpha"]),
    ("tags.stage IS NULL", _keep("other", "delta_x", "Alpha-2")),
    ("tags.stage > 1", []),
    # attributes
    ("status = 'FINISHED'", _keep("other", "tmp_1", "gamma", "alpha")),
    ("attributes.status = 'RUNNING'", ["Alpha-2"]),
    ("status = 'running'", []),
    ("attributes.status IN ('FAILED', 'KILLED')", _keep("delta_x", "beta")),
    ("status NOT IN ('FINISHED')", _keep("delta_x", "Alpha-2", "beta")),
    ("run_name = 'beta'", ["beta"]),
    ("attributes.run_name != 'beta'", [n for n in DEFAULT_ORDER if n != "beta"]),
    ("parent_run_id IS NULL", _keep("other", "tmp_1", "Alpha-2", "beta", "alpha")),
    ("parent_run_id IS NOT NULL", _keep("delta_x", "gamma")),
    ("parent_run_id = '{alpha}'", _keep("delta_x", "gamma")),
    ("run_id = '{beta}'", ["beta"]),
    ("experiment_id = '{e2}'", ["other"]),
    (f"attributes.start_time > {T0 + 3000}", _keep("other", "tmp_1", "delta_x", "gamma")),
    (f"start_time <= {T0 + 2000}", _keep("beta", "alpha")),
    ("end_time IS NULL", ["Alpha-2"]),
    (f"end_time > {T0 + 5000}", _keep("other", "tmp_1", "delta_x")),
    # LIKE / ILIKE
    ("run_name LIKE 'alpha%'", ["alpha"]),
    ("run_name ILIKE 'alpha%'", _keep("Alpha-2", "alpha")),
    ("run_name LIKE 'ALPHA%'", []),
    ("run_name LIKE '%a_x'", ["delta_x"]),
    ("run_name LIKE '_eta'", ["beta"]),
    ("run_name NOT LIKE '%a%'", _keep("other", "tmp_1")),
    ("run_name NOT ILIKE '%A%'", _keep("other", "tmp_1")),
    ("params.model LIKE 'r%'", _keep("other", "delta_x", "alpha")),
    ("params.model ILIKE 'r%'", _keep("other", "delta_x", "Alpha-2", "alpha")),
    ("params.model NOT LIKE 'r%'", _keep("tmp_1", "Alpha-2", "beta")),
    ("tags.stage NOT ILIKE 'PROD'", _keep("tmp_1", "beta")),
    # AND / OR / NOT and parentheses
    ("metrics.acc > 0.85 AND params.model = 'rf'", _keep("other", "alpha")),
    ("metrics.acc < 0.85 OR tags.stage = 'test'", _keep("tmp_1", "beta")),
    ("NOT params.model = 'rf'", _keep("tmp_1", "gamma", "Alpha-2", "beta")),
    ("NOT metrics.acc > 0.85", _keep("delta_x", "Alpha-2", "beta")),
    ("NOT params.model LIKE 'r%'", _keep("tmp_1", "gamma", "Alpha-2", "beta")),
    ("NOT params.n IN (9, 100)", _keep("other", "tmp_1", "gamma", "Alpha-2", "beta")),
    ("not not status = 'RUNNING'", ["Alpha-2"]),
    (
        "(status = 'FINISHED' OR status = 'FAILED') AND NOT tags.stage = 'prod'",
        _keep("other", "tmp_1", "beta"),
    ),
    (
        "status = 'FINISHED' OR status = 'FAILED' AND tags.stage = 'dev'",
        _keep("other", "tmp_1", "gamma", "beta", "alpha"),
    ),
    ("(status = 'FINISHED' OR status = 'FAILED') AND tags.stage = 'dev'", ["beta"]),
    (
        "((metrics.loss < 0.2) or (params.n < 10)) and not (run_name = 'gamma')",
        _keep("delta_x", "Alpha-2"),
    ),
    ("run_name != 'alpha' and run_name ILIKE '%lpha%'", ["Alpha-2"]),
]


@pytest.mark.parametrize(("filter_string", "expected"), SEARCH_CASES)
def test_search_runs_filter(store: AbstractStore, filter_string: str, expected: list[str]) -> None:
    """Each filter selects exactly the expected runs, in the default order, on every store."""
    ids = _populate(store)
    runs, token = store.search_runs(filter_string=filter_string.format(**ids))
    assert _names(runs) == expected
    assert token is None


ORDER_CASES: list[tuple[list[str] | None, list[str]]] = [
    (None, DEFAULT_ORDER),
    ([], DEFAULT_ORDER),
    (["start_time DESC"], DEFAULT_ORDER),
    (["attributes.start_time ASC"], DEFAULT_ORDER[::-1]),
    (
        ["metrics.acc DESC"],
        ["gamma", "other", "tmp_1", "alpha", "beta", "delta_x", "Alpha-2"],
    ),
    (
        ["metrics.acc"],
        ["beta", "alpha", "tmp_1", "other", "gamma", "delta_x", "Alpha-2"],
    ),
    (
        ["metrics.`val loss` DESC"],
        ["alpha", "other", "tmp_1", "delta_x", "gamma", "Alpha-2", "beta"],
    ),
    (
        ["params.model"],
        ["Alpha-2", "tmp_1", "beta", "other", "delta_x", "alpha", "gamma"],
    ),
    (
        ["params.model DESC", "metrics.acc ASC"],
        ["alpha", "other", "delta_x", "beta", "tmp_1", "Alpha-2", "gamma"],
    ),
    (
        ["tags.stage", "start_time ASC"],
        ["beta", "alpha", "gamma", "tmp_1", "Alpha-2", "delta_x", "other"],
    ),
    (
        ["run_name"],
        ["Alpha-2", "alpha", "beta", "delta_x", "gamma", "other", "tmp_1"],
    ),
    (
        ["status DESC", "run_name ASC"],
        ["Alpha-2", "delta_x", "alpha", "gamma", "other", "tmp_1", "beta"],
    ),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDER_CASES)
def test_search_runs_order_by(
    store: AbstractStore, order_by: list[str] | None, expected: list[str]
) -> None:
    """order_by sorts by each key in turn; missing values last; ties by start_time DESC."""
    _populate(store)
    runs, _ = store.search_runs(order_by=order_by)
    assert _names(runs) == expected


@pytest.mark.parametrize(
    "order_by", [["metrics.acc sideways"], [""], ["bogus_attribute"], ["metrics.acc DESC x"]]
)
def test_search_runs_bad_order_by(store: AbstractStore, order_by: list[str]) -> None:
    """A malformed order_by entry is InvalidArgument."""
    _populate(store)
    with pytest.raises(InvalidArgument, match="order_by"):
        store.search_runs(order_by=order_by)


@pytest.mark.parametrize(
    "bad", ["params.model = rf", "metrics.acc > ", "nope.x = 1", "(status = 'x'"]
)
def test_search_runs_bad_filter(store: AbstractStore, bad: str) -> None:
    """A malformed filter is InvalidArgument from every store."""
    _populate(store)
    with pytest.raises(InvalidArgument):
        store.search_runs(filter_string=bad)


@pytest.mark.parametrize("order_by", [None, ["metrics.acc DESC"], ["params.model", "run_name"]])
def test_pagination_covers_every_run_once(store: AbstractStore, order_by: list[str] | None) -> None:
    """Pages of 3 list every run exactly once, in the same order as one big page."""
    _populate(store)
    everything, token = store.search_runs(order_by=order_by)
    assert token is None and len(everything) == 7
    seen: list[str] = []
    pages = 0
    token = None
    while True:
        page, token = store.search_runs(order_by=order_by, max_results=3, page_token=token)
        pages += 1
        assert 1 <= len(page) <= 3
        seen.extend(r.info.run_id for r in page)
        if token is None:
            break
    assert pages == 3
    assert seen == [r.info.run_id for r in everything]


def test_pagination_exact_fit_has_no_next_page(store: AbstractStore) -> None:
    """When the last page is exactly full there is no next-page token."""
    _populate(store)
    page, token = store.search_runs(max_results=7)
    assert len(page) == 7 and token is None
    page, token = store.search_runs(max_results=6)
    assert len(page) == 6 and token is not None
    rest, token = store.search_runs(max_results=6, page_token=token)
    assert _names(rest) == ["alpha"] and token is None


def test_page_token_from_another_query_is_refused(store: AbstractStore) -> None:
    """A token only continues the search it came from: other filter/order/experiments refused."""
    ids = _populate(store)
    _, token = store.search_runs(filter_string="status != 'x'", max_results=2)
    assert token is not None
    with pytest.raises(InvalidArgument, match="page_token"):
        store.search_runs(filter_string="status = 'FINISHED'", max_results=2, page_token=token)
    with pytest.raises(InvalidArgument, match="page_token"):
        store.search_runs(
            filter_string="status != 'x'", order_by=["run_name"], max_results=2, page_token=token
        )
    with pytest.raises(InvalidArgument, match="page_token"):
        store.search_runs(
            [ids["e1"]], filter_string="status != 'x'", max_results=2, page_token=token
        )
    page, _ = store.search_runs(filter_string="status != 'x'", max_results=2, page_token=token)
    assert _names(page) == DEFAULT_ORDER[2:4]


@pytest.mark.parametrize("token", ["garbage", "!!!", "eyJ4IjogMX0=", "e30="])
def test_bad_page_token_is_refused(store: AbstractStore, token: str) -> None:
    """A malformed page token is InvalidArgument."""
    _populate(store)
    with pytest.raises(InvalidArgument, match="page_token"):
        store.search_runs(page_token=token)


@pytest.mark.parametrize("bad", [0, -1, MAX_RESULTS_LIMIT + 1, 2.5, True, "10"])
def test_max_results_bounds(store: AbstractStore, bad: object) -> None:
    """max_results must be an int in 1..MAX_RESULTS_LIMIT."""
    _populate(store)
    with pytest.raises(InvalidArgument, match="max_results"):
        store.search_runs(max_results=bad)  # type: ignore[arg-type]


def test_max_results_limits_are_accepted(store: AbstractStore) -> None:
    """1 and MAX_RESULTS_LIMIT are valid page sizes."""
    _populate(store)
    assert len(store.search_runs(max_results=1)[0]) == 1
    assert len(store.search_runs(max_results=MAX_RESULTS_LIMIT)[0]) == 7


def test_search_runs_experiment_ids(store: AbstractStore) -> None:
    """experiment_ids restricts the search; None means all; unknown ids match nothing."""
    ids = _populate(store)
    assert _names(store.search_runs([ids["e1"]])[0]) == DEFAULT_ORDER[1:]
    assert _names(store.search_runs([ids["e2"]])[0]) == ["other"]
    assert _names(store.search_runs([ids["e2"], ids["e1"]])[0]) == DEFAULT_ORDER
    assert _names(store.search_runs(None)[0]) == DEFAULT_ORDER
    assert store.search_runs([]) == ([], None)
    assert store.search_runs(["999"]) == ([], None)
    assert store.search_runs(["nope"]) == ([], None)
    assert store.search_runs(["0" + ids["e2"]]) == ([], None)


def test_search_returns_full_runs(store: AbstractStore) -> None:
    """Runs from search carry the same info and data as get_run."""
    ids = _populate(store)
    for run in store.search_runs()[0]:
        assert run.info.run_id == ids[run.info.run_name]
        fetched = store.get_run(run.info.run_id)
        assert run.info == fetched.info
        assert dict(run.data.params) == dict(fetched.data.params)
        assert dict(run.data.tags) == dict(fetched.data.tags)
        assert run.data.metrics.keys() == fetched.data.metrics.keys()


def test_deleted_runs_are_hidden_unless_asked(store: AbstractStore) -> None:
    """A soft-deleted run leaves search results; include_deleted brings it back; restore works."""
    ids = _populate(store)
    store.set_run_lifecycle(ids["beta"], deleted=True)
    assert store.get_run(ids["beta"]).info.lifecycle_stage is LifecycleStage.DELETED
    assert "beta" not in _names(store.search_runs()[0])
    assert "beta" not in _names(store.search_runs(filter_string="status = 'FAILED'")[0])
    with_deleted, _ = store.search_runs(include_deleted=True)
    assert _names(with_deleted) == DEFAULT_ORDER
    store.set_run_lifecycle(ids["beta"], deleted=False)
    assert store.get_run(ids["beta"]).info.lifecycle_stage is LifecycleStage.ACTIVE
    assert _names(store.search_runs()[0]) == DEFAULT_ORDER


def test_set_run_lifecycle_unknown_run(store: AbstractStore) -> None:
    """Deleting or restoring a run that does not exist is NotFound."""
    _exp(store)
    with pytest.raises(NotFound):
        store.set_run_lifecycle(_new_id(), deleted=True)


# --------------------------------------------------------------------------- dead runs


def test_run_of_exited_local_process_reads_as_killed(store: AbstractStore) -> None:
    """A RUNNING run owned by an exited process on this host is KILLED at its last beat."""
    exp = _exp(store)
    beat = Heartbeat(pid=_exited_pid(), host=hb.host_name(), pid_start="", time=T0 + 777)
    run_id = _run(store, exp, "dead", heartbeat=beat)
    runs, _ = store.search_runs([exp])
    assert [(r.info.run_name, r.info.status, r.info.end_time) for r in runs] == [
        ("dead", RunStatus.KILLED, T0 + 777)
    ]
    killed, _ = store.search_runs([exp], "status = 'KILLED'")
    assert _names(killed) == ["dead"]
    run = store.get_run(run_id)
    assert run.info.status is RunStatus.KILLED
    assert run.info.end_time == T0 + 777
    assert run.info.heartbeat is None
    assert str(beat.pid) in run.data.tags[STATUS_REASON_TAG]
    with pytest.raises(InvalidArgument):
        store.log_batch(run_id, metrics=[Metric("m", 1.0, T0)])


def test_dead_run_found_by_get_run_first(store: AbstractStore) -> None:
    """get_run on a dead run persists KILLED: a later search agrees."""
    exp = _exp(store)
    beat = Heartbeat(pid=_exited_pid(), host=hb.host_name(), pid_start="", time=T0 + 5)
    run_id = _run(store, exp, "dead", heartbeat=beat)
    assert store.get_run(run_id).info.status is RunStatus.KILLED
    (run,), _ = store.search_runs([exp])
    assert (run.info.status, run.info.end_time) == (RunStatus.KILLED, T0 + 5)
    assert STATUS_REASON_TAG in run.data.tags


def test_reused_pid_counts_as_dead(store: AbstractStore) -> None:
    """A live pid whose start marker differs (pid reuse) is a dead owner."""
    exp = _exp(store)
    parent = Heartbeat(pid=os.getppid(), host=hb.host_name(), pid_start="bogus", time=T0)
    run_id = _run(store, exp, "reused", heartbeat=parent)
    assert store.get_run(run_id).info.status is RunStatus.KILLED


def test_run_of_this_process_stays_running(store: AbstractStore) -> None:
    """A run whose heartbeat is this process stays RUNNING, however old the beat."""
    exp = _exp(store)
    beat = hb.current_heartbeat()
    old = Heartbeat(beat.pid, beat.host, beat.pid_start, time=T0)
    run_id = _run(store, exp, "alive", heartbeat=old)
    assert store.get_run(run_id).info.status is RunStatus.RUNNING
    (run,), _ = store.search_runs([exp])
    assert run.info.status is RunStatus.RUNNING and run.info.end_time is None
    assert STATUS_REASON_TAG not in run.data.tags


def test_remote_host_heartbeat_timeout(store: AbstractStore) -> None:
    """On another host: a beat older than the timeout is KILLED, a recent one RUNNING."""
    exp = _exp(store)
    now = hb.now_ms()
    stale_time = now - int(hb.STALE_AFTER_S * 1000) - 60_000
    stale = Heartbeat(pid=4242, host="elsewhere.invalid", pid_start="1", time=stale_time)
    fresh = Heartbeat(pid=4242, host="elsewhere.invalid", pid_start="1", time=now)
    stale_id = _run(store, exp, "stale", heartbeat=stale)
    fresh_id = _run(store, exp, "fresh", heartbeat=fresh)
    runs = {r.info.run_name: r.info for r in store.search_runs([exp])[0]}
    assert runs["stale"].status is RunStatus.KILLED
    assert runs["stale"].end_time == stale_time
    assert runs["fresh"].status is RunStatus.RUNNING
    assert store.get_run(stale_id).info.status is RunStatus.KILLED
    assert store.get_run(fresh_id).info.status is RunStatus.RUNNING


def test_beat_refreshes_running_runs_only(store: AbstractStore) -> None:
    """beat() updates the heartbeat of RUNNING runs and ignores ended or unknown ones."""
    exp = _exp(store)
    first = hb.current_heartbeat()
    running = _run(store, exp, "running", heartbeat=first)
    ended = _run(store, exp, "ended", heartbeat=first)
    store.end_run(ended, RunStatus.FINISHED, T0 + 1)
    later = Heartbeat(first.pid, first.host, first.pid_start, first.time + 10_000)
    store.beat([running, ended, _new_id()], later)
    assert store.get_run(running).info.heartbeat == later
    assert store.get_run(ended).info.heartbeat is None
    assert store.get_run(ended).info.status is RunStatus.FINISHED


# --------------------------------------------------------------------------- artifacts


def test_log_artifact_from_bytes(store: AbstractStore) -> None:
    """Bytes are stored with size, sha256 and a media type from the file name."""
    run_id = _run(store, _exp(store))
    data = b"\x89PNG fake image bytes"
    artifact = store.log_artifact(run_id, "plots/roc.png", data)
    assert artifact.path == "plots/roc.png"
    assert artifact.size == len(data)
    assert artifact.sha256 == _sha(data)
    assert artifact.media_type == "image/png"
    assert store.read_artifact(run_id, "plots/roc.png") == data
    assert store.list_artifacts(run_id) == [artifact]


def test_log_artifact_from_file(store: AbstractStore, tmp_path: Path) -> None:
    """A local file is copied; its bytes and digest are kept; unknown types are octet-stream."""
    run_id = _run(store, _exp(store))
    data = bytes(range(256)) * 50
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    artifact = store.log_artifact(run_id, "model/weights.xyzunknown", source)
    assert (artifact.size, artifact.sha256) == (len(data), _sha(data))
    assert artifact.media_type == "application/octet-stream"
    assert store.read_artifact(run_id, "model/weights.xyzunknown") == data
    json_file = tmp_path / "m.json"
    json_file.write_text('{"a": 1}')
    assert store.log_artifact(run_id, "meta.json", json_file).media_type == "application/json"


def test_log_artifact_missing_source_file(store: AbstractStore, tmp_path: Path) -> None:
    """A source file that does not exist is InvalidArgument and nothing is listed."""
    run_id = _run(store, _exp(store))
    with pytest.raises(InvalidArgument):
        store.log_artifact(run_id, "a.txt", tmp_path / "missing.txt")
    assert store.list_artifacts(run_id) == []


def test_empty_artifact(store: AbstractStore) -> None:
    """A zero-byte artifact is stored and read back."""
    run_id = _run(store, _exp(store))
    artifact = store.log_artifact(run_id, "empty.txt", b"")
    assert (artifact.size, artifact.sha256) == (0, _sha(b""))
    assert artifact.media_type == "text/plain"
    assert store.read_artifact(run_id, "empty.txt") == b""


def test_log_artifact_overwrites(store: AbstractStore) -> None:
    """Writing the same path again replaces the file and its listing."""
    run_id = _run(store, _exp(store))
    store.log_artifact(run_id, "notes.txt", b"first version")
    second = store.log_artifact(run_id, "notes.txt", b"v2")
    assert store.read_artifact(run_id, "notes.txt") == b"v2"
    listed = store.list_artifacts(run_id)
    assert listed == [second]
    assert (listed[0].size, listed[0].sha256) == (2, _sha(b"v2"))


def test_artifact_path_is_normalised(store: AbstractStore) -> None:
    """'./a//b.txt' names the same artifact as 'a/b.txt'."""
    run_id = _run(store, _exp(store))
    artifact = store.log_artifact(run_id, "./a//b.txt", b"x")
    assert artifact.path == "a/b.txt"
    assert store.read_artifact(run_id, "a/b.txt") == b"x"
    assert store.read_artifact(run_id, "a/./b.txt") == b"x"


def test_list_artifacts_sorted_with_prefix(store: AbstractStore) -> None:
    """list_artifacts is sorted by path; prefix is a plain string prefix."""
    run_id = _run(store, _exp(store))
    for path in ("plots2/z.png", "plots/b.png", "model.pkl", "plots/a.png", "plots/sub/c.png"):
        store.log_artifact(run_id, path, path.encode())
    assert [a.path for a in store.list_artifacts(run_id)] == [
        "model.pkl",
        "plots/a.png",
        "plots/b.png",
        "plots/sub/c.png",
        "plots2/z.png",
    ]
    assert [a.path for a in store.list_artifacts(run_id, "plots/")] == [
        "plots/a.png",
        "plots/b.png",
        "plots/sub/c.png",
    ]
    assert [a.path for a in store.list_artifacts(run_id, "plots")][-1] == "plots2/z.png"
    assert store.list_artifacts(run_id, "nothing/") == []


def test_artifacts_are_per_run(store: AbstractStore) -> None:
    """Artifacts of one run are not visible from another."""
    exp = _exp(store)
    first, second = _run(store, exp, "a"), _run(store, exp, "b")
    store.log_artifact(first, "x.txt", b"1")
    assert store.list_artifacts(second) == []
    with pytest.raises(NotFound):
        store.read_artifact(second, "x.txt")


def test_missing_artifact_and_unknown_run(store: AbstractStore) -> None:
    """Reading a missing artifact, or touching artifacts of an unknown run, is NotFound."""
    run_id = _run(store, _exp(store))
    with pytest.raises(NotFound):
        store.read_artifact(run_id, "nope.txt")
    unknown = _new_id()
    with pytest.raises(NotFound):
        store.read_artifact(unknown, "x.txt")
    with pytest.raises(NotFound):
        store.list_artifacts(unknown)
    with pytest.raises(NotFound):
        store.log_artifact(unknown, "x.txt", b"data")


def test_file_and_folder_clash_is_refused(store: AbstractStore) -> None:
    """A path cannot be both a file and a folder, in either order."""
    run_id = _run(store, _exp(store))
    store.log_artifact(run_id, "a", b"file")
    with pytest.raises(InvalidArgument, match="a/b"):
        store.log_artifact(run_id, "a/b", b"nested")
    store.log_artifact(run_id, "x/y", b"nested")
    with pytest.raises(InvalidArgument, match="'x'"):
        store.log_artifact(run_id, "x", b"file")
    assert [a.path for a in store.list_artifacts(run_id)] == ["a", "x/y"]
    assert store.read_artifact(run_id, "a") == b"file"
    assert store.read_artifact(run_id, "x/y") == b"nested"


@pytest.mark.parametrize(
    "bad", ["../x", "/abs", "/etc/passwd", "a/../../b", "a/../b", "..", "a\\b", "\\x", "", "C:x"]
)
def test_unsafe_artifact_paths_are_refused(store: AbstractStore, tmp_path: Path, bad: str) -> None:
    """Traversal, absolute and backslash paths are InvalidArgument and nothing is written."""
    run_id = _run(store, _exp(store))
    before = _files(tmp_path)
    with pytest.raises(InvalidArgument, match="artifact path"):
        store.log_artifact(run_id, bad, b"evil")
    assert _files(tmp_path) == before
    assert store.list_artifacts(run_id) == []
    with pytest.raises(InvalidArgument, match="artifact path"):
        store.read_artifact(run_id, bad)
