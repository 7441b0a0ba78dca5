"""Input rules of the model registry in nbmlops/validation.py: names, aliases, versions, stages."""

from __future__ import annotations

import numpy as np
import pytest

from nbmlops.entities import STAGES, ModelVersion
from nbmlops.errors import InvalidArgument
from nbmlops.validation import (
    MAX_ALIAS_LENGTH,
    MAX_MODEL_NAME_LENGTH,
    is_latest_alias,
    validate_alias,
    validate_model_name,
    validate_stage,
    validate_version,
)


@pytest.mark.parametrize(
    "name", ["churn", "Churn Model v2", "a.b-c_d", "ü", "x" * MAX_MODEL_NAME_LENGTH]
)
def test_valid_model_names(name: str) -> None:
    """Ordinary names, inner spaces and dots included, come back unchanged."""
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", " a", "a ", "a/b", "a\\b", "a@b", "a:b", "a\nb", "a\x7f", "x" * 251, None, 3, b"m"],
)
def test_invalid_model_names(name: object) -> None:
    """Refused with the rule, which explains the URI characters."""
    with pytest.raises(InvalidArgument, match="model name") as excinfo:
        validate_model_name(name)
    if isinstance(name, str):
        assert "models:/" in str(excinfo.value)


@pytest.mark.parametrize(
    "alias", ["champion", "A-b_9", "v1a", "vv1", "latest2", "1", "x" * MAX_ALIAS_LENGTH, "ümlaut"]
)
def test_valid_aliases(alias: str) -> None:
    """Letters, digits, '_' and '-' (MLflow's rule)."""
    assert validate_alias(alias) == alias


@pytest.mark.parametrize(
    ("alias", "why"),
    [
        ("latest", "reserved"),
        ("Latest", "reserved"),
        ("v1", "read as version"),
        ("V42", "read as version"),
        ("", "letters, digits"),
        ("a b", "letters, digits"),
        ("a.b", "letters, digits"),
        ("a@b", "letters, digits"),
        ("abc\n", "letters, digits"),
        ("x" * (MAX_ALIAS_LENGTH + 1), "letters, digits"),
        (None, "must be a string"),
        (1, "must be a string"),
    ],
)
def test_invalid_aliases(alias: object, why: str) -> None:
    """Every refusal starts with "invalid alias name" and says why."""
    with pytest.raises(InvalidArgument, match=r"^invalid alias name") as excinfo:
        validate_alias(alias)
    assert why in str(excinfo.value)


def test_is_latest_alias() -> None:
    """'latest' in any case; nothing else."""
    assert is_latest_alias("latest") and is_latest_alias("LATEST")
    assert not is_latest_alias("latest2") and not is_latest_alias(None)


@pytest.mark.parametrize(
    ("given", "expected"), [(1, 1), (42, 42), ("3", 3), ("007", 7), (np.int64(5), 5)]
)
def test_valid_versions(given: object, expected: int) -> None:
    """Positive integers, int-like text and numpy integers."""
    assert validate_version(given) == expected
    assert type(validate_version(given)) is int


@pytest.mark.parametrize("bad", [0, -1, "0", "-1", "1.0", 1.0, " 1", "1 ", "", "v1", True, None])
def test_invalid_versions(bad: object) -> None:
    """Everything else is refused, naming the value."""
    with pytest.raises(InvalidArgument, match="invalid model version"):
        validate_version(bad)


def test_version_above_int64_is_refused() -> None:
    """Versions are stored as 64-bit integers."""
    assert validate_version(2**63 - 1) == 2**63 - 1
    with pytest.raises(InvalidArgument):
        validate_version(2**63)


@pytest.mark.parametrize("stage", STAGES)
def test_stages_any_case(stage: str) -> None:
    """Any spelling of a stage gives the canonical one."""
    assert validate_stage(stage.upper()) == stage
    assert validate_stage(stage.lower()) == stage


@pytest.mark.parametrize("bad", ["prod", "", "Production ", None, 1])
def test_invalid_stages(bad: object) -> None:
    """Unknown stages are refused with the list of stages."""
    with pytest.raises(InvalidArgument, match="None, Staging, Production, Archived"):
        validate_stage(bad)


def test_model_version_source_uri() -> None:
    """``source`` is the runs:/ URI of the model artifact."""
    version = ModelVersion("m", 1, "a" * 32, "model", "", {}, 0, "", "None", ())
    assert version.source == f"runs:/{'a' * 32}/model"
