"""The notebook session: IPython hooks that turn executed cells into nested runs.

One :class:`NotebookSession` per kernel (``current()``). It is created by ``%load_ext nbmlops``
and holds:

* the **session run** (named after the notebook), open while autolog is on;
* the **parent runs** opened by ``%mlops start`` (they span cells);
* the **cell context** of the executing cell, whose run is created lazily on the first ML
  work (a patched ``fit``, a captured metric, an explicit log call, a figure while a parent
  run is open) — cells without ML work create nothing.

Hooks: ``pre_run_cell`` opens a cell context; ``post_execute`` (inserted ahead of the inline
backend, which closes figures) captures new figures; ``post_run_cell`` finishes the cell run
(status, figures, environment, code lineage) and flushes the store, so nothing logged in a
finished cell is lost if the kernel dies afterwards. A failure inside these hooks is reported
once as a warning and never changes the user's cell result.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import io
import json
import os
import sys
import time
import warnings
from typing import Any

from nbmlops import tracking
from nbmlops.client import Client
from nbmlops.entities import RunSource, RunStatus
from nbmlops.errors import InvalidArgument, NbMlopsError
from nbmlops.notebook import NotebookIdentity, detect_notebook
from nbmlops.store import default_tracking_uri
from nbmlops.store import heartbeat as hb

RUN_TYPE_TAG = "nbmlops.run_type"
CELL_ID_TAG = "nbmlops.cell_id"
NOTEBOOK_TAG = "nbmlops.notebook"
ERROR_TAG = tracking.ERROR_TAG

_session: NotebookSession | None = None


def current() -> NotebookSession | None:
    """The kernel's notebook session, if the extension is loaded."""
    return _session


@dataclasses.dataclass
class AutologConfig:
    """What autolog records; set by ``%mlops autolog on`` / :func:`nbmlops.autolog`."""

    experiment: str | None = None
    log_models: bool = True
    log_figures: bool = True
    max_model_bytes: int = 50 * 1024 * 1024


@dataclasses.dataclass
class ExecutedCell:
    """One entry of the session's execution history (in execution order)."""

    execution_count: int
    cell_id: str
    code_sha256: str
    code: str


class CellContext:
    """State of the cell being executed; its run exists only once ML work happened."""

    def __init__(
        self, session: NotebookSession, raw_cell: str, cell_id: str, execution_count: int
    ) -> None:
        self.session = session
        self.raw_cell = raw_cell
        self.cell_id = cell_id
        self.execution_count = execution_count
        self.started_ms = hb.now_ms()
        self.started = time.perf_counter()
        self.run: tracking.ActiveRun | None = None
        self.error: BaseException | None = None
        self.figures: list[bytes] = []
        self.figure_ids = _figure_ids()

    def ensure_run(
        self,
        name_hint: str | None = None,
        name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> tracking.ActiveRun:
        """The cell's run, created under the open parent on first use."""
        if self.run is not None:
            if tags:
                self.session.client.log_batch(self.run.run_id, tags=_tags(tags))
            return self.run
        session = self.session
        parent = session.current_parent()
        label = f"cell[{self.execution_count}]"
        run_name = name or (f"{label} {name_hint}" if name_hint else label)
        code = self.raw_cell
        source = RunSource(
            path=session.identity.path,
            cell_id=self.cell_id,
            execution_count=self.execution_count,
            code_sha256=hashlib.sha256(code.encode()).hexdigest(),
            code=code,
        )
        all_tags = {
            RUN_TYPE_TAG: "cell",
            CELL_ID_TAG: self.cell_id,
            NOTEBOOK_TAG: session.identity.path,
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.source.name": session.identity.path,
            **(tags or {}),
        }
        run = session.client.create_run(
            experiment_id=session.experiment_id(),
            run_name=run_name,
            tags=all_tags,
            parent_run_id=parent.run_id if parent is not None else None,
            start_time=self.started_ms,
            source=source,
        )
        self.run = tracking.push_implicit_run(run, session.client)
        return self.run


def _tags(tags: dict[str, str]) -> list[Any]:
    from nbmlops.entities import RunTag

    return [RunTag(k, str(v)) for k, v in tags.items()]


def _figure_ids() -> set[int]:
    pyplot = sys.modules.get("matplotlib._pylab_helpers")
    if pyplot is None:
        return set()
    return {id(m.canvas.figure) for m in pyplot.Gcf.get_all_fig_managers()}


class NotebookSession:
    """Autolog state of one kernel (see the module docstring)."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.identity: NotebookIdentity = detect_notebook(getattr(shell, "user_ns", None))
        from nbmlops.config import load_settings

        self.settings = load_settings(shell)
        self.config = AutologConfig(
            experiment=self.settings.experiment or None,
            log_models=self.settings.log_models,
            log_figures=self.settings.log_figures,
            max_model_bytes=self.settings.max_model_bytes,
        )
        self.autolog_enabled = False
        self.session_run: tracking.ActiveRun | None = None
        self.parents: list[tracking.ActiveRun] = []
        self.cell: CellContext | None = None
        self.history: list[ExecutedCell] = []
        self._depth = 0
        self._warned: set[str] = set()
        self._client: Client | None = None
        self._experiment_id: str | None = None
        self._env_digest: str | None = None
        self._git: dict[str, Any] | None = None
        self._installed = False
        self._explicit_experiment: str | None = None

    # ----------------------------------------------------------------- store
    @property
    def client(self) -> Client:
        """The shared client; the store follows the notebook's folder unless a URI was set."""
        if self._client is None:
            if tracking._tracking_uri is None and not os.environ.get("NBMLOPS_TRACKING_URI"):
                tracking.set_tracking_uri(
                    self.settings.tracking_uri or default_tracking_uri(self.identity.directory)
                )
            self._client = tracking.get_client()
        return self._client

    def experiment_name(self) -> str:
        """The experiment this notebook logs to.

        An explicit ``autolog on --experiment`` wins, then ``NBMLOPS_EXPERIMENT_NAME``, then
        ``c.NbMlops.experiment``, then the notebook's file stem.
        """
        return (
            self._explicit_experiment
            or os.environ.get("NBMLOPS_EXPERIMENT_NAME", "").strip()
            or self.config.experiment
            or self.identity.name
        )

    def experiment_id(self) -> str:
        """The id of :meth:`experiment_name` (created on first use)."""
        if self._experiment_id is None:
            self._experiment_id = tracking.set_experiment(self.experiment_name()).experiment_id
        return self._experiment_id

    # ----------------------------------------------------------------- lifecycle
    def install(self) -> None:
        """Register the IPython hooks (idempotent)."""
        if self._installed:
            return
        events = self.shell.events
        events.register("pre_run_cell", self.pre_run_cell)
        events.register("post_run_cell", self.post_run_cell)
        # Run before matplotlib-inline's flush_figures, which closes the cell's figures.
        events.callbacks["post_execute"].insert(0, self.post_execute)
        tracking.set_run_provider(self.cell_run_provider)
        atexit.register(self.shutdown)
        self._installed = True

    def uninstall(self) -> None:
        """Remove the hooks (``%unload_ext nbmlops``); open runs end as KILLED."""
        if not self._installed:
            return
        self.autolog_off(status=RunStatus.KILLED)
        events = self.shell.events
        for name, callback in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
            ("post_execute", self.post_execute),
        ):
            if callback in events.callbacks[name]:
                events.unregister(name, callback)
        tracking.set_run_provider(None)
        atexit.unregister(self.shutdown)
        self._installed = False

    def autolog_on(
        self,
        experiment: str | None = None,
        log_models: bool = True,
        log_figures: bool = True,
        max_model_bytes: int | None = None,
    ) -> tracking.ActiveRun:
        """Open the session run and start capturing ML work; returns the session run."""
        if experiment is not None and (self.session_run is not None or self.parents):
            current = self.experiment_name()
            if experiment != current:
                raise InvalidArgument(
                    f"autolog is already logging to experiment {current!r}; run `%mlops autolog off` "
                    "before switching experiments"
                )
        self.config = AutologConfig(
            experiment=experiment or self.config.experiment,
            log_models=log_models and self.settings.log_models,
            log_figures=log_figures and self.settings.log_figures,
            max_model_bytes=max_model_bytes
            if max_model_bytes is not None
            else self.config.max_model_bytes,
        )
        if experiment:
            self._explicit_experiment = experiment
        self._experiment_id = None
        _set_sklearn_patches(True)
        self.autolog_enabled = True
        if self.session_run is None:
            self._open_session_run()
        assert self.session_run is not None
        return self.session_run

    def autolog_off(self, status: RunStatus = RunStatus.FINISHED) -> None:
        """Stop capturing and end the session run (FINISHED after a clean stop)."""
        _set_sklearn_patches(False)
        self.autolog_enabled = False
        for parent in reversed(self.parents):
            self._end(parent, status)
        self.parents.clear()
        if self.session_run is not None:
            self._end(self.session_run, status)
            self.session_run = None

    def _open_session_run(self) -> None:
        client = self.client
        identity = self.identity
        self._git = self._git if self._git is not None else _git_for(identity)
        tags = {
            RUN_TYPE_TAG: "session",
            NOTEBOOK_TAG: identity.path,
            "nbmlops.notebook.found_by": identity.how,
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.source.name": identity.path,
        }
        if not identity.known:
            tags["nbmlops.notebook.unknown"] = "true: only the working directory is known"
        if self._git:
            tags["mlflow.source.git.commit"] = self._git["commit"]
            tags["nbmlops.git.dirty"] = str(self._git["dirty"]).lower()
        parent = tracking.active_run()
        run = client.create_run(
            experiment_id=self.experiment_id(),
            run_name=identity.name,
            tags=tags,
            parent_run_id=parent.run_id if parent is not None else None,
            source=RunSource(path=identity.path),
        )
        self.session_run = tracking.push_implicit_run(run, client)

    def start_parent(self, name: str, tags: dict[str, str] | None = None) -> tracking.ActiveRun:
        """``%mlops start``: a parent run spanning cells, nested under the session/parent."""
        if self.cell is not None and self.cell.run is not None:
            raise InvalidArgument(
                "cannot start a parent run in a cell that already has its own run"
            )
        parent = self.current_parent()
        run = self.client.create_run(
            experiment_id=self.experiment_id(),
            run_name=name,
            tags={RUN_TYPE_TAG: "parent", NOTEBOOK_TAG: self.identity.path, **(tags or {})},
            parent_run_id=parent.run_id if parent is not None else None,
            source=RunSource(path=self.identity.path),
        )
        active = tracking.push_implicit_run(run, self.client)
        self.parents.append(active)
        return active

    def end_parent(self, status: RunStatus = RunStatus.FINISHED) -> str:
        """``%mlops end``: end the innermost parent run; returns its id."""
        if not self.parents:
            raise InvalidArgument("no parent run is open (start one with `%mlops start NAME`)")
        parent = self.parents.pop()
        self._end(parent, status)
        return parent.run_id

    def current_parent(self) -> tracking.ActiveRun | None:
        """Where a new cell run nests: the innermost open parent, else the session run.

        A run the user started with ``start_run`` (and left open across cells) counts too.
        """
        stack = tracking._stack()
        cell_run = self.cell.run if self.cell is not None else None
        for active in reversed(stack):
            if active is not cell_run:
                return active
        return None

    def _end(self, active: tracking.ActiveRun, status: RunStatus) -> None:
        try:
            active._client.set_terminated(active.run_id, status)
        except NbMlopsError as exc:
            self._warn("end", f"could not end run {active.run_id}: {exc}")
        tracking.pop_run(active)

    def shutdown(self) -> None:
        """Interpreter exit (kernel shutdown/restart): open runs end KILLED."""
        try:
            if self.cell is not None and self.cell.run is not None:
                self._end(self.cell.run, RunStatus.KILLED)
            for parent in reversed(self.parents):
                self._end(parent, RunStatus.KILLED)
            self.parents.clear()
            if self.session_run is not None:
                self._end(self.session_run, RunStatus.KILLED)
                self.session_run = None
            if self._client is not None:
                self._client.flush()
        except Exception as exc:  # exit goes on regardless
            self._warn("shutdown", f"nbmlops could not close runs at exit: {exc}")

    # ----------------------------------------------------------------- runs for ML work
    def cell_run_provider(self) -> tracking.ActiveRun | None:
        """For explicit log calls: the cell's run when autolog is on (created on demand)."""
        if self.cell is None or not self.autolog_enabled:
            return None
        return self.cell.ensure_run()

    def autolog_target(self, name_hint: str | None = None) -> tracking.ActiveRun | None:
        """Where autologged data goes: the user's own active run, else the cell's run.

        None when autolog is off or no cell is executing (e.g. a fit in a background thread).
        """
        if not self.autolog_enabled:
            return None
        stack = tracking._stack()
        if stack and not stack[-1].implicit:
            return stack[-1]
        if self.cell is None:
            return None
        return self.cell.ensure_run(name_hint=name_hint)

    # ----------------------------------------------------------------- hooks
    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"nbmlops: {message}", RuntimeWarning, stacklevel=2)

    def pre_run_cell(self, info: Any) -> None:
        if self.cell is not None:  # a nested run_cell (e.g. the body of %%mlops run)
            self._depth += 1
            return
        try:
            self.cell = CellContext(
                self,
                raw_cell=getattr(info, "raw_cell", "") or "",
                cell_id=getattr(info, "cell_id", None) or "",
                # IPython bumps execution_count before pre_run_cell when the cell is stored.
                execution_count=int(getattr(self.shell, "execution_count", 0) or 0)
                - (1 if getattr(info, "store_history", False) else 0),
            )
        except Exception as exc:
            self._warn("pre", f"autolog failed before the cell ({exc!r}); the cell runs as usual")

    def post_execute(self) -> None:
        cell = self.cell
        if cell is None or self._depth or not self.config.log_figures:
            return
        try:
            pylab = sys.modules.get("matplotlib._pylab_helpers")
            if pylab is None:
                return
            new = [
                m.canvas.figure
                for m in pylab.Gcf.get_all_fig_managers()
                if id(m.canvas.figure) not in cell.figure_ids
            ]
            if not new:
                return
            if cell.run is None and not (self.parents or self._user_run_open()):
                return  # plain EDA plot: no run to attach it to
            if cell.run is None and not self.autolog_enabled and not self.parents:
                return
            for figure in new:
                buffer = io.BytesIO()
                figure.savefig(buffer, format="png", bbox_inches="tight")
                cell.figures.append(buffer.getvalue())
        except Exception as exc:
            self._warn("figures", f"could not capture figures ({exc!r})")

    def _user_run_open(self) -> bool:
        stack = tracking._stack()
        return bool(stack) and not stack[-1].implicit

    def post_run_cell(self, result: Any) -> None:
        if self._depth:
            self._depth -= 1
            return
        cell, self.cell = self.cell, None
        if cell is None:
            return
        try:
            code = cell.raw_cell
            self.history.append(
                ExecutedCell(
                    execution_count=cell.execution_count,
                    cell_id=cell.cell_id,
                    code_sha256=hashlib.sha256(code.encode()).hexdigest(),
                    code=code,
                )
            )
            error = cell.error or getattr(result, "error_in_exec", None)
            if cell.figures and cell.run is None and (self.autolog_enabled or self.parents):
                cell.ensure_run()
            if cell.run is not None:
                self._finish_cell_run(cell, error)
            if self._client is not None:
                self._client.flush()
        except Exception as exc:
            self._warn("post", f"autolog failed after the cell ({exc!r}); the cell's result stands")

    def _finish_cell_run(self, cell: CellContext, error: BaseException | None) -> None:
        assert cell.run is not None
        client = self.client
        run_id = cell.run.run_id
        duration = time.perf_counter() - cell.started
        client.set_tag(run_id, "nbmlops.cell.duration_s", f"{duration:.6f}")
        for index, png in enumerate(cell.figures, start=1):
            client.log_bytes(run_id, png, f"figures/figure-{index}.png")
        client.log_text(run_id, json.dumps(self._lineage(), indent=1), "nbmlops/lineage.json")
        env = self._environment()
        client.log_text(
            run_id, json.dumps(env, indent=1, sort_keys=True), "nbmlops/environment.json"
        )
        from nbmlops.autolog import environment

        client.set_tag(run_id, "nbmlops.env_digest", environment.digest(env))
        if error is None:
            status = RunStatus.FINISHED
        elif isinstance(error, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
            client.set_tag(run_id, ERROR_TAG, f"{type(error).__name__}: {error}"[:4000])
        self._end(cell.run, status)
        if self.session_run is not None:
            self._update_session_environment(env)

    def _lineage(self) -> dict[str, Any]:
        """The executed cells this run depends on: every cell run so far, in execution order."""
        return {
            "notebook": self.identity.path,
            "cells": [
                {
                    "execution_count": c.execution_count,
                    "cell_id": c.cell_id,
                    "code_sha256": c.code_sha256,
                }
                for c in self.history
            ],
            "code": {c.code_sha256: c.code for c in self.history},
        }

    def _environment(self) -> dict[str, Any]:
        from nbmlops.autolog import environment

        if self._git is None:
            self._git = _git_for(self.identity)
        return environment.snapshot([c.code for c in self.history], self._git)

    def _update_session_environment(self, env: dict[str, Any]) -> None:
        from nbmlops.autolog import environment

        digest = environment.digest(env)
        if digest == self._env_digest or self.session_run is None:
            return
        self._env_digest = digest
        run_id = self.session_run.run_id
        self.client.log_text(
            run_id, json.dumps(env, indent=1, sort_keys=True), "nbmlops/environment.json"
        )
        self.client.set_tag(run_id, "nbmlops.env_digest", digest)


def _set_sklearn_patches(enabled: bool) -> None:
    """Patch (or restore) scikit-learn when it is installed; without it autolog still logs
    explicit calls and figures."""
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        return
    from nbmlops.autolog import sklearn as sklearn_autolog

    if enabled:
        sklearn_autolog.enable()
    else:
        sklearn_autolog.disable()


def _git_for(identity: NotebookIdentity) -> dict[str, Any]:
    from nbmlops.autolog import environment

    return environment.git_state(identity.directory)


def get_or_create(shell: Any) -> NotebookSession:
    """The kernel's session, created (and its hooks installed) on first use."""
    global _session
    if _session is None or _session.shell is not shell:
        if _session is not None:
            _session.uninstall()
        _session = NotebookSession(shell)
        _session.install()
    return _session


def drop() -> None:
    """Uninstall and forget the session (``%unload_ext``; tests)."""
    global _session
    if _session is not None:
        _session.uninstall()
    _session = None
