"""The Jupyter server extension: nbmlops' REST API under ``/nbmlops/api/`` (design doc §7).

Installed with the package and enabled by ``etc/jupyter/jupyter_server_config.d/nbmlops.json``
(``{"ServerApp": {"jpserver_extensions": {"nbmlops.server": true}}}``). The JupyterLab sidebar
(``labextension/``) is its client.

Layers: :mod:`nbmlops.server.handlers` are thin tornado handlers (authentication, argument
parsing, JSON out, one error mapping); :mod:`nbmlops.server.services` does the work through
:class:`nbmlops.client.Client` and the pure view models of :mod:`nbmlops.display.model`.
Nothing heavy is imported until the server loads the extension.
"""

from __future__ import annotations

from typing import Any

from nbmlops._version import __version__

__all__ = ["API_VERSION", "__version__"]

#: Version of the REST API's shape; the sidebar says so when it talks to another one.
API_VERSION = 1


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Tell jupyter_server where the extension lives."""
    return [{"module": "nbmlops.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the REST handlers on the running server (called by jupyter_server)."""
    from nbmlops.server.handlers import setup_handlers

    setup_handlers(serverapp)


# Older jupyter_server / notebook spelling.
load_jupyter_server_extension = _load_jupyter_server_extension
