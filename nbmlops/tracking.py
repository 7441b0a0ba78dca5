"""The fluent API: module-level functions over an active-run stack, MLflow-style.

``import nbmlops as mlflow`` works for the common subset: ``set_tracking_uri``,
``set_experiment``, ``start_run`` (context manager, ``nested=True`` for children),
``log_param(s)``, ``log_metric(s)``, ``set_tag(s)``, ``log_artifact(s)``, ``log_text``,
``log_dict``, ``log_figure``, ``log_input``, ``end_run``, ``active_run``,
``last_active_run``, ``get_run`` and ``search_runs`` (a pandas DataFrame).

The active-run stack is per thread (as in MLflow), so threads such as parallel tuning
trials each have their own current run. Logging with no active run starts one, like MLflow.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nbmlops.client import Client
from nbmlops.entities import (
    Artifact,
    Experiment,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunSource,
    RunStatus,
    RunTag,
)
from nbmlops.errors import InvalidArgument, NbMlopsError
from nbmlops.store import default_tracking_uri, normalize_uri
from nbmlops.store import heartbeat as hb
from nbmlops.validation import validate_name

if TYPE_CHECKING:
    import pandas as pd

ENV_EXPERIMENT_NAME = "NBMLOPS_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT_NAME = "Default"
#: Tag holding ``ExceptionType: message`` of a run that ended FAILED from a ``with`` block.
ERROR_TAG = "nbmlops.error"

_state_lock = threading.RLock()
_tracking_uri: str | None = None
_experiment_id: str | None = None
_clients: dict[str, Client] = {}
_local = threading.local()


def _stack() -> list[ActiveRun]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


# --------------------------------------------------------------------------- store and experiment


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Use the store at ``uri`` (``sqlite:///...``, a folder, ``memory:``) from now on."""
    global _tracking_uri, _experiment_id
    normalized = normalize_uri(os.fspath(uri))
    with _state_lock:
        if _stack():
            raise InvalidArgument(
                "cannot change the tracking URI while a run is active; end it first"
            )
        _tracking_uri = normalized
        _experiment_id = None


def get_tracking_uri() -> str:
    """The URI in use: the one set, else ``NBMLOPS_TRACKING_URI``, else the default rule."""
    return _tracking_uri or normalize_uri(default_tracking_uri())


def _reset_for_tests() -> None:
    """Forget URI, experiment and active runs (used by the test-suite between tests)."""
    global _tracking_uri, _experiment_id
    with _state_lock:
        _tracking_uri = None
        _experiment_id = None
        for client in _clients.values():
            client.close()
        _clients.clear()
        _local.stack = []
        _local.last = None


def get_client() -> Client:
    """The shared :class:`Client` for the current tracking URI."""
    uri = get_tracking_uri()
    client = _clients.get(uri)
    if client is None:
        with _state_lock:
            client = _clients.get(uri)
            if client is None:
                client = _clients[uri] = Client(uri)
    return client


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment current (created if the name is new) and return it."""
    global _experiment_id
    client = get_client()
    if experiment_id is not None:
        experiment = client.get_experiment(str(experiment_id))
    elif experiment_name is not None:
        experiment = client.get_or_create_experiment(
            validate_name(experiment_name, "experiment name")
        )
    else:
        raise InvalidArgument("set_experiment needs experiment_name or experiment_id")
    with _state_lock:
        _experiment_id = experiment.experiment_id
    return experiment


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment called ``name``, or None."""
    return get_client().get_experiment_by_name(name)


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with this id (NotFound otherwise)."""
    return get_client().get_experiment(str(experiment_id))


def _current_experiment_id() -> str:
    global _experiment_id
    if _experiment_id is None:
        name = os.environ.get(ENV_EXPERIMENT_NAME, "").strip() or DEFAULT_EXPERIMENT_NAME
        experiment = get_client().get_or_create_experiment(name)
        with _state_lock:
            _experiment_id = experiment.experiment_id
    return _experiment_id


# --------------------------------------------------------------------------- runs


class ActiveRun:
    """A run started by :func:`start_run`; use it as a context manager.

    ``info`` and ``data`` are read from the store when accessed (after a flush), so they
    reflect what has been logged so far.
    """

    def __init__(self, run: Run, client: Client, implicit: bool = False) -> None:
        self._run_id = run.info.run_id
        self._client = client
        #: Opened by the notebook layer (session, ``%mlops start`` parent, cell run): a user's
        #: ``start_run()`` nests under it without ``nested=True``.
        self.implicit = implicit

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def info(self) -> RunInfo:
        return self._client.get_run(self._run_id).info

    @property
    def data(self) -> RunData:
        return self._client.get_run(self._run_id).data

    def to_run(self) -> Run:
        """A snapshot of the run as stored now."""
        return self._client.get_run(self._run_id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        if exc is not None and status is RunStatus.FAILED:
            message = f"{exc_type.__name__}: {exc}"[:4000]
            try:
                self._client.set_tag(self._run_id, ERROR_TAG, message)
            except NbMlopsError:
                pass
        _end(self, status)

    def __repr__(self) -> str:
        return f"<ActiveRun run_id={self._run_id}>"


def _script_source() -> RunSource:
    main = sys.argv[0] if sys.argv else ""
    if not main or main in ("-c", "-m") or "ipykernel_launcher" in main:
        return RunSource()
    return RunSource(path=str(Path(main).absolute()))


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    parent_run_id: str | None = None,
    source: RunSource | None = None,
) -> ActiveRun:
    """Start a run (or resume a RUNNING one by ``run_id``) and make it the active run.

    Args:
        run_id: resume this RUNNING run instead of creating one.
        experiment_id: defaults to the current experiment.
        run_name: defaults to a generated name such as ``swift-otter-042``.
        nested: make the run a child of the active run. Without it, starting a run while
            another is active is an error (as in MLflow).
        tags: initial tags.
        description: stored as the ``mlflow.note.content`` tag (MLflow's convention).
        parent_run_id: explicit parent (overrides ``nested``'s choice).
        source: where the code came from (the notebook layer fills this in).
    """
    stack = _stack()
    nest_under_top = bool(stack) and (nested or stack[-1].implicit)
    if stack and not nest_under_top and parent_run_id is None and run_id is None:
        raise InvalidArgument(
            f"run {stack[-1].run_id} is already active; end it with end_run() first, or pass "
            "nested=True to start a child run"
        )
    client = get_client()
    if run_id is not None:
        run = client.get_run(run_id)
        if run.info.status is not RunStatus.RUNNING:
            raise InvalidArgument(
                f"run {run_id} has ended ({run.info.status.value}); nbmlops does not reopen ended "
                "runs: start a new run"
            )
        active = ActiveRun(run, client)
    else:
        parent = parent_run_id or (stack[-1].run_id if nest_under_top else None)
        all_tags = dict(tags or {})
        if description is not None:
            all_tags["mlflow.note.content"] = description
        run = client.create_run(
            experiment_id=str(experiment_id)
            if experiment_id is not None
            else _current_experiment_id(),
            run_name=run_name,
            tags=all_tags,
            parent_run_id=parent,
            source=source or _script_source(),
        )
        active = ActiveRun(run, client)
    stack.append(active)
    return active


def _end(active: ActiveRun, status: RunStatus) -> None:
    stack = _stack()
    try:
        active._client.set_terminated(active.run_id, status)
    finally:
        if active in stack:
            # Ending a parent ends the children left open above it too.
            index = stack.index(active)
            for child in reversed(stack[index + 1 :]):
                try:
                    child._client.set_terminated(child.run_id, status)
                except NbMlopsError:
                    pass
            del stack[index:]
        _local.last = active


def end_run(status: str | RunStatus = "FINISHED") -> None:
    """End the active run with ``status`` (no-op when no run is active)."""
    stack = _stack()
    if stack:
        _end(stack[-1], RunStatus.parse(status))


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the run most recently ended in this thread, as stored."""
    current = active_run()
    if current is not None:
        return current.to_run()
    last = getattr(_local, "last", None)
    return None if last is None else last.to_run()


def get_run(run_id: str) -> Run:
    """A run as stored (NotFound for an unknown id)."""
    return get_client().get_run(run_id)


#: Set by the notebook layer: returns the run of the executing cell (creating it on first
#: use), so an explicit log call inside a cell lands in that cell's run.
_run_provider: Callable[[], ActiveRun | None] | None = None


def set_run_provider(provider: Callable[[], ActiveRun | None] | None) -> None:
    """Install (or remove, with None) the notebook layer's cell-run provider."""
    global _run_provider
    _run_provider = provider


def push_implicit_run(run: Run, client: Client) -> ActiveRun:
    """Put a run opened by the notebook layer on this thread's stack (see ActiveRun.implicit)."""
    active = ActiveRun(run, client, implicit=True)
    _stack().append(active)
    return active


def pop_run(active: ActiveRun) -> None:
    """Remove ``active`` (and anything above it) from the stack without ending it."""
    stack = _stack()
    if active in stack:
        del stack[stack.index(active) :]
        _local.last = active


def run_for_logging() -> ActiveRun:
    """The run a log call goes to: the user's innermost run, else the cell's run, else a new run."""
    stack = _stack()
    if stack and not stack[-1].implicit:
        return stack[-1]
    if _run_provider is not None:
        provided = _run_provider()
        if provided is not None:
            return provided
    return stack[-1] if stack else start_run()


_run_for_logging = run_for_logging


# --------------------------------------------------------------------------- logging


def log_param(key: str, value: Any) -> Any:
    """Log a param to the active run (starts one if none). Returns ``value``."""
    active = _run_for_logging()
    active._client.log_param(active.run_id, key, value)
    return value


def log_params(params: Mapping[str, Any]) -> None:
    """Log several params at once (all validated before any is logged)."""
    if not isinstance(params, Mapping):
        raise InvalidArgument(f"log_params needs a mapping, got {type(params).__name__}")
    active = _run_for_logging()
    active._client.log_batch(active.run_id, params=[Param(k, v) for k, v in params.items()])


def log_metric(key: str, value: Any, step: int | None = None, timestamp: int | None = None) -> None:
    """Log a metric point to the active run (starts one if none)."""
    active = _run_for_logging()
    active._client.log_metric(active.run_id, key, value, timestamp=timestamp, step=step)


def log_metrics(
    metrics: Mapping[str, Any], step: int | None = None, timestamp: int | None = None
) -> None:
    """Log several metrics at one step (all validated before any is logged)."""
    if not isinstance(metrics, Mapping):
        raise InvalidArgument(f"log_metrics needs a mapping, got {type(metrics).__name__}")
    active = _run_for_logging()
    now = hb.now_ms() if timestamp is None else timestamp
    active._client.log_batch(
        active.run_id,
        metrics=[Metric(k, v, now, 0 if step is None else step) for k, v in metrics.items()],
    )


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run (starts one if none)."""
    active = _run_for_logging()
    active._client.set_tag(active.run_id, key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags at once."""
    if not isinstance(tags, Mapping):
        raise InvalidArgument(f"set_tags needs a mapping, got {type(tags).__name__}")
    active = _run_for_logging()
    active._client.log_batch(active.run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> Artifact:
    """Copy a local file into the active run's artifacts."""
    active = _run_for_logging()
    return active._client.log_artifact(active.run_id, local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> list[Artifact]:
    """Copy a local folder into the active run's artifacts."""
    active = _run_for_logging()
    return active._client.log_artifacts(active.run_id, local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> Artifact:
    """Store text as an artifact of the active run."""
    active = _run_for_logging()
    return active._client.log_text(active.run_id, text, artifact_file)


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> Artifact:
    """Store a mapping as JSON/YAML in the active run."""
    active = _run_for_logging()
    return active._client.log_dict(active.run_id, dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> Artifact:
    """Store a matplotlib figure in the active run."""
    active = _run_for_logging()
    return active._client.log_figure(active.run_id, figure, artifact_file)


def log_input(
    dataset: Any, name: str | None = None, context: str = "training", source: str = ""
) -> None:
    """Record a fingerprint (digest, shape, dtypes) of a DataFrame or array the run used."""
    from nbmlops.data import fingerprint

    info = fingerprint(dataset, name=name, context=context, source=source)
    active = _run_for_logging()
    active._client.log_inputs(active.run_id, [info])


def flush() -> None:
    """Write everything buffered by the current client to the store."""
    get_client().flush()


# --------------------------------------------------------------------------- search


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    max_results: int = 100_000,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> pd.DataFrame | list[Run]:
    """Runs matching ``filter_string`` as a DataFrame (or a list with ``output_format='list'``).

    Experiments: ``experiment_ids`` or ``experiment_names`` if given; every experiment with
    ``search_all_experiments=True``; else the current experiment.

    DataFrame columns: ``run_id, experiment_id, run_name, status, start_time, end_time,
    parent_run_id`` then ``params.*``, ``metrics.*`` (latest value) and ``tags.*``.
    """
    if output_format not in ("pandas", "list"):
        raise InvalidArgument(f"output_format must be 'pandas' or 'list', got {output_format!r}")
    client = get_client()
    ids: list[str] | None
    if experiment_ids is not None:
        ids = (
            [experiment_ids]
            if isinstance(experiment_ids, str)
            else [str(e) for e in experiment_ids]
        )
    elif experiment_names is not None:
        names = [experiment_names] if isinstance(experiment_names, str) else list(experiment_names)
        ids = []
        for name in names:
            experiment = client.get_experiment_by_name(name)
            if experiment is not None:
                ids.append(experiment.experiment_id)
    elif search_all_experiments:
        ids = None
    else:
        ids = [_current_experiment_id()]
    runs: list[Run] = []
    token: str | None = None
    while len(runs) < max_results:
        page = client.search_runs(
            ids,
            filter_string,
            order_by,
            max_results=min(50_000, max_results - len(runs)),
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    if output_format == "list":
        return runs
    return runs_to_dataframe(runs)


def runs_to_dataframe(runs: Sequence[Run]) -> pd.DataFrame:
    """The MLflow-shaped DataFrame of ``runs`` (built column-wise: fast for thousands)."""
    import pandas as pd

    n = len(runs)
    columns: dict[str, list[Any]] = {
        "run_id": [r.info.run_id for r in runs],
        "experiment_id": [r.info.experiment_id for r in runs],
        "run_name": [r.info.run_name for r in runs],
        "status": [r.info.status.value for r in runs],
        "start_time": [r.info.start_time for r in runs],
        "end_time": [r.info.end_time for r in runs],
        "parent_run_id": [r.info.parent_run_id for r in runs],
    }
    for prefix, attribute in (("params", "params"), ("metrics", "metrics"), ("tags", "tags")):
        keys: dict[str, None] = {}
        for run in runs:
            keys.update(dict.fromkeys(getattr(run.data, attribute)))
        for key in sorted(keys):
            columns[f"{prefix}.{key}"] = [getattr(r.data, attribute).get(key) for r in runs]
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    metric_columns = [c for c in frame.columns if c.startswith("metrics.")]
    if metric_columns:
        frame[metric_columns] = frame[metric_columns].astype("float64")
    return frame


def _end_runs_at_exit() -> None:
    """End runs still active at interpreter exit: FAILED after an uncaught error, else FINISHED."""
    status = RunStatus.FAILED if hasattr(sys, "last_value") else RunStatus.FINISHED
    stack = getattr(_local, "stack", None)
    while stack:
        try:
            _end(stack[0], status)
        except Exception:
            stack.clear()


atexit.register(_end_runs_at_exit)
