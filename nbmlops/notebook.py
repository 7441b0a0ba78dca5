"""Which notebook is this kernel running? (so runs know where they came from)

Checked in order, first hit wins:

1. ``NBMLOPS_NOTEBOOK_PATH`` — set by runners that know (``nbmlops demo``, CI, papermill
   wrappers);
2. ``__vsc_ipynb_file__`` in the user namespace — VS Code;
3. ``JPY_SESSION_NAME`` (environment) or ``__session__`` (user namespace) — JupyterLab and
   Notebook 7 via jupyter_server; the value may be relative to the server root, in which case
   the kernel's start directory (the notebook's folder) supplies the rest;
4. otherwise the kernel's working directory, marked unknown.

``ipykernel_launcher.py`` (the kernel's ``sys.argv[0]``) is never taken for the source.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

ENV_NOTEBOOK_PATH = "NBMLOPS_NOTEBOOK_PATH"


@dataclasses.dataclass(frozen=True)
class NotebookIdentity:
    """Where a kernel's code comes from."""

    path: str  # absolute path of the .ipynb, or the working directory when unknown
    known: bool  # False when only the working directory is known
    how: str  # which rule found it: env, vscode, jupyter-session, cwd

    @property
    def name(self) -> str:
        """The notebook's file stem (the default experiment name), or the folder's name."""
        stem = Path(self.path).stem if self.known else Path(self.path).name
        return stem or "notebook"

    @property
    def directory(self) -> Path:
        """The folder the store lookup starts from."""
        path = Path(self.path)
        return path.parent if self.known else path


def _as_notebook(value: Any, base: Path) -> Path | None:
    if not isinstance(value, str) or not value.strip():
        return None
    candidate = Path(value.strip()).expanduser()
    if candidate.name.endswith("ipykernel_launcher.py") or (
        candidate.suffix == ".py" and "ipykernel" in value
    ):
        return None
    if not candidate.is_absolute():
        # jupyter_server passes the API path (relative to its root) and starts the kernel in
        # the notebook's folder: join the file name onto that folder.
        whole = base / candidate
        candidate = whole if whole.exists() else base / candidate.name
    return candidate


def detect_notebook(
    user_ns: dict[str, Any] | None = None, start_dir: str | Path | None = None
) -> NotebookIdentity:
    """Identify the running notebook (see the module docstring for the rules)."""
    base = Path(start_dir if start_dir is not None else os.getcwd()).absolute()
    namespace = user_ns or {}
    checks = (
        ("env", os.environ.get(ENV_NOTEBOOK_PATH)),
        ("vscode", namespace.get("__vsc_ipynb_file__")),
        ("jupyter-session", os.environ.get("JPY_SESSION_NAME")),
        ("jupyter-session", namespace.get("__session__")),
    )
    for how, value in checks:
        path = _as_notebook(value, base)
        if path is not None:
            return NotebookIdentity(path=str(path), known=True, how=how)
    return NotebookIdentity(path=str(base), known=False, how="cwd")
