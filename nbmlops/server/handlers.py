"""Tornado handlers of ``/nbmlops/api/``: authentication, arguments, JSON, one error mapping.

Rules every route follows (tested in ``tests/server/``):

* every method is ``@web.authenticated`` (Jupyter token or login cookie) and ``@authorized``
  (the server's authorizer, resource ``nbmlops``): no route is left open, also with
  ``ServerApp.allow_unauthenticated_access = False``;
* writes are POSTs, so jupyter_server checks the XSRF token of cookie-authenticated requests;
* JSON in (an object body) and JSON out; store calls run in a thread pool, never on the event
  loop;
* errors are mapped in :meth:`ApiHandler.write_error` only: nbmlops errors to their status
  (400 invalid input, 404 not found, 409 conflict, 501 not available), anything unexpected to
  a 500 with a generic message — never a traceback, and absolute paths outside the store and
  the server root are cut from messages.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from nbmlops.errors import InvalidArgument, NbMlopsError
from nbmlops.server import services
from nbmlops.server.services import ApiService

log = logging.getLogger("nbmlops.server")

T = TypeVar("T")

#: Where the API lives below the server's base URL.
API_PREFIX = "nbmlops/api"
#: Settings keys the handlers read.
SERVICE_KEY = "nbmlops_service"
EXECUTOR_KEY = "nbmlops_executor"
#: Largest request body accepted (JSON objects only).
MAX_BODY_BYTES = 1024 * 1024
#: Bytes per chunk when streaming an artifact.
CHUNK_BYTES = 256 * 1024
#: Longest query argument accepted (filters, tokens, paths).
MAX_ARG_CHARS = 8192


class ApiHandler(APIHandler):
    """Base of every nbmlops handler: JSON helpers, the thread pool, the error mapping."""

    auth_resource = "nbmlops"

    @property
    def service(self) -> ApiService:
        return self.settings[SERVICE_KEY]  # type: ignore[no-any-return]

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call (a store read or write) in the thread pool."""
        loop = asyncio.get_running_loop()
        executor: ThreadPoolExecutor = self.settings[EXECUTOR_KEY]
        return await loop.run_in_executor(executor, functools.partial(function, *args, **kwargs))

    async def on_store(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(store_ref, *args)`` in the thread pool, for the store the request is
        about (``store=`` id, else the ``notebook=``'s store, else the server root's)."""
        notebook, store = self.arg("notebook"), self.arg("store")

        def work() -> T:
            self._ref = self.service.catalog.select(notebook=notebook, store=store)
            return function(self._ref, *args, **kwargs)

        return await self.call(work)

    # ------------------------------------------------------------------ arguments
    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query argument (the last one when repeated), length-checked."""
        value = self.get_query_argument(name, default)
        if value is not None and len(value) > MAX_ARG_CHARS:
            raise InvalidArgument(f"query argument {name!r} is too long")
        return value

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        """An integer query argument within ``[low, high]``."""
        text = self.arg(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise InvalidArgument(f"{name} must be an integer, got {text[:40]!r}") from None
        if not low <= value <= high:
            raise InvalidArgument(f"{name} must be between {low} and {high}, got {value}")
        return value

    def json_body(self) -> dict[str, Any]:
        """The request's body as a JSON object (InvalidArgument otherwise)."""
        raw = self.request.body or b""
        if len(raw) > MAX_BODY_BYTES:
            raise InvalidArgument("request body too large")
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidArgument("request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidArgument("request body must be a JSON object")
        return data

    def reply(self, data: Any, status: int = 200) -> None:
        """Finish with ``data`` as JSON (see :func:`services.dumps`)."""
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(services.dumps(data))

    # ------------------------------------------------------------------ errors
    def _scrubbed(self, message: str) -> str:
        return self.service.scrubber(getattr(self, "_ref", None))(message)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The one place errors become responses: ``{"message": ..., "status": ...}``."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, NbMlopsError):
            status_code = exc.http_status if exc.http_status < 600 else 500
            message = self._scrubbed(str(exc)) or type(exc).__name__
            if status_code >= 500 and not isinstance(exc, services.NotAvailable):
                message = f"the store cannot be used: {message}"
            error = type(exc).__name__
        elif isinstance(exc, web.HTTPError):
            message = exc.log_message or exc.reason or self._reason
            error = "HTTPError"
        elif exc is not None:
            status_code = 500
            message = "internal error in the nbmlops server extension (see the server log)"
            error = "InternalError"
        else:
            message, error = self._reason, "HTTPError"
        self.clear_header("Content-Disposition")
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        body = {"message": message, "status": status_code, "error": error}
        self.finish(services.dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Expected errors are one log line; unexpected ones keep their traceback (in the
        server log only)."""
        if isinstance(value, NbMlopsError) and value.http_status < 500:
            log.info("nbmlops API %s %s: %s", self.request.method, self.request.path, value)
        elif isinstance(value, (NbMlopsError, web.HTTPError)):
            log.warning("nbmlops API %s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)


# =========================================================================== routes


class StatusHandler(ApiHandler):
    """``GET status``: version, API version, selected store, notebook context."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.on_store(self.service.status, self.arg("notebook")))


class StoresHandler(ApiHandler):
    """``GET stores``: the stores the panel can pick from."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.service.stores, self.arg("notebook")))


class ExperimentsHandler(ApiHandler):
    """``GET experiments``: experiments of the store, paged."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        size = self.int_arg("max_results", services.DEFAULT_LIST_PAGE, 1, services.MAX_LIST_PAGE)
        self.reply(await self.on_store(self.service.experiments, self.arg("page_token"), size))


class RunsHandler(ApiHandler):
    """``GET runs?experiment=&filter=&order_by=&parent=&page_token=&max_results=``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        order_by = [o for o in self.get_query_arguments("order_by") if o.strip()]
        if len(order_by) > 10 or any(len(o) > 500 for o in order_by):
            raise InvalidArgument("order_by takes at most 10 keys")
        data = await self.on_store(
            self.service.runs,
            experiment=self.arg("experiment") or None,
            filter_string=self.arg("filter", "") or "",
            order_by=order_by,
            parent=self.arg("parent") or None,
            page_token=self.arg("page_token") or None,
            max_results=self.int_arg(
                "max_results", services.DEFAULT_PAGE_SIZE, 1, services.MAX_PAGE_SIZE
            ),
        )
        self.reply(data)


class RunHandler(ApiHandler):
    """``GET runs/{id}``: the run detail."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.reply(await self.on_store(self.service.run, run_id))


class MetricHistoryHandler(ApiHandler):
    """``GET runs/{id}/metrics/{key}?max_points=``: a metric's (downsampled) history."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, key: str) -> None:
        points = self.int_arg("max_points", services.DEFAULT_MAX_POINTS, 2, services.MAX_MAX_POINTS)
        self.reply(await self.on_store(self.service.metric_history, run_id, key, points))


class ArtifactsHandler(ApiHandler):
    """``GET runs/{id}/artifacts?path=``: a run's artifact list, paged."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        size = self.int_arg("max_results", services.DEFAULT_LIST_PAGE, 1, services.MAX_LIST_PAGE)
        data = await self.on_store(
            self.service.artifacts,
            run_id,
            self.arg("path") or None,
            self.arg("page_token") or None,
            size,
        )
        self.reply(data)


class ArtifactFileHandler(ApiHandler):
    """``GET runs/{id}/artifacts/{path}``: one artifact file.

    PNG, JPEG, CSV, JSON and text files are served with their type; everything else (HTML,
    SVG, unknown types) as an ``application/octet-stream`` attachment, so nothing a run wrote
    is ever rendered as a page on the Jupyter origin. Always ``X-Content-Type-Options:
    nosniff`` and a sandboxing Content-Security-Policy; ``?download=1`` makes any file an
    attachment.
    """

    @property
    def content_security_policy(self) -> str:
        return super().content_security_policy + "; sandbox"

    def compute_etag(self) -> str | None:
        return None

    @web.authenticated
    @authorized
    async def get(self, run_id: str, path: str) -> None:
        target, content_type, inline, size = await self.on_store(
            self.service.artifact_file, run_id, path
        )
        if self.arg("download") in ("1", "true"):
            inline = False
        if not inline:
            content_type = services.ATTACHMENT_TYPE
        handle = await self.call(open, target, "rb")
        try:
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Cache-Control", "no-cache")
            self.set_header("Content-Length", str(size))
            name = Path(path).name or "artifact"
            quoted = urllib.parse.quote(name, safe="")
            ascii_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
            disposition = "inline" if inline else "attachment"
            self.set_header(
                "Content-Disposition",
                f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}",
            )
            self.set_header("Content-Type", content_type)
            while True:
                chunk = await self.call(handle.read, CHUNK_BYTES)
                if not chunk:
                    break
                self.write(chunk)
                await self.flush()
        finally:
            handle.close()
        await self.finish(set_content_type=content_type)


class CompareHandler(ApiHandler):
    """``GET compare?ids=a,b,c``: the side-by-side comparison (2 to 20 runs)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        ids: list[str] = []
        for value in self.get_query_arguments("ids"):
            ids.extend(v.strip() for v in value.split(",") if v.strip())
        if len(ids) > 20:
            raise InvalidArgument(f"compare takes at most 20 runs, got {len(ids)}")
        first = self.arg("metric") or None
        self.reply(await self.on_store(self.service.compare, ids, first))


class ModelsHandler(ApiHandler):
    """``GET models?filter=``: registered models, paged."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        size = self.int_arg("max_results", services.DEFAULT_LIST_PAGE, 1, services.MAX_LIST_PAGE)
        data = await self.on_store(
            self.service.models, self.arg("filter") or None, self.arg("page_token"), size
        )
        self.reply(data)


class ModelHandler(ApiHandler):
    """``GET models/{name}``: versions, aliases, metrics of source runs, audit log."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.on_store(self.service.model, name))


class ModelAliasesHandler(ApiHandler):
    """``POST models/{name}/aliases``: set (``alias``, ``version``) or delete an alias."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.json_body()
        self.reply(await self.on_store(self.service.set_alias, name, body))


class ModelPromoteHandler(ApiHandler):
    """``POST models/{name}/promote``: champion–challenger promotion."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.json_body()
        self.reply(await self.on_store(self.service.promote, name, body))


class ExportHandler(ApiHandler):
    """``POST export``: export a notebook under the server root (optionally verified)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        self.reply(await self.call(self.service.export, body))


class NotFoundHandler(ApiHandler):
    """Any other path under ``/nbmlops/api/``: a JSON 404 (still only for signed-in users)."""

    @web.authenticated
    @authorized
    async def get(self, rest: str) -> None:
        raise web.HTTPError(404, "no such nbmlops API route")

    @web.authenticated
    @authorized
    async def post(self, rest: str) -> None:
        raise web.HTTPError(404, "no such nbmlops API route")


_RUN = r"(?P<run_id>[^/]+)"
_NAME = r"(?P<name>[^/]+)"

#: (route below /nbmlops/api/, handler); the tests walk this list for the 403 checks.
ROUTES: list[tuple[str, type[ApiHandler]]] = [
    (r"status", StatusHandler),
    (r"stores", StoresHandler),
    (r"experiments", ExperimentsHandler),
    (r"runs", RunsHandler),
    (rf"runs/{_RUN}", RunHandler),
    (rf"runs/{_RUN}/metrics/(?P<key>[^/]+)", MetricHistoryHandler),
    (rf"runs/{_RUN}/artifacts", ArtifactsHandler),
    (rf"runs/{_RUN}/artifacts/(?P<path>.+)", ArtifactFileHandler),
    (r"compare", CompareHandler),
    (r"models", ModelsHandler),
    (rf"models/{_NAME}", ModelHandler),
    (rf"models/{_NAME}/aliases", ModelAliasesHandler),
    (rf"models/{_NAME}/promote", ModelPromoteHandler),
    (r"export", ExportHandler),
    (r"(?P<rest>.*)", NotFoundHandler),
]


def setup_handlers(serverapp: Any) -> None:
    """Add the routes to the server's web application and the service to its settings."""
    web_app = serverapp.web_app
    root = Path(getattr(serverapp, "root_dir", None) or ".").expanduser()
    service = ApiService(root)
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nbmlops-api")
    web_app.settings[SERVICE_KEY] = service
    web_app.settings[EXECUTOR_KEY] = executor
    base_url = web_app.settings.get("base_url", "/")
    handlers = [(url_path_join(base_url, API_PREFIX, route), handler) for route, handler in ROUTES]
    web_app.add_handlers(".*$", handlers)
    serverapp.log.info(
        "nbmlops server extension: REST API at %s", url_path_join(base_url, API_PREFIX)
    )
