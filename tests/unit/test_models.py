"""``log_model`` / ``load_model``: the model folder, signatures, URIs and input checks."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LinearRegression, LogisticRegression

import nbmlops
from nbmlops.errors import InvalidArgument, NotFound
from nbmlops.models import (
    INPUT_EXAMPLE_FILE,
    METADATA_FILE,
    MODEL_TAG,
    REQUIREMENTS_FILE,
    LoadedModel,
    infer_signature,
    parse_model_uri,
)

RUN_ID = "0123456789abcdef0123456789abcdef"


def _frame(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    x, y = make_classification(n_samples=n, n_features=4, n_informative=3, n_redundant=0,
                               random_state=seed)  # fmt: skip
    frame = pd.DataFrame(x, columns=["tenure", "charges", "usage", "score"])
    frame["support_calls"] = (np.abs(x[:, 0]) * 3).astype("int64")
    return frame, y


@pytest.fixture
def fitted() -> tuple[LogisticRegression, pd.DataFrame, np.ndarray]:
    frame, y = _frame()
    return LogisticRegression(max_iter=500).fit(frame, y), frame, y


def _logged(model: Any, frame: pd.DataFrame, **kwargs: Any) -> nbmlops.ModelInfo:
    with nbmlops.start_run():
        return nbmlops.log_model(model, input_example=frame, **kwargs)


# --------------------------------------------------------------------------- log_model


def test_log_model_writes_model_folder_with_metadata_example_and_requirements(
    fitted: Any,
) -> None:
    model, frame, _ = fitted
    with nbmlops.start_run() as run:
        info = nbmlops.log_model(model, name="churn_model", input_example=frame)
    run_id = run.info.run_id
    assert info.model_uri == f"runs:/{run_id}/churn_model"
    client = nbmlops.get_client()
    paths = {a.path for a in client.list_artifacts(run_id, "churn_model")}
    assert paths == {
        "churn_model/estimator.joblib",
        f"churn_model/{METADATA_FILE}",
        f"churn_model/{INPUT_EXAMPLE_FILE}",
        f"churn_model/{REQUIREMENTS_FILE}",
    }
    meta = json.loads(client.read_artifact(run_id, f"churn_model/{METADATA_FILE}"))
    payload = client.read_artifact(run_id, "churn_model/estimator.joblib")
    assert meta["flavor"] == "sklearn" and meta["format"] == "joblib"
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest() == info.sha256
    assert meta["class"] == "sklearn.linear_model._logistic.LogisticRegression"
    import sklearn

    assert meta["versions"]["scikit-learn"] == sklearn.__version__
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    columns = meta["signature"]["inputs"]["columns"]
    assert [c["name"] for c in columns] == list(frame.columns)
    assert {c["name"]: c["dtype"] for c in columns}["support_calls"] == "int64"
    assert meta["signature"]["outputs"] == {"type": "tensor", "dtype": "int64", "shape": [-1]}
    example = pd.read_json(
        io.StringIO(client.read_artifact(run_id, f"churn_model/{INPUT_EXAMPLE_FILE}").decode()),
        orient="split",
    )
    assert len(example) == 5
    np.testing.assert_allclose(example.to_numpy(), frame.head(5).to_numpy())
    requirements = client.read_artifact(run_id, f"churn_model/{REQUIREMENTS_FILE}").decode()
    assert f"scikit-learn=={sklearn.__version__}" in requirements.splitlines()
    assert f"numpy=={np.__version__}" in requirements.splitlines()
    assert client.get_run(run_id).data.tags[MODEL_TAG] == "churn_model"


def test_signature_falls_back_to_training_data_fingerprint(fitted: Any) -> None:
    model, frame, _ = fitted
    with nbmlops.start_run():
        nbmlops.log_input(frame, name="train", context="training")
        info = nbmlops.log_model(model)
    columns = info.signature["inputs"]["columns"]  # type: ignore[index]
    assert [c["name"] for c in columns] == list(frame.columns)
    assert columns[-1]["dtype"] == "int64" and columns[0]["dtype"] == "float64"
    assert info.signature["outputs"]["dtype"] == "int64"  # type: ignore[index]


def test_explicit_signature_and_numpy_example(fitted: Any) -> None:
    x, y = make_classification(n_samples=60, n_features=3, n_redundant=0, random_state=1)
    model = LogisticRegression().fit(x, y)
    info = _logged(model, x)  # type: ignore[arg-type]
    assert info.signature["inputs"] == {  # type: ignore[index]
        "type": "tensor",
        "dtype": "float64",
        "shape": [-1, 3],
    }
    frame_model, frame, _ = fitted
    given = infer_signature(frame)
    with nbmlops.start_run():
        explicit = nbmlops.log_model(frame_model, signature=given)
    assert explicit.signature == given


def test_log_model_refuses_objects_without_predict_and_bad_names() -> None:
    with nbmlops.start_run():
        with pytest.raises(InvalidArgument, match="predict"):
            nbmlops.log_model(object())
        with pytest.raises(InvalidArgument, match=r"\.\."):
            nbmlops.log_model(LinearRegression().fit([[1], [2]], [1, 2]), name="../x")
        with pytest.raises(InvalidArgument, match="signature"):
            nbmlops.log_model(LinearRegression().fit([[1], [2]], [1, 2]), signature={"x": 1})


def test_pickle_is_used_when_joblib_is_missing(
    fitted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, frame, _ = fitted
    monkeypatch.setitem(sys.modules, "joblib", None)  # `import joblib` raises ImportError
    info = _logged(model, frame)
    assert info.format == "pickle" and info.metadata["file"] == "estimator.pkl"
    loaded = nbmlops.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


# --------------------------------------------------------------------------- load_model


def test_load_by_every_uri_form_predicts_like_the_original(fitted: Any) -> None:
    model, frame, _ = fitted
    info = _logged(model, frame)
    version = nbmlops.register_model(info.model_uri, "churn")
    nbmlops.get_client().set_registered_model_alias("churn", "champion", version.version)
    for uri in (
        info.model_uri,
        f"models:/churn/{version.version}",
        "models:/churn@champion",
        "models:/churn/latest",
        "models:/churn@latest",
    ):
        loaded = nbmlops.load_model(uri)
        assert isinstance(loaded, LoadedModel)
        np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
        np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))
        assert loaded.metadata["sha256"] == info.sha256
        assert loaded.signature == info.signature
        assert type(loaded.raw_model) is LogisticRegression


def test_predict_proba_only_when_the_model_has_it() -> None:
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    regressor = LinearRegression().fit(x, [1.0, 2.0, 3.0, 4.0])
    loaded = nbmlops.load_model(_logged(regressor, x).model_uri)
    assert not hasattr(loaded, "predict_proba")
    assert loaded.predict(x).tolist() == pytest.approx(regressor.predict(x).tolist())


def test_unknown_uris_and_missing_targets_are_clear_errors(fitted: Any) -> None:
    for bad in ("s3://bucket/model", f"runs:/{RUN_ID}", "models:/", "models:/a/b/c", 42):
        with pytest.raises(InvalidArgument, match="runs:/<run_id>/<path>"):
            parse_model_uri(bad)
    with pytest.raises(InvalidArgument, match="invalid run id 'abc'"):
        parse_model_uri("runs:/abc/model")
    with pytest.raises(InvalidArgument, match="invalid model version"):
        parse_model_uri("models:/churn/v2")
    assert parse_model_uri("models:/churn/LATEST").alias == "latest"
    with pytest.raises(NotFound, match="no registered model 'nope'"):
        nbmlops.load_model("models:/nope@champion")
    model, frame, _ = fitted
    info = _logged(model, frame)
    with pytest.raises(NotFound, match="no model at"):
        nbmlops.load_model(f"runs:/{info.run_id}/other")
    with pytest.raises(NotFound, match=RUN_ID):
        nbmlops.load_model(f"runs:/{RUN_ID}/model")


def test_version_mismatch_warns_naming_package_and_both_versions(fitted: Any) -> None:
    model, frame, _ = fitted
    info = _logged(model, frame)
    client = nbmlops.get_client()
    meta = dict(info.metadata)
    meta["versions"] = {**meta["versions"], "scikit-learn": "0.0.1"}
    client.log_text(info.run_id, json.dumps(meta), f"model/{METADATA_FILE}")
    import sklearn

    with pytest.warns(UserWarning, match="scikit-learn") as record:
        nbmlops.load_model(info.model_uri)
    message = str(record[0].message)
    assert "0.0.1" in message and sklearn.__version__ in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.log_text(info.run_id, json.dumps(dict(info.metadata)), f"model/{METADATA_FILE}")
        nbmlops.load_model(info.model_uri)  # same versions: no warning


# --------------------------------------------------------------------------- input checks


def test_missing_column_is_an_error_naming_it(fitted: Any) -> None:
    model, frame, _ = fitted
    loaded = nbmlops.load_model(_logged(model, frame).model_uri)
    with pytest.raises(InvalidArgument, match=r"'usage'.*'score'"):
        loaded.predict(frame.drop(columns=["usage", "score"]))


def test_extra_columns_are_dropped_with_a_warning_and_order_is_restored(fitted: Any) -> None:
    model, frame, _ = fitted
    loaded = nbmlops.load_model(_logged(model, frame).model_uri)
    shuffled = frame[list(reversed(frame.columns))].assign(customer_id=range(len(frame)))
    with pytest.warns(UserWarning, match="customer_id"):
        predictions = loaded.predict(shuffled)
    np.testing.assert_array_equal(predictions, model.predict(frame))


def test_safe_casts_are_applied(fitted: Any) -> None:
    model, frame, _ = fitted
    loaded = nbmlops.load_model(_logged(model, frame).model_uri)
    as_text = frame.astype({"tenure": str, "usage": object})  # text dtype / object of floats
    as_text["support_calls"] = [str(v) for v in frame["support_calls"]]  # object of digits
    assert as_text["usage"].dtype == object and as_text["support_calls"].dtype != np.int64
    prepared = loaded.prepare(as_text)
    assert prepared["support_calls"].dtype == np.int64 and prepared["tenure"].dtype == np.float64
    np.testing.assert_array_equal(loaded.predict(as_text), model.predict(frame))
    ints = frame.assign(charges=frame["charges"].round().astype("int64"))
    prepared = loaded.prepare(ints)
    assert prepared["charges"].dtype == np.float64  # int -> float
    assert (
        loaded.prepare(frame.assign(support_calls=frame["support_calls"].astype("int32")))[
            "support_calls"
        ].dtype
        == np.int64
    )


def test_unsafe_casts_are_errors_naming_column_and_dtypes(fitted: Any) -> None:
    model, frame, _ = fitted
    loaded = nbmlops.load_model(_logged(model, frame).model_uri)
    with pytest.raises(InvalidArgument, match=r"'tenure' has dtype (object|str).*expects float64"):
        loaded.predict(frame.assign(tenure=["many"] * len(frame)))
    with pytest.raises(InvalidArgument, match=r"'support_calls' has dtype float64.*expects int64"):
        loaded.predict(frame.assign(support_calls=frame["support_calls"] + 0.5))


def test_arrays_get_signature_columns_when_the_width_matches(fitted: Any) -> None:
    model, frame, _ = fitted
    loaded = nbmlops.load_model(_logged(model, frame).model_uri)
    array = frame.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn "X does not have valid feature names"
        predictions = loaded.predict(array)  # float64 array; integral floats -> int64 column
    assert list(predictions) == list(model.predict(frame))
    with pytest.raises(InvalidArgument, match="expects 5 columns"):
        loaded.predict(array[:, :3])


def test_tensor_signature_checks_width_and_dtype() -> None:
    x, y = make_classification(n_samples=50, n_features=3, n_redundant=0, random_state=2)
    model = LogisticRegression().fit(x, y)
    loaded = nbmlops.load_model(_logged(model, x).model_uri)  # type: ignore[arg-type]
    np.testing.assert_array_equal(loaded.predict(x.astype(np.float32)), model.predict(x))
    with pytest.raises(InvalidArgument, match="expects 3 along axis 1"):
        loaded.predict(x[:, :2])
    with pytest.raises(InvalidArgument, match="cannot be cast"):
        loaded.predict(np.array([["a", "b", "c"]]))


def test_records_examples_and_nullable_integers() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "n": [1, 2, 3, 4]})
    model = LinearRegression().fit(frame, [1.0, 2.0, 3.0, 4.0])
    with nbmlops.start_run():
        info = nbmlops.log_model(model, input_example=frame.to_dict(orient="records"))
    columns = info.signature["inputs"]["columns"]  # type: ignore[index]
    assert [(c["name"], c["dtype"]) for c in columns] == [("a", "float64"), ("n", "int64")]
    loaded = nbmlops.load_model(info.model_uri)
    nullable = frame.astype({"n": "Int64"})
    assert loaded.prepare(nullable)["n"].dtype == np.int64
    np.testing.assert_allclose(loaded.predict(nullable), model.predict(frame))
    with pytest.raises(InvalidArgument, match="'n' has dtype Int64"):
        loaded.predict(nullable.assign(n=pd.array([1, None, 3, 4], dtype="Int64")))
