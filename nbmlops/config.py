"""Settings read from Jupyter/IPython configuration: ``c.NbMlops.<name> = ...``.

Put them in ``ipython_config.py`` or ``ipython_kernel_config.py`` (or pass
``--NbMlops.tracking_uri=...`` on a kernel's command line). Environment variables win over
configuration, so one run can be redirected without editing files:
``NBMLOPS_TRACKING_URI`` over ``tracking_uri``, ``NBMLOPS_EXPERIMENT_NAME`` over ``experiment``.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Int, TraitError, Unicode, validate
from traitlets.config import Configurable


class NbMlops(Configurable):
    """nbmlops' configurable settings (see the module docstring)."""

    tracking_uri = Unicode(
        "",
        help="Store URI (sqlite:///..., a folder, memory:). Empty: the nearest .nbmlops/ "
        "folder from the notebook. NBMLOPS_TRACKING_URI overrides it.",
    ).tag(config=True)
    experiment = Unicode(
        "", help="Experiment for autologged runs. Empty: the notebook's file stem."
    ).tag(config=True)
    autolog = Bool(False, help="Turn cell autologging on when the extension loads.").tag(
        config=True
    )
    log_models = Bool(True, help="Autolog stores fitted models.").tag(config=True)
    log_figures = Bool(True, help="Autolog stores figures of run cells as PNG.").tag(config=True)
    max_model_bytes = Int(
        50 * 1024 * 1024, help="Autolog skips (and tags) models larger than this many bytes."
    ).tag(config=True)

    @validate("max_model_bytes")
    def _non_negative(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 0:
            raise TraitError(f"NbMlops.max_model_bytes must be >= 0, got {proposal['value']}")
        return int(proposal["value"])


def load_settings(shell: Any = None) -> NbMlops:
    """Settings from the shell's configuration (defaults without a shell)."""
    config = getattr(shell, "config", None)
    return NbMlops(config=config) if config is not None else NbMlops()
