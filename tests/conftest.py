"""Shared fixtures: every test gets its own store; no test writes into the checkout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The session-wide MLflow server on PostgreSQL (started on first use only).
from mlflow_server.conftest import mlflow_server  # noqa: F401

import nbmlops.tracking as tracking
from nbmlops.store import forget_stores
from nbmlops.store.base import AbstractStore
from nbmlops.store.memory import MemoryStore
from nbmlops.store.sqlite import SqliteStore


@pytest.fixture(autouse=True)
def _isolated_tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the default store at a fresh temp folder and reset fluent state around each test."""
    store_dir = tmp_path / "default-store"
    monkeypatch.setenv("NBMLOPS_TRACKING_URI", f"sqlite:///{store_dir / 'nbmlops.db'}")
    monkeypatch.delenv("NBMLOPS_EXPERIMENT_NAME", raising=False)
    tracking._reset_for_tests()
    yield store_dir
    tracking._reset_for_tests()
    forget_stores()


@pytest.fixture(params=["memory", "sqlite", "mlflow"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AbstractStore]:
    """Each store implementation in turn: the contract suite runs against all of them.

    ``mlflow`` is the MLflow store on a real ``mlflow server`` backed by PostgreSQL
    (``tests/mlflow_server/conftest.py``), each test under its own name prefix. Tests of
    behaviour MLflow cannot provide expect the store's documented error there. Where
    PostgreSQL or MLflow is missing it skips with the reason, except under CI (fails).
    """
    if request.param == "memory":
        instance: AbstractStore = MemoryStore()
    elif request.param == "mlflow":
        from nbmlops.store.mlflow_store import MlflowStore

        instance = MlflowStore(request.getfixturevalue("mlflow_server").store_uri())
    else:
        instance = SqliteStore(tmp_path / "contract" / "nbmlops.db")
    yield instance
    instance.close()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """A path for a fresh SQLite store file."""
    return tmp_path / "store" / "nbmlops.db"


@pytest.fixture
def ipshell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A real IPython shell with ``%load_ext nbmlops`` done, as notebook ``analysis.ipynb``.

    The session (hooks, runs) is dropped afterwards so tests do not leak runs or hooks.
    """
    from IPython.testing.globalipapp import get_ipython, start_ipython

    from nbmlops.autolog import session as session_module

    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text("{}")
    monkeypatch.setenv("NBMLOPS_NOTEBOOK_PATH", str(notebook))
    shell = start_ipython() or get_ipython()  # start_ipython() answers None after the first call
    assert shell is not None
    session_module.drop()
    shell.run_line_magic("load_ext", "nbmlops")
    yield shell
    session_module.drop()
    shell.run_line_magic("unload_ext", "nbmlops")
    shell.user_ns.pop("_nbmlops_test", None)
