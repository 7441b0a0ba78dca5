"""``nbmlops sync``: SQLite -> a real MLflow server (on PostgreSQL) -> a new SQLite store.

The round trip must give identical run trees (ids, nesting, names, status, times, source),
params, metric histories (NaN and ±inf included), tags, dataset fingerprints, artifacts
(sha256) and registry entries (versions with their numbers, stages, tags, aliases), and a
second sync must copy nothing.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nbmlops.client import Client
from nbmlops.entities import DatasetInput, Metric, Param, RunTag
from nbmlops.store.base import AbstractStore
from nbmlops.store.mlflow_store import MlflowStore
from nbmlops.store.sqlite import SqliteStore
from nbmlops.sync import ORIGIN_TAG, sync

T0 = 1_700_000_000_000


def _populate(store: AbstractStore) -> dict[str, str]:
    """A notebook-shaped store: a session run, cell runs, a nested grandchild, a model."""
    client = Client(store=store)
    exp = client.get_or_create_experiment("churn").experiment_id
    other = client.get_or_create_experiment("scratch").experiment_id
    ids: dict[str, str] = {}
    session = client.create_run(exp, "session", tags={"nbmlops.run_type": "parent"}).info.run_id
    ids["session"] = session
    for i in range(3):
        run = client.create_run(exp, f"cell-{i}", parent_run_id=session).info.run_id
        ids[f"cell-{i}"] = run
        client.log_batch(
            run,
            metrics=[Metric("loss", 1.0 / (s + 1) + i, T0 + s, s) for s in range(20)]
            + [Metric("odd", v, T0, k) for k, v in enumerate([math.nan, math.inf, -math.inf])],
            params=[Param("model", "rf"), Param("depth", str(3 + i)), Param("big", "x" * 9000)],
            tags=[RunTag("nbmlops.cell_id", f"c{i}"), RunTag("note", "y" * 10_000)],
        )
        client.log_inputs(
            run, [DatasetInput("train", f"d{i}" * 8, "training", (100, 3), {"a": "int64"}, "")]
        )
        client.log_text(run, f"report {i}\n", "reports/summary.txt")
        client.log_bytes(run, bytes(range(256)) * (i + 1), "blobs/data.bin")
        client.set_terminated(run, "FAILED" if i == 2 else "FINISHED")
    grandchild = client.create_run(exp, "trial", parent_run_id=ids["cell-1"]).info.run_id
    ids["trial"] = grandchild
    client.log_metric(grandchild, "f1", 0.8)
    client.set_terminated(grandchild)
    scratch = client.create_run(other, "scratch-run").info.run_id
    ids["scratch"] = scratch
    client.set_terminated(scratch)
    client.delete_run(scratch)
    # Registry: three versions, the middle one deleted (numbers must stay 1 and 3), aliases.
    client.flush()
    for i in range(3):
        store.create_model_version("churn-model", ids[f"cell-{i}"], "model", tags={"i": str(i)})
    store.delete_model_version("churn-model", 2)
    store.update_registered_model("churn-model", "predicts churn")
    store.set_registered_model_tag("churn-model", "team", "growth")
    store.set_aliases("churn-model", {"champion": 3, "challenger": 1})
    store.set_model_version_stage("churn-model", 3, "Production")
    return ids


def _snapshot(store: AbstractStore) -> dict[str, Any]:
    """Everything the round trip must keep, keyed by run id (sync-provenance tags left out)."""
    runs: dict[str, Any] = {}
    for experiment in store.search_experiments():
        page, _ = store.search_runs([experiment.experiment_id], include_deleted=True)
        for run in page:
            info = run.info
            histories = {
                key: [
                    (m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value)
                    for m in store.get_metric_history(info.run_id, key)
                ]
                for key in run.data.metrics
            }
            runs[info.run_id] = {
                "experiment": experiment.name,
                "name": info.run_name,
                "parent": info.parent_run_id,
                "status": info.status,
                "start": info.start_time,
                "end": info.end_time,
                "user": info.user,
                "deleted": info.lifecycle_stage.value,
                "source": info.source,
                "params": dict(run.data.params),
                "tags": {k: v for k, v in run.data.tags.items() if k != ORIGIN_TAG},
                "metrics": histories,
                "inputs": run.inputs,
                "artifacts": [
                    (a.path, a.size, a.sha256) for a in store.list_artifacts(info.run_id)
                ],
            }
    models = {}
    for model in store.search_registered_models():
        models[model.name] = {
            "description": model.description,
            "tags": dict(model.tags),
            "aliases": dict(model.aliases),
            "latest": model.latest_version,
            "versions": [
                (v.version, v.source_run_id, v.model_path, v.description, dict(v.tags), v.stage)
                for v in store.search_model_versions(model.name)
            ],
        }
    return {"runs": runs, "models": models}


def test_round_trip_sqlite_mlflow_sqlite(mlflow_server: Any, tmp_path: Path) -> None:
    """SQLite -> MLflow server -> new SQLite keeps everything; a second sync copies nothing."""
    local = SqliteStore(tmp_path / "local" / "nbmlops.db")
    ids = _populate(local)
    team = MlflowStore(mlflow_server.store_uri())
    first = sync(local, team)
    assert first.runs_created == len(ids) and first.warnings == []
    assert first.versions_created == 2 and first.artifacts == 6
    again = sync(local, team)
    assert not again.copied_anything, again.lines()
    assert again.runs_unchanged == len(ids)

    fresh = SqliteStore(tmp_path / "fresh" / "nbmlops.db")
    back = sync(team, fresh)
    assert back.runs_created == len(ids) and back.warnings == []
    assert not sync(team, fresh).copied_anything
    original, copy = _snapshot(local), _snapshot(fresh)
    assert copy["runs"].keys() == original["runs"].keys() == set(ids.values())
    for run_id, expected in original["runs"].items():
        assert copy["runs"][run_id] == expected, expected["name"]
    assert copy["models"] == original["models"]
    assert copy["models"]["churn-model"]["aliases"] == {"champion": 3, "challenger": 1}
    # On the server, each copy names its original run.
    on_server = _snapshot(team)["runs"]
    assert sorted(r["name"] for r in on_server.values()) == sorted(
        r["name"] for r in original["runs"].values()
    )
    for store in (local, team, fresh):
        store.close()


def test_sync_completes_a_run_that_was_still_running(mlflow_server: Any, tmp_path: Path) -> None:
    """A run synced while RUNNING gets its later points, tags, artifacts and end next time."""
    local = SqliteStore(tmp_path / "local" / "nbmlops.db")
    team = MlflowStore(mlflow_server.store_uri())
    client = Client(store=local)
    exp = client.get_or_create_experiment("live").experiment_id
    run = client.create_run(exp, "long-training").info.run_id
    client.log_batch(run, metrics=[Metric("loss", 1.0, T0, 0)], params=[Param("lr", "0.1")])
    client.flush()
    assert sync(local, team).runs_created == 1
    client.log_batch(run, metrics=[Metric("loss", 0.5, T0 + 1, 1)], tags=[RunTag("k", "v")])
    client.log_text(run, "done", "final.txt")
    client.set_terminated(run, "FINISHED", end_time=T0 + 99)
    report = sync(local, team)
    counts = (report.runs_updated, report.metric_points, report.tags, report.artifacts)
    assert counts == (1, 1, 1, 1)
    (copy,), _ = team.search_runs([team.get_experiment_by_name("live").experiment_id])
    assert copy.info.status.value == "FINISHED" and copy.info.end_time == T0 + 99
    assert [m.value for m in team.get_metric_history(copy.info.run_id, "loss")] == [1.0, 0.5]
    assert copy.data.tags[ORIGIN_TAG] == run
    assert not sync(local, team).copied_anything


def test_sync_cli_one_experiment(mlflow_server: Any, tmp_path: Path) -> None:
    """``nbmlops sync SRC DST --experiment E`` copies that experiment only and says so."""
    db = tmp_path / "cli" / "nbmlops.db"
    local = SqliteStore(db)
    _populate(local)
    local.close()
    target = mlflow_server.store_uri()
    command = [sys.executable, "-m", "nbmlops.cli", "sync", f"sqlite:///{db}", target]
    done = subprocess.run(
        [*command, "--experiment", "scratch"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "runs: 1 created" in done.stdout
    team = MlflowStore(target)
    assert [e.name for e in team.search_experiments()] == ["scratch"]
    assert team.search_registered_models() == []
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "runs: 5 created, 0 updated, 1 unchanged" in again.stdout
    third = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert "nothing to copy" in third.stdout, third.stdout


def test_sync_refuses_same_store_and_unknown_experiment(tmp_path: Path) -> None:
    """Source and destination must differ; an unknown experiment is NotFound, nothing copied."""
    from nbmlops.errors import InvalidArgument, NotFound

    local = SqliteStore(tmp_path / "a" / "nbmlops.db")
    other = SqliteStore(tmp_path / "b" / "nbmlops.db")
    with pytest.raises(InvalidArgument, match="same store"):
        sync(local, local)
    with pytest.raises(NotFound, match="'ghost'"):
        sync(local, other, experiments=["ghost"])
    assert other.search_experiments() == []
