"""Inline panels: the runs table, the side-by-side comparison, the run detail and the
registry panel (ipywidgets where a kernel can show them, escaped static HTML elsewhere).

``import nbmlops.display`` is light: the panels (and ipywidgets, matplotlib) load on first use.
The Python twins of the magics are exported by ``nbmlops`` itself:

* ``nbmlops.runs_view`` — ``%mlops runs``        (module :mod:`nbmlops.display.runs_view`)
* ``nbmlops.compare`` — ``%mlops compare``        (module :mod:`nbmlops.display.compare`)
* ``nbmlops.show_run`` — ``%mlops show``          (module :mod:`nbmlops.display.run_detail`)
* ``nbmlops.registry_view`` — ``%mlops registry`` (module :mod:`nbmlops.display.registry_view`)

What the panels show is computed in :mod:`nbmlops.display.model` (no widgets, no HTML).
"""

from __future__ import annotations

import importlib

#: Panel classes, loaded on first use (the twins' modules share their names).
_LAZY = {
    "RunsView": "nbmlops.display.runs_view",
    "ComparePanel": "nbmlops.display.compare",
    "RunDetailPanel": "nbmlops.display.run_detail",
    "RegistryPanel": "nbmlops.display.registry_view",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbmlops.display' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
