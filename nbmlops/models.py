"""Logging and loading models: ``log_model`` / ``load_model`` (design doc §3, LoggedModel).

A logged model is a folder of run artifacts (``<name>`` below, ``model`` by default)::

    <name>/estimator.joblib       the serialized model (joblib; ``estimator.pkl`` without joblib)
    <name>/nbmlops-model.json     metadata: flavor, format, file, sha256, size, class,
                                  library versions, signature, input-example info
    <name>/input_example.json     the first rows of the input example (pandas orient="split")
    <name>/requirements.txt       pinned versions of the libraries in use

The metadata file is written last, so a half-written folder is never taken for a model.

**Trust model.** Loading a model unpickles it, and unpickling runs code chosen by whoever
wrote the file. Only load models from stores you trust. :func:`load_model` checks the sha256
recorded at logging time against the bytes it is about to deserialize and refuses a
mismatching or missing file (it never falls back to another version); ``verify=False``
skips that check and is meant for forensics only. The hash guards against accidental
damage and against the file being swapped *without* also rewriting the metadata: it is not
a signature, so it does not protect against someone who can write the whole store.

``import nbmlops.models`` is light: numpy, pandas, joblib and scikit-learn are imported by
the functions that need them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import pickle
import platform
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbmlops.errors import InvalidArgument, NbMlopsError, NotFound
from nbmlops.validation import (
    LATEST_ALIAS,
    short,
    validate_artifact_path,
    validate_model_name,
    validate_run_id,
    validate_version,
)

if TYPE_CHECKING:
    from nbmlops.client import Client

__all__ = [
    "INPUT_EXAMPLE_FILE",
    "METADATA_FILE",
    "MODEL_TAG",
    "REQUIREMENTS_FILE",
    "LoadedModel",
    "ModelInfo",
    "ModelIntegrityError",
    "ModelURI",
    "infer_signature",
    "load_model",
    "log_model",
    "parse_model_uri",
    "read_model_metadata",
]

METADATA_FILE = "nbmlops-model.json"
INPUT_EXAMPLE_FILE = "input_example.json"
REQUIREMENTS_FILE = "requirements.txt"
#: Metadata written by sklearn autologging (``model/meta.json``); loadable, no signature.
AUTOLOG_METADATA_FILE = "meta.json"
#: Run tag set by :func:`log_model`: the artifact path of the model logged last in the run.
MODEL_TAG = "nbmlops.model"
#: Run tag naming the run the model was fitted in, when autolog saw the fit elsewhere.
TRAINED_IN_TAG = "nbmlops.model.trained_in"
METADATA_SCHEMA = 1
INPUT_EXAMPLE_ROWS = 5
_FILES = {"joblib": "estimator.joblib", "pickle": "estimator.pkl"}
#: Libraries whose versions are recorded (distribution name -> import name).
_LIBRARIES = {
    "scikit-learn": "sklearn",
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "joblib": "joblib",
}
#: Libraries whose version difference at load time triggers a warning.
_CHECKED_LIBRARIES = ("scikit-learn", "numpy", "joblib", "scipy")
_AUTOLOG_VERSION_KEYS = {"sklearn": "scikit-learn"}


class ModelIntegrityError(NbMlopsError):
    """A model file does not match the sha256 recorded when it was logged (or is unreadable).

    Nothing was deserialized. Like a damaged store file, it is a server-side data problem
    (HTTP 500), not a caller error.
    """


# --------------------------------------------------------------------------- URIs


@dataclasses.dataclass(frozen=True)
class ModelURI:
    """A parsed model URI.

    ``kind`` is ``runs`` (``run_id`` + ``path``) or ``models`` (``name`` plus either
    ``version`` or ``alias``; ``alias == "latest"`` means the newest version).
    """

    kind: str
    uri: str
    run_id: str | None = None
    path: str | None = None
    name: str | None = None
    version: int | None = None
    alias: str | None = None


_MODELS_ALIAS = re.compile(r"models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)/?")
_MODELS_VERSION = re.compile(r"models:/(?P<name>[^/@]+)/(?P<version>[^/@]+)/?")


def parse_model_uri(uri: Any) -> ModelURI:
    """Parse ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``
    or ``models:/<name>/latest``; raises InvalidArgument naming the accepted forms."""
    forms = (
        "runs:/<run_id>/<path>, models:/<name>/<version>, models:/<name>@<alias> or "
        "models:/<name>/latest"
    )
    if not isinstance(uri, str):
        raise InvalidArgument(f"model URI must be a string ({forms}), got {short(uri)}")
    if uri.startswith("runs:/"):
        rest = uri[len("runs:/") :].strip("/")
        run_id, _, path = rest.partition("/")
        if not run_id or not path:
            raise InvalidArgument(f"invalid model URI {short(uri)}: expected {forms}")
        return ModelURI(
            "runs", uri, run_id=validate_run_id(run_id), path=validate_artifact_path(path)
        )
    if uri.startswith("models:/"):
        match = _MODELS_ALIAS.fullmatch(uri)
        if match:
            alias = match["alias"]
            return ModelURI(
                "models",
                uri,
                name=validate_model_name(match["name"]),
                alias=LATEST_ALIAS if alias.lower() == LATEST_ALIAS else alias,
            )
        match = _MODELS_VERSION.fullmatch(uri)
        if match:
            name = validate_model_name(match["name"])
            if match["version"].lower() == LATEST_ALIAS:
                return ModelURI("models", uri, name=name, alias=LATEST_ALIAS)
            return ModelURI("models", uri, name=name, version=validate_version(match["version"]))
    raise InvalidArgument(f"invalid model URI {short(uri)}: expected {forms}")


# --------------------------------------------------------------------------- helpers


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from nbmlops import tracking

    return tracking.get_client()


def library_versions(model: Any = None) -> dict[str, str]:
    """Versions of Python and of the libraries a scikit-learn model depends on."""
    import importlib.metadata  # ~15 ms: only when a model is saved or loaded

    versions = {"python": platform.python_version()}
    names = dict(_LIBRARIES)
    top = type(model).__module__.split(".", 1)[0] if model is not None else ""
    if top and top not in names.values() and top not in ("builtins", "__main__", "nbmlops"):
        names[top] = top
    for distribution, module in names.items():
        version = None
        loaded = sys.modules.get(module)
        if loaded is not None:
            version = getattr(loaded, "__version__", None)
        if version is None:
            try:
                version = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                version = None
        if version:
            versions[distribution] = str(version)
    return versions


def _flavor(model: Any) -> str:
    module = type(model).__module__
    return "sklearn" if module == "sklearn" or module.startswith("sklearn.") else "python"


def _serialize(model: Any) -> tuple[str, bytes]:
    try:
        import joblib
    except ImportError:
        return "pickle", pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return "joblib", buffer.getvalue()


def _deserialize(fmt: str, payload: bytes) -> Any:
    if fmt == "joblib":
        try:
            import joblib
        except ImportError:
            raise InvalidArgument(
                "this model was saved with joblib, which is not installed (pip install joblib)"
            ) from None
        return joblib.load(io.BytesIO(payload))
    if fmt == "pickle":
        return pickle.loads(payload)
    raise InvalidArgument(f"unknown model format {fmt!r} (expected 'joblib' or 'pickle')")


def _is_frame(obj: Any) -> bool:
    return type(obj).__module__.split(".", 1)[0] == "pandas" and hasattr(obj, "columns")


def _as_frame(data: Any) -> Any:
    """``data`` as a pandas DataFrame (DataFrame, Series, mapping, 1-D/2-D array or list)."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame().T if data.name is None else data.to_frame()
    if isinstance(data, Mapping):
        return pd.DataFrame(dict(data))
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], Mapping):
        return pd.DataFrame(list(data))
    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidArgument(f"input example must be 1-D or 2-D, got shape {array.shape}")
    return pd.DataFrame(array)


# --------------------------------------------------------------------------- signatures


def _output_schema(output: Any) -> dict[str, Any]:
    import numpy as np

    if _is_frame(output):
        return {
            "type": "dataframe",
            "columns": [{"name": str(c), "dtype": str(t)} for c, t in output.dtypes.items()],
        }
    array = np.asarray(output)
    return {"type": "tensor", "dtype": str(array.dtype), "shape": [-1, *array.shape[1:]]}


def _input_schema(data: Any) -> dict[str, Any]:
    import numpy as np

    if _is_frame(data):
        return {
            "type": "dataframe",
            "columns": [{"name": str(c), "dtype": str(t)} for c, t in data.dtypes.items()],
        }
    if isinstance(data, Mapping):
        return _input_schema(_as_frame(data))
    array = np.asarray(data)
    shape = [-1, *array.shape[1:]] if array.ndim >= 2 else [-1, array.shape[0]]
    return {"type": "tensor", "dtype": str(array.dtype), "shape": shape}


def infer_signature(model_input: Any, model_output: Any = None) -> dict[str, Any]:
    """A signature for ``model_input`` (DataFrame columns and dtypes, or an array's dtype
    and shape) and, if given, ``model_output``.

    Returns ``{"inputs": {...}, "outputs": {...} | None}``, the form stored in the metadata
    and accepted by :func:`log_model`'s ``signature`` argument.
    """
    return {
        "inputs": _input_schema(model_input),
        "outputs": None if model_output is None else _output_schema(model_output),
    }


def _check_signature(signature: Any) -> dict[str, Any]:
    """Accept our dict form (or anything with ``to_dict`` giving it); refuse other shapes."""
    if hasattr(signature, "to_dict") and not isinstance(signature, Mapping):
        signature = signature.to_dict()
    if not isinstance(signature, Mapping) or "inputs" not in signature:
        raise InvalidArgument(
            "signature must be a dict with 'inputs' (and optionally 'outputs'), as returned by "
            "nbmlops.models.infer_signature"
        )
    inputs = signature["inputs"]
    if isinstance(inputs, str):  # MLflow's to_dict() holds JSON text
        raise InvalidArgument(
            "signature looks like an MLflow ModelSignature; pass an input_example instead, or "
            "nbmlops.models.infer_signature(X, y)"
        )
    if not isinstance(inputs, Mapping) or inputs.get("type") not in ("dataframe", "tensor"):
        raise InvalidArgument("signature['inputs'] must have type 'dataframe' or 'tensor'")
    if inputs["type"] == "dataframe":
        columns = inputs.get("columns")
        if not isinstance(columns, Sequence) or not all(
            isinstance(c, Mapping) and "name" in c and "dtype" in c for c in columns
        ):
            raise InvalidArgument(
                "signature['inputs']['columns'] must be a list of {'name': ..., 'dtype': ...}"
            )
    return {"inputs": dict(inputs), "outputs": signature.get("outputs")}


def _training_schema(client: Client, model: Any, run_ids: Sequence[str]) -> dict[str, Any] | None:
    """Input schema from a training-data fingerprint whose columns match the model's."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    names = [str(n) for n in names]
    for run_id in run_ids:
        try:
            inputs = client.get_run(run_id).inputs
        except NbMlopsError:
            continue
        for dataset in reversed(inputs):
            if dataset.context != "training":
                continue
            schema = dict(dataset.schema)
            if all(n in schema for n in names):
                return {
                    "type": "dataframe",
                    "columns": [{"name": n, "dtype": schema[n]} for n in names],
                }
    return {"type": "dataframe", "columns": [{"name": n, "dtype": "any"} for n in names]}


def _default_output(model: Any) -> dict[str, Any] | None:
    classes = getattr(model, "classes_", None)
    if classes is not None:
        import numpy as np

        return {"type": "tensor", "dtype": str(np.asarray(classes).dtype), "shape": [-1]}
    return None


def _autolog_fit_run(model: Any) -> str | None:
    """The run in which sklearn autologging saw ``model`` being fitted, if it did."""
    module = sys.modules.get("nbmlops.autolog.sklearn")
    fitted = getattr(module, "_fitted", None)
    if not isinstance(fitted, Mapping):
        return None
    try:
        record = fitted.get(id(model))
        if record is not None and record.ref() is model:
            return str(record.run_id)
    except Exception:
        return None
    return None


# --------------------------------------------------------------------------- log_model


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What :func:`log_model` stored: ``model_uri`` (``runs:/<run_id>/<name>``) and metadata."""

    run_id: str
    artifact_path: str
    model_uri: str
    flavor: str
    format: str
    sha256: str
    size: int
    signature: Mapping[str, Any] | None
    metadata: Mapping[str, Any]


def log_model(
    model: Any,
    name: str = "model",
    input_example: Any = None,
    signature: Any = None,
    *,
    run_id: str | None = None,
    client: Client | None = None,
) -> ModelInfo:
    """Store ``model`` as artifact folder ``name`` of a run and return its :class:`ModelInfo`.

    Args:
        model: the fitted model (any picklable object with ``predict``; scikit-learn
            estimators and pipelines get the ``sklearn`` flavor).
        name: artifact folder of the model inside the run (``model``).
        input_example: a few rows of model input (DataFrame, array, list or dict); the first
            5 rows are stored, and the signature is inferred from it when none is given.
        signature: ``{"inputs": ..., "outputs": ...}`` (see :func:`infer_signature`). When
            neither this nor ``input_example`` is given, the inputs come from the model's
            ``feature_names_in_`` with the dtypes of the matching training-data fingerprint
            (recorded by autolog or ``log_input``).
        run_id: log into this RUNNING run instead of the active run (or the notebook cell's
            run; a new run starts when there is none, as for every log call).
        client: the client to use with ``run_id`` (default: the fluent API's client).

    Also sets the run tag ``nbmlops.model`` to ``name`` (used by ``%mlops register last``).
    """
    if not callable(getattr(model, "predict", None)):
        raise InvalidArgument(
            f"log_model needs a fitted model with a predict method, got {type(model).__name__}"
        )
    path = validate_artifact_path(name)
    if run_id is None:
        from nbmlops import tracking

        active = tracking.run_for_logging()
        run_id, client = active.run_id, active._client
    else:
        validate_run_id(run_id)
    client = _client(client)
    client.get_run(run_id)  # NotFound for an unknown run, before anything is written

    fmt, payload = _serialize(model)
    digest = hashlib.sha256(payload).hexdigest()
    model_file = _FILES[fmt]
    trained_in = _autolog_fit_run(model)

    example_frame = None
    if input_example is not None:
        example_frame = _as_frame(input_example).head(INPUT_EXAMPLE_ROWS)
    if signature is not None:
        sig: dict[str, Any] | None = _check_signature(signature)
    elif input_example is not None:
        example_input = _head(input_example) if _is_array_like(input_example) else example_frame
        output = None
        try:
            output = model.predict(example_input)
        except Exception as exc:
            warnings.warn(
                f"nbmlops: log_model could not run predict on the input example ({exc!r}); "
                "the signature has no output schema",
                UserWarning,
                stacklevel=2,
            )
        sig = infer_signature(example_input, output)
        if sig["outputs"] is None:
            sig["outputs"] = _default_output(model)
    else:
        runs = [run_id] + ([trained_in] if trained_in and trained_in != run_id else [])
        inputs = _training_schema(client, model, runs)
        sig = None if inputs is None else {"inputs": inputs, "outputs": _default_output(model)}

    versions = library_versions(model)
    metadata: dict[str, Any] = {
        "nbmlops_model_schema": METADATA_SCHEMA,
        "flavor": _flavor(model),
        "format": fmt,
        "file": model_file,
        "sha256": digest,
        "size": len(payload),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "versions": versions,
        "signature": sig,
        "input_example": None,
        "run_id": run_id,
        "artifact_path": path,
        "trained_in_run_id": trained_in,
    }
    client.log_bytes(run_id, payload, f"{path}/{model_file}")
    if example_frame is not None:
        metadata["input_example"] = {
            "file": INPUT_EXAMPLE_FILE,
            "rows": len(example_frame),
            "format": "pandas-split",
        }
        client.log_text(
            run_id,
            example_frame.to_json(orient="split", date_format="iso"),
            f"{path}/{INPUT_EXAMPLE_FILE}",
        )
    requirements = "".join(
        f"{dist}=={version}\n" for dist, version in sorted(versions.items()) if dist != "python"
    )
    client.log_text(run_id, requirements, f"{path}/{REQUIREMENTS_FILE}")
    # Written last: a folder without it is not a (complete) model.
    client.log_text(
        run_id, json.dumps(metadata, indent=1, sort_keys=True), f"{path}/{METADATA_FILE}"
    )
    client.set_tag(run_id, MODEL_TAG, path)
    if trained_in and trained_in != run_id:
        client.set_tag(run_id, TRAINED_IN_TAG, trained_in)
    return ModelInfo(
        run_id=run_id,
        artifact_path=path,
        model_uri=f"runs:/{run_id}/{path}",
        flavor=metadata["flavor"],
        format=fmt,
        sha256=digest,
        size=len(payload),
        signature=sig,
        metadata=metadata,
    )


def _is_array_like(data: Any) -> bool:
    """A numpy array or a list of rows/values (not a DataFrame, mapping or list of records)."""
    if _is_frame(data) or isinstance(data, Mapping):
        return False
    if isinstance(data, (list, tuple)):
        return not (data and isinstance(data[0], Mapping))
    return type(data).__module__.split(".", 1)[0] == "numpy" or hasattr(data, "__array__")


def _head(data: Any) -> Any:
    """The first rows of an array-like, kept as an array (for predict on the example)."""
    import numpy as np

    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    return array[:INPUT_EXAMPLE_ROWS]


# --------------------------------------------------------------------------- loading


def _resolve(uri: ModelURI, client: Client) -> tuple[str, str, str]:
    """``(run_id, path, description)`` of the model a URI names."""
    if uri.kind == "runs":
        assert uri.run_id is not None and uri.path is not None
        return uri.run_id, uri.path, uri.uri
    assert uri.name is not None
    if uri.version is not None:
        version = client.get_model_version(uri.name, uri.version)
        described = f"{uri.uri} (model {uri.name!r} version {version.version})"
    else:
        assert uri.alias is not None
        version = client.get_model_version_by_alias(uri.name, uri.alias)
        described = f"{uri.uri} (model {uri.name!r} version {version.version})"
    return version.source_run_id, version.model_path, described


def read_model_metadata(
    run_id: str, path: str, client: Client | None = None, described: str | None = None
) -> dict[str, Any]:
    """The metadata of the model at ``runs:/<run_id>/<path>`` (NotFound if there is none).

    Models written by sklearn autologging (``model/meta.json``) are read too; their
    metadata has no signature.
    """
    client = _client(client)
    where = described or f"runs:/{run_id}/{path}"
    run_id = validate_run_id(run_id)
    path = validate_artifact_path(path)
    try:
        raw = client.read_artifact(run_id, f"{path}/{METADATA_FILE}")
    except NotFound:
        try:
            raw = client.read_artifact(run_id, f"{path}/{AUTOLOG_METADATA_FILE}")
        except NotFound:
            client.get_run(run_id)  # NotFound for an unknown run says so
            raise NotFound(
                f"no model at {where}: run {run_id} has no {path}/{METADATA_FILE} "
                "(the artifact was deleted, or no model was logged under that path)"
            ) from None
        return _from_autolog_metadata(raw, where)
    try:
        metadata = json.loads(raw)
    except ValueError as exc:
        raise ModelIntegrityError(f"model metadata of {where} is not valid JSON ({exc})") from None
    if not isinstance(metadata, dict) or not metadata.get("sha256") or not metadata.get("file"):
        raise ModelIntegrityError(f"model metadata of {where} lacks 'file' or 'sha256'")
    return metadata


def _from_autolog_metadata(raw: bytes, where: str) -> dict[str, Any]:
    try:
        meta = json.loads(raw)
        file = str(meta["path"]).rsplit("/", 1)[-1]
        versions = {
            _AUTOLOG_VERSION_KEYS.get(k, k): str(v) for k, v in dict(meta["versions"]).items()
        }
        return {
            "nbmlops_model_schema": 0,
            "flavor": meta.get("flavor", "sklearn"),
            "format": meta.get("format", "joblib"),
            "file": file,
            "sha256": meta["sha256"],
            "size": meta.get("size"),
            "class": meta.get("class", ""),
            "versions": versions,
            "signature": None,
            "input_example": None,
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(
            f"autolog model metadata of {where} is unreadable ({exc!r})"
        ) from None


def _warn_versions(recorded: Mapping[str, str], where: str) -> None:
    current = library_versions()
    for dist in _CHECKED_LIBRARIES:
        then, now = recorded.get(dist), current.get(dist)
        if then and now and then != now:
            warnings.warn(
                f"nbmlops: model {where} was saved with {dist} {then}, but {dist} {now} is "
                "running; predictions may differ or loading may fail",
                UserWarning,
                stacklevel=3,
            )


def load_model(model_uri: str, *, verify: bool = True, client: Client | None = None) -> LoadedModel:
    """Load a logged or registered model.

    Args:
        model_uri: ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
            ``models:/<name>@<alias>`` or ``models:/<name>/latest``.
        verify: check the model file's sha256 against its metadata before deserializing
            (default). Leave it on: deserializing runs code from the file.
        client: the client to use (default: the fluent API's client).

    Raises:
        NotFound: unknown model, version, alias or run, or the model's files are missing.
        ModelIntegrityError: the model file does not match its recorded sha256.

    Warns (UserWarning) when scikit-learn, numpy, scipy or joblib versions differ from the
    ones recorded at logging time.
    """
    client = _client(client)
    parsed = parse_model_uri(model_uri)
    run_id, path, where = _resolve(parsed, client)
    metadata = read_model_metadata(run_id, path, client, described=where)
    file = validate_artifact_path(f"{path}/{metadata['file']}")
    try:
        payload = client.read_artifact(run_id, file)
    except NotFound:
        raise NotFound(
            f"model file {file} of {where} is missing from run {run_id}; refusing to load "
            "(the artifact was deleted)"
        ) from None
    if verify:
        actual = hashlib.sha256(payload).hexdigest()
        if actual != metadata["sha256"]:
            raise ModelIntegrityError(
                f"refusing to load {where}: {file} has sha256 {actual[:16]}..., but "
                f"{metadata['sha256'][:16]}... was recorded when it was logged (the file was "
                "modified or replaced); nothing was deserialized"
            )
    _warn_versions(metadata.get("versions") or {}, where)
    model = _deserialize(str(metadata.get("format")), payload)
    return LoadedModel(model, metadata, uri=model_uri, run_id=run_id, path=path)


# --------------------------------------------------------------------------- LoadedModel


class LoadedModel:
    """A loaded model: ``predict`` (and ``predict_proba`` when the model has it) check the
    input against the signature first.

    Input checks (DataFrame signatures): a missing column is an error naming it; extra
    columns are dropped with a warning; columns are reordered to the signature's order;
    a dtype is cast when that is safe (int -> float, bool -> int, str/object -> number when
    every value converts) and is otherwise an error naming the column, the expected and the
    actual dtype. Arrays given to a DataFrame model get the signature's column names when the
    width matches. ``raw_model`` is the deserialized object itself, with no checks.
    """

    def __init__(
        self,
        model: Any,
        metadata: Mapping[str, Any],
        uri: str = "",
        run_id: str = "",
        path: str = "",
    ) -> None:
        self._model = model
        self._metadata = dict(metadata)
        self.model_uri = uri
        self.run_id = run_id
        self.artifact_path = path

    @property
    def raw_model(self) -> Any:
        """The deserialized model (no input checks)."""
        return self._model

    @property
    def metadata(self) -> dict[str, Any]:
        """The model's metadata (flavor, format, sha256, versions, signature, ...)."""
        return dict(self._metadata)

    @property
    def signature(self) -> dict[str, Any] | None:
        """``{"inputs": ..., "outputs": ...}`` or None when the model has none."""
        sig = self._metadata.get("signature")
        return dict(sig) if sig else None

    def predict(self, data: Any) -> Any:
        """The model's ``predict`` on ``data`` after the signature check."""
        return self._model.predict(self.prepare(data))

    @property
    def predict_proba(self) -> Any:
        """The model's ``predict_proba`` (after the signature check); absent when the model
        has none, so ``hasattr(loaded, "predict_proba")`` tells."""
        method = getattr(self._model, "predict_proba", None)
        if method is None:
            raise AttributeError(f"{type(self._model).__name__} has no predict_proba (use predict)")

        def predict_proba(data: Any) -> Any:
            return method(self.prepare(data))

        predict_proba.__doc__ = LoadedModel.predict_proba.__doc__
        return predict_proba

    def prepare(self, data: Any) -> Any:
        """``data`` checked and cast to the signature's inputs (unchanged without one)."""
        sig = self.signature
        inputs = (sig or {}).get("inputs")
        if not inputs:
            return data
        if inputs.get("type") == "dataframe":
            return _prepare_frame(data, inputs["columns"])
        return _prepare_tensor(data, inputs)

    def __repr__(self) -> str:
        cls = self._metadata.get("class") or type(self._model).__name__
        return f"<LoadedModel {self.model_uri or '?'} {cls} sha256={str(self._metadata.get('sha256', ''))[:12]}>"


def _prepare_frame(data: Any, columns: Sequence[Mapping[str, str]]) -> Any:
    import numpy as np
    import pandas as pd

    names = [str(c["name"]) for c in columns]
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, Mapping):
        frame = pd.DataFrame(dict(data))
    else:
        array = np.asarray(data)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != len(names):
            raise InvalidArgument(
                f"model input has shape {array.shape}, but the model's signature expects "
                f"{len(names)} columns: {', '.join(names)}"
            )
        frame = pd.DataFrame(array, columns=names)
    present = {str(c): c for c in frame.columns}
    missing = [n for n in names if n not in present]
    if missing:
        raise InvalidArgument(
            f"model input is missing column(s) {', '.join(repr(m) for m in missing)} required "
            f"by the model's signature (expected: {', '.join(names)})"
        )
    extra = [str(c) for c in frame.columns if str(c) not in set(names)]
    if extra:
        warnings.warn(
            f"nbmlops: dropping column(s) not in the model's signature: {', '.join(extra)}",
            UserWarning,
            stacklevel=4,
        )
    out = frame[[present[n] for n in names]]
    out.columns = names
    casted = {}
    for column in columns:
        name = str(column["name"])
        series = out[name]
        new = _cast_column(series, name, str(column["dtype"]))
        if new is not series:
            casted[name] = new
    if casted:
        out = out.assign(**casted)
    return out


def _numpy_dtype(text: str) -> Any:
    import numpy as np

    try:
        return np.dtype(text)
    except TypeError:
        return None


def _cast_column(series: Any, name: str, expected: str) -> Any:
    """``series`` cast to ``expected`` when safe; InvalidArgument naming column and dtypes."""
    import numpy as np
    import pandas as pd

    actual = str(series.dtype)
    if expected in ("any", actual):
        return series
    want = _numpy_dtype(expected)
    failure = InvalidArgument(
        f"column {name!r} has dtype {actual}, but the model's signature expects {expected} "
        "and the values cannot be cast safely"
    )
    if want is None:  # pandas extension dtype (category, Int64, string, ...)
        try:
            target = pd.api.types.pandas_dtype(expected)
        except TypeError:
            return series  # an unknown dtype name: nothing to check against
        if isinstance(target, pd.CategoricalDtype) and not pd.api.types.is_numeric_dtype(series):
            return series
        if pd.api.types.is_string_dtype(target) and pd.api.types.is_string_dtype(series):
            return series
        try:
            converted = series.astype(target)
        except (TypeError, ValueError):
            raise failure from None
        if converted.isna().sum() != series.isna().sum():
            raise failure
        return converted
    if want.kind in "biuf":
        have = _numpy_dtype(actual)
        if have is not None and have.kind in "biuf":
            if np.can_cast(have, want, casting="safe"):
                return series.astype(want)
            if _lossless_int(series, have, want):
                return series.astype(want)
            raise failure
        if (have is not None and have.kind == "O") or pd.api.types.is_string_dtype(series):
            try:
                converted = pd.to_numeric(series, errors="raise")
            except (TypeError, ValueError):
                raise failure from None
            got = _numpy_dtype(str(converted.dtype))
            if got is not None and (
                np.can_cast(got, want, casting="safe") or _lossless_int(converted, got, want)
            ):
                return converted.astype(want)
            raise failure
        if isinstance(series.dtype, pd.CategoricalDtype):
            return _cast_column(series.astype(object), name, expected)
        numpy_dtype = getattr(series.dtype, "numpy_dtype", None)  # nullable Int64, Float64...
        if have is None and numpy_dtype is not None and pd.api.types.is_numeric_dtype(series):
            if series.isna().any():
                raise failure
            return _cast_column(series.astype(numpy_dtype), name, expected)
        raise failure
    if want.kind in "OU":  # text / arbitrary objects: anything non-numeric passes
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            raise failure
        return series
    if want.kind == "M":
        try:
            return pd.to_datetime(series, errors="raise")
        except (TypeError, ValueError):
            raise failure from None
    return series


def _lossless_int(series: Any, have: Any, want: Any) -> bool:
    """Whether float values all convert to integer dtype ``want`` exactly (no NaN, no
    fraction, in range): e.g. an int column that went through a float array."""
    import numpy as np

    if have.kind != "f" or want.kind not in "iu":
        return False
    values = series.to_numpy()
    if values.size == 0:
        return True
    if not np.isfinite(values).all() or not bool(np.all(np.mod(values, 1) == 0)):
        return False
    info = np.iinfo(want)
    return bool(values.min() >= info.min and values.max() <= info.max)


def _prepare_tensor(data: Any, inputs: Mapping[str, Any]) -> Any:
    import numpy as np

    array = data.to_numpy() if _is_frame(data) else np.asarray(data)
    shape = list(inputs.get("shape") or [])
    if len(shape) >= 2 and array.ndim == 1 and len(shape) == 2:
        array = array.reshape(1, -1)
    if shape and array.ndim != len(shape):
        raise InvalidArgument(
            f"model input has {array.ndim} dimension(s), the model's signature expects "
            f"{len(shape)} (shape {shape})"
        )
    for axis, size in enumerate(shape):
        if size not in (-1, None) and array.shape[axis] != size:
            raise InvalidArgument(
                f"model input has shape {tuple(array.shape)}, the model's signature expects "
                f"{size} along axis {axis} (shape {shape})"
            )
    expected = _numpy_dtype(str(inputs.get("dtype", "")))
    if expected is None or array.dtype == expected:
        return array
    if np.can_cast(array.dtype, expected, casting="safe"):
        return array.astype(expected)
    if array.dtype.kind in "OU" and expected.kind in "biuf":
        try:
            converted = array.astype(np.float64)
        except (TypeError, ValueError):
            converted = None
        if converted is not None and (
            expected.kind == "f"
            or (not np.isnan(converted).any() and bool(np.all(np.mod(converted, 1) == 0)))
        ):
            return converted.astype(expected)
    raise InvalidArgument(
        f"model input has dtype {array.dtype}, but the model's signature expects {expected} "
        "and the values cannot be cast safely"
    )
