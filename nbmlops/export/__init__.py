"""Notebook -> modular train/infer package, and verification that it reproduces the notebook.

The code, not a pickle, is what gets promoted: :func:`export_notebook` turns a notebook
into a package (``params.py``, ``features.py``, ``train.py``, ``infer.py``, a smoke test,
pinned requirements) that retrains on each environment's own data, and ``verify=True``
proves that the exported training reproduces the notebook's metrics.

Modules: :mod:`.reader` (validated notebook loading), :mod:`.translate` (magics and shell
lines), :mod:`.names` and :mod:`.analysis` (def/use analysis, roles, slicing),
:mod:`.codegen` (module writers), :mod:`.verify`, :mod:`.report`, :mod:`.runtime` (helpers
the exported code calls). ``import nbmlops.export`` is light: everything loads on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbmlops.export.analysis import ExportError
    from nbmlops.export.exporter import export_notebook
    from nbmlops.export.reader import NotebookError
    from nbmlops.export.report import ExportReport, VerificationResult

__all__ = [
    "ExportError",
    "ExportReport",
    "NotebookError",
    "VerificationResult",
    "export_current_notebook",
    "export_notebook",
]

_LAZY = {
    "export_notebook": "nbmlops.export.exporter",
    "ExportError": "nbmlops.export.analysis",
    "NotebookError": "nbmlops.export.reader",
    "ExportReport": "nbmlops.export.report",
    "VerificationResult": "nbmlops.export.report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbmlops.export' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def export_current_notebook(
    out: str | None = None,
    verify: bool = False,
    package: str | None = None,
    force: bool = False,
    model: str | None = None,
) -> ExportReport:
    """Export the notebook this kernel runs (the Python twin of ``%mlops export``).

    The notebook file on disk is exported, so save it first. The default output folder is
    ``<notebook folder>/<package>-export``. With ``verify``, the comparison uses this
    session's store (everything logged so far is flushed first).
    """
    from pathlib import Path

    from nbmlops.autolog import notebook_session
    from nbmlops.errors import InvalidArgument
    from nbmlops.export.exporter import default_package_name
    from nbmlops.export.exporter import export_notebook as _export

    session = notebook_session()
    assert session is not None
    identity = session.identity
    if not identity.known or not Path(identity.path).is_file():
        raise InvalidArgument(
            "cannot tell which notebook this kernel runs (set NBMLOPS_NOTEBOOK_PATH), so there "
            "is nothing to export; use nbmlops.export_notebook(path, out_dir)"
        )
    path = Path(identity.path)
    package = package or default_package_name(path.stem)
    target = Path(out) if out else path.parent / f"{package}-export"
    session.client.flush()
    return _export(
        path,
        target,
        package,
        verify,
        force=force,
        model=model,
        tracking_uri=session.client.tracking_uri,
    )
