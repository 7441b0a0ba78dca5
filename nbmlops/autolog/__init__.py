"""Notebook autologging and the Python twins of the ``%mlops`` magics.

Every magic is one call into a function here, so the same things work from plain Python
(``nbmlops.autolog()``) and from tests without IPython magics.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from nbmlops import tracking
from nbmlops.autolog import session as _session_module
from nbmlops.entities import RunStatus
from nbmlops.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.autolog.session import NotebookSession


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipython is a dependency
        return None
    return get_ipython()


def notebook_session(required: bool = True) -> NotebookSession | None:
    """The kernel's session (created on first use inside IPython)."""
    current = _session_module.current()
    if current is not None:
        return current
    shell = _shell()
    if shell is None:
        if required:
            raise InvalidArgument(
                "nbmlops autologging needs IPython/Jupyter (no running shell found)"
            )
        return None
    return _session_module.get_or_create(shell)


def autolog(
    enable: bool = True,
    experiment: str | None = None,
    log_models: bool = True,
    log_figures: bool = True,
    max_model_bytes: int | None = None,
) -> str | None:
    """Turn cell autologging on (returns the session run id) or off (``enable=False``).

    Args:
        enable: on or off. Off ends the session run FINISHED.
        experiment: experiment name (default: the notebook's file stem).
        log_models: store fitted models (size-capped by ``max_model_bytes``).
        log_figures: store figures drawn in run cells as PNG artifacts.
        max_model_bytes: skip (and tag) models larger than this; default 50 MB.
    """
    session = notebook_session()
    assert session is not None
    if not enable:
        session.autolog_off()
        return None
    if max_model_bytes is not None and (
        not isinstance(max_model_bytes, int) or max_model_bytes < 0
    ):
        raise InvalidArgument(
            f"max_model_bytes must be a non-negative integer, got {max_model_bytes!r}"
        )
    run = session.autolog_on(
        experiment=experiment,
        log_models=log_models,
        log_figures=log_figures,
        max_model_bytes=max_model_bytes,
    )
    return run.run_id


def start(name: str, tags: dict[str, str] | None = None) -> str:
    """Open a parent run spanning several cells (``%mlops start``); returns its id."""
    session = notebook_session()
    assert session is not None
    return session.start_parent(name, tags).run_id


def end(status: str = "FINISHED") -> str:
    """End the innermost parent run (``%mlops end``); returns its id."""
    session = notebook_session()
    assert session is not None
    return session.end_parent(RunStatus.parse(status))


def cell_run(name: str | None = None, tags: dict[str, str] | None = None) -> str:
    """Make the executing cell a run now (``%%mlops run``) and return its id."""
    session = notebook_session()
    assert session is not None
    if session.cell is None:
        raise InvalidArgument("cell_run() must be called from a notebook cell")
    return session.cell.ensure_run(name=name, tags=tags).run_id


def status() -> dict[str, Any]:
    """Store location, experiment, session run, open runs and autolog state."""
    session = notebook_session(required=False)
    client = session.client if session is not None else tracking.get_client()
    info: dict[str, Any] = {
        "store": client.store.location,
        "tracking_uri": client.tracking_uri,
        "autolog": bool(session and session.autolog_enabled),
    }
    if session is not None:
        info["notebook"] = session.identity.path + (
            "" if session.identity.known else " (unknown notebook)"
        )
        info["experiment"] = session.experiment_name()
        info["session_run"] = session.session_run.run_id if session.session_run else None
        info["parent_runs"] = [p.run_id for p in session.parents]
        info["executed_cells"] = len(session.history)
    info["open_runs"] = [a.run_id for a in tracking._stack()]
    return info


def runs_table(
    last: int | None = None,
    filter_string: str = "",
    experiment: str | None = None,
    all_experiments: bool = False,
) -> pd.DataFrame:
    """The runs of the notebook's experiment as a tree-ordered table (``%mlops runs``)."""
    from nbmlops.display.runs import runs_frame

    if last is not None and (not isinstance(last, int) or last < 1):
        raise InvalidArgument(f"last must be a positive integer, got {last!r}")
    session = notebook_session(required=False)
    client = session.client if session is not None else tracking.get_client()
    if all_experiments:
        ids = None
    else:
        name = experiment or (session.experiment_name() if session else None)
        found = client.get_experiment_by_name(name) if name else None
        if name and found is None:
            raise InvalidArgument(f"no experiment named {name!r}")
        ids = [found.experiment_id] if found else None
    runs = list(client.search_runs(ids, filter_string, max_results=last or 10_000))
    return runs_frame(runs)


class _CallableModule(types.ModuleType):
    """Lets ``nbmlops.autolog(...)`` stay callable once this subpackage is imported.

    Importing ``nbmlops.autolog`` (the package holding the hooks, where the design doc puts
    them) replaces the attribute ``nbmlops.autolog`` (the function users call) with the module;
    making the module callable keeps both spellings working.
    """

    def __call__(
        self,
        enable: bool = True,
        experiment: str | None = None,
        log_models: bool = True,
        log_figures: bool = True,
        max_model_bytes: int | None = None,
    ) -> str | None:
        return autolog(
            enable=enable,
            experiment=experiment,
            log_models=log_models,
            log_figures=log_figures,
            max_model_bytes=max_model_bytes,
        )


sys.modules[__name__].__class__ = _CallableModule
