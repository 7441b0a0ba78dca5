"""scikit-learn autologging: class-level ``fit`` patching and ``sklearn.metrics`` capture.

:func:`enable` / :func:`disable` are called by the notebook session on ``%mlops autolog
on/off`` (both idempotent). While enabled:

**Training** — ``fit``, ``fit_transform`` and ``fit_predict`` are patched on every concrete
class of :func:`sklearn.utils.all_estimators` plus ``Pipeline``, ``ColumnTransformer``,
``GridSearchCV``, ``RandomizedSearchCV`` and the successive-halving searches. Only the
*outermost* call logs (a thread-local depth counter; a process-wide counter also covers fits
that a search runs on worker threads): a ``Pipeline`` fitting its steps or a search fitting
its candidates logs once. The outermost fit asks the session for its target
(``session.autolog_target(name_hint=<class name>)``: the user's own run, else the cell's run,
created on demand); when there is none the original runs with no logging work. Otherwise:

* before the fit: params (``get_params(deep=True)``, values as ``str``; invalid keys, values
  over the size limit and values conflicting with an earlier fit in the same run are
  skipped) and tags ``estimator_name`` / ``estimator_class`` — so a failing fit still shows
  what it tried;
* after the fit: training metrics computed on the training data as MLflow's sklearn
  autolog does (classifiers: ``training_accuracy_score``, ``training_precision_score``,
  ``training_recall_score``, ``training_f1_score`` — ``average="binary"`` for a two-class
  problem whose labels include 1, else ``"weighted"`` —, ``training_log_loss`` and
  ``training_roc_auc`` (binary, or one-vs-rest weighted) when ``predict_proba`` exists;
  regressors: ``training_mean_squared_error``, ``training_root_mean_squared_error``,
  ``training_mean_absolute_error``, ``training_r2_score``; any estimator with ``score`` and
  labels: ``training_score``). The *k*-th fit logged into one run writes its training metrics
  at step *k* (0-based), so several fits in one cell keep their full history;
* fingerprints of ``X`` and ``y`` (context ``training``), named after the caller's variables;
* the fitted model when ``session.config.log_models``: ``model/model.joblib`` and
  ``model/meta.json`` (flavor, format, sha256, class, library versions) if the joblib bytes
  fit ``session.config.max_model_bytes``, else the tag ``nbmlops.model.skipped``;
* for parameter searches: ``best_<param>`` params, the ``best_cv_score`` metric (MLflow's
  name for ``best_score_``), ``cv_results.csv`` and one finished child run
  (``nbmlops.run_type=cv_candidate``) per top-5 candidate by rank, carrying the seed
  estimator's params overridden by the candidate's, and its mean/std/rank scores.

**Evaluation** — ``predict``, ``predict_proba``, ``decision_function``, ``transform`` and
``score`` are patched on the same classes. ``predict*`` of a model fitted in this session
records its output in a small bounded map (``id`` + weak reference, never a strong one) with
the variable name of ``X`` in the caller's frame. A patched ``sklearn.metrics`` function whose
``y_pred``/``y_score``/``y_prob`` argument *is* such an output (or a numpy view of it, such
as ``predict_proba(X)[:, 1]``) logs ``<function>_<X variable>``, e.g. ``f1_score_X_test``,
plus fingerprints of ``y_true`` and ``X`` (context ``evaluation``). ``model.score(X, y)`` on a
model fitted in this session logs ``<ClassName>_score_<X variable>``. The metric goes to the
run the model was fitted in while that run is still the executing cell's run or an open user
run; otherwise (the usual case: evaluating in a later cell) to ``session.autolog_target()``,
i.e. the evaluating cell's own run, tagged ``nbmlops.evaluates=<fitting run id>``. A repeated
call logging a different value under the same key adds a point at the next step; the same
value again is not logged twice. Metric calls on arrays that no tracked model produced log
nothing and create no run.

The metric functions are patched as attributes of ``sklearn.metrics`` *and* of the private
modules defining them (``sklearn.metrics._classification``, ``_regression``, ``_ranking``),
so ``from sklearn.metrics import f1_score`` executed after ``autolog on`` is seen. **Names
bound before ``autolog on`` (an earlier ``from sklearn.metrics import f1_score``) still point
to the original functions and are not seen**; re-run the import after turning autolog on.

Calls made by scikit-learn's own code are not the user's ML work and log nothing: a
``LabelEncoder`` fitted inside ``f1_score``, the ``accuracy_score`` inside
``classification_report``, the fits of ``cross_validate``, ``cross_val_score``,
``cross_val_predict``, ``learning_curve``, ``validation_curve`` and
``permutation_test_score`` (these six also run with autologging suppressed, as in MLflow).
Patched wrappers set ``__tracebackhide__`` so IPython shows the user's traceback unchanged.

**Lazy patching** — if scikit-learn has not been imported when :func:`enable` runs, nothing
is imported (``all_estimators()`` imports all of scikit-learn: seconds and ~200 MB, against a
30 MB budget for autolog); a one-shot import hook patches right after ``import sklearn``
executes, before the user's first estimator exists.

**Safety** — a patched call returns exactly what the original returns and lets the original
exception propagate unchanged. Every nbmlops step is wrapped: an internal failure is reported
once per kind through ``session._warn`` and the cell goes on. :func:`disable` puts back the
exact original attributes (a class that inherited a method inherits it again).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import importlib.abc
import inspect
import json
import math
import numbers
import platform
import sys
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from types import FrameType, FunctionType, ModuleType
from typing import Any

from nbmlops import data as _data
from nbmlops import tracking
from nbmlops.autolog import session as _session_mod
from nbmlops.entities import Metric, Param, RunStatus, RunTag
from nbmlops.errors import InvalidArgument, NbMlopsError
from nbmlops.validation import param_value_to_str, tag_value_to_str, validate_key

__all__ = ["disable", "enable", "is_enabled"]

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
PREDICT_METHODS = ("predict", "predict_proba", "decision_function")
TRANSFORM_METHODS = ("transform",)
SCORE_METHOD = "score"
METRIC_FUNCTIONS = (
    "accuracy_score",
    "precision_score",
    "recall_score",
    "f1_score",
    "roc_auc_score",
    "log_loss",
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_absolute_error",
    "r2_score",
    "balanced_accuracy_score",
    "matthews_corrcoef",
    "average_precision_score",
    "explained_variance_score",
    "fbeta_score",
    "jaccard_score",
)
#: model_selection helpers whose internal fits must not log (MLflow does the same).
SUPPRESSING_FUNCTIONS = (
    "cross_validate",
    "cross_val_score",
    "cross_val_predict",
    "learning_curve",
    "validation_curve",
    "permutation_test_score",
)
#: Argument names under which a metric function receives model output.
PREDICTION_ARGUMENTS = ("y_pred", "y_score", "y_prob", "y_proba", "probas_pred")

MODEL_ARTIFACT = "model/model.joblib"
MODEL_META_ARTIFACT = "model/meta.json"
CV_RESULTS_ARTIFACT = "cv_results.csv"
MODEL_SKIPPED_TAG = "nbmlops.model.skipped"
EVALUATES_TAG = "nbmlops.evaluates"
CV_CANDIDATE_RUN_TYPE = "cv_candidate"
MAX_CV_CHILD_RUNS = 5
UNKNOWN_DATASET = "unknown_dataset"
_MAX_TRACKED_OUTPUTS = 256
_MAX_METRIC_KEYS = 10_000
_INTERNAL_MODULES = ("sklearn.", "nbmlops.autolog.", "functools", "joblib.")


# --------------------------------------------------------------------------- state


class _ThreadState(threading.local):
    """Per-thread counters: ``depth`` > 0 inside a patched fit (or a suppressing helper),
    ``busy`` > 0 while nbmlops or an evaluated call runs (nested patched calls pass through).
    """

    depth = 0
    busy = 0


@dataclasses.dataclass
class _Patch:
    owner: Any  # a class or a module
    name: str
    original: Any  # the raw attribute (function or descriptor) that was there
    installed: Any  # what we put there
    own: bool  # the attribute was in owner.__dict__ (else it was inherited)

    def undo(self) -> None:
        if vars(self.owner).get(self.name) is not self.installed:
            return  # someone patched over us: leave theirs (our wrapper is inert once disabled)
        if self.own:
            setattr(self.owner, self.name, self.original)
        else:
            delattr(self.owner, self.name)


@dataclasses.dataclass
class _FitRecord:
    """A model fitted in this session and the run its fit was logged into."""

    ref: weakref.ref[Any]
    run_id: str


@dataclasses.dataclass
class _Output:
    """A tracked prediction: who produced it and from which ``X``."""

    output: weakref.ref[Any]
    estimator: weakref.ref[Any]
    x_name: str
    x_ref: weakref.ref[Any] | None


_local = _ThreadState()
_lock = threading.RLock()
_enabled = False
_patched = False
_patches: list[_Patch] = []
_outer_fits = 0  # outermost logged fits in progress on any thread
# id(model) -> fitting run; also read by nbmlops.models._autolog_fit_run (keep the shape).
_fitted: dict[int, _FitRecord] = {}
_outputs: OrderedDict[int, _Output] = OrderedDict()
_metric_points: dict[tuple[str, str], tuple[int, float]] = {}
_fit_counts: dict[str, int] = {}
_warned: set[str] = set()
_watcher: _ImportWatcher | None = None


# --------------------------------------------------------------------------- public API


def enable() -> None:
    """Patch scikit-learn (now if it is imported, else right after its import). Idempotent."""
    global _enabled
    with _lock:
        if _enabled:
            return
        _enabled = True
        if "sklearn" in sys.modules:
            _install()
        else:
            _watch_import()


def disable() -> None:
    """Restore every patched attribute exactly and forget tracked models. Idempotent."""
    global _enabled, _patched
    with _lock:
        _enabled = False
        _unwatch_import()
        for patch in reversed(_patches):
            try:
                patch.undo()
            except Exception as exc:  # keep restoring the others
                _warn("restore", f"could not restore {patch.owner!r}.{patch.name} ({exc!r})")
        _patches.clear()
        _patched = False
        _fitted.clear()
        _outputs.clear()
        _metric_points.clear()
        _fit_counts.clear()


def is_enabled() -> bool:
    """Whether autologging of scikit-learn is on."""
    return _enabled


# --------------------------------------------------------------------------- helpers


def _warn(key: str, message: str) -> None:
    """Report an internal failure once per kind; never raises."""
    try:
        session = _session_mod.current()
        warn = getattr(session, "_warn", None)
        if warn is not None:
            warn(f"sklearn.{key}", f"sklearn autolog: {message}")
            return
        if key not in _warned:
            _warned.add(key)
            warnings.warn(f"nbmlops: sklearn autolog: {message}", RuntimeWarning, stacklevel=3)
    except Exception:
        pass


class _Busy:
    """``with _Busy():`` — patched calls on this thread pass straight to the originals."""

    __slots__ = ()

    def __enter__(self) -> None:
        _local.busy += 1

    def __exit__(self, *exc: object) -> None:
        _local.busy -= 1


_BUSY = _Busy()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    kind = getattr(getattr(value, "dtype", None), "kind", "")
    return getattr(value, "ndim", None) == 0 and bool(kind) and kind in "fiu"


def _class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _from_sklearn(frame: FrameType | None) -> bool:
    """Whether the call was made by scikit-learn's own code (not by the user's)."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "") or ""
        if module == "sklearn.utils._available_if":  # Class.method(obj, ...) trampoline
            frame = frame.f_back
            continue
        return module == "sklearn" or module.startswith("sklearn.")
    return False


def _user_frame(frame: FrameType | None) -> FrameType | None:
    """The first frame at or above ``frame`` outside scikit-learn and nbmlops' autolog."""
    hops = 0
    while frame is not None and hops < 12:
        module = frame.f_globals.get("__name__", "") or ""
        if not module.startswith(_INTERNAL_MODULES) and module != "sklearn":
            return frame
        frame = frame.f_back
        hops += 1
    return frame


def _var_name(obj: Any, frame: FrameType | None) -> str | None:
    """The name bound to exactly ``obj`` in ``frame``'s locals, then globals (not ``_x``)."""
    if obj is None or frame is None:
        return None
    seen_globals = frame.f_locals is frame.f_globals
    scopes = (frame.f_locals,) if seen_globals else (frame.f_locals, frame.f_globals)
    for scope in scopes:
        try:
            items = list(scope.items())
        except Exception:
            continue
        for name, value in items:
            if value is obj and isinstance(name, str) and not name.startswith("_"):
                try:
                    return validate_key(name)
                except InvalidArgument:
                    continue
    return None


@functools.lru_cache(maxsize=1024)
def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _bind(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Arguments of a call by parameter name (``**kwargs`` entries merged in)."""
    sig = _signature(fn)
    if sig is None:
        return {}
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:
        return {}
    arguments = dict(bound.arguments)
    for name, param in sig.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD and isinstance(arguments.get(name), dict):
            extra = arguments.pop(name)
            for key, value in extra.items():
                arguments.setdefault(key, value)
    return arguments


def _data_parameters(fn: Callable[..., Any]) -> list[str]:
    """Names of the positional-or-keyword parameters of ``fn`` (``self`` included)."""
    sig = _signature(fn)
    if sig is None:
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [name for name, p in sig.parameters.items() if p.kind in kinds]


def _fit_data(
    original: Callable[..., Any], est: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """``(X, y, sample_weight)`` of a fit call; missing ones are None."""
    arguments = _bind(original, (est, *args), kwargs)
    names = _data_parameters(original)
    x = arguments.get(names[1]) if len(names) > 1 else (args[0] if args else None)
    y = arguments.get(names[2]) if len(names) > 2 else None
    return x, y, arguments.get("sample_weight")


def _safe_params(params: Mapping[str, Any], prefix: str = "") -> list[Param]:
    """Params with valid keys and storable ``str`` values; the rest is skipped."""
    out = []
    for key, value in params.items():
        try:
            name = validate_key(f"{prefix}{key}", "param")
            out.append(Param(name, param_value_to_str(name, value)))
        except Exception:
            continue
    return out


def _log_params(client: Any, run_id: str, params: list[Param]) -> None:
    """Log params; values conflicting with ones already in the run are skipped."""
    if not params:
        return
    try:
        client.log_batch(run_id, params=params)
    except NbMlopsError:
        for param in params:
            try:
                client.log_batch(run_id, params=[param])
            except NbMlopsError:
                continue


def _is_search(est: Any) -> bool:
    try:
        from sklearn.model_selection._search import BaseSearchCV
    except Exception:
        return False
    return isinstance(est, BaseSearchCV)


def _current_session() -> Any:
    try:
        return _session_mod.current()
    except Exception:
        return None


# --------------------------------------------------------------------------- wrappers


def _make_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython and pytest hide this frame
        state = _local
        if not _enabled or state.depth or state.busy or _outer_fits:
            return original(self, *args, **kwargs)
        caller = sys._getframe(1)
        # A fit called by scikit-learn itself (LabelEncoder inside a metric, a helper's
        # NearestNeighbors...) is bookkeeping, not the user's model: it and its children pass.
        target = None if _from_sklearn(caller) else _fit_target(self)
        state.depth += 1
        if target is None:
            try:
                return original(self, *args, **kwargs)
            finally:
                state.depth -= 1
        _outer_enter()
        try:
            _before_fit(target, self)
            result = original(self, *args, **kwargs)
        finally:
            state.depth -= 1
            _outer_exit()
        _after_fit(target, self, original, args, kwargs, caller)
        return result

    return fit


def _make_predict(original: Callable[..., Any], track_base: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    def predict(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython and pytest hide this frame
        state = _local
        if (
            not _enabled
            or state.depth
            or state.busy
            or _outer_fits
            or _tracked(self) is None
            or _from_sklearn(sys._getframe(1))
        ):
            return original(self, *args, **kwargs)
        state.busy += 1
        try:
            output = original(self, *args, **kwargs)
        finally:
            state.busy -= 1
        _record_output(self, output, original, args, kwargs, sys._getframe(1), track_base)
        return output

    return predict


def _make_score(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def score(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython and pytest hide this frame
        state = _local
        if not _enabled or state.depth or state.busy or _outer_fits:
            return original(self, *args, **kwargs)
        record = _tracked(self)
        if record is None or _from_sklearn(sys._getframe(1)):
            return original(self, *args, **kwargs)
        state.busy += 1
        try:
            value = original(self, *args, **kwargs)
        finally:
            state.busy -= 1
        _after_score(self, record, original, args, kwargs, value, sys._getframe(1))
        return value

    return score


def _make_metric(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def metric(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython and pytest hide this frame
        state = _local
        if (
            not _enabled
            or state.depth
            or state.busy
            or _outer_fits
            or not _outputs
            or _from_sklearn(sys._getframe(1))
        ):
            return original(*args, **kwargs)
        state.busy += 1
        try:
            value = original(*args, **kwargs)
        finally:
            state.busy -= 1
        _after_metric(original, args, kwargs, value, sys._getframe(1))
        return value

    return metric


def _make_suppressing(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def suppressed(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython and pytest hide this frame
        _local.depth += 1
        try:
            return original(*args, **kwargs)
        finally:
            _local.depth -= 1

    return suppressed


def _outer_enter() -> None:
    global _outer_fits
    with _lock:
        _outer_fits += 1


def _outer_exit() -> None:
    global _outer_fits
    with _lock:
        _outer_fits -= 1


# --------------------------------------------------------------------------- patching


def _install() -> None:
    """Patch scikit-learn now (errors are reported, never raised)."""
    global _patched
    with _lock:
        if _patched or not _enabled:
            return
        _patched = True
        try:
            _patch_estimators()
            _patch_functions()
        except Exception as exc:
            _warn("patch", f"could not patch scikit-learn ({exc!r}); autolog may miss work")


def _estimator_classes() -> list[type]:
    from sklearn.compose import ColumnTransformer
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    classes: dict[type, None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = all_estimators()
    for _, cls in found:
        classes[cls] = None
    for cls in (Pipeline, ColumnTransformer, GridSearchCV, RandomizedSearchCV):
        classes[cls] = None
    try:
        # The private module is importable without sklearn.experimental's side effect of
        # publishing the classes in sklearn.model_selection.
        from sklearn.model_selection import _search_successive_halving as halving

        classes[halving.HalvingGridSearchCV] = None
        classes[halving.HalvingRandomSearchCV] = None
    except Exception:
        pass
    return [c for c in classes if not inspect.isabstract(c)]


def _lookup(cls: type, name: str) -> tuple[Any, bool] | None:
    """``(raw attribute, defined on cls itself)`` through the MRO, or None."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name], klass is cls
    return None


def _wrapped_attribute(raw: Any, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Any:
    """The replacement for ``raw``: a wrapper function, or a copy of an ``available_if``
    descriptor whose ``fn`` is wrapped (so ``hasattr`` keeps its meaning). None: not patchable.
    """
    if isinstance(raw, FunctionType):
        return make(raw)
    fn = getattr(raw, "fn", None)
    if isinstance(fn, FunctionType) and hasattr(raw, "check") and hasattr(raw, "__get__"):
        clone = copy.copy(raw)
        clone.fn = make(fn)
        return clone
    return None


def _patch_estimators() -> None:
    plan: list[tuple[type, str, Any, Any, bool]] = []
    makers: list[tuple[tuple[str, ...], Callable[[Callable[..., Any]], Callable[..., Any]]]] = [
        (FIT_METHODS, _make_fit),
        (PREDICT_METHODS, lambda fn: _make_predict(fn, track_base=True)),
        (TRANSFORM_METHODS, lambda fn: _make_predict(fn, track_base=False)),
        ((SCORE_METHOD,), _make_score),
    ]
    # Resolve every original before installing anything, so that a subclass never wraps
    # the wrapper it would otherwise inherit from an already patched base class.
    for cls in _estimator_classes():
        for names, make in makers:
            for name in names:
                found = _lookup(cls, name)
                if found is None:
                    continue
                raw, own = found
                replacement = _wrapped_attribute(raw, make)
                if replacement is not None:
                    plan.append((cls, name, raw, replacement, own))
    for cls, name, raw, replacement, own in plan:
        try:
            setattr(cls, name, replacement)
        except (AttributeError, TypeError):
            continue
        _patches.append(_Patch(cls, name, raw, replacement, own))


def _patch_module_function(
    modules: Iterable[ModuleType],
    name: str,
    make: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> None:
    """Patch ``name`` on each module holding the same function object (one wrapper)."""
    modules = list(modules)
    original = next((vars(m)[name] for m in modules if name in vars(m)), None)
    if not isinstance(original, FunctionType):
        return
    wrapper = make(original)
    for module in modules:
        if vars(module).get(name) is original:
            setattr(module, name, wrapper)
            _patches.append(_Patch(module, name, original, wrapper, True))


def _patch_functions() -> None:
    import sklearn.metrics
    import sklearn.model_selection
    from sklearn.model_selection import _validation

    for name in METRIC_FUNCTIONS:
        fn = vars(sklearn.metrics).get(name)
        if fn is None:
            continue
        home = sys.modules.get(getattr(fn, "__module__", "") or "")
        owners = [sklearn.metrics] + (
            [home] if home is not None and home is not sklearn.metrics else []
        )
        _patch_module_function(owners, name, _make_metric)
    owners = [sklearn.model_selection, _validation]
    plot = sys.modules.get("sklearn.model_selection._plot")
    if plot is not None:
        owners.append(plot)
    for name in SUPPRESSING_FUNCTIONS:
        _patch_module_function(owners, name, _make_suppressing)


# --------------------------------------------------------------------------- lazy import


class _ImportWatcher(importlib.abc.MetaPathFinder):
    """Patches right after ``import sklearn`` executes (one shot, see the module docs)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "sklearn":
            return None
        spec = None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return None
        original_exec = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            try:
                original_exec(module)
            finally:
                try:
                    del loader.exec_module
                except AttributeError:
                    pass
            _unwatch_import()
            _install()

        try:
            loader.exec_module = exec_module
        except AttributeError:
            return None
        return spec


def _watch_import() -> None:
    global _watcher
    if _watcher is None:
        _watcher = _ImportWatcher()
        sys.meta_path.insert(0, _watcher)


def _unwatch_import() -> None:
    global _watcher
    with _lock:
        if _watcher is not None:
            try:
                sys.meta_path.remove(_watcher)
            except ValueError:
                pass
            _watcher = None


# --------------------------------------------------------------------------- fit


def _fit_target(est: Any) -> Any:
    """The session's autolog target for this fit, or None (never raises)."""
    session = _current_session()
    if session is None:
        return None
    try:
        return session.autolog_target(name_hint=type(est).__name__)
    except Exception as exc:
        _warn("target", f"could not open a run for {type(est).__name__}.fit ({exc!r})")
        return None


def _before_fit(target: Any, est: Any) -> None:
    """Params and estimator tags, logged before the fit so a failed fit still has them."""
    with _BUSY:
        try:
            client = target._client
            _log_params(client, target.run_id, _safe_params(est.get_params(deep=True)))
            client.log_batch(
                target.run_id,
                tags=[
                    RunTag("estimator_name", type(est).__name__),
                    RunTag(
                        "estimator_class", tag_value_to_str("estimator_class", _class_path(est))
                    ),
                ],
            )
        except Exception as exc:
            _warn("params", f"could not log the params of {type(est).__name__} ({exc!r})")


def _after_fit(
    target: Any,
    est: Any,
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    caller: FrameType | None,
) -> None:
    """Everything logged once the outermost fit returned (each step on its own)."""
    with _BUSY:
        try:
            session = _current_session()
            client = target._client
            run_id = target.run_id
            step = _fit_counts.get(run_id, 0)
            _fit_counts[run_id] = step + 1
            x, y, sample_weight = _fit_data(original, est, args, kwargs)
            frame = _user_frame(caller)
        except Exception as exc:
            _warn("fit", f"could not inspect the fit of {type(est).__name__} ({exc!r})")
            return
        try:
            _track(est, run_id)
            best = getattr(est, "best_estimator_", None) if _is_search(est) else None
            if best is not None:
                _track(best, run_id)
        except Exception as exc:
            _warn("track", f"could not track {type(est).__name__} for evaluation ({exc!r})")
        try:
            values = training_metrics(est, x, y, sample_weight)
            if values:
                now = _now_ms()
                client.log_batch(
                    run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()]
                )
        except Exception as exc:
            _warn("metrics", f"could not log training metrics ({exc!r})")
        try:
            _log_training_inputs(client, run_id, x, y, frame)
        except Exception as exc:
            _warn("inputs", f"could not fingerprint the training data ({exc!r})")
        if _is_search(est):
            try:
                _log_search(client, target, est)
            except Exception as exc:
                _warn("search", f"could not log the parameter search ({exc!r})")
        try:
            config = getattr(session, "config", None)
            if config is None or getattr(config, "log_models", True):
                cap = int(getattr(config, "max_model_bytes", 50 * 1024 * 1024))
                _log_model(client, run_id, est, cap)
        except Exception as exc:
            _warn("model", f"could not log the fitted model ({exc!r})")


def _track(est: Any, run_id: str) -> None:
    key = id(est)

    def forget(ref: weakref.ref[Any], key: int = key) -> None:
        record = _fitted.get(key)
        if record is not None and record.ref is ref:
            _fitted.pop(key, None)

    try:
        ref = weakref.ref(est, forget)
    except TypeError:
        return
    _fitted[key] = _FitRecord(ref, run_id)


def _tracked(est: Any) -> _FitRecord | None:
    record = _fitted.get(id(est))
    if record is None or record.ref() is not est:
        return None
    return record


def training_metrics(est: Any, x: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    """MLflow's training metrics; a metric that cannot be computed is skipped.

    Public because the exporter (nbmlops.export) computes the same metrics with it, so that
    --verify compares like with like.
    """
    if y is None or x is None:
        return {}
    import numpy as np
    from sklearn import metrics as skm
    from sklearn.base import is_classifier, is_regressor

    values: dict[str, float] = {}
    weights = {"sample_weight": sample_weight} if sample_weight is not None else {}

    def attempt(name: str, compute: Callable[[], Any]) -> None:
        try:
            value = compute()
        except Exception:
            return
        if _is_number(value):
            values[name] = float(value)

    if is_classifier(est):
        try:
            y_pred = est.predict(x)
        except Exception:
            y_pred = None
        classes = getattr(est, "classes_", None)
        binary = classes is not None and np.ndim(classes) == 1 and len(classes) == 2
        average = "binary" if binary and any(_equals_one(c) for c in classes) else "weighted"
        if y_pred is not None:
            attempt("training_accuracy_score", lambda: skm.accuracy_score(y, y_pred, **weights))
            for name, fn in (
                ("training_precision_score", skm.precision_score),
                ("training_recall_score", skm.recall_score),
                ("training_f1_score", skm.f1_score),
            ):
                attempt(name, functools.partial(fn, y, y_pred, average=average, **weights))
        try:
            proba = est.predict_proba(x) if hasattr(est, "predict_proba") else None
        except Exception:
            proba = None
        if proba is not None:
            labels = {"labels": classes} if classes is not None else {}
            attempt("training_log_loss", lambda: skm.log_loss(y, proba, **labels, **weights))
            if np.ndim(proba) == 2 and proba.shape[1] == 2:
                attempt("training_roc_auc", lambda: skm.roc_auc_score(y, proba[:, 1], **weights))
            else:
                attempt(
                    "training_roc_auc",
                    lambda: skm.roc_auc_score(
                        y, proba, multi_class="ovr", average="weighted", **labels, **weights
                    ),
                )
    elif is_regressor(est):
        try:
            y_pred = est.predict(x)
        except Exception:
            y_pred = None
        if y_pred is not None:
            attempt(
                "training_mean_squared_error", lambda: skm.mean_squared_error(y, y_pred, **weights)
            )
            if "training_mean_squared_error" in values:
                values["training_root_mean_squared_error"] = math.sqrt(
                    values["training_mean_squared_error"]
                )
            attempt(
                "training_mean_absolute_error",
                lambda: skm.mean_absolute_error(y, y_pred, **weights),
            )
            attempt("training_r2_score", lambda: skm.r2_score(y, y_pred, **weights))
    if hasattr(est, "score"):
        score_names = _data_parameters(type(est).score) if hasattr(type(est), "score") else []
        if weights and "sample_weight" in score_names:
            attempt("training_score", lambda: est.score(x, y, sample_weight=sample_weight))
        else:
            attempt("training_score", lambda: est.score(x, y))
    return values


def _equals_one(label: Any) -> bool:
    try:
        return bool(label == 1) and not isinstance(label, str)
    except Exception:
        return False


def _fingerprint(obj: Any, name: str, context: str) -> Any:
    """A DatasetInput, or None for a type fingerprints do not cover (sparse matrices...)."""
    try:
        return _data.fingerprint(obj, name=name, context=context)
    except InvalidArgument:
        return None


def _log_training_inputs(client: Any, run_id: str, x: Any, y: Any, frame: FrameType | None) -> None:
    inputs = []
    if x is not None:
        info = _fingerprint(x, _var_name(x, frame) or "X_train", "training")
        if info is not None:
            inputs.append(info)
    if y is not None:
        info = _fingerprint(y, _var_name(y, frame) or "y_train", "training")
        if info is not None:
            inputs.append(info)
    if inputs:
        client.log_inputs(run_id, inputs)


class _CappedSink:
    """A write-only file for joblib: keeps bytes up to ``cap``, then only counts them."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0
        self.buffer: bytearray | None = bytearray()

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.size += n
        if self.buffer is not None:
            if self.size > self.cap:
                self.buffer = None  # over the cap: stop holding memory, keep counting
            else:
                self.buffer += data
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        return None

    def writable(self) -> bool:
        return True


def _log_model(client: Any, run_id: str, est: Any, cap: int) -> None:
    import joblib

    sink = _CappedSink(cap)
    joblib.dump(est, sink)
    if sink.buffer is None:
        client.set_tag(run_id, MODEL_SKIPPED_TAG, f"size {sink.size} > cap {cap}")
        return
    payload = bytes(sink.buffer)
    digest = hashlib.sha256(payload).hexdigest()
    client.log_bytes(run_id, payload, MODEL_ARTIFACT)
    versions = {"python": platform.python_version()}
    for module in ("sklearn", "numpy", "joblib", "scipy", "pandas"):
        loaded = sys.modules.get(module)
        version = getattr(loaded, "__version__", None)
        if version:
            versions[module] = str(version)
    meta = {
        "flavor": "sklearn",
        "format": "joblib",
        "path": MODEL_ARTIFACT,
        "sha256": digest,
        "size": len(payload),
        "class": _class_path(est),
        "versions": versions,
    }
    client.log_text(run_id, json.dumps(meta, indent=1, sort_keys=True), MODEL_META_ARTIFACT)


def _log_search(client: Any, target: Any, est: Any) -> None:
    """best_* params, best_cv_score, cv_results.csv and the top candidates as child runs."""
    run_id = target.run_id
    best_params = getattr(est, "best_params_", None)
    if isinstance(best_params, Mapping):
        _log_params(client, run_id, _safe_params(best_params, prefix="best_"))
    best_score = getattr(est, "best_score_", None)
    if best_score is not None and _is_number(best_score):
        client.log_metric(run_id, "best_cv_score", float(best_score))
    results = getattr(est, "cv_results_", None)
    if not isinstance(results, Mapping) or "params" not in results:
        return
    try:
        import pandas as pd

        table = pd.DataFrame.from_dict(dict(results))
        client.log_text(run_id, table.to_csv(index=False), CV_RESULTS_ARTIFACT)
    except Exception as exc:
        _warn("cv_results", f"could not store cv_results.csv ({exc!r})")
    _log_candidates(client, target, est, results)


def _rank_column(est: Any, results: Mapping[str, Any]) -> str | None:
    refit = getattr(est, "refit", None)
    if isinstance(refit, str) and f"rank_test_{refit}" in results:
        return f"rank_test_{refit}"
    if "rank_test_score" in results:
        return "rank_test_score"
    return next((k for k in results if k.startswith("rank_test_")), None)


def _log_candidates(client: Any, target: Any, est: Any, results: Mapping[str, Any]) -> None:
    candidates = list(results["params"])
    rank_column = _rank_column(est, results)
    ranks = list(results[rank_column]) if rank_column else list(range(1, len(candidates) + 1))
    order = sorted(range(len(candidates)), key=lambda i: (_rank_value(ranks[i]), i))
    order = order[:MAX_CV_CHILD_RUNS]
    if not order:
        return
    parent = client.get_run(target.run_id)
    seed = getattr(est, "estimator", None)
    base: dict[str, Any] = {}
    if seed is not None and hasattr(seed, "get_params"):
        base = dict(seed.get_params(deep=not _is_search(seed)))
    seed_tags = {}
    if seed is not None:
        seed_tags = {"estimator_name": type(seed).__name__, "estimator_class": _class_path(seed)}
    score_prefixes = ("mean_test_", "std_test_", "rank_test_", "mean_train_", "std_train_")
    score_keys = [k for k in results if k.startswith(score_prefixes)]
    score_keys += [k for k in ("mean_fit_time", "mean_score_time") if k in results]
    now = _now_ms()
    for position, index in enumerate(order, start=1):
        params = {**base, **dict(candidates[index])}
        metrics = []
        for key in score_keys:
            value = results[key][index]
            if _is_number(value):
                metrics.append(Metric(key, float(value), now, 0))
        rank = _rank_value(ranks[index])
        child = client.create_run(
            experiment_id=parent.info.experiment_id,
            run_name=f"{parent.info.run_name} candidate {position}"[:500],
            tags={
                _session_mod.RUN_TYPE_TAG: CV_CANDIDATE_RUN_TYPE,
                "nbmlops.cv.rank": str(rank),
                "nbmlops.cv.index": str(index),
                **seed_tags,
            },
            parent_run_id=target.run_id,
            start_time=parent.info.start_time,
        )
        child_id = child.info.run_id
        _log_params(client, child_id, _safe_params(params))
        if metrics:
            client.log_batch(child_id, metrics=metrics)
        client.set_terminated(child_id, RunStatus.FINISHED)


def _rank_value(rank: Any) -> float:
    try:
        value = float(rank)
    except (TypeError, ValueError):
        return math.inf
    return value if not math.isnan(value) else math.inf


# --------------------------------------------------------------------------- evaluation


def _record_output(
    est: Any,
    output: Any,
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    caller: FrameType | None,
    track_base: bool,
) -> None:
    """Remember that ``output`` came from ``est`` (weakly; bounded). Never raises."""
    try:
        with _BUSY:
            try:
                out_ref = weakref.ref(output)
            except TypeError:
                return  # tuples, lists...: cannot be recognised safely later
            names = _data_parameters(original)
            arguments = _bind(original, (est, *args), kwargs)
            x = arguments.get(names[1]) if len(names) > 1 else None
            x_name = _var_name(x, _user_frame(caller)) or UNKNOWN_DATASET
            try:
                x_ref: weakref.ref[Any] | None = weakref.ref(x) if x is not None else None
            except TypeError:
                x_ref = None
            entry = _Output(out_ref, weakref.ref(est), x_name, x_ref)
            keys = [(id(output), entry)]
            base = getattr(output, "base", None) if track_base else None
            if base is not None and type(base).__name__ == "ndarray":
                # predict_proba(X)[:, 1] is a view whose .base is the owner of the memory.
                keys.append((id(base), _Output(weakref.ref(base), entry.estimator, x_name, x_ref)))
            with _lock:
                for key, value in keys:
                    _outputs[key] = value
                    _outputs.move_to_end(key)
                while len(_outputs) > _MAX_TRACKED_OUTPUTS:
                    _outputs.popitem(last=False)
    except Exception as exc:
        _warn("predict", f"could not track a prediction ({exc!r})")
    finally:
        del caller


def _find_output(obj: Any) -> _Output | None:
    """The tracked prediction ``obj`` is (or is a numpy view of)."""
    candidates = [obj]
    base = getattr(obj, "base", None) if type(obj).__name__ == "ndarray" else None
    if base is not None:
        candidates.append(base)
    for candidate in candidates:
        entry = _outputs.get(id(candidate))
        if entry is not None and entry.output() is candidate:
            return entry
    return None


def _prediction_arguments(
    original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[list[Any], Any]:
    """(objects passed as model output, y_true) of a metric call."""
    arguments = _bind(original, args, kwargs)
    found = [arguments[name] for name in PREDICTION_ARGUMENTS if name in arguments]
    if not found and len(args) > 1:
        found = [args[1]]
    y_true = arguments.get("y_true", args[0] if args else None)
    return found, y_true


def _run_for(session: Any, record: _FitRecord, name_hint: str) -> Any:
    """The fitting run while it is the executing cell's run or an open user run, else the
    session's autolog target (the evaluating cell's run)."""
    cell = getattr(session, "cell", None)
    cell_run = getattr(cell, "run", None) if cell is not None else None
    if cell_run is not None and cell_run.run_id == record.run_id:
        return cell_run
    for active in tracking._stack():
        if active.run_id == record.run_id and not active.implicit:
            return active
    return session.autolog_target(name_hint=name_hint)


def _after_metric(
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    value: Any,
    caller: FrameType | None,
) -> None:
    try:
        with _BUSY:
            if not _is_number(value):
                return
            predictions, y_true = _prediction_arguments(original, args, kwargs)
            entry = next((e for e in map(_find_output, predictions) if e is not None), None)
            if entry is None:
                return
            est = entry.estimator()
            record = _tracked(est) if est is not None else None
            if record is None:
                return
            name = getattr(original, "__name__", "metric")
            _log_evaluation(record, f"{name}_{entry.x_name}", value, name, y_true, entry, caller)
    except Exception as exc:
        _warn("post_metric", f"could not log a post-training metric ({exc!r})")
    finally:
        del caller


def _after_score(
    est: Any,
    record: _FitRecord,
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    value: Any,
    caller: FrameType | None,
) -> None:
    try:
        with _BUSY:
            if not _is_number(value):
                return
            names = _data_parameters(original)
            arguments = _bind(original, (est, *args), kwargs)
            x = arguments.get(names[1]) if len(names) > 1 else None
            y = arguments.get(names[2]) if len(names) > 2 else None
            x_name = _var_name(x, _user_frame(caller)) or UNKNOWN_DATASET
            try:
                x_ref = weakref.ref(x) if x is not None else None
            except TypeError:
                x_ref = None
            entry = _Output(weakref.ref(est), weakref.ref(est), x_name, x_ref)
            hint = f"{type(est).__name__}.score"
            key = f"{type(est).__name__}_score_{x_name}"
            _log_evaluation(record, key, value, hint, y, entry, caller)
    except Exception as exc:
        _warn("score", f"could not log a score ({exc!r})")
    finally:
        del caller


def _log_evaluation(
    record: _FitRecord,
    key: str,
    value: Any,
    name_hint: str,
    y_true: Any,
    entry: _Output,
    caller: FrameType | None,
) -> None:
    session = _current_session()
    if session is None or not getattr(session, "autolog_enabled", False):
        return
    active = _run_for(session, record, name_hint)
    if active is None:
        return
    client = active._client
    run_id = active.run_id
    key = validate_key(key, "metric")
    number = float(value)
    with _lock:
        previous = _metric_points.get((run_id, key))
        if previous is not None and (
            previous[1] == number or (math.isnan(previous[1]) and math.isnan(number))
        ):
            return
        step = 0 if previous is None else previous[0] + 1
        if len(_metric_points) >= _MAX_METRIC_KEYS:
            _metric_points.clear()
        _metric_points[(run_id, key)] = (step, number)
    client.log_metric(run_id, key, number, step=step)
    if run_id != record.run_id:
        client.set_tag(run_id, EVALUATES_TAG, record.run_id)
    try:
        frame = _user_frame(caller)
        inputs = []
        x = entry.x_ref() if entry.x_ref is not None else None
        if x is not None:
            info = _fingerprint(x, entry.x_name, "evaluation")
            if info is not None:
                inputs.append(info)
        if y_true is not None:
            info = _fingerprint(y_true, _var_name(y_true, frame) or "y_true", "evaluation")
            if info is not None:
                inputs.append(info)
        if inputs:
            client.log_inputs(run_id, inputs)
    except Exception as exc:
        _warn("inputs", f"could not fingerprint the evaluation data ({exc!r})")
