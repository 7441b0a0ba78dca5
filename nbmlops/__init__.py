"""nbmlops: the MLOps layer that lives inside Jupyter.

``import nbmlops`` is cheap: it loads the fluent API and the store resolver only; pandas,
scikit-learn, matplotlib, ipywidgets and optuna are imported by the parts that need them.
"""

from __future__ import annotations

from nbmlops._version import __version__
from nbmlops.client import Client
from nbmlops.entities import (
    Artifact,
    DatasetInput,
    Experiment,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    RegistryEvent,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
)
from nbmlops.errors import AlreadyExists, InvalidArgument, NbMlopsError, NotFound, StoreError
from nbmlops.registry import PromotionDecision, promote, register_model
from nbmlops.tracking import (
    ActiveRun,
    active_run,
    end_run,
    flush,
    get_client,
    get_experiment,
    get_experiment_by_name,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

MlflowClient = Client  # the name MLflow users reach for

#: Loaded on first use (models.py pulls in importlib.metadata and pickle machinery), so that
#: ``import nbmlops`` stays light.
_LAZY_MODELS = {"LoadedModel", "ModelInfo", "ModelIntegrityError", "load_model", "log_model"}
#: The inline panels (twins of %mlops runs/compare/show/registry), loaded on first use so
#: that ``import nbmlops`` never imports ipywidgets, pandas or matplotlib.
_LAZY_PANELS = {
    "runs_view": "nbmlops.display.runs_view",
    "compare": "nbmlops.display.compare",
    "show_run": "nbmlops.display.run_detail",
    "registry_view": "nbmlops.display.registry_view",
}


def __getattr__(name: str) -> object:
    if name in _LAZY_MODELS:
        from nbmlops import models

        return getattr(models, name)
    if name in _LAZY_PANELS:
        import importlib

        return getattr(importlib.import_module(_LAZY_PANELS[name]), name)
    if name in ("tune", "tune_interactive"):  # Optuna tuning, loaded (with optuna) on first use
        from nbmlops import tuning

        return getattr(tuning, name)
    if name == "export_notebook":  # notebook -> package export, loaded on first use
        from nbmlops.export.exporter import export_notebook

        return export_notebook
    raise AttributeError(f"module 'nbmlops' has no attribute {name!r}")


__all__ = [
    "ActiveRun",
    "AlreadyExists",
    "Artifact",
    "Client",
    "DatasetInput",
    "Experiment",
    "InvalidArgument",
    "LoadedModel",
    "Metric",
    "MlflowClient",
    "ModelInfo",
    "ModelIntegrityError",
    "ModelVersion",
    "NbMlopsError",
    "NotFound",
    "Param",
    "PromotionDecision",
    "RegisteredModel",
    "RegistryEvent",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "StoreError",
    "__version__",
    "active_run",
    "autolog",
    "compare",
    "end_run",
    "export_notebook",
    "flush",
    "get_client",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "load_ipython_extension",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "promote",
    "register_model",
    "registry_view",
    "runs_view",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "show_run",
    "start_run",
    "tune",
    "tune_interactive",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext nbmlops``: register the ``%mlops`` magics and the cell hooks (nothing heavy)."""
    from nbmlops import magics

    magics.load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext nbmlops``: remove the hooks; runs still open end as KILLED."""
    from nbmlops import magics

    magics.unload(ipython)


def autolog(
    enable: bool = True,
    experiment: str | None = None,
    log_models: bool = True,
    log_figures: bool = True,
    max_model_bytes: int | None = None,
) -> str | None:
    """Turn notebook cell autologging on or off (twin of ``%mlops autolog on|off``)."""
    from nbmlops.autolog import autolog as _autolog

    return _autolog(
        enable=enable,
        experiment=experiment,
        log_models=log_models,
        log_figures=log_figures,
        max_model_bytes=max_model_bytes,
    )
