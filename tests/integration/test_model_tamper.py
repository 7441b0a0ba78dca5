"""Tampered, swapped or deleted model files are refused before anything is deserialized.

The store is a real SQLite store with its artifact files on disk; the files are changed
behind nbmlops' back, as an attacker or a damaged disk would. A canary class records every
unpickling, so the tests can assert that a refused file was never deserialized.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import nbmlops
from nbmlops.errors import NotFound
from nbmlops.models import METADATA_FILE, ModelIntegrityError

X = np.array([[0.0], [1.0], [2.0], [3.0]])
Y = np.array([0, 0, 1, 1])
UNPICKLED: list[str] = []


class Canary:
    """A "model" whose unpickling is observable (stands in for a malicious payload)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def predict(self, data: Any) -> Any:
        return np.zeros(len(data))

    def __setstate__(self, state: dict[str, Any]) -> None:
        UNPICKLED.append(state["label"])
        self.__dict__.update(state)


@pytest.fixture(autouse=True)
def _clear_canary() -> None:
    UNPICKLED.clear()


def _file(uri: str, name: str = "estimator.joblib") -> Path:
    """The on-disk file of a model artifact in the SQLite store."""
    run_id, path = uri.split("/", 2)[1:]
    target = nbmlops.get_client().store.artifact_file(run_id, f"{path}/{name}")
    assert target is not None and target.is_file()
    return target


def _register(model: Any, name: str = "churn") -> tuple[str, int]:
    with nbmlops.start_run():
        info = nbmlops.log_model(model)
    return info.model_uri, nbmlops.register_model(info.model_uri, name).version


def test_modified_model_file_is_refused_for_every_uri_form() -> None:
    uri, version = _register(LogisticRegression().fit(X, Y))
    nbmlops.get_client().set_registered_model_alias("churn", "champion", version)
    target = _file(uri)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    target.write_bytes(bytes(data))
    for ref in (uri, f"models:/churn/{version}", "models:/churn@champion", "models:/churn/latest"):
        with pytest.raises(ModelIntegrityError, match="sha256") as info:
            nbmlops.load_model(ref)
        assert "refusing to load" in str(info.value) and "nothing was deserialized" in str(
            info.value
        )


def test_swapped_payload_is_never_unpickled() -> None:
    uri, _ = _register(Canary("original"))
    assert nbmlops.load_model(uri).raw_model.label == "original"
    assert UNPICKLED == ["original"]
    UNPICKLED.clear()
    joblib.dump(Canary("evil"), _file(uri))  # a valid pickle, but not the logged one
    with pytest.raises(ModelIntegrityError):
        nbmlops.load_model(uri)
    assert UNPICKLED == []  # refused before deserializing
    loaded = nbmlops.load_model(uri, verify=False)  # the explicit, documented escape hatch
    assert loaded.raw_model.label == "evil"


def test_deleted_model_file_is_refused_without_falling_back_to_another_version() -> None:
    _, v1 = _register(LogisticRegression().fit(X, Y))
    uri2, v2 = _register(LogisticRegression(C=0.1).fit(X, Y))
    client = nbmlops.get_client()
    client.set_registered_model_alias("churn", "champion", v2)
    _file(uri2).unlink()
    with pytest.raises(NotFound, match=r"models:/churn@champion.*version 2.*missing") as info:
        nbmlops.load_model("models:/churn@champion")
    assert "refusing to load" in str(info.value)
    with pytest.raises(NotFound):
        nbmlops.load_model("models:/churn/latest")  # latest is v2: no fallback to v1
    assert nbmlops.load_model(f"models:/churn/{v1}").predict(X).tolist() == [0, 0, 1, 1]


def test_load_by_alias_after_the_whole_artifact_folder_was_deleted() -> None:
    uri, version = _register(LogisticRegression().fit(X, Y))
    nbmlops.get_client().set_registered_model_alias("churn", "champion", version)
    for name in ("estimator.joblib", METADATA_FILE, "requirements.txt"):
        _file(uri, name).unlink()
    with pytest.raises(NotFound, match=r"no model at models:/churn@champion") as info:
        nbmlops.load_model("models:/churn@champion")
    assert "deleted" in str(info.value)


def test_rewritten_metadata_without_hash_is_refused() -> None:
    uri, _ = _register(LogisticRegression().fit(X, Y))
    meta_file = _file(uri, METADATA_FILE)
    meta = json.loads(meta_file.read_text())
    meta.pop("sha256")
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError, match="lacks 'file' or 'sha256'"):
        nbmlops.load_model(uri)


def test_tampered_model_is_refused_in_a_fresh_process(tmp_path: Path) -> None:
    uri, version = _register(LogisticRegression().fit(X, Y))
    nbmlops.get_client().set_registered_model_alias("churn", "champion", version)
    nbmlops.get_client().flush()
    target = _file(uri)
    target.write_bytes(target.read_bytes() + b"\x00")
    script = textwrap.dedent(
        """
        import nbmlops
        try:
            nbmlops.load_model("models:/churn@champion")
        except nbmlops.ModelIntegrityError as exc:
            print("REFUSED", exc)
        else:
            print("LOADED")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NBMLOPS_TRACKING_URI": nbmlops.get_tracking_uri()},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("REFUSED") and "sha256" in done.stdout
