"""Start a private PostgreSQL cluster and a real ``mlflow server`` on it (no pytest here).

Used by the session fixture in ``conftest.py`` and by ``benchmarks/bench_team.py``.

* PostgreSQL: ``initdb`` + ``pg_ctl`` in a temporary folder under /tmp on a free loopback
  port, trust authentication, durability off (throwaway data). PostgreSQL refuses to run as
  root, so as root both run as the ``postgres`` OS user through ``runuser``.
  ``NBMLOPS_TEST_POSTGRES_URI`` (``postgresql://user@host:port/postgres``) uses an existing
  server instead. A database is created for the server and dropped at the end.
* MLflow: ``python -m mlflow server --backend-store-uri postgresql+psycopg2://...
  --artifacts-destination <tmp>`` with gunicorn workers (MLflow's default uvicorn answers a
  keep-alive client ~40 ms late per request on loopback; gunicorn does not) and MLflow's
  background job runner off; ready when ``/health`` answers.

Problems raise :class:`ServerUnavailable` with the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

#: How long the server may take to start (a fresh database runs MLflow's migrations).
STARTUP_TIMEOUT_S = 120.0


class ServerUnavailable(RuntimeError):
    """PostgreSQL or the MLflow server cannot be started here (the message says why)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bindir() -> Path | None:
    """The folder with initdb/pg_ctl (Debian keeps them in /usr/lib/postgresql/<v>/bin)."""

    def version(path: str) -> int:
        part = Path(path).parts[-3]
        return int(part) if part.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclasses.dataclass
class PostgresCluster:
    """A running PostgreSQL reachable at ``host:port`` as ``user`` (trust auth on loopback)."""

    host: str
    port: int
    user: str
    data_dir: Path | None = None
    bindir: Path | None = None
    as_postgres: bool = False

    def uri(self, database: str) -> str:
        """SQLAlchemy URI of ``database`` (psycopg2 driver, as MLflow's extra installs it)."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{database}"

    def pg(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program of this cluster (as ``postgres`` when we are root)."""
        assert self.bindir is not None
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def execute(self, sql: str) -> None:
        """One statement on the ``postgres`` database, autocommit (CREATE/DROP DATABASE)."""
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()


@contextlib.contextmanager
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster for the duration of the block (private, or the external one)."""
    external = os.environ.get("NBMLOPS_TEST_POSTGRES_URI", "").strip()
    if external:
        parts = urlsplit(external)
        yield PostgresCluster(
            parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres"
        )
        return
    bindir = _postgres_bindir()
    if bindir is None:
        raise ServerUnavailable("PostgreSQL's initdb was not found (apt-get install postgresql)")
    as_postgres = os.geteuid() == 0
    if as_postgres and shutil.which("runuser") is None:
        raise ServerUnavailable("as root, starting PostgreSQL needs runuser (util-linux)")
    # Under /tmp (pytest's tmp_path is private to root) so that 'postgres' can enter it.
    root = Path(tempfile.mkdtemp(prefix="nbmlops-pg-"))
    try:
        root.chmod(0o755)
        if as_postgres:
            shutil.chown(root, "postgres", "postgres")
        port = free_port()
        cluster = PostgresCluster("127.0.0.1", port, "postgres", root / "data", bindir, as_postgres)
        init = cluster.pg(
            "initdb", "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        if init.returncode != 0:
            raise ServerUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = root / "postgres.log"
        start = cluster.pg(
            "pg_ctl", "-D", str(root / "data"), "-o", options, "-l", str(log), "-w", "start"
        )
        if start.returncode != 0:
            tail = log.read_text(errors="replace")[-1000:] if log.exists() else ""
            raise ServerUnavailable(f"pg_ctl start failed: {start.stderr.strip()[-500:]} {tail}")
        try:
            yield cluster
        finally:
            cluster.pg("pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclasses.dataclass
class MlflowServer:
    """A running ``mlflow server``: its URL, backend database and artifact folder."""

    url: str
    backend_uri: str
    artifacts: Path
    process: subprocess.Popen[bytes]
    log_file: Path
    _counter: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def new_prefix(self) -> str:
        """A name prefix no other store of this server uses (6 characters: ``t0001-``)."""
        with self._lock:
            return f"t{next(self._counter):04x}-"

    def store_uri(self, prefix: str | None = None) -> str:
        """An ``mlflow+`` URI for this server, scoped to a fresh (or the given) prefix."""
        return f"mlflow+{self.url}?prefix={self.new_prefix() if prefix is None else prefix}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log."""
        return self.log_file.read_text(errors="replace")[-chars:]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(
                f"mlflow server exited with {process.returncode}:\n"
                + log_file.read_text(errors="replace")[-3000:]
            )
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/health", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise ServerUnavailable(
        f"mlflow server not healthy after {STARTUP_TIMEOUT_S:.0f} s:\n"
        + log_file.read_text(errors="replace")[-3000:]
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's own process group (gunicorn and its workers), started by us."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@contextlib.contextmanager
def mlflow_server_on_postgres(
    workdir: Path, workers: int = 4, app_server: str = "gunicorn"
) -> Iterator[MlflowServer]:
    """PostgreSQL + ``mlflow server`` on free loopback ports for the duration of the block.

    ``app_server`` is ``gunicorn`` (default) or ``uvicorn`` (MLflow's own default).
    """
    try:
        import mlflow  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as exc:
        raise ServerUnavailable(
            f"{exc.name} is not installed (pip install -e '.[mlflow]')"
        ) from None
    with postgres() as cluster:
        database = f"nbmlops_test_{uuid.uuid4().hex[:12]}"
        try:
            cluster.execute(f'CREATE DATABASE "{database}"')
        except Exception as exc:  # psycopg2.Error: no server there, refused login, ...
            raise ServerUnavailable(
                f"cannot create a database on PostgreSQL at {cluster.host}:{cluster.port}: "
                f"{str(exc).strip()[:300]}"
            ) from None
        try:
            artifacts = workdir / "artifacts"
            artifacts.mkdir(parents=True, exist_ok=True)
            log_file = workdir / "server.log"
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            backend = cluster.uri(database)
            env = {
                **os.environ,
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "true",
                "PYTHONWARNINGS": "ignore",
            }
            cmd = [
                sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", backend,
                "--artifacts-destination", str(artifacts),
                "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers),
            ]  # fmt: skip
            if app_server == "gunicorn":
                cmd += ["--gunicorn-opts", "--log-level warning --timeout 120"]
            else:
                cmd += ["--uvicorn-opts", "--log-level warning"]
            with open(log_file, "wb") as log:
                process = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            try:
                _wait_healthy(url, process, log_file)
                yield MlflowServer(url, backend, artifacts, process, log_file)
            finally:
                _stop(process)
        finally:
            with contextlib.suppress(Exception):
                cluster.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
