"""Choosing a store from a URI (design doc §4).

* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (SQLAlchemy spelling,
  as MLflow users know it); a plain filesystem path to a ``.db`` file or to a folder (which
  then holds ``nbmlops.db``) means the same.
* ``memory:`` — a process-local store (tests, scratch); ``memory:NAME`` for separate ones.
* ``mlflow+http(s)://...`` — an MLflow tracking server (team scale, :mod:`.mlflow_store`).

With no URI, :func:`default_tracking_uri` applies the default-location rule:
``NBMLOPS_TRACKING_URI`` if set; else the first ``.nbmlops/`` folder found walking up from
the start directory (the notebook's folder, or the working directory); else a new
``.nbmlops/`` in the start directory itself.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from nbmlops.errors import InvalidArgument
from nbmlops.store.base import AbstractStore

ENV_TRACKING_URI = "NBMLOPS_TRACKING_URI"
STORE_DIRNAME = ".nbmlops"
DB_FILENAME = "nbmlops.db"

_cache: dict[str, AbstractStore] = {}
_cache_lock = threading.Lock()


def find_store_dir(start: str | Path | None = None) -> Path:
    """The ``.nbmlops`` folder for ``start``: the nearest one above it, or a new one in it."""
    origin = Path(start if start is not None else os.getcwd()).expanduser().absolute()
    if origin.is_file():
        origin = origin.parent
    for folder in (origin, *origin.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return origin / STORE_DIRNAME


def default_tracking_uri(start: str | Path | None = None) -> str:
    """The URI used when none was set: the env override or the walk-up rule."""
    env = os.environ.get(ENV_TRACKING_URI, "").strip()
    if env:
        return env
    return f"sqlite:///{find_store_dir(start) / DB_FILENAME}"


def sqlite_path_from_uri(uri: str) -> Path | None:
    """The database path a URI names, or None if the URI is not a SQLite one."""
    if uri.startswith("sqlite:///"):
        rest = uri[len("sqlite:///") :]
        if not rest or rest.startswith("?"):
            raise InvalidArgument(f"tracking URI {uri!r} names no database file")
        return Path(rest.split("?", 1)[0])  # '/abs' keeps its slash; 'rel' stays relative
    if uri.startswith("sqlite:"):
        raise InvalidArgument(
            f"tracking URI {uri!r}: write sqlite:///relative.db or sqlite:////absolute/path.db"
        )
    if uri.startswith("file:"):
        uri = uri[len("file:") :].removeprefix("//")
    if "://" in uri or uri.startswith("memory:"):
        return None
    path = Path(uri).expanduser()
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return path
    if path.is_dir() or not path.suffix:
        return path / DB_FILENAME
    raise InvalidArgument(f"tracking URI {uri!r}: a path must be a folder or end in .db")


def normalize_uri(uri: str) -> str:
    """Canonical spelling of a URI (absolute ``sqlite:////...`` for SQLite ones)."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidArgument(f"tracking URI must be a non-empty string, got {uri!r}")
    uri = uri.strip()
    path = sqlite_path_from_uri(uri)
    if path is not None:
        return f"sqlite:///{path.expanduser().absolute()}"
    if not uri.startswith(("memory:", "mlflow+")):
        raise InvalidArgument(
            f"unknown tracking URI {uri!r}; expected sqlite:///path.db, a folder path, or memory:"
        )
    return uri


def open_store(uri: str) -> AbstractStore:
    """Open a new store for ``uri`` (no caching). Raises InvalidArgument for unknown schemes."""
    uri = normalize_uri(uri)
    if uri.startswith("sqlite:///"):
        from nbmlops.store.sqlite import SqliteStore

        return SqliteStore(uri[len("sqlite:///") :])
    if uri == "memory:" or uri.startswith("memory:"):
        from nbmlops.store.memory import MemoryStore

        return MemoryStore(uri)
    if uri.startswith("mlflow+"):
        from nbmlops.store.mlflow_store import MlflowStore

        return MlflowStore(uri)
    raise InvalidArgument(
        f"unknown tracking URI {uri!r}; expected sqlite:///path.db, a folder path, or memory:"
    )


def resolve_store(uri: str | None = None, start: str | Path | None = None) -> AbstractStore:
    """The shared store for ``uri`` (default rule when None); one instance per URI per process."""
    key = normalize_uri(uri if uri else default_tracking_uri(start))
    with _cache_lock:
        store = _cache.get(key)
        if store is None:
            store = open_store(key)
            _cache[key] = store
        return store


def forget_stores() -> None:
    """Close and drop every cached store (tests; after moving store files)."""
    with _cache_lock:
        for store in _cache.values():
            store.close()
        _cache.clear()
