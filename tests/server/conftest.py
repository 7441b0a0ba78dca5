"""Fixtures for the server-extension tests: a real jupyter_server (pytest-jupyter) with
nbmlops enabled, unauthenticated access off, and a populated store under its root."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import NOTEBOOK, Fetch, Populated, png_bytes

# pytest-jupyter's server fixtures (jp_fetch, jp_serverapp, jp_root_dir, ...) for this
# folder only: its autouse fixtures and collection hooks stay out of the other tests.
from pytest_jupyter.jupyter_server import *  # noqa: F403

from nbmlops.client import Client
from nbmlops.entities import Metric, RunSource


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    """nbmlops enabled, no unauthenticated access (every route must be decorated)."""
    return {
        "ServerApp": {
            # Terminals off: their websocket route would add an auth warning of its own.
            "jpserver_extensions": {"nbmlops.server": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        }
    }


def _new_notebook(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "id": "cell-fit",
                        "metadata": {},
                        "source": "print('fit')",
                        "outputs": [],
                        "execution_count": None,
                    }
                ],
                "metadata": {
                    "kernelspec": {
                        "name": "python3",
                        "display_name": "Python 3",
                        "language": "python",
                    }
                },
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )


@pytest.fixture
def populated(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Populated]:
    """A store at ``<root>/proj/.nbmlops`` as a notebook session would leave it.

    ``proj/analysis.ipynb`` has a session run with three cell runs (params, metric
    histories, artifacts of every kind), two trials under the second cell, a FAILED cell, a
    run with a 5 000-point metric, 250 runs in a ``bulk`` experiment and a registered model
    ``churn`` (v1 @champion, v2 better).
    """
    monkeypatch.delenv("NBMLOPS_TRACKING_URI", raising=False)
    root = Path(jp_root_dir)
    notebook = root / NOTEBOOK
    _new_notebook(notebook)
    store_dir = root / "proj" / ".nbmlops"
    client = Client(f"sqlite:///{store_dir / 'nbmlops.db'}")
    experiment = client.create_experiment("analysis")
    nb_path = str(notebook)
    session = client.create_run(
        experiment,
        "analysis",
        tags={"nbmlops.run_type": "session", "nbmlops.notebook": nb_path},
        source=RunSource(path=nb_path),
        start_time=1_000,
    ).info.run_id
    cells = []
    codes = [
        "model = LogisticRegression(C=1.0)\nmodel.fit(X, y)",
        "model = LogisticRegression(C=10.0)\nmodel.fit(X, y)",
        "forest = RandomForestClassifier()\nforest.fit(X, y)",
    ]
    for index, code in enumerate(codes, start=1):
        run = client.create_run(
            experiment,
            f"cell[{index}]",
            tags={"nbmlops.run_type": "cell", "nbmlops.cell_id": f"cell-{index}"},
            parent_run_id=session,
            start_time=1_000 + index * 10,
            source=RunSource(
                path=nb_path, cell_id=f"cell-{index}", execution_count=index, code=code
            ),
        ).info.run_id
        client.log_param(run, "C", [1.0, 10.0, 1.0][index - 1])
        client.log_param(run, "model", "forest" if index == 3 else "logreg")
        for step in range(3):
            client.log_metric(run, "loss", 1.0 / (step + index), step=step)
        client.log_metric(run, "f1", [0.70, 0.80, 0.75][index - 1])
        client.log_metric(run, "weird", float("nan") if index == 1 else float("inf"))
        cells.append(run)
    first = cells[0]
    client.log_bytes(first, png_bytes(), "figures/figure-1.png")
    client.log_text(first, "a,b\n1,2\n", "data.csv")
    client.log_dict(first, {"features": ["x"]}, "config.json")
    client.log_text(first, "a note", "notes.txt")
    client.log_text(first, "<script>alert(1)</script>", "report.html")
    client.log_text(first, "<svg xmlns='http://www.w3.org/2000/svg'/>", "plot.svg")
    client.log_bytes(first, b"\x00\x01binary", "blob.bin")
    client.log_text(first, "secret", "evil.txt")
    client.log_text(
        first,
        json.dumps(
            {
                "notebook": nb_path,
                "cells": [{"execution_count": 1, "cell_id": "cell-1", "code_sha256": "ab"}],
                "code": {"ab": codes[0]},
            }
        ),
        "nbmlops/lineage.json",
    )
    trials = []
    for t in range(2):
        trial = client.create_run(
            experiment,
            f"trial-{t}",
            tags={"nbmlops.run_type": "trial"},
            parent_run_id=cells[1],
            start_time=1_100 + t,
        ).info.run_id
        client.log_metric(trial, "f1", 0.6 + t / 10)
        client.set_terminated(trial)
        trials.append(trial)
    failed = client.create_run(
        experiment,
        "cell[4]",
        tags={"nbmlops.run_type": "cell", "nbmlops.error": "ValueError: boom"},
        parent_run_id=session,
        start_time=1_200,
        source=RunSource(path=nb_path, cell_id="cell-4", execution_count=4, code="1/0"),
    ).info.run_id
    client.set_terminated(failed, "FAILED")
    long_run = client.create_run(experiment, "long", start_time=1_300).info.run_id
    client.log_batch(
        long_run, metrics=[Metric("curve", float(i % 97), 2_000 + i, i) for i in range(5000)]
    )
    client.set_terminated(long_run)
    for run in cells:
        client.set_terminated(run)
    client.set_terminated(session)
    bulk = client.create_experiment("bulk")
    for i in range(250):
        run = client.create_run(bulk, f"bulk-{i:03d}", start_time=10_000 + i).info.run_id
        client.log_metric(run, "score", i / 250)
        client.set_terminated(run)
    store = client.store
    store.create_model_version("churn", cells[0], "model")
    store.create_model_version("churn", cells[1], "model")
    client.set_registered_model_alias("churn", "champion", 1)
    client.flush()
    yield Populated(
        root=root,
        store_dir=store_dir,
        notebook=NOTEBOOK,
        experiment_id=experiment,
        session=session,
        cells=cells,
        trials=trials,
        failed=failed,
        long_metric_run=long_run,
        bulk_experiment_id=bulk,
    )
    client.close()


@pytest.fixture
def api(jp_fetch: Any, populated: Populated) -> Fetch:
    """``await api("runs", experiment=...)`` → decoded JSON of a GET (POST with ``body=``),
    for the populated store's notebook unless ``notebook=None`` is passed."""

    async def call(*parts: str, body: Any = None, method: str | None = None, **params: Any) -> Any:
        params.setdefault("notebook", populated.notebook)
        params = {k: v for k, v in params.items() if v is not None}
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["body"] = json.dumps(body) if not isinstance(body, (str, bytes)) else body
        response = await jp_fetch(
            "nbmlops",
            "api",
            *parts,
            method=method or ("POST" if body is not None else "GET"),
            params=params,
            **kwargs,
        )
        return json.loads(response.body)

    return call
