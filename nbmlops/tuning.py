"""Hyperparameter tuning with Optuna: each trial a nested run, a live panel, scale-out.

Optuna is the engine (samplers, pruners, storages); this module maps its trials onto the
nbmlops run tree and drives the notebook panel:

* :func:`tune` opens a **tuning run** (``nbmlops.run_type=tuning``) under the notebook's open
  parent (a ``%mlops start`` run or the session run; in a script, the active run) and makes
  every trial a **child run** of it (``nbmlops.run_type=trial``). While the objective runs,
  the trial run is pushed as the thread's active (non-implicit) run, so explicit
  ``nbmlops.log_*`` calls and scikit-learn autologging inside the objective land in it.
  When Optuna has told the trial, the run gets the suggested values as params, the objective
  value(s) as metrics (intermediate values from ``trial.report`` as the history of
  ``<metric>_intermediate``) and ends ``FINISHED`` (complete), ``KILLED`` (pruned; tag
  ``nbmlops.trial.state=PRUNED``) or ``FAILED`` (tag ``nbmlops.error``).
* The tuning run logs the study settings as params and, at the end, ``best_<param>`` params,
  ``best_value`` / ``best_<metric>`` and the trial counts as metrics, the best trial's run id
  as a tag, ``tuning/trials.csv`` and, once 10 trials completed, ``tuning/param_importances``.
* Stopping: the panel's Stop button, :func:`stop` or a first Ctrl-C / kernel interrupt end the
  study after the running trial (every finished trial is kept); a second Ctrl-C aborts the
  running trial (its run ends ``KILLED``) and raises ``KeyboardInterrupt``.
* Scale-out: ``storage`` is handed to Optuna (``journal:///path`` or a path ending in
  ``.journal`` for a journal file, an RDB URL such as ``postgresql://...``, or a storage
  object). ``n_workers=K`` starts K worker processes (``python -m nbmlops.tuning_worker``) on
  the same study; without a storage they share a journal file next to the nbmlops store
  (never SQLite: Optuna advises against concurrent SQLite writers).

Optuna is imported lazily (``import nbmlops`` stays light).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import inspect
import linecache
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import types
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmlops import tracking
from nbmlops.entities import Metric, Param, RunSource, RunStatus, RunTag
from nbmlops.errors import AlreadyExists, InvalidArgument, NbMlopsError
from nbmlops.store import heartbeat as hb
from nbmlops.validation import param_value_to_str

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.client import Client

__all__ = [
    "InteractiveTuner",
    "TrialRow",
    "TuningFailed",
    "TuningProgress",
    "TuningResult",
    "objective_from_cell",
    "parse_space",
    "stop",
    "tune",
    "tune_interactive",
]

RUN_TYPE_TAG = "nbmlops.run_type"
STUDY_TAG = "nbmlops.study"
TRIAL_NUMBER_TAG = "nbmlops.trial.number"
TRIAL_STATE_TAG = "nbmlops.trial.state"
TRIAL_WORKER_TAG = "nbmlops.trial.worker"
BEST_RUN_TAG = "nbmlops.tuning.best_run_id"
BEST_TRIAL_TAG = "nbmlops.tuning.best_trial"
OUTCOME_TAG = "nbmlops.tuning.outcome"
STOP_REASON_TAG = "nbmlops.tuning.stop_reason"
MODE_TAG = "nbmlops.tuning.mode"
ERROR_TAG = tracking.ERROR_TAG
#: Optuna user attributes written on each trial (visible in ``trials_dataframe()``).
RUN_ID_ATTR = "nbmlops_run_id"
ERROR_ATTR = "nbmlops_error"
#: Param importances are logged (and shown) once this many trials completed.
IMPORTANCE_MIN_TRIALS = 10
#: When the first trials of a call all fail, the study stops instead of failing on and on.
FAIL_FAST_TRIALS = 3
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "none")
DIRECTIONS = ("maximize", "minimize")


class _Missing:
    """Marks "the objective cell set no value" (a singleton that survives pickling)."""

    def __repr__(self) -> str:
        return "<missing>"

    def __reduce__(self) -> str:
        return "_MISSING"


_MISSING: Any = _Missing()


class TuningFailed(NbMlopsError):
    """Every trial of a :func:`tune` call failed (the objective is almost surely broken).

    The first trial's exception is chained (``__cause__``); ``result`` holds the study and
    runs so far.
    """

    def __init__(self, message: str, result: TuningResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines off (the panel shows progress); warnings stay."""
    optuna = _optuna()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise InvalidArgument(
            "tuning needs Optuna: pip install 'nbmlops[tuning]' (or pip install optuna)"
        ) from None
    return optuna


# --------------------------------------------------------------------------- progress model


@dataclasses.dataclass(frozen=True)
class TrialRow:
    """One finished trial as the panel and the result see it."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL
    values: tuple[float, ...] | None
    params: dict[str, Any]
    duration_s: float | None
    run_id: str | None
    error: str | None = None
    last_intermediate: float | None = None

    @property
    def value(self) -> float | None:
        """The first objective value (None unless the trial completed)."""
        return None if not self.values else self.values[0]


def _row_from_frozen(frozen: Any) -> TrialRow:
    duration = None
    if frozen.datetime_start is not None and frozen.datetime_complete is not None:
        duration = (frozen.datetime_complete - frozen.datetime_start).total_seconds()
    intermediate = frozen.intermediate_values
    last = intermediate[max(intermediate)] if intermediate else None
    values = tuple(float(v) for v in frozen.values) if frozen.values is not None else None
    return TrialRow(
        number=frozen.number,
        state=frozen.state.name,
        values=values if frozen.state.name == "COMPLETE" else None,
        params=dict(frozen.params),
        duration_s=duration,
        run_id=frozen.user_attrs.get(RUN_ID_ATTR),
        error=frozen.user_attrs.get(ERROR_ATTR),
        last_intermediate=last,
    )


def _param_kind(distribution: Any) -> str:
    name = type(distribution).__name__
    if name == "CategoricalDistribution":
        return "categorical"
    if getattr(distribution, "log", False):
        return "log"
    return "int" if name == "IntDistribution" else "float"


class TuningProgress:
    """What the live panel shows: the finished trials of this call, kept thread-safe.

    The engine adds rows as trials finish (from Optuna callbacks, or by polling the storage
    when worker processes run the trials); the panel reads :meth:`snapshot`.
    """

    def __init__(
        self,
        study_name: str,
        metric_names: Sequence[str],
        directions: Sequence[str],
        n_trials: int | None,
        timeout: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.study_name = study_name
        self.metric_names = list(metric_names)
        self.directions = list(directions)
        self.n_trials = n_trials
        self.timeout = timeout
        self.clock = clock
        self.started = clock()
        self.ended: float | None = None
        self.state = "running"
        self.stop_reason: str | None = None
        self.running = 0
        self.param_kinds: dict[str, str] = {}
        self.importances: dict[str, float] | None = None
        #: Set by the engine: computes param importances on demand (None: not available).
        self.importance_fn: Callable[[], dict[str, float]] | None = None
        self._rows: list[TrialRow] = []
        self._best: TrialRow | None = None
        self._counts = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
        self._lock = threading.Lock()

    @property
    def maximize(self) -> bool:
        return self.directions[0] == "maximize"

    def better(self, a: float, b: float) -> bool:
        """Whether objective value ``a`` beats ``b`` (on the first objective)."""
        return a > b if self.maximize else a < b

    def add(self, row: TrialRow, distributions: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            self._rows.append(row)
            self._counts[row.state] = self._counts.get(row.state, 0) + 1
            value = row.value
            if (
                value is not None
                and not math.isnan(value)
                and (
                    self._best is None
                    or self._best.value is None
                    or self.better(value, self._best.value)
                )
            ):
                self._best = row
            for name, distribution in (distributions or {}).items():
                if name not in self.param_kinds:
                    self.param_kinds[name] = _param_kind(distribution)

    def add_prior_best(self, row: TrialRow) -> None:
        """The best trial of earlier calls on a resumed study (shown as best so far)."""
        with self._lock:
            if row.value is not None and (
                self._best is None
                or self._best.value is None
                or self.better(row.value, self._best.value)
            ):
                self._best = row

    def snapshot(self) -> list[TrialRow]:
        """The rows so far, in the order trials finished."""
        with self._lock:
            return list(self._rows)

    @property
    def best(self) -> TrialRow | None:
        return self._best

    @property
    def n_done(self) -> int:
        return len(self._rows)

    @property
    def n_complete(self) -> int:
        return self._counts.get("COMPLETE", 0)

    @property
    def n_pruned(self) -> int:
        return self._counts.get("PRUNED", 0)

    @property
    def n_failed(self) -> int:
        return self._counts.get("FAIL", 0)

    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else self.clock()) - self.started

    def eta(self) -> float | None:
        """Seconds left: from the pace so far and the trial budget, capped by the timeout."""
        if self.ended is not None:
            return 0.0
        elapsed = self.elapsed()
        estimates = []
        if self.n_trials is not None and self.n_done:
            estimates.append(elapsed / self.n_done * max(0, self.n_trials - self.n_done))
        if self.timeout is not None:
            estimates.append(max(0.0, self.timeout - elapsed))
        return min(estimates) if estimates else None

    def finish(self, state: str, stop_reason: str | None = None) -> None:
        self.state = state
        self.stop_reason = stop_reason
        self.running = 0
        self.ended = self.clock()


# --------------------------------------------------------------------------- stop control


class _Control:
    """Stop requests for one running study (Stop button, :func:`stop`, Ctrl-C)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def request_stop(self, reason: str = "stop()") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def stop_requested(self) -> bool:
        return self._event.is_set()


_controls_lock = threading.Lock()
_running: list[_Control] = []


def stop(reason: str = "stop()") -> int:
    """Ask every study running in this process to stop after its running trial.

    Returns how many studies were asked. Finished trials are kept; the tuning call returns
    normally with ``result.state == "stopped"``.
    """
    with _controls_lock:
        controls = list(_running)
    for control in controls:
        control.request_stop(reason)
    return len(controls)


@contextlib.contextmanager
def _registered(control: _Control) -> Iterator[None]:
    with _controls_lock:
        _running.append(control)
    try:
        yield
    finally:
        with _controls_lock:
            if control in _running:
                _running.remove(control)


@contextlib.contextmanager
def _graceful_sigint(control: _Control, notify: Callable[[str], None] | None) -> Iterator[None]:
    """First SIGINT: stop after the running trial. Second: KeyboardInterrupt (abort it).

    Only the main thread can install signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.getsignal(signal.SIGINT)
    except (ValueError, OSError):  # pragma: no cover - no signal support
        yield
        return
    count = 0

    def handler(signum: int, frame: Any) -> None:
        nonlocal count
        count += 1
        if count == 1:
            control.request_stop("interrupt")
            if notify is not None:
                notify(
                    "Interrupted: the study stops after the running trial "
                    "(interrupt again to abort that trial)."
                )
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- trial runs


@dataclasses.dataclass
class _OpenTrial:
    active: tracking.ActiveRun
    error: str | None = None
    exception: BaseException | None = None
    returned: Any = _MISSING
    value_logged: bool = False


_value_logged = threading.local()


_UNSAFE_KEY = re.compile(r"[/\\\x00-\x1f\x7f]")


def _param_key(name: str) -> str:
    """An Optuna param name as an nbmlops key (``/``, ``\\`` and control characters -> ``.``)."""
    key = _UNSAFE_KEY.sub(".", str(name)).strip()[:250].strip()
    return key if key and key not in (".", "..") else "param"


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _TrialRuns:
    """Creates a child run per trial, makes it active while the objective runs, ends it."""

    def __init__(
        self,
        experiment_id: str,
        parent_run_id: str,
        metric_names: Sequence[str],
        study_name: str,
        source: RunSource | None,
        worker: int | None = None,
        on_row: Callable[[TrialRow, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.metric_names = list(metric_names)
        self.study_name = study_name
        self.source = source
        self.worker = worker
        self.on_row = on_row
        self.first_exception: BaseException | None = None
        self.first_error: str | None = None
        self._open: dict[int, _OpenTrial] = {}
        self._lock = threading.Lock()

    # -- the objective wrapper ------------------------------------------------------------
    def run(self, objective: Callable[[Any], Any], trial: Any) -> Any:
        """Run ``objective(trial)`` with the trial's run active on this thread."""
        tags = {
            RUN_TYPE_TAG: "trial",
            STUDY_TAG: self.study_name,
            TRIAL_NUMBER_TAG: str(trial.number),
        }
        if self.worker is not None:
            tags[TRIAL_WORKER_TAG] = str(self.worker)
        active = tracking.start_run(
            experiment_id=self.experiment_id,
            run_name=f"trial-{trial.number}",
            tags=tags,
            parent_run_id=self.parent_run_id,
            source=self.source,
        )
        record = _OpenTrial(active)
        with self._lock:
            self._open[trial.number] = record
        try:
            trial.set_user_attr(RUN_ID_ATTR, active.run_id)
            _value_logged.flag = False
            value = objective(trial)
            record.returned = value
            record.value_logged = bool(getattr(_value_logged, "flag", False))
            return value
        except BaseException as exc:
            if type(exc).__name__ != "TrialPruned":
                record.error = f"{type(exc).__name__}: {exc}"[:4000]
                record.exception = exc
                with self._lock:
                    if self.first_exception is None:
                        self.first_exception, self.first_error = exc, record.error
                if isinstance(exc, Exception):
                    with contextlib.suppress(Exception):
                        trial.set_user_attr(ERROR_ATTR, record.error[:1000])
            raise
        finally:
            tracking.pop_run(active)

    # -- the Optuna callback --------------------------------------------------------------
    def finish(self, study: Any, frozen: Any) -> None:
        """Optuna callback: end the trial's run with what Optuna recorded."""
        with self._lock:
            record = self._open.pop(frozen.number, None)
        row = _row_from_frozen(frozen)
        if record is not None:
            if row.state == "FAIL" and row.error is None:
                error = record.error or (
                    f"the objective returned {_short(record.returned)}, which Optuna does not "
                    "accept as an objective value"
                )
                row = dataclasses.replace(row, error=error)
                record.error = error
                with self._lock:
                    if self.first_error is None:
                        self.first_error = error
            try:
                self._end_run(record, frozen, row)
            except Exception as exc:  # an Optuna callback must not end the study
                warnings.warn(
                    f"nbmlops: could not record trial {frozen.number} in run "
                    f"{record.active.run_id}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                with contextlib.suppress(Exception):
                    record.active._client.set_terminated(record.active.run_id, RunStatus.FAILED)
        if self.on_row is not None:
            self.on_row(row, frozen.distributions)

    def _end_run(self, record: _OpenTrial, frozen: Any, row: TrialRow) -> None:
        client = record.active._client
        run_id = record.active.run_id
        now = hb.now_ms()
        metrics: list[Metric] = []
        if row.values is not None and not record.value_logged:
            metrics += [
                Metric(name, value, now, 0)
                for name, value in zip(self.metric_names, row.values, strict=False)
            ]
        intermediate_key = f"{self.metric_names[0]}_intermediate"
        metrics += [
            Metric(intermediate_key, float(value), now, int(step))
            for step, value in sorted(frozen.intermediate_values.items())
        ]
        tags = [RunTag(TRIAL_STATE_TAG, row.state)]
        if row.state == "FAIL" and record.error:
            tags.append(RunTag(ERROR_TAG, record.error))
        _log_params_safely(client, run_id, frozen.params)
        client.log_batch(run_id, metrics=metrics, tags=tags)
        if row.state == "COMPLETE":
            status = RunStatus.FINISHED
        elif row.state == "PRUNED" or isinstance(record.exception, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        client.set_terminated(run_id, status)

    def abort_open(self) -> None:
        """End the runs of trials Optuna never reported back (aborted by an exception)."""
        with self._lock:
            records, self._open = list(self._open.values()), {}
        for record in records:
            interrupted = isinstance(record.exception, KeyboardInterrupt)
            client = record.active._client
            run_id = record.active.run_id
            tags = [RunTag(TRIAL_STATE_TAG, "FAIL")]
            tags.append(RunTag(ERROR_TAG, record.error or "KeyboardInterrupt: aborted"))
            try:
                client.log_batch(run_id, tags=tags)
                client.set_terminated(
                    run_id,
                    RunStatus.KILLED if interrupted or record.error is None else RunStatus.FAILED,
                )
            except NbMlopsError:
                pass


def _log_params_safely(client: Client, run_id: str, params: Mapping[str, Any]) -> None:
    """Log the suggested values; a key autolog already set differently goes in as ``trial.<key>``."""
    items = [Param(_param_key(k), param_value_to_str(k, v)) for k, v in params.items()]
    if not items:
        return
    try:
        client.log_batch(run_id, params=items)
        return
    except AlreadyExists:
        pass
    for item in items:
        try:
            client.log_param(run_id, item.key, item.value)
        except AlreadyExists:
            with contextlib.suppress(AlreadyExists):
                client.log_param(run_id, f"trial.{item.key}", item.value)


# --------------------------------------------------------------------------- objectives from cells


class _CellObjective:
    """An objective compiled from a notebook cell body (``%%mlops tune``).

    The body runs as the body of ``def objective(trial)`` whose globals are the notebook's
    namespace: it reads notebook variables, its own assignments stay local to the trial, and
    it may ``return`` the value. Without a return, the value is the local variable named by
    ``metric``, else the metric of that name logged into the trial's run.
    """

    def __init__(self, function: Callable[[Any], Any], metric: str) -> None:
        self.function = function
        self.metric = metric

    def __call__(self, trial: Any) -> Any:
        value = self.function(trial)
        if value is _MISSING or value is None:
            active = tracking.active_run()
            logged = active.data.metrics.get(self.metric) if active is not None else None
            if logged is None:
                raise InvalidArgument(
                    f"the objective cell must assign `{self.metric}`, return a value or log a "
                    f"metric named {self.metric!r} (choose the name with --metric)"
                )
            _value_logged.flag = True
            return logged
        return value

    def __reduce__(self) -> Any:
        return (_CellObjective, (self.function, self.metric))


_cell_counter = 0
_OBJECTIVE_TEMPLATE = """
def __nbmlops_make_objective__(__nbmlops_missing__):
    def objective(trial):
        pass
    return objective
"""


def objective_from_cell(
    code: str, namespace: dict[str, Any], metric: str = "f1", filename: str | None = None
) -> Callable[[Any], Any]:
    """Compile a cell body into ``objective(trial)`` (see :class:`_CellObjective`).

    Args:
        code: the body (IPython syntax already transformed to Python).
        namespace: the globals the body sees (the notebook's user namespace); nothing is
            added to it.
        metric: the variable (or logged metric) holding the objective value.
        filename: shown in tracebacks; the source is registered with :mod:`linecache`.
    """
    global _cell_counter
    _cell_counter += 1
    filename = filename or f"<tune-cell-{_cell_counter}>"
    try:
        tree = ast.parse(code, filename)
    except SyntaxError as exc:
        raise InvalidArgument(f"the objective cell does not parse: {exc}") from None
    body: list[ast.stmt] = list(tree.body) or [ast.Pass()]
    module = ast.parse(_OBJECTIVE_TEMPLATE, filename)
    outer = module.body[0]
    assert isinstance(outer, ast.FunctionDef)
    inner = outer.body[0]
    assert isinstance(inner, ast.FunctionDef)
    fallback = ast.parse(f"return locals().get({metric!r}, __nbmlops_missing__)").body
    for node in fallback:  # report the fallback at the cell's last line
        ast.copy_location(node, body[-1])
        for child in ast.walk(node):
            ast.copy_location(child, body[-1])
    inner.body = [*body, *fallback]
    ast.fix_missing_locations(module)
    try:
        compiled = compile(module, filename, "exec")
    except SyntaxError as exc:
        raise InvalidArgument(f"the objective cell cannot be compiled: {exc}") from None
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    make_code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    make = types.FunctionType(make_code, namespace, "__nbmlops_make_objective__")
    function = make(_MISSING)
    function.__qualname__ = "objective"
    return _CellObjective(function, metric)


# --------------------------------------------------------------------------- search spaces


def parse_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna distributions from a search-space dict.

    Values: an Optuna distribution; a **list** of choices (categorical); a tuple
    ``(low, high)`` (ints give an int range, floats a float range) optionally followed by
    ``"log"`` or a step; or a dict with ``low``/``high`` (``log``, ``step``) or ``choices``.
    """
    optuna = _optuna()
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if not isinstance(space, Mapping) or not space:
        raise InvalidArgument("a search space is a non-empty dict: name -> range or choices")
    del optuna
    result: dict[str, Any] = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"search-space names must be non-empty strings, got {name!r}")
        if isinstance(spec, BaseDistribution):
            result[name] = spec
            continue
        if isinstance(spec, list):
            if not spec:
                raise InvalidArgument(f"search space {name!r}: the list of choices is empty")
            result[name] = CategoricalDistribution(spec)
            continue
        if isinstance(spec, Mapping):
            if "choices" in spec:
                result[name] = CategoricalDistribution(list(spec["choices"]))
                continue
            low, high = spec.get("low"), spec.get("high")
            log, step = bool(spec.get("log", False)), spec.get("step")
        elif isinstance(spec, tuple) and len(spec) in (2, 3):
            low, high = spec[0], spec[1]
            extra = spec[2] if len(spec) == 3 else None
            log = extra == "log"
            step = None if log or extra is None else extra
        else:
            raise InvalidArgument(
                f"search space {name!r}: expected a list of choices, (low, high[, 'log'|step]) "
                f"or a dict, got {spec!r}"
            )
        numbers = (low, high) + (() if step is None else (step,))
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
            raise InvalidArgument(f"search space {name!r}: low/high/step must be numbers")
        if low >= high:
            raise InvalidArgument(f"search space {name!r}: low must be below high")
        try:
            if all(isinstance(v, int) for v in numbers):
                result[name] = IntDistribution(low, high, log=log, step=step or 1)
            else:
                result[name] = FloatDistribution(float(low), float(high), log=log, step=step)
        except ValueError as exc:
            raise InvalidArgument(f"search space {name!r}: {exc}") from None
    return result


def grid_from_space(space: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The grid (name -> values) of a search space, for Optuna's ``GridSampler``."""
    grid: dict[str, list[Any]] = {}
    for name, distribution in parse_space(space).items():
        kind = type(distribution).__name__
        if kind == "CategoricalDistribution":
            grid[name] = list(distribution.choices)
        elif kind == "IntDistribution":
            grid[name] = list(range(distribution.low, distribution.high + 1, distribution.step))
        elif distribution.step is not None:
            count = round((distribution.high - distribution.low) / distribution.step)
            grid[name] = [distribution.low + i * distribution.step for i in range(count + 1)]
        else:
            raise InvalidArgument(
                f"the grid sampler needs a step for float parameter {name!r} "
                "(suggest_float(..., step=...) or (low, high, step) in the space)"
            )
    return grid


_SUGGEST = {"suggest_categorical", "suggest_int", "suggest_float", "suggest_uniform"}


def space_from_code(code: str) -> dict[str, Any]:
    """The search space an objective's source declares with literal ``trial.suggest_*`` calls."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError as exc:
        raise InvalidArgument(f"cannot read the search space from the objective: {exc}") from None
    space: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _SUGGEST
        ):
            continue
        try:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        except ValueError:
            raise InvalidArgument(
                f"the grid sampler needs literal arguments in {ast.unparse(node)}"
            ) from None
        name = args[0] if args else kwargs.get("name")
        if node.func.attr == "suggest_categorical":
            choices = args[1] if len(args) > 1 else kwargs.get("choices")
            space[name] = list(choices)
            continue
        low = args[1] if len(args) > 1 else kwargs.get("low")
        high = args[2] if len(args) > 2 else kwargs.get("high")
        step = kwargs.get("step", args[3] if len(args) > 3 else None)
        spec: dict[str, Any] = {"low": low, "high": high, "log": kwargs.get("log", False)}
        if step is not None:
            spec["step"] = step
        space[name] = spec
    if not space:
        raise InvalidArgument(
            "the grid sampler needs a search space: pass space={...} or use literal "
            "trial.suggest_* calls in the objective"
        )
    return space


# --------------------------------------------------------------------------- settings


def _directions(direction: str | None, directions: Sequence[str] | None) -> list[str]:
    if direction is not None and directions is not None:
        raise InvalidArgument("give direction or directions, not both")
    chosen = list(directions) if directions is not None else [direction or "maximize"]
    if not chosen:
        raise InvalidArgument("directions must not be empty")
    for item in chosen:
        if item not in DIRECTIONS:
            raise InvalidArgument(f"direction must be 'maximize' or 'minimize', got {item!r}")
    return chosen


def _metric_names(metric: str | Sequence[str], count: int) -> list[str]:
    if isinstance(metric, str):
        names = [metric] if count == 1 else [f"{metric}_{i}" for i in range(count)]
    else:
        names = list(metric)
        if len(names) != count:
            raise InvalidArgument(
                f"{len(names)} metric names for {count} objective directions; give one per "
                "direction"
            )
    from nbmlops.validation import validate_key

    return [validate_key(name, "metric") for name in names]


def _make_sampler(
    sampler: Any, seed: int | None, space: Mapping[str, Any] | None, objective: Any
) -> Any:
    optuna = _optuna()
    if sampler is None or not isinstance(sampler, str):
        return sampler
    name = sampler.lower()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        if space is None:
            source = _objective_source(objective)
            if source is None:
                raise InvalidArgument("the grid sampler needs a search space: pass space={...}")
            space = space_from_code(source)
        return optuna.samplers.GridSampler(grid_from_space(space), seed=seed)
    if name == "cmaes":
        import importlib.util

        if importlib.util.find_spec("cmaes") is None:
            raise InvalidArgument("the cmaes sampler needs the cmaes package: pip install cmaes")
        return optuna.samplers.CmaEsSampler(seed=seed)
    raise InvalidArgument(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")


def _objective_source(objective: Any) -> str | None:
    function = objective.function if isinstance(objective, _CellObjective) else objective
    source = getattr(function, "__nbmlops_source__", None)
    if source is not None:
        return str(source)
    filename = getattr(getattr(function, "__code__", None), "co_filename", "")
    if filename in linecache.cache:
        return "".join(linecache.cache[filename][2])
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return None


def _make_pruner(pruner: Any) -> Any:
    optuna = _optuna()
    if pruner is None or not isinstance(pruner, str):
        return pruner
    name = pruner.lower()
    if name == "median":
        return optuna.pruners.MedianPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise InvalidArgument(f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")


@dataclasses.dataclass
class _StorageChoice:
    kind: str  # memory, journal, rdb, object
    spec: Any  # path (journal), URL (rdb), object, or None
    description: str


_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")


def _mask(url: str) -> str:
    return _PASSWORD.sub(r"\1***@", url)


def _default_journal(study_name: str) -> Path:
    location = tracking.get_client().store.location
    base = Path(location).parent if location and Path(location).is_file() else None
    if base is None:
        base = Path(tempfile.gettempdir()) / "nbmlops-optuna"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name)[:120] or "study"
    return base / "optuna" / f"{safe}.journal"


def _resolve_storage(storage: Any, n_workers: int, study_name: str) -> _StorageChoice:
    if storage is None:
        if n_workers <= 1:
            return _StorageChoice("memory", None, "in-memory")
        if tracking.get_tracking_uri().startswith("memory:"):
            raise InvalidArgument(
                "worker processes cannot share a memory: store; use a file store "
                "(set_tracking_uri('sqlite:///...'))"
            )
        path = _default_journal(study_name)
        return _StorageChoice("journal", str(path), f"journal file {path}")
    if not isinstance(storage, str | os.PathLike):
        return _StorageChoice("object", storage, type(storage).__name__)
    text = os.fspath(storage)
    if text.startswith("journal:"):
        path = text[len("journal:") :]
        if path.startswith("///"):
            path = path[2:]
        elif path.startswith("//"):
            raise InvalidArgument(
                "journal storage URLs are journal:///absolute/path or journal:relative/path"
            )
        return _StorageChoice("journal", str(Path(path).absolute()), f"journal file {path}")
    if text.endswith((".journal", ".log")) and "://" not in text:
        return _StorageChoice("journal", str(Path(text).absolute()), f"journal file {text}")
    if text.startswith("sqlite:") and n_workers > 1:
        raise InvalidArgument(
            "SQLite is not safe for several Optuna workers writing at once (Optuna advises "
            "against it); use a journal file (storage='journal:///path/study.journal', or no "
            "storage at all) or PostgreSQL"
        )
    if "://" in text:
        return _StorageChoice("rdb", text, _mask(text))
    raise InvalidArgument(
        f"unknown storage {text!r}: use journal:///path, a path ending in .journal, or an "
        "RDB URL such as postgresql://user@host/db"
    )


def _open_storage(choice: _StorageChoice) -> Any:
    optuna = _optuna()
    if choice.kind == "memory":
        return None
    if choice.kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(choice.spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    del optuna
    return choice.spec


_memory_studies: dict[str, Any] = {}
_memory_lock = threading.Lock()


def _study(
    choice: _StorageChoice,
    study_name: str,
    directions: list[str],
    sampler: Any,
    pruner: Any,
) -> Any:
    """Create the study, or continue the one with this name (same storage / same kernel)."""
    with _quiet_optuna():
        return _create_study(choice, study_name, directions, sampler, pruner)


def _create_study(
    choice: _StorageChoice,
    study_name: str,
    directions: list[str],
    sampler: Any,
    pruner: Any,
) -> Any:
    optuna = _optuna()
    if choice.kind == "memory":
        with _memory_lock:
            existing = _memory_studies.get(study_name)
            if existing is not None:
                _check_directions(existing, directions)
                if sampler is not None:
                    existing.sampler = sampler
                if pruner is not None:
                    existing.pruner = pruner
                return existing
            study = optuna.create_study(
                study_name=study_name, directions=directions, sampler=sampler, pruner=pruner
            )
            _memory_studies[study_name] = study
            return study
    study = optuna.create_study(
        storage=_open_storage(choice),
        study_name=study_name,
        directions=directions,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    _check_directions(study, directions)
    return study


def _check_directions(study: Any, directions: list[str]) -> None:
    existing = [d.name.lower() for d in study.directions]
    if existing != directions:
        raise InvalidArgument(
            f"study {study.study_name!r} optimizes {existing}, not {directions}; use another "
            "study name"
        )


def _new_study_name() -> str:
    return f"tune-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


# --------------------------------------------------------------------------- the parent run


@dataclasses.dataclass
class _Context:
    """Where runs go: experiment, the tuning run's parent and the notebook cell, if any."""

    experiment_id: str | None
    parent_run_id: str | None
    source: RunSource | None
    trial_source: RunSource | None
    tags: dict[str, str]


def _context() -> _Context:
    from nbmlops.autolog import session as session_module

    session = session_module.current()
    if session is None or not (session.autolog_enabled or session.session_run is not None):
        active = tracking.active_run()
        return _Context(None, active.run_id if active else None, None, None, {})
    parent = session.current_parent()
    tags = {
        "nbmlops.notebook": session.identity.path,
        "mlflow.source.type": "NOTEBOOK",
        "mlflow.source.name": session.identity.path,
    }
    source = trial_source = RunSource(path=session.identity.path)
    cell = session.cell
    if cell is not None:
        digest = hashlib.sha256(cell.raw_cell.encode()).hexdigest()
        source = RunSource(
            path=session.identity.path,
            cell_id=cell.cell_id,
            execution_count=cell.execution_count,
            code_sha256=digest,
            code=cell.raw_cell,
        )
        trial_source = dataclasses.replace(source, code="")
        if cell.cell_id:
            tags["nbmlops.cell_id"] = cell.cell_id
    return _Context(
        session.experiment_id(),
        parent.run_id if parent is not None else None,
        source,
        trial_source,
        tags,
    )


def _open_parent(context: _Context, name: str, tags: Mapping[str, str]) -> tracking.ActiveRun:
    active = tracking.start_run(
        experiment_id=context.experiment_id,
        run_name=name,
        tags={**context.tags, **tags},
        parent_run_id=context.parent_run_id,
        source=context.source,
    )
    tracking.pop_run(active)  # it is the trials' parent, never the thread's active run
    return active


def _settings_params(
    study: Any,
    choice: _StorageChoice,
    metric_names: Sequence[str],
    directions: Sequence[str],
    n_trials: int | None,
    timeout: float | None,
    n_jobs: int,
    n_workers: int,
    seed: int | None = None,
) -> dict[str, str]:
    params = {
        "study_name": study.study_name,
        "sampler": type(study.sampler).__name__,
        "pruner": type(study.pruner).__name__,
        "direction": ",".join(directions),
        "metric": ",".join(metric_names),
        "n_trials": str(n_trials) if n_trials is not None else "unbounded",
        "timeout": str(timeout) if timeout is not None else "none",
        "n_jobs": str(n_jobs),
        "n_workers": str(n_workers),
        "storage": choice.description,
    }
    if seed is not None:
        params["sampler_seed"] = str(seed)
    return params


def _best_trial(study: Any) -> Any:
    """The best complete trial (multi-objective: the Pareto trial best on the first objective)."""
    try:
        if len(study.directions) == 1:
            return study.best_trial
        front = study.best_trials
    except ValueError:
        return None
    if not front:
        return None
    maximize = study.directions[0].name == "MAXIMIZE"
    return (max if maximize else min)(front, key=lambda t: t.values[0])


def param_importances(study: Any) -> dict[str, float]:
    """Optuna's param importances (its default evaluator) on the first objective; {} if n/a."""
    optuna = _optuna()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    names = {name for t in complete for name in t.params}
    if len(complete) < 2 or not names:
        return {}
    if len(names) == 1:
        return {next(iter(names)): 1.0}
    target = None if len(study.directions) == 1 else (lambda t: t.values[0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study, target=target)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}
    return {str(k): float(v) for k, v in found.items()}


def _close_parent(
    client: Client,
    parent_run_id: str,
    study: Any,
    progress: TuningProgress,
    status: RunStatus,
    error: str | None,
) -> None:
    """Log the study's outcome into the tuning run and end it."""
    optuna = _optuna()
    best = _best_trial(study)
    metrics: dict[str, float] = {
        "n_trials": float(progress.n_done),
        "n_trials_complete": float(progress.n_complete),
        "n_trials_pruned": float(progress.n_pruned),
        "n_trials_failed": float(progress.n_failed),
    }
    all_trials = study.get_trials(deepcopy=False)
    metrics["n_trials_study"] = float(len(all_trials))
    tags = {OUTCOME_TAG: progress.state}
    if progress.stop_reason:
        tags[STOP_REASON_TAG] = progress.stop_reason
    if error:
        tags[ERROR_TAG] = error[:4000]
    if best is not None:
        metrics["best_value"] = float(best.values[0])
        for name, value in zip(progress.metric_names, best.values, strict=False):
            metrics[f"best_{name}"] = float(value)
        tags[BEST_TRIAL_TAG] = str(best.number)
        if best.user_attrs.get(RUN_ID_ATTR):
            tags[BEST_RUN_TAG] = str(best.user_attrs[RUN_ID_ATTR])
        _log_params_safely(client, parent_run_id, {f"best_{k}": v for k, v in best.params.items()})
    now = hb.now_ms()
    client.log_batch(
        parent_run_id,
        metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    complete = [t for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
    with contextlib.suppress(Exception):  # the CSV is a convenience; never fail the study on it
        frame = study.trials_dataframe()
        client.log_text(parent_run_id, frame.to_csv(index=False), "tuning/trials.csv")
    if len(complete) >= IMPORTANCE_MIN_TRIALS:
        importances = param_importances(study)
        progress.importances = importances
        if importances:
            client.log_dict(
                parent_run_id,
                {
                    "study": study.study_name,
                    "objective": progress.metric_names[0],
                    "n_complete": len(complete),
                    "evaluator": "optuna.importance.get_param_importances (Optuna's default)",
                    "importances": importances,
                },
                "tuning/param_importances.json",
            )
    client.set_terminated(parent_run_id, status)


# --------------------------------------------------------------------------- the result


class TuningResult:
    """What :func:`tune` returns: the study, its best trial and the runs.

    With ``background=True`` the study is still running when this is returned; properties
    that need the outcome wait for it (Ctrl-C while waiting stops the study gracefully).
    """

    def __init__(
        self,
        study: Any,
        parent_run_id: str,
        progress: TuningProgress,
        control: _Control,
        panel: Any = None,
    ) -> None:
        self.study = study
        self.parent_run_id = parent_run_id
        self.progress = progress
        self.panel = panel
        self._control = control
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[TuningResult], None]] = []
        self._callbacks_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether the study has ended."""
        return self._done.is_set()

    @property
    def state(self) -> str:
        """running, completed, stopped, timeout, interrupted or failed."""
        return self.progress.state

    @property
    def stop_reason(self) -> str | None:
        return self.progress.stop_reason

    def stop(self) -> None:
        """Stop the study after its running trial."""
        self._control.request_stop("stop()")

    def wait(self, timeout: float | None = None) -> TuningResult:
        """Block until the study ended (re-raising its error); the first Ctrl-C stops it after
        the running trial, a second one raises ``KeyboardInterrupt``."""
        self._wait_done(timeout)
        if self._error is not None:
            raise self._error
        return self

    def _wait_done(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        interrupted = False
        while not self._done.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            try:
                self._done.wait(0.1 if left is None else min(0.1, left))
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                self._control.request_stop("interrupt")

    def add_done_callback(self, callback: Callable[[TuningResult], None]) -> None:
        """Call ``callback(result)`` when the study has ended (at once if it already has)."""
        with self._callbacks_lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def _ended(self, error: BaseException | None = None) -> None:
        self._error = error
        with self._callbacks_lock:
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception as exc:  # a callback must not hide the study's own outcome
                warnings.warn(f"nbmlops: a tuning done-callback failed: {exc!r}", stacklevel=2)

    # -- outcome --------------------------------------------------------------------------
    @property
    def best_trial(self) -> Any:
        """The best complete trial (Optuna ``FrozenTrial``), or None."""
        self._wait_done()
        return _best_trial(self.study)

    def _best(self) -> Any:
        best = self.best_trial
        if best is None:
            raise InvalidArgument(f"study {self.study.study_name!r} has no complete trial")
        return best

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self._best().params)

    @property
    def best_value(self) -> float:
        """The best value of the (first) objective."""
        return float(self._best().values[0])

    @property
    def best_values(self) -> list[float]:
        return [float(v) for v in self._best().values]

    @property
    def best_run_id(self) -> str | None:
        """The run of the best trial (it may belong to an earlier call on a resumed study)."""
        return self._best().user_attrs.get(RUN_ID_ATTR)

    @property
    def n_trials(self) -> int:
        return self.progress.n_done

    @property
    def run_ids(self) -> dict[int, str]:
        """Trial number -> run id, for every trial of the study that has a run."""
        return {
            t.number: t.user_attrs[RUN_ID_ATTR]
            for t in self.study.get_trials(deepcopy=False)
            if RUN_ID_ATTR in t.user_attrs
        }

    def trials_dataframe(self) -> pd.DataFrame:
        """Optuna's ``trials_dataframe()`` plus a ``run_id`` column."""
        frame = self.study.trials_dataframe()
        column = f"user_attrs_{RUN_ID_ATTR}"
        if column in frame.columns:
            frame = frame.rename(columns={column: "run_id"})
        return frame

    def runs(self) -> pd.DataFrame:
        """The trial runs of this call (children of the tuning run) as a DataFrame."""
        client = tracking.get_client()
        parent = client.get_run(self.parent_run_id)
        runs = list(
            client.search_runs(
                [parent.info.experiment_id],
                f"parent_run_id = '{self.parent_run_id}'",
                max_results=50_000,
            )
        )
        return tracking.runs_to_dataframe(runs)

    def __repr__(self) -> str:
        best = self.progress.best
        best_text = (
            f", best {self.progress.metric_names[0]}={best.value:.6g} (trial {best.number})"
            if best is not None and best.value is not None
            else ""
        )
        return (
            f"<TuningResult study={self.study.study_name!r} {self.state}: "
            f"{self.progress.n_done} trials{best_text}, run {self.parent_run_id}>"
        )


# --------------------------------------------------------------------------- tune()


def tune(
    objective: Callable[[Any], Any],
    n_trials: int | None = None,
    timeout: float | None = None,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    metric: str | Sequence[str] = "f1",
    sampler: Any = None,
    pruner: Any = None,
    storage: Any = None,
    study_name: str | None = None,
    n_jobs: int = 1,
    show: bool | str = True,
    *,
    n_workers: int = 1,
    seed: int | None = None,
    space: Mapping[str, Any] | None = None,
    catch: tuple[type[Exception], ...] = (Exception,),
    background: bool = False,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> TuningResult:
    """Run an Optuna study whose trials are nested runs, with a live panel.

    Args:
        objective: ``objective(trial) -> value`` (a tuple for several directions); it may
            log with ``nbmlops.log_*`` and fit scikit-learn models (autolog): both land in
            the trial's run.
        n_trials: trials to run in this call (None: until ``timeout`` or a stop).
        timeout: seconds; the study stops starting trials after that.
        direction: ``"maximize"`` (default) or ``"minimize"``.
        directions: several directions (multi-objective), instead of ``direction``.
        metric: the objective's metric name in the trial runs (a list for several).
        sampler: an Optuna sampler, or ``"tpe"``, ``"random"``, ``"grid"``, ``"cmaes"``.
        pruner: an Optuna pruner, or ``"median"`` / ``"none"``; None: Optuna's default.
        storage: None (in memory; continues a study of the same name in this process), a
            journal file (``journal:///path`` or ``*.journal``), an RDB URL or an Optuna
            storage object.
        study_name: continue the study of this name in ``storage`` (resume), else a new one.
        n_jobs: threads in this process (Optuna's ``n_jobs``).
        show: the live panel: True (widgets in a kernel, else text), ``"widgets"``,
            ``"html"``, ``"text"`` or False.
        n_workers: worker processes on the same study (``python -m nbmlops.tuning_worker``).
        seed: seed for a sampler given by name.
        space: search space (see :func:`parse_space`), used by ``sampler="grid"``.
        catch: exception types that fail a trial without ending the study.
        background: run the study on a thread and return at once (``result.wait()``).
        run_name: name of the tuning run (default ``tune-<study name>``).
        tags: extra tags on the tuning run.

    Returns:
        A :class:`TuningResult` (``best_params``, ``best_value``, ``best_run_id``, ``study``,
        ``trials_dataframe()``).
    """
    optuna = _optuna()
    if not callable(objective):
        raise InvalidArgument("objective must be a callable objective(trial)")
    for name, value in (("n_trials", n_trials), ("n_jobs", n_jobs), ("n_workers", n_workers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidArgument(f"{name} must be an integer, got {value!r}")
    if n_trials is not None and n_trials < 1:
        raise InvalidArgument(f"n_trials must be at least 1, got {n_trials}")
    if timeout is not None and not timeout > 0:
        raise InvalidArgument(f"timeout must be positive seconds, got {timeout!r}")
    if n_workers < 1:
        raise InvalidArgument(f"n_workers must be at least 1, got {n_workers}")
    if n_workers > 1 and n_jobs != 1:
        raise InvalidArgument("use n_workers (processes) or n_jobs (threads), not both")
    if n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    if n_jobs < 1:
        raise InvalidArgument(f"n_jobs must be at least 1 (or -1), got {n_jobs}")
    dirs = _directions(direction, directions)
    names = _metric_names(metric, len(dirs))
    sampler_obj = _make_sampler(sampler, seed, space, objective)
    pruner_obj = _make_pruner(pruner)
    name = study_name or _new_study_name()
    choice = _resolve_storage(storage, n_workers, name)
    study = _study(choice, name, dirs, sampler_obj, pruner_obj)
    context = _context()
    parent = _open_parent(
        context,
        run_name or (name if name.startswith("tune") else f"tune-{name}"),
        {RUN_TYPE_TAG: "tuning", STUDY_TAG: name, MODE_TAG: "study", **dict(tags or {})},
    )
    client = parent._client
    client.log_batch(
        parent.run_id,
        params=[
            Param(k, v)
            for k, v in _settings_params(
                study, choice, names, dirs, n_trials, timeout, n_jobs, n_workers, seed
            ).items()
        ],
    )
    progress = TuningProgress(name, names, dirs, n_trials, timeout)
    prior = _best_trial(study) if study.get_trials(deepcopy=False) else None
    if prior is not None:
        progress.add_prior_best(_row_from_frozen(prior))
    control = _Control()
    panel = _make_panel(show, progress, control, title=f"Tuning {name}")
    result = TuningResult(study, parent.run_id, progress, control, panel)
    run = _StudyRun(
        study=study,
        objective=objective,
        result=result,
        context=context,
        client=client,
        choice=choice,
        n_trials=n_trials,
        timeout=timeout,
        n_jobs=n_jobs,
        n_workers=n_workers,
        catch=tuple(catch),
        optuna=optuna,
    )
    remember(objective, result, metric)
    if panel is not None:
        panel.show()
    if background:
        thread = threading.Thread(
            target=run.execute, kwargs={"graceful": False}, name="nbmlops-tune", daemon=True
        )
        thread.start()
        return result
    run.execute(graceful=True)
    result.wait()
    return result


def _make_panel(show: bool | str, progress: TuningProgress, control: _Control, title: str) -> Any:
    if show is False or show == "none":
        return None
    from nbmlops.display.tuning_panel import TuningPanel

    mode = TuningPanel.resolve_mode(show)
    if mode == "none":
        return None
    return TuningPanel(progress, mode=mode, on_stop=control.request_stop, title=title)


@dataclasses.dataclass
class _StudyRun:
    """One :func:`tune` call being executed (in this thread, a thread, or via workers)."""

    study: Any
    objective: Callable[[Any], Any]
    result: TuningResult
    context: _Context
    client: Client
    choice: _StorageChoice
    n_trials: int | None
    timeout: float | None
    n_jobs: int
    n_workers: int
    catch: tuple[type[Exception], ...]
    optuna: Any
    _pending_notice: str = ""

    def _notify(self, message: str) -> None:
        """From the SIGINT handler: only store the message (printing there is unsafe)."""
        panel = self.result.panel
        if panel is not None:
            panel.notice(message)
        else:
            self._pending_notice = message

    def execute(self, graceful: bool) -> None:
        result, progress, control = self.result, self.result.progress, self.result._control
        parent_info = self.client.get_run(result.parent_run_id).info
        self.context.trial_source = self.context.trial_source or dataclasses.replace(
            parent_info.source, code=""
        )
        recorder = _TrialRuns(
            experiment_id=parent_info.experiment_id,
            parent_run_id=result.parent_run_id,
            metric_names=progress.metric_names,
            study_name=self.study.study_name,
            source=self.context.trial_source,
            on_row=self._on_row,
        )
        progress.importance_fn = lambda: param_importances(self.study)
        abort: BaseException | None = None
        error: BaseException | None = None
        try:
            with (
                _quiet_optuna(),
                _registered(control),
                _graceful_sigint(control, self._notify) if graceful else contextlib.nullcontext(),
            ):
                if self.n_workers > 1:
                    self._run_workers(recorder)
                else:
                    self._run_here(recorder)
        except KeyboardInterrupt as exc:
            abort = exc
        except BaseException as exc:
            error = exc
        recorder.abort_open()
        # The outcome
        if abort is not None:
            state, status = "interrupted", RunStatus.KILLED
        elif error is not None:
            state, status = "failed", RunStatus.FAILED
        elif control.stop_requested:
            state, status = "stopped", RunStatus.FINISHED
        elif self.n_trials is not None and progress.n_done >= self.n_trials:
            state, status = "completed", RunStatus.FINISHED
        elif self.timeout is not None:
            state, status = "timeout", RunStatus.FINISHED
        else:
            state, status = "completed", RunStatus.FINISHED
        everything_failed = (
            error is None
            and abort is None
            and progress.n_failed > 0
            and progress.n_complete == 0
            and progress.n_pruned == 0
        )
        if everything_failed:
            state, status = "failed", RunStatus.FAILED
        progress.finish(state, control.reason if state == "stopped" else None)
        message = None
        if error is not None:
            message = f"{type(error).__name__}: {error}"
        elif everything_failed:
            first_row_error = next((r.error for r in progress.snapshot() if r.error), None)
            recorder.first_error = recorder.first_error or first_row_error  # from workers
            message = recorder.first_error or "every trial failed"
        try:
            _close_parent(self.client, result.parent_run_id, self.study, progress, status, message)
        except Exception as exc:  # the study's outcome stands; never leave waiters hanging
            error = error or exc
            with contextlib.suppress(Exception):
                self.client.set_terminated(result.parent_run_id, RunStatus.FAILED)
        if result.panel is not None:
            with contextlib.suppress(Exception):
                result.panel.finish()
        if everything_failed:
            failure = TuningFailed(
                f"every trial failed ({progress.n_failed} of {progress.n_done}); the first "
                f"error: {recorder.first_error}",
                result,
            )
            failure.__cause__ = recorder.first_exception
            result._ended(failure)
        elif abort is not None:
            result._ended(abort)
        else:
            result._ended(error)

    def _on_row(self, row: TrialRow, distributions: Mapping[str, Any]) -> None:
        progress = self.result.progress
        progress.add(row, distributions)
        if self._pending_notice:
            notice, self._pending_notice = self._pending_notice, ""
            print(f"nbmlops: {notice}", file=sys.stderr, flush=True)
        if (
            progress.n_complete == 0
            and progress.n_pruned == 0
            and progress.n_failed >= FAIL_FAST_TRIALS
        ):
            self.result._control.request_stop("the first trials all failed")
        panel = self.result.panel
        if panel is not None:
            panel.update()

    def _run_here(self, recorder: _TrialRuns) -> None:
        control = self.result._control

        def finished(study: Any, frozen: Any) -> None:
            # One callback: Optuna deep-copies the trial for each callback it calls.
            recorder.finish(study, frozen)
            if control.stop_requested:
                study.stop()

        def objective(trial: Any) -> Any:
            return recorder.run(self.objective, trial)

        if control.stop_requested:
            return
        self.study.optimize(
            objective,
            n_trials=self.n_trials,
            timeout=self.timeout,
            n_jobs=self.n_jobs,
            catch=self.catch,
            callbacks=[finished],
        )

    def _run_workers(self, recorder: _TrialRuns) -> None:
        control, progress = self.result._control, self.result.progress
        before = {t.number for t in self.study.get_trials(deepcopy=False)}
        quotas = _split(self.n_trials, self.n_workers)
        with tempfile.TemporaryDirectory(prefix="nbmlops-tune-") as folder:
            stop_file = Path(folder) / "stop"
            spec = WorkerSpec(
                objective=self.objective,
                storage=self.choice,
                study_name=self.study.study_name,
                sampler=self.study.sampler,
                pruner=self.study.pruner,
                tracking_uri=tracking.get_tracking_uri(),
                experiment_id=recorder.experiment_id,
                parent_run_id=recorder.parent_run_id,
                metric_names=progress.metric_names,
                source=self.context.trial_source,
                quotas=quotas,
                deadline=None if self.timeout is None else time.time() + self.timeout,
                catch=self.catch,
                stop_file=str(stop_file),
                parent_pid=os.getpid(),
            )
            payload = Path(folder) / "payload.pkl"
            payload.write_bytes(_dumps(spec))
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p)
            logs = [Path(folder) / f"worker-{i}.log" for i in range(self.n_workers)]
            processes = []
            for index, log in enumerate(logs):
                with log.open("wb") as out:
                    processes.append(
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-m",
                                "nbmlops.tuning_worker",
                                str(payload),
                                str(index),
                            ],
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            env=env,
                            cwd=os.getcwd(),
                        )
                    )
            seen = set(before)
            try:
                while True:
                    if control.stop_requested and not stop_file.exists():
                        stop_file.touch()
                    alive = [p for p in processes if p.poll() is None]
                    self._collect(seen)
                    if not alive:
                        break
                    time.sleep(0.2)
            except BaseException:
                stop_file.touch()
                for process in processes:
                    if process.poll() is None:
                        process.terminate()  # the worker ends its running trial's run KILLED
                for process in processes:
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                self._collect(seen)
                raise
            self._collect(seen)
            failed = [
                (i, p.returncode) for i, p in enumerate(processes) if p.returncode not in (0, None)
            ]
            if failed:
                index, code = failed[0]
                tail = logs[index].read_text(errors="replace")[-3000:]
                raise NbMlopsError(
                    f"tuning worker {index} exited with code {code}; its output ends with:\n{tail}"
                )

    def _collect(self, seen: set[int]) -> None:
        """Add the trials finished by workers since the last look (workers mode)."""
        progress = self.result.progress
        trials = self.study.get_trials(deepcopy=False)
        running = 0
        for trial in trials:
            if trial.number in seen:
                continue
            if not trial.state.is_finished():
                running += int(trial.state.name == "RUNNING")
                continue
            seen.add(trial.number)
            self._on_row(_row_from_frozen(trial), trial.distributions)
        progress.running = running


def _split(n_trials: int | None, n_workers: int) -> list[int | None]:
    if n_trials is None:
        return [None] * n_workers
    base, extra = divmod(n_trials, n_workers)
    return [base + (1 if i < extra else 0) for i in range(n_workers)]


# --------------------------------------------------------------------------- worker processes


@dataclasses.dataclass
class WorkerSpec:
    """Everything a worker process needs (pickled with cloudpickle for the objective)."""

    objective: Callable[[Any], Any]
    storage: _StorageChoice
    study_name: str
    sampler: Any
    pruner: Any
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    metric_names: list[str]
    source: RunSource | None
    quotas: list[int | None]
    deadline: float | None
    catch: tuple[type[Exception], ...]
    stop_file: str
    parent_pid: int


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:
        try:
            from joblib.externals import cloudpickle
        except ImportError:
            return None
    return cloudpickle


def _dumps(spec: WorkerSpec) -> bytes:
    """Pickle the spec; functions defined in a notebook need cloudpickle (joblib ships one)."""
    module = _cloudpickle()
    try:
        if module is not None:
            return bytes(module.dumps(spec))
        return pickle.dumps(spec)
    except Exception as exc:
        hint = (
            ""
            if module is not None
            else " (install cloudpickle to send objectives defined in a notebook)"
        )
        raise InvalidArgument(
            f"cannot send the objective to worker processes: {type(exc).__name__}: {exc}{hint}"
        ) from None


def run_worker(payload: str | os.PathLike[str], index: int) -> int:
    """Body of ``python -m nbmlops.tuning_worker PAYLOAD INDEX``; returns trials run."""
    with open(payload, "rb") as handle:
        spec: WorkerSpec = pickle.load(handle)
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the notebook stops us via the stop file

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    tracking.set_tracking_uri(spec.tracking_uri)
    sampler = spec.sampler
    if sampler is not None:
        sampler.reseed_rng()  # workers must not replay each other's random draws
    study = optuna.load_study(
        study_name=spec.study_name,
        storage=_open_storage(spec.storage),
        sampler=sampler,
        pruner=spec.pruner,
    )
    recorder = _TrialRuns(
        experiment_id=spec.experiment_id,
        parent_run_id=spec.parent_run_id,
        metric_names=spec.metric_names,
        study_name=spec.study_name,
        source=spec.source,
        worker=index,
    )
    stop_file = Path(spec.stop_file)
    done = 0

    def finished(study: Any, frozen: Any) -> None:
        nonlocal done
        recorder.finish(study, frozen)
        done += 1
        if stop_file.exists() or os.getppid() != spec.parent_pid:
            study.stop()

    quota = spec.quotas[index]
    timeout = None if spec.deadline is None else max(0.001, spec.deadline - time.time())
    if quota == 0 or stop_file.exists():
        return 0
    try:
        study.optimize(
            lambda trial: recorder.run(spec.objective, trial),
            n_trials=quota,
            timeout=timeout,
            catch=spec.catch,
            callbacks=[finished],
        )
    finally:
        recorder.abort_open()
        tracking.flush()
    return done


# --------------------------------------------------------------------------- interactive mode


class InteractiveTuner:
    """Manual trials from a search space: each :meth:`run_trial` is one trial of the study.

    The values are enqueued as the trial's params (the objective's ``trial.suggest_*`` return
    them), so manual trials are ordinary complete trials of the study and inform its sampler.
    Trial runs nest under an interactive tuning run, opened at the first trial and ended by
    :meth:`finish` (also at interpreter exit).
    """

    def __init__(
        self,
        objective: Callable[[Any], Any],
        space: Mapping[str, Any],
        study: Any,
        metric_names: Sequence[str],
        directions: Sequence[str],
        show: bool | str = True,
    ) -> None:
        self.objective = objective
        self.distributions = parse_space(space)
        self.study = study
        self.progress = TuningProgress(study.study_name, metric_names, directions, None, None)
        self.parent_run_id: str | None = None
        self._client: Client | None = None
        self._recorder: _TrialRuns | None = None
        self._context = _context()
        self._lock = threading.Lock()
        self.panel: Any = None
        if show is not False and show != "none":
            from nbmlops.display.tuning_panel import InteractivePanel

            self.panel = InteractivePanel(self, show)
        import atexit

        atexit.register(self.finish)

    def defaults(self) -> dict[str, Any]:
        """Starting values for the controls: the best trial's params, else mid-range."""
        best = _best_trial(self.study)
        values: dict[str, Any] = {}
        for name, distribution in self.distributions.items():
            if best is not None and name in best.params:
                values[name] = best.params[name]
            elif type(distribution).__name__ == "CategoricalDistribution":
                values[name] = distribution.choices[0]
            elif getattr(distribution, "log", False):
                mid = math.sqrt(distribution.low * distribution.high)
                values[name] = round(mid) if isinstance(distribution.low, int) else mid
            else:
                mid = (distribution.low + distribution.high) / 2
                values[name] = int(mid) if type(distribution).__name__ == "IntDistribution" else mid
        return values

    def _ensure_parent(self) -> _TrialRuns:
        if self._recorder is not None:
            return self._recorder
        parent = _open_parent(
            self._context,
            f"tune-{self.study.study_name}-interactive",
            {RUN_TYPE_TAG: "tuning", STUDY_TAG: self.study.study_name, MODE_TAG: "interactive"},
        )
        self.parent_run_id = parent.run_id
        self._client = parent._client
        self._client.log_batch(
            parent.run_id,
            params=[
                Param("study_name", self.study.study_name),
                Param("sampler", type(self.study.sampler).__name__),
                Param("direction", ",".join(self.progress.directions)),
                Param("metric", ",".join(self.progress.metric_names)),
                Param("mode", "interactive"),
            ],
        )
        self._recorder = _TrialRuns(
            experiment_id=self._client.get_run(parent.run_id).info.experiment_id,
            parent_run_id=parent.run_id,
            metric_names=self.progress.metric_names,
            study_name=self.study.study_name,
            source=self._context.trial_source,
            on_row=lambda row, dists: self.progress.add(row, dists),
        )
        return self._recorder

    def run_trial(self, params: Mapping[str, Any]) -> TrialRow:
        """Run one trial with these values (names of the space); returns its row."""
        unknown = set(params) - set(self.distributions)
        if unknown:
            raise InvalidArgument(f"not in the search space: {', '.join(sorted(unknown))}")
        with self._lock:
            recorder = self._ensure_parent()
            before = self.progress.n_done
            self.study.enqueue_trial(dict(params), skip_if_exists=False)
            try:
                with _quiet_optuna():
                    self.study.optimize(
                        lambda trial: recorder.run(self.objective, trial),
                        n_trials=1,
                        catch=(Exception,),
                        callbacks=[recorder.finish],
                    )
            finally:
                recorder.abort_open()
            rows = self.progress.snapshot()
            if len(rows) == before:
                raise NbMlopsError("the trial did not finish")
            return rows[-1]

    def finish(self) -> str | None:
        """End the interactive tuning run (FINISHED) with the study's best; returns its id."""
        import atexit

        atexit.unregister(self.finish)
        with self._lock:
            if self._recorder is None or self._client is None or self.parent_run_id is None:
                return None
            run_id, self._recorder = self.parent_run_id, None
            self.progress.finish("completed")
            with contextlib.suppress(NbMlopsError):
                _close_parent(
                    self._client, run_id, self.study, self.progress, RunStatus.FINISHED, None
                )
            return run_id


_last_tuning: dict[str, Any] = {}


def remember(objective: Callable[[Any], Any], result: TuningResult, metric: Any) -> None:
    """Keep the last study and objective (``%mlops tune --interactive`` continues them)."""
    _last_tuning.update(objective=objective, study=result.study, metric=metric, result=result)


def last_result() -> TuningResult | None:
    """The result of the most recent :func:`tune` call in this process (even an aborted one)."""
    return _last_tuning.get("result")


def last_tuner() -> InteractiveTuner | None:
    """The most recent :func:`tune_interactive` tuner in this process."""
    return _last_tuning.get("tuner")


def tune_interactive(
    objective: Callable[[Any], Any] | None = None,
    space: Mapping[str, Any] | None = None,
    study: Any = None,
    metric: str | Sequence[str] | None = None,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    show: bool | str = True,
) -> InteractiveTuner:
    """Sliders and dropdowns from ``space``; each Run click runs one trial as a nested run.

    Args:
        objective: as for :func:`tune`; default: the objective of the last :func:`tune` /
            ``%%mlops tune`` in this process.
        space: search space (see :func:`parse_space`); names match the objective's
            ``trial.suggest_*`` names.
        study: an Optuna study, or the name of one tuned in this process; default: the last
            tuned study, else a new in-memory study.
        metric, direction, directions: for a new study (default ``"f1"``, maximize).
        show: as for :func:`tune`.
    """
    optuna = _optuna()
    if space is None:
        raise InvalidArgument("tune_interactive needs a search space dict")
    if objective is None:
        objective = _last_tuning.get("objective")
        if objective is None:
            raise InvalidArgument(
                "no objective: pass one, or run %%mlops tune / nbmlops.tune first"
            )
        if study is None:
            study = _last_tuning.get("study")
        if metric is None:
            metric = _last_tuning.get("metric")
    if isinstance(study, str):
        with _memory_lock:
            found = _memory_studies.get(study)
        if found is None:
            raise InvalidArgument(f"no study named {study!r} was tuned in this process")
        study = found
    if study is None:
        dirs = _directions(direction, directions)
        with _quiet_optuna():
            study = optuna.create_study(study_name=_new_study_name(), directions=dirs)
        with _memory_lock:
            _memory_studies[study.study_name] = study
    dirs = [d.name.lower() for d in study.directions]
    names = _metric_names(metric if metric is not None else "f1", len(dirs))
    tuner = InteractiveTuner(objective, space, study, names, dirs, show=show)
    _last_tuning["tuner"] = tuner
    return tuner
