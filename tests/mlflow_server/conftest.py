"""A real MLflow tracking server on a private PostgreSQL cluster, for the whole test session.

``mlflow_server`` (session scope) starts PostgreSQL and ``mlflow server`` on free loopback
ports (see :mod:`servers`: a private cluster run as the ``postgres`` user when the tests run
as root, a database created for the session and dropped afterwards, gunicorn workers), and
stops both at the end of the session.

Tests do not see each other's data: each store they open gets its own name prefix
(``server.store_uri()`` -> ``mlflow+http://127.0.0.1:<port>?prefix=t0001-``), which scopes
experiment and registered model names.

When PostgreSQL or MLflow is missing, tests that need the server are skipped with the reason
on a developer machine and FAIL under ``CI=true`` (``.ci/setup-postgres.sh`` installs
PostgreSQL there; the ``test`` extra installs MLflow).

``tests/conftest.py`` imports the fixture from here so every test folder can use it; no test
lives in this folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from mlflow_server.servers import MlflowServer, ServerUnavailable, mlflow_server_on_postgres


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``): missing services fail instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on PostgreSQL for this session (see the module docstring)."""
    workdir = tmp_path_factory.mktemp("mlflow-server")
    try:
        with mlflow_server_on_postgres(workdir) as server:
            yield server
    except ServerUnavailable as exc:
        message = f"MLflow server tests need PostgreSQL and MLflow: {exc}"
        if in_ci():
            pytest.fail(f"{message} (CI=true: this must work in CI; see .ci/setup-postgres.sh)")
        pytest.skip(message[:1000])
