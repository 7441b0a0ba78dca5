"""nbmlops on a real MLflow server (PostgreSQL backend): MLflow reads what nbmlops wrote.

* Runs logged through nbmlops are ordinary MLflow runs: ``mlflow.search_runs`` and
  ``MlflowClient`` see their names, nesting, params, metric histories, tags and artifacts.
* A model registered through nbmlops loads with nbmlops from the server in another process,
  and MLflow's registry shows its version and alias.
* Every notebook of ``notebooks/`` runs unchanged with ``NBMLOPS_TRACKING_URI`` pointing at
  the server (autolog, registry, comparison, ... whatever the notebooks show).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nbmlops

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _mlflow_client(server: Any) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def test_runs_logged_by_nbmlops_are_plain_mlflow_runs(
    mlflow_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mlflow.search_runs / MlflowClient read runs, nesting, data and artifacts as logged."""
    prefix = mlflow_server.new_prefix()
    nbmlops.set_tracking_uri(mlflow_server.store_uri(prefix))
    nbmlops.set_experiment("interop")
    with nbmlops.start_run(run_name="parent") as parent:
        nbmlops.log_params({"model": "rf", "depth": 3})
        for step in range(5):
            nbmlops.log_metric("loss", 1.0 / (step + 1), step=step)
        nbmlops.set_tag("stage", "dev")
        nbmlops.log_text("hello from nbmlops", "notes/readme.txt")
        with nbmlops.start_run(run_name="child", nested=True) as child:
            nbmlops.log_metric("f1", 0.9)
    parent_id, child_id = parent.info.run_id, child.info.run_id

    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    frame = mlflow.search_runs(experiment_names=[prefix + "interop"])
    rows = {row["tags.mlflow.runName"]: row for _, row in frame.iterrows()}
    assert set(rows) == {"parent", "child"}
    assert rows["parent"]["run_id"] == parent_id
    assert rows["parent"]["status"] == "FINISHED"
    assert (rows["parent"]["params.model"], rows["parent"]["params.depth"]) == ("rf", "3")
    assert rows["parent"]["metrics.loss"] == pytest.approx(0.2)
    assert rows["parent"]["tags.stage"] == "dev"
    assert rows["child"]["tags.mlflow.parentRunId"] == parent_id
    assert rows["child"]["metrics.f1"] == pytest.approx(0.9)

    client = _mlflow_client(mlflow_server)
    run = client.get_run(parent_id)
    assert run.info.run_name == "parent"
    assert run.info.user_id == nbmlops.client.current_user()
    history = client.get_metric_history(parent_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert [f.path for f in client.list_artifacts(parent_id, "notes")] == ["notes/readme.txt"]
    local = client.download_artifacts(parent_id, "notes/readme.txt")
    assert Path(local).read_text() == "hello from nbmlops"
    # nbmlops reads the same runs back, its bookkeeping tags hidden.
    back = nbmlops.get_run(child_id)
    assert back.info.parent_run_id == parent_id
    assert not any(k.startswith(("nbmlops.store.", "mlflow.")) for k in back.data.tags)


def test_model_registered_through_nbmlops_loads_from_the_server(
    mlflow_server: Any, tmp_path: Path
) -> None:
    """log_model + register + alias on the server; load_model by alias in a new process."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    prefix = mlflow_server.new_prefix()
    uri = mlflow_server.store_uri(prefix)
    nbmlops.set_tracking_uri(uri)
    nbmlops.set_experiment("models")
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with nbmlops.start_run(run_name="train"):
        info = nbmlops.log_model(model, name="model", input_example=X.head())
    version = nbmlops.register_model(info.model_uri, "iris")
    nbmlops.get_client().set_registered_model_alias("iris", "champion", version.version)
    expected = model.predict(X).tolist()

    X.to_csv(tmp_path / "X.csv", index=False)
    script = (
        "import json, sys, pandas, nbmlops\n"
        "m = nbmlops.load_model('models:/iris@champion')\n"
        f"X = pandas.read_csv({str(tmp_path / 'X.csv')!r})\n"
        "print(json.dumps([int(v) for v in m.predict(X)]))\n"
    )
    env = {**os.environ, "NBMLOPS_TRACKING_URI": uri}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected

    client = _mlflow_client(mlflow_server)
    registered = client.get_model_version_by_alias(prefix + "iris", "champion")
    assert int(registered.version) == version.version == 1
    assert registered.run_id == info.run_id
    assert registered.source.endswith("/model")
    assert client.get_registered_model(prefix + "iris").aliases == {"champion": "1"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_against_the_mlflow_server(
    notebook: Path, mlflow_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebook executes without an error with the MLflow server as its store."""
    import nbformat
    from nbclient import NotebookClient

    prefix = mlflow_server.new_prefix()
    monkeypatch.setenv("NBMLOPS_TRACKING_URI", mlflow_server.store_uri(prefix))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("NBMLOPS_NOTEBOOK_PATH", str(tmp_path / notebook.name))
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            if output.get("name") == "stderr":
                assert "nbmlops" not in output.get("text", ""), output["text"]
    experiments = [
        e.name
        for e in _mlflow_client(mlflow_server).search_experiments()
        if e.name.startswith(prefix)
    ]
    assert experiments, "the notebook logged nothing to the server"


def test_unreachable_server_is_a_clear_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """No server: StoreError naming it; the client keeps its buffered records for later."""
    pytest.importorskip("mlflow")
    from mlflow_server.servers import free_port

    from nbmlops.client import Client
    from nbmlops.errors import StoreError
    from nbmlops.store.mlflow_store import MlflowStore

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"http://127.0.0.1:{free_port()}"
    store = MlflowStore(f"mlflow+{url}")
    with pytest.raises(StoreError, match=f"MLflow server at {url} is unreachable"):
        store.search_experiments()
    client = Client(store=store)
    client._writable["0" * 32] = {}  # a run this client knows to be RUNNING
    client.log_metric("0" * 32, "loss", 0.5)
    with pytest.raises(StoreError, match="unreachable"):
        client.flush()
    assert client._pending_records == 1  # kept for the next flush, not dropped
    client._take()  # nothing left for the flush at exit
    client._closed = True
