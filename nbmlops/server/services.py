"""What the REST API does, without tornado: store selection, queries, JSON shapes, rules.

Every public method of :class:`ApiService` is a blocking call (the handlers run it in a
thread pool, off the event loop) that returns JSON-compatible data or raises an
:class:`~nbmlops.errors.NbMlopsError` (mapped to 400/404/409 in one place,
:mod:`nbmlops.server.handlers`).

**Which store.** A request names the notebook it is about (``notebook=<path relative to the
server root>``): the store is then the one that notebook's kernel uses — the design doc's
walking rule from the notebook's folder (``NBMLOPS_TRACKING_URI`` in the server's environment
wins, as it does for the kernels the server starts). A request may instead name a store by
the opaque ``store=<id>`` that :meth:`ApiService.stores` lists (the panel's store picker);
ids are only ever handed out for stores found by these rules, so a client cannot point the
server at an arbitrary file. Reading never creates a store: lists come back empty with
``store_exists: false`` and single items are 404 until a kernel writes the first run.

**Views.** Run rows, comparisons, run details and registry views are computed by
:mod:`nbmlops.display.model` (the inline panels' pure model layer) and serialised with
:func:`nbmlops.entities.to_dict`; this module adds paging, bounds and downsampling.

**JSON.** Non-finite floats are spelled ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (JSON has
no literal for them); ``<``, ``>`` and ``&`` are escaped so no response can be read as HTML.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nbmlops._version import __version__
from nbmlops.errors import InvalidArgument, NbMlopsError, NotFound

#: Runs per page of ``GET runs`` (default and upper bound).
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: Points of one metric series sent to the browser (default and upper bound).
DEFAULT_MAX_POINTS = 1000
MAX_MAX_POINTS = 10_000
#: Points per series in a comparison's overlay charts.
COMPARE_MAX_POINTS = 500
#: Items per page of the other lists (experiments, models, artifacts).
DEFAULT_LIST_PAGE = 500
MAX_LIST_PAGE = 5000
#: Audit-log events returned with a model (newest kept).
MAX_HISTORY_EVENTS = 500
#: Artifacts listed in a run's detail (all of them: ``GET runs/{id}/artifacts``, paged).
MAX_DETAIL_ARTIFACTS = 500
#: Largest ``nbmlops/lineage.json`` parsed into a run's detail.
MAX_LINEAGE_BYTES = 2 * 1024 * 1024
#: How far the store picker looks for ``.nbmlops`` folders below the server root.
SCAN_DEPTH = 3
SCAN_MAX_DIRS = 2000
#: Stores remembered by id (the picker's choices), oldest forgotten first.
MAX_KNOWN_STORES = 256

LINEAGE_ARTIFACT = "nbmlops/lineage.json"
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_STORE_ID = re.compile(r"^[0-9a-f]{16}$")
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", ".git", ".venv", "venv"}

#: Artifacts served inline with their own type (everything else is an attachment).
INLINE_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".py": "text/plain; charset=utf-8",
    ".yaml": "text/plain; charset=utf-8",
    ".yml": "text/plain; charset=utf-8",
    ".toml": "text/plain; charset=utf-8",
    ".cfg": "text/plain; charset=utf-8",
    ".ini": "text/plain; charset=utf-8",
}
ATTACHMENT_TYPE = "application/octet-stream"


class NotAvailable(NbMlopsError):
    """A feature whose implementation is not installed in this server (HTTP 501)."""

    http_status = 501


# =========================================================================== JSON


def jsonable(value: Any) -> Any:
    """``value`` with entities turned into dicts and non-finite floats spelled as strings."""
    from nbmlops.entities import to_dict

    return _finite(to_dict(value))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return None  # never ship raw bytes as JSON
    return value


def dumps(value: Any) -> str:
    """Strict JSON (no NaN literals) with ``<``, ``>`` and ``&`` escaped."""
    text = json.dumps(jsonable(value), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# =========================================================================== paging


def encode_offset(offset: int, query: str) -> str:
    """An opaque page token for offset-paged lists."""
    raw = json.dumps({"o": offset, "q": query}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_offset(token: str | None, query: str) -> int:
    """The offset of a token made by :func:`encode_offset` for the same query."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
        same = data["q"] == query
    except Exception:
        raise InvalidArgument("invalid page_token") from None
    if not same or offset < 0:
        raise InvalidArgument("page_token belongs to a different query")
    return offset


def page_of(
    items: Sequence[Any], token: str | None, size: int, query: str
) -> tuple[list[Any], str | None]:
    """One page of an in-memory list and the token of the next one."""
    offset = decode_offset(token, query)
    page = list(items[offset : offset + size])
    more = offset + size < len(items)
    return page, encode_offset(offset + size, query) if more else None


# =========================================================================== paths


def confined(root: Path, rel: str, what: str) -> Path:
    """``root/rel`` resolved, refusing anything that leaves ``root`` (InvalidArgument)."""
    if not isinstance(rel, str) or not rel.strip():
        raise InvalidArgument(f"{what} must be a non-empty path relative to the server root")
    if "\x00" in rel or "\\" in rel:
        raise InvalidArgument(f"{what} must be a plain relative path")
    text = rel.strip()
    if text.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", text):
        raise InvalidArgument(f"{what} must be relative to the server root")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidArgument(f"{what} names no file")
    if any(p == ".." for p in parts):
        raise InvalidArgument(f"{what} must not contain '..'")
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, *parts))
    if os.path.commonpath([real_root, target]) != real_root:
        raise InvalidArgument(f"{what} leads outside the server root")
    return Path(target)


class PathScrubber:
    """Rewrites absolute paths in messages: kept inside the store, relative inside the root,
    and cut to their last part elsewhere — an error never shows where else things live."""

    _ABS = re.compile(r"(?<![\w.~/:])/(?:[^\s'\"`<>|,;()\[\]{}]+)")

    def __init__(self, root: Path, stores: Sequence[Path] = ()) -> None:
        self.root = os.path.realpath(root)
        self.stores = [os.path.realpath(s) for s in stores]

    def __call__(self, text: str) -> str:
        return self._ABS.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        path = match.group(0).rstrip(".:")
        tail = match.group(0)[len(path) :]
        real = os.path.normpath(path)
        for store in self.stores:
            if real == store or real.startswith(store + os.sep):
                return path + tail
        if real == self.root:
            return "." + tail
        if real.startswith(self.root + os.sep):
            return os.path.relpath(real, self.root) + tail
        name = os.path.basename(real)
        return (f"…/{name}" if name else "…") + tail


# =========================================================================== stores


@dataclasses.dataclass(frozen=True)
class StoreRef:
    """A store the API may use: its opaque id, URI and where its files live."""

    store_id: str
    uri: str
    origin: str  # env, notebook, root, found

    @property
    def db_path(self) -> Path | None:
        """The SQLite file (None for other kinds of store)."""
        from nbmlops.store import sqlite_path_from_uri

        return sqlite_path_from_uri(self.uri)

    @property
    def kind(self) -> str:
        """``sqlite``, ``memory`` or ``mlflow``."""
        if self.uri.startswith("memory:"):
            return "memory"
        if self.uri.startswith("mlflow+"):
            return "mlflow"
        return "sqlite"

    @property
    def location(self) -> str:
        """Where the data is, for people: the database file, or the URI."""
        path = self.db_path
        return str(path) if path is not None else _redact_uri(self.uri)

    @property
    def folder(self) -> Path | None:
        """The folder holding the database and its artifacts."""
        path = self.db_path
        return path.parent if path is not None else None

    def exists(self) -> bool:
        """Whether there is a store to read (reading never creates one)."""
        path = self.db_path
        if path is None:
            return True
        return path.is_file() and path.stat().st_size > 0

    def as_json(self, root: Path) -> dict[str, Any]:
        folder = self.folder
        label = self.location
        if folder is not None:
            real_root = os.path.realpath(root)
            real = os.path.realpath(folder)
            if real == real_root or real.startswith(real_root + os.sep):
                label = os.path.relpath(real, real_root)
        return {
            "id": self.store_id,
            "kind": self.kind,
            "location": self.location,
            "label": label,
            "origin": self.origin,
            "exists": self.exists(),
        }


def _redact_uri(uri: str) -> str:
    """A URI without credentials (``user:secret@host`` → ``host``)."""
    return re.sub(r"//[^/@]*@", "//", uri)


def store_id(uri: str) -> str:
    """The opaque id of a normalised store URI."""
    return hashlib.sha256(uri.encode()).hexdigest()[:16]


class StoreCatalog:
    """The stores the API can reach, by id, and the client of each (one per store)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._known: dict[str, StoreRef] = {}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _remember(self, uri: str, origin: str) -> StoreRef:
        from nbmlops.store import normalize_uri

        uri = normalize_uri(uri)
        ref = StoreRef(store_id(uri), uri, origin)
        with self._lock:
            old = self._known.get(ref.store_id)
            if old is not None:
                return old
            if len(self._known) >= MAX_KNOWN_STORES:
                oldest = next(iter(self._known))
                self._known.pop(oldest)
                self._clients.pop(oldest, None)
            self._known[ref.store_id] = ref
            return ref

    def for_directory(self, folder: Path, origin: str) -> StoreRef:
        """The store a kernel started in ``folder`` uses (env override, then walking up)."""
        from nbmlops.store import default_tracking_uri

        env = os.environ.get("NBMLOPS_TRACKING_URI", "").strip()
        return self._remember(default_tracking_uri(folder), "env" if env else origin)

    def notebook_folder(self, notebook: str) -> Path:
        """The folder of a notebook given relative to the server root (confined)."""
        return confined(self.root, notebook, "notebook").parent

    def select(self, notebook: str | None = None, store: str | None = None) -> StoreRef:
        """The store a request is about: ``store`` id, else the notebook's, else the root's."""
        if store:
            if not _STORE_ID.match(store):
                raise InvalidArgument("store must be a store id from GET /nbmlops/api/stores")
            with self._lock:
                ref = self._known.get(store)
            if ref is None:
                raise NotFound("unknown store id (the server restarted?); reload the store list")
            return ref
        if notebook:
            return self.for_directory(self.notebook_folder(notebook), "notebook")
        return self.for_directory(self.root, "root")

    def scan(self, notebook: str | None = None) -> list[StoreRef]:
        """Stores to offer in the picker: the notebook's, the root's, ``.nbmlops`` folders
        below the root (a bounded walk) and any store used before."""
        refs = [self.select(notebook=notebook)] if notebook else []
        refs.append(self.select())
        for folder in self._find_store_dirs():
            from nbmlops.store import DB_FILENAME

            refs.append(self._remember(f"sqlite:///{folder / DB_FILENAME}", "found"))
        with self._lock:
            refs.extend(self._known.values())
        unique: dict[str, StoreRef] = {}
        for ref in refs:
            unique.setdefault(ref.store_id, ref)
        return list(unique.values())

    def _find_store_dirs(self) -> list[Path]:
        from nbmlops.store import STORE_DIRNAME

        found: list[Path] = []
        frontier = [(self.root, 0)]
        visited = 0
        while frontier and visited < SCAN_MAX_DIRS:
            folder, depth = frontier.pop(0)
            visited += 1
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                if entry.name == STORE_DIRNAME:
                    found.append(Path(entry.path))
                elif (
                    depth < SCAN_DEPTH
                    and not entry.name.startswith(".")
                    and entry.name not in _SKIP_DIRS
                ):
                    frontier.append((Path(entry.path), depth + 1))
        return found

    def client(self, ref: StoreRef) -> Any:
        """The shared :class:`~nbmlops.client.Client` of a store (NotFound if there is none)."""
        if not ref.exists():
            raise NotFound(
                f"no nbmlops store yet at {ref.location}; it is created when a notebook "
                "logs its first run"
            )
        with self._lock:
            client = self._clients.get(ref.store_id)
        if client is not None:
            return client
        from nbmlops.client import Client
        from nbmlops.store import resolve_store

        client = Client(store=resolve_store(ref.uri))
        with self._lock:
            return self._clients.setdefault(ref.store_id, client)

    def close(self) -> None:
        """Flush and stop the clients (the server is stopping)."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            try:
                client.close()
            except NbMlopsError:
                pass


# =========================================================================== helpers


def downsample(points: Sequence[Any], max_points: int) -> list[Any]:
    """At most ``max_points`` points keeping the shape: first, last and, per bucket, its
    lowest and highest value (NaN points survive when a bucket holds nothing else)."""
    n = len(points)
    if n <= max_points:
        return list(points)
    buckets = max(1, (max_points - 2) // 2)
    inner = points[1:-1]
    size = len(inner) / buckets
    kept: list[Any] = [points[0]]
    for b in range(buckets):
        chunk = inner[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        finite = [p for p in chunk if not math.isnan(p.value)]
        if not finite:
            kept.append(chunk[0])
            continue
        low = min(finite, key=lambda p: p.value)
        high = max(finite, key=lambda p: p.value)
        pair = sorted({id(low): low, id(high): high}.values(), key=lambda p: chunk.index(p))
        kept.extend(pair)
    kept.append(points[-1])
    return kept


def _string_filter_value(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _run_id(value: str, what: str = "run id") -> str:
    if not isinstance(value, str) or not RUN_ID.match(value):
        raise InvalidArgument(f"{what} must be 32 lowercase hex characters")
    return value


def _int_field(body: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"'{key}' must be an integer")
    return value


def _str_field(
    body: Mapping[str, Any], key: str, default: str | None = None, required: bool = False
) -> str | None:
    value = body.get(key, default)
    if value is None:
        if required:
            raise InvalidArgument(f"'{key}' is required")
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"'{key}' must be a string")
    return value


def _bool_field(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise InvalidArgument(f"'{key}' must be true or false")
    return value


def inline_type(path: str) -> str | None:
    """The type an artifact is served inline with, or None (served as an attachment)."""
    return INLINE_TYPES.get(os.path.splitext(path)[1].lower())


def _export_function() -> Callable[..., Any] | None:
    import nbmlops

    try:
        function = getattr(nbmlops, "export_notebook", None)
    except Exception:
        function = None
    if function is None:
        try:
            from nbmlops import export as export_module

            function = getattr(export_module, "export_notebook", None)
        except ImportError:
            function = None
    return function if callable(function) else None


# =========================================================================== service


class ApiService:
    """The REST API's operations over the stores of one Jupyter server root."""

    def __init__(self, root: Path) -> None:
        self.catalog = StoreCatalog(root)
        self.root = self.catalog.root

    # ------------------------------------------------------------------ plumbing
    def scrubber(self, ref: StoreRef | None = None) -> PathScrubber:
        """The message scrubber for a request (the store's folder stays visible)."""
        folder = ref.folder if ref is not None else None
        return PathScrubber(self.root, [folder] if folder is not None else [])

    def _client(self, ref: StoreRef) -> Any:
        return self.catalog.client(ref)

    def _notebook_abs(self, notebook: str) -> Path:
        return confined(self.root, notebook, "notebook")

    def _api_path(self, path: str | None) -> str | None:
        """A filesystem path as a path relative to the server root (None when outside)."""
        if not path:
            return None
        real = os.path.realpath(path)
        if real == str(self.root) or not real.startswith(str(self.root) + os.sep):
            return None
        return Path(os.path.relpath(real, self.root)).as_posix()

    # ------------------------------------------------------------------ status
    def status(self, ref: StoreRef, notebook: str | None = None) -> dict[str, Any]:
        """Version, API version, the selected store and, for a notebook, its experiment."""
        from nbmlops.server import API_VERSION

        result: dict[str, Any] = {
            "version": __version__,
            "api_version": API_VERSION,
            "store": ref.as_json(self.root),
            "features": {"export": _export_function() is not None},
            "notebook": None,
        }
        if notebook:
            result["notebook"] = self._notebook_context(ref, notebook)
        return result

    def _notebook_context(self, ref: StoreRef, notebook: str) -> dict[str, Any]:
        path = self._notebook_abs(notebook)
        context: dict[str, Any] = {
            "path": Path(notebook.strip()).as_posix(),
            "experiment_id": None,
            "experiment_name": None,
        }
        if not ref.exists():
            return context
        client = self._client(ref)
        runs = client.search_runs(
            None,
            f"source_path = {_string_filter_value(str(path))}",
            ["start_time DESC"],
            max_results=1,
        )
        experiment = None
        if runs:
            try:
                experiment = client.get_experiment(runs[0].info.experiment_id)
            except NotFound:
                experiment = None
        if experiment is None:
            try:
                experiment = client.get_experiment_by_name(path.stem)
            except InvalidArgument:
                experiment = None
        if experiment is not None:
            context["experiment_id"] = experiment.experiment_id
            context["experiment_name"] = experiment.name
        return context

    def stores(self, notebook: str | None = None) -> dict[str, Any]:
        """The stores the panel may pick from (the notebook's first)."""
        refs = self.catalog.scan(notebook)
        return {"stores": [r.as_json(self.root) for r in refs]}

    # ------------------------------------------------------------------ experiments
    def experiments(
        self, ref: StoreRef, page_token: str | None = None, max_results: int = DEFAULT_LIST_PAGE
    ) -> dict[str, Any]:
        """Experiments, oldest first, one page at a time."""
        if not ref.exists():
            return {"experiments": [], "next_page_token": None, "store_exists": False}
        items = self._client(ref).search_experiments()
        page, token = page_of(items, page_token, max_results, "experiments")
        return {"experiments": page, "next_page_token": token, "store_exists": True}

    # ------------------------------------------------------------------ runs
    def runs(
        self,
        ref: StoreRef,
        experiment: str | None = None,
        filter_string: str = "",
        order_by: Sequence[str] = (),
        parent: str | None = None,
        page_token: str | None = None,
        max_results: int = DEFAULT_PAGE_SIZE,
    ) -> dict[str, Any]:
        """One page of run rows (``RunRow`` of the display model, plus cell id and error).

        ``parent``: a run id (its children) or ``none`` (top-level runs only); combined with
        ``filter_string`` by AND.
        """
        from nbmlops.display.model import RunRow

        if not ref.exists():
            return {"runs": [], "next_page_token": None, "store_exists": False}
        if not 1 <= max_results <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"max_results must be between 1 and {MAX_PAGE_SIZE}")
        where = filter_string.strip()
        if parent:
            clause = (
                "parent_run_id IS NULL"
                if parent.lower() == "none"
                else f"parent_run_id = '{_run_id(parent, 'parent')}'"
            )
            where = f"({where}) and {clause}" if where else clause
        client = self._client(ref)
        experiment_ids = None
        if experiment:
            client.get_experiment(experiment)  # NotFound for an unknown experiment
            experiment_ids = [experiment]
        page = client.search_runs(
            experiment_ids,
            where,
            list(order_by) or None,
            max_results=max_results,
            page_token=page_token or None,
        )
        rows = []
        for run in page:
            row = jsonable(RunRow.from_run(run))
            tags = run.data.tags
            row["cell_id"] = run.info.source.cell_id or tags.get("nbmlops.cell_id") or None
            error = tags.get("nbmlops.error")
            row["error"] = error[:300] if error else None
            rows.append(row)
        return {"runs": rows, "next_page_token": page.token, "store_exists": True}

    def run(self, ref: StoreRef, run_id: str) -> dict[str, Any]:
        """A run's detail: the display model's run detail, parents, lineage, notebook path."""
        from nbmlops.display.model import load_run_detail

        client = self._client(ref)
        run = client.get_run(_run_id(run_id))
        detail = load_run_detail(client, run, max_images=0, max_charts=0)
        result = jsonable(detail)
        result.pop("images", None)
        result.pop("histories", None)
        result["artifacts"] = [
            self._artifact_json(a) for a in detail.artifacts[:MAX_DETAIL_ARTIFACTS]
        ]
        result["artifacts_total"] = len(detail.artifacts)  # the rest: GET runs/{id}/artifacts
        result["parents"] = self._parents(client, run)
        result["lineage"] = self._lineage(client, run.info.run_id, detail.artifacts)
        result["notebook_path"] = self._api_path(run.info.source.path)
        return result

    def _parents(self, client: Any, run: Any) -> list[dict[str, Any]]:
        chain: list[dict[str, Any]] = []
        parent_id, seen = run.info.parent_run_id, {run.info.run_id}
        while parent_id and parent_id not in seen and len(chain) < 20:
            seen.add(parent_id)
            try:
                parent = client.get_run(parent_id)
            except NotFound:
                chain.append({"run_id": parent_id, "missing": True})
                break
            chain.append(
                {
                    "run_id": parent.info.run_id,
                    "name": parent.info.run_name,
                    "run_type": parent.data.tags.get("nbmlops.run_type", ""),
                    "status": parent.info.status.value,
                }
            )
            parent_id = parent.info.parent_run_id
        return chain

    def _lineage(self, client: Any, run_id: str, artifacts: Sequence[Any]) -> Any:
        entry = next((a for a in artifacts if a.path == LINEAGE_ARTIFACT), None)
        if entry is None or entry.size > MAX_LINEAGE_BYTES:
            return None
        try:
            data = json.loads(client.read_artifact(run_id, LINEAGE_ARTIFACT))
        except (NbMlopsError, ValueError, OSError):
            return None
        if not isinstance(data, dict):
            return None
        data.pop("notebook", None)  # an absolute path; the detail carries notebook_path
        return data

    @staticmethod
    def _artifact_json(artifact: Any) -> dict[str, Any]:
        data = jsonable(artifact)
        kind = inline_type(artifact.path)
        data["inline"] = kind is not None
        data["content_type"] = kind or ATTACHMENT_TYPE
        return data

    def metric_history(
        self, ref: StoreRef, run_id: str, key: str, max_points: int = DEFAULT_MAX_POINTS
    ) -> dict[str, Any]:
        """A metric's points, downsampled to ``max_points`` (min/max per bucket)."""
        from nbmlops.validation import validate_key

        if not 2 <= max_points <= MAX_MAX_POINTS:
            raise InvalidArgument(f"max_points must be between 2 and {MAX_MAX_POINTS}")
        client = self._client(ref)
        run = client.get_run(_run_id(run_id))
        key = validate_key(key, "metric")
        points = client.get_metric_history(run_id, key)
        if not points and key not in run.data.metrics:
            raise NotFound(f"run {run_id} has no metric {key!r}")
        shown = downsample(points, max_points)
        return {
            "run_id": run_id,
            "key": key,
            "total": len(points),
            "downsampled": len(shown) < len(points),
            "points": [{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in shown],
        }

    # ------------------------------------------------------------------ artifacts
    def artifacts(
        self,
        ref: StoreRef,
        run_id: str,
        prefix: str | None = None,
        page_token: str | None = None,
        max_results: int = DEFAULT_LIST_PAGE,
    ) -> dict[str, Any]:
        """A run's artifacts (under folder ``prefix``), with how each one is served."""
        client = self._client(ref)
        items = client.list_artifacts(_run_id(run_id), prefix or None)
        page, token = page_of(items, page_token, max_results, f"artifacts:{run_id}:{prefix}")
        return {"artifacts": [self._artifact_json(a) for a in page], "next_page_token": token}

    def artifact_file(self, ref: StoreRef, run_id: str, path: str) -> tuple[Path, str, bool, int]:
        """``(file, content type, inline?, size)`` of one artifact, confined to the run's
        artifact folder by the store (no ``..``, no absolute path, no symlink out)."""
        client = self._client(ref)
        _run_id(run_id)
        target = client.store.artifact_file(run_id, path)
        if target is None:
            raise NotAvailable("this store keeps no artifact files the server can serve")
        kind = inline_type(path)
        size = target.stat().st_size
        return target, kind or ATTACHMENT_TYPE, kind is not None, size

    # ------------------------------------------------------------------ compare
    def compare(
        self, ref: StoreRef, run_ids: Sequence[str], first_metric: str | None = None
    ) -> dict[str, Any]:
        """The comparison of the display model (differences first, best per metric, code
        diffs against the first run, downsampled metric histories for overlay charts)."""
        from nbmlops.display.model import (
            INTERNAL_METRIC_PREFIXES,
            MAX_COMPARE,
            MIN_COMPARE,
            build_comparison,
            read_environment,
        )

        ids = [_run_id(r) for r in run_ids]
        if not MIN_COMPARE <= len(ids) <= MAX_COMPARE:
            raise InvalidArgument(
                f"compare takes {MIN_COMPARE} to {MAX_COMPARE} runs, got {len(ids)}"
            )
        if len(set(ids)) != len(ids):
            raise InvalidArgument("a run is listed twice in ids")
        client = self._client(ref)
        runs = [client.get_run(r) for r in ids]
        keys = sorted(
            {k for r in runs for k in r.data.metrics if not k.startswith(INTERNAL_METRIC_PREFIXES)}
        )
        if first_metric in keys:
            keys.remove(first_metric)
            keys.insert(0, first_metric)
        histories = {
            key: [downsample(client.get_metric_history(r, key), COMPARE_MAX_POINTS) for r in ids]
            for key in keys[:8]
        }
        comparison = build_comparison(
            runs,
            environments=[read_environment(client, r) for r in ids],
            histories=histories,
            first_metric=first_metric,
        )
        result = jsonable(comparison)
        result["code_diffs"] = [jsonable(comparison.code_diff(0, i)) for i in range(1, len(ids))]
        result["notebook_paths"] = [self._api_path(r.info.source.path) for r in runs]
        return result

    # ------------------------------------------------------------------ registry
    def models(
        self,
        ref: StoreRef,
        filter_string: str | None = None,
        page_token: str | None = None,
        max_results: int = DEFAULT_LIST_PAGE,
    ) -> dict[str, Any]:
        """Registered models by name (``filter``: ``name LIKE 'churn%'``), paged."""
        if not ref.exists():
            return {"models": [], "next_page_token": None, "store_exists": False}
        items = self._client(ref).search_registered_models(filter_string or None)
        page, token = page_of(items, page_token, max_results, f"models:{filter_string}")
        return {"models": page, "next_page_token": token, "store_exists": True}

    def model(self, ref: StoreRef, name: str) -> dict[str, Any]:
        """A model's view: versions (newest first) with their runs' metrics, audit log."""
        from nbmlops.display.model import load_model_view

        view = load_model_view(self._client(ref), name)
        result = jsonable(view)
        history = result["history"]
        result["history_total"] = len(history)
        result["history"] = history[-MAX_HISTORY_EVENTS:]
        result["default_metric"] = view.default_metric()
        return result

    def set_alias(self, ref: StoreRef, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``{"alias": A, "version": V}`` points A at V; ``{"alias": A, "delete": true}``
        removes it. ``reason`` (optional) goes to the audit log."""
        client = self._client(ref)
        alias = _str_field(body, "alias", required=True)
        reason = _str_field(body, "reason") or None
        if _bool_field(body, "delete", False):
            client.delete_registered_model_alias(name, alias, reason=reason)
        else:
            client.set_registered_model_alias(
                name, alias, _int_field(body, "version"), reason=reason
            )
        return self.model(ref, name)

    def promote(self, ref: StoreRef, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Champion–challenger promotion (:meth:`Client.promote`); returns the decision
        (``text`` is its one-line verdict) and the model's new view."""
        client = self._client(ref)
        min_delta = body.get("min_delta", 0.0)
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)):
            raise InvalidArgument("'min_delta' must be a number")
        decision = client.promote(
            name,
            _int_field(body, "version"),
            metric=_str_field(body, "metric", "f1") or "f1",
            greater_is_better=_bool_field(body, "greater_is_better", True),
            min_delta=float(min_delta),
            alias=_str_field(body, "alias", "champion") or "champion",
            force=_bool_field(body, "force", False),
            reason=_str_field(body, "reason") or None,
        )
        data = jsonable(decision)
        data["text"] = str(decision)
        return {"decision": data, "model": self.model(ref, name)}

    # ------------------------------------------------------------------ export
    def export(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Export a notebook (path relative to the server root) into a package next to it
        (or into ``out_dir``, also relative to the root), optionally verifying it."""
        path = _str_field(body, "path", required=True)
        assert path is not None
        verify = _bool_field(body, "verify", False)
        notebook = confined(self.root, path, "path")
        if notebook.suffix != ".ipynb":
            raise InvalidArgument("path must name a notebook (.ipynb)")
        if not notebook.is_file():
            raise NotFound(f"no notebook {Path(path).as_posix()!r} under the server root")
        out = _str_field(body, "out_dir")
        if out:
            out_dir = confined(self.root, out, "out_dir")
        else:
            out_dir = notebook.parent / f"{notebook.stem}-package"
        package = _str_field(body, "package") or None
        force = _bool_field(body, "force", False)
        export_notebook = _export_function()
        if export_notebook is None:
            raise NotAvailable(
                "notebook export is not available in this nbmlops version (nbmlops.export_notebook "
                "is missing)"
            )
        ref = self.catalog.select(notebook=path)
        extra: dict[str, Any] = {}
        accepted = _keyword_names(export_notebook)
        if "tracking_uri" in accepted:
            extra["tracking_uri"] = ref.uri  # verify against the store the notebook's kernel uses
        if force:
            if "force" not in accepted:
                raise InvalidArgument("this exporter cannot replace an earlier export (force)")
            extra["force"] = True
        report = export_notebook(
            str(notebook), str(out_dir), package=package, verify=verify, **extra
        )
        return self._report_json(report, out_dir, ref)

    def _report_json(
        self, report: Any, out_dir: Path, ref: StoreRef | None = None
    ) -> dict[str, Any]:
        if hasattr(report, "to_dict") and callable(report.to_dict):
            data: Any = report.to_dict()
        elif dataclasses.is_dataclass(report) and not isinstance(report, type):
            data = jsonable(report)
        elif isinstance(report, Mapping):
            data = dict(report)
        else:
            data = {}
        ok = getattr(report, "ok", None)
        verification = getattr(report, "verification", None)
        if ok is None and verification is not None:
            ok = getattr(verification, "ok", None)
        scrub = self.scrubber(ref)
        return {
            "report": _scrub_strings(jsonable(data), scrub),
            "text": scrub(str(report)),
            "out_dir": self._api_path(str(out_dir)) or out_dir.name,
            "ok": True if ok is None else bool(ok),
            "verified": None if verification is None else bool(getattr(verification, "ok", False)),
        }


def _keyword_names(function: Callable[..., Any]) -> set[str]:
    """The parameter names a callable accepts (empty when it cannot be inspected)."""
    import inspect

    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()


def _scrub_strings(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_strings(v, scrub) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_strings(v, scrub) for v in value]
    return value
