"""How the MLflow store spells nbmlops data in MLflow's fields (no server needed)."""

from __future__ import annotations

import math

import pytest

from nbmlops.entities import DatasetInput, Heartbeat, RunSource
from nbmlops.errors import InvalidArgument
from nbmlops.store import _mlflow_codec as codec
from nbmlops.store.mlflow_store import _pack_batches, _pushdown, _split_uri
from nbmlops.store.search import parse_filter


@pytest.mark.parametrize("size", [0, 10, 5999, 6000, 6001, 20_000, 64 * 1024])
def test_long_values_round_trip_exactly(size: int) -> None:
    """Values past the MLflow limit go to part tags; the visible field stays within it."""
    value = ("é" + "x" * 9)[: size % 10] + "v" * (size - size % 10)
    visible, parts = codec.encode_value("p", "key", value, codec.PARAM_VALUE_LIMIT)
    assert len(visible) <= codec.PARAM_VALUE_LIMIT
    assert all(len(p) <= codec.TAG_VALUE_LIMIT for p in parts.values())
    assert bool(parts) == (size > codec.PARAM_VALUE_LIMIT)
    assert codec.decode_value("p", "key", visible, parts) == value
    if parts:
        assert visible.startswith(value[:100])  # MLflow's UI shows the beginning


def test_stale_or_foreign_markers_are_read_as_they_are() -> None:
    """A marker whose parts are missing or changed reads as its visible text."""
    visible, parts = codec.encode_value("t", "k", "y" * 9000, codec.TAG_VALUE_LIMIT)
    assert codec.decode_value("t", "k", visible, {}) == visible
    broken = {**parts, next(iter(parts)): "z"}
    assert codec.decode_value("t", "k", visible, broken) == visible
    assert codec.decode_value("t", "other", visible, parts) == visible
    # A short value that merely looks like a marker is encoded as a long one: exact again.
    tricky = "abc …[nbmlops: 3 chars in 1 parts 0123456789abcdef]"
    shown, extra = codec.encode_value("t", "k", tricky, codec.TAG_VALUE_LIMIT)
    assert extra and codec.decode_value("t", "k", shown, extra) == tricky


def test_mlflow_key_rule_and_metric_limits() -> None:
    """Keys MLflow refuses and ±(largest double) are clear errors; inf maps back."""
    for good in ["loss", "val loss", "a.b-c_d:e", "f1_score_X_test", "ünïcode"]:
        assert codec.check_mlflow_key(good, "metric") == good
    for bad in ["f1@k", "a(b)", "it's", "50%"]:
        with pytest.raises(InvalidArgument, match="MLflow backend stores keys"):
            codec.check_mlflow_key(bad, "param")
    with pytest.raises(InvalidArgument, match="cannot be told apart from infinity"):
        codec.check_metric_value("m", -codec.FLOAT_MAX)
    assert codec.check_metric_value("m", math.inf) == math.inf
    assert codec.metric_from_mlflow(codec.FLOAT_MAX) == math.inf
    assert codec.metric_from_mlflow(-codec.FLOAT_MAX) == -math.inf
    assert math.isnan(codec.metric_from_mlflow(math.nan))


def test_run_fields_round_trip() -> None:
    """Heartbeat, source and inputs survive their tag spelling."""
    beat = Heartbeat(12, "host", "99", 1_700_000_000_000)
    assert codec.heartbeat_from_tag(codec.heartbeat_to_tag(beat)) == beat
    assert codec.heartbeat_from_tag("garbage") is None
    source = RunSource("nb.ipynb", "cell-1", 4, "ab" * 32, "x = 1\n" * 3)
    assert codec.source_from_json(codec.source_to_json(source)) == source
    assert codec.source_from_json(None) == RunSource()
    item = DatasetInput("train", "d" * 64, "training", (10, 2), {"a": "int64"}, "a.csv")
    assert codec.inputs_from_json(codec.inputs_to_json([item])) == [item]
    tags = {
        "stage": "dev",
        codec.HEARTBEAT_TAG: "[]",
        codec.MLFLOW_RUN_NAME: "r",
        codec.MLFLOW_SOURCE_NAME: "nb.ipynb",
    }
    assert codec.visible_run_tags(tags, written_by_nbmlops=True) == {"stage": "dev"}
    assert codec.visible_run_tags(tags, written_by_nbmlops=False) == {
        "stage": "dev",
        codec.MLFLOW_SOURCE_NAME: "nb.ipynb",
    }


def test_uri_options() -> None:
    """prefix and artifact_root are taken out of the URI; bad ones are refused."""
    assert _split_uri("mlflow+http://127.0.0.1:5000?prefix=team-a.") == (
        "http://127.0.0.1:5000",
        "team-a.",
        None,
    )
    tracking, prefix, root = _split_uri("mlflow+sqlite:////tmp/x/mlflow.db")
    assert (tracking, prefix, root) == ("sqlite:////tmp/x/mlflow.db", "", "/tmp/x/mlartifacts")
    assert _split_uri("mlflow+postgresql+psycopg2://u@h/db?artifact_root=/a")[2] == "/a"
    with pytest.raises(InvalidArgument, match="prefix"):
        _split_uri("mlflow+http://h:1?prefix=a b")
    with pytest.raises(InvalidArgument, match="expected mlflow\\+http"):
        _split_uri("mlflow+ftp://h")
    with pytest.raises(InvalidArgument, match="artifact_root applies to SQL backends"):
        _split_uri("mlflow+http://h:1?artifact_root=/x")


def test_pushdown_keeps_only_exact_conjuncts() -> None:
    """Only AND-ed equalities MLflow evaluates like nbmlops reach the server."""
    tree = parse_filter(
        "parent_run_id = 'abc' and params.model = 'rf' and metrics.f1 > 0.5 "
        "and tags.`team name` = 'core' and params.n = 3"
    )
    assert _pushdown(tree) == (
        "tags.`mlflow.parentRunId` = 'abc' AND params.`model` = 'rf' AND tags.`team name` = 'core'"
    )
    assert _pushdown(parse_filter("params.a = 'x' or params.b = 'y'")) == ""
    assert _pushdown(parse_filter("params.`f1@k` = 'x'")) == ""
    assert _pushdown(None) == ""


def test_batches_respect_mlflow_limits() -> None:
    """Part tags first; then at most 1000 metrics, 100 params and 100 tags per request."""
    from types import SimpleNamespace as NS

    metrics = [NS(key=f"m{i}") for i in range(2500)]
    params = [NS(key=f"p{i}", value="v") for i in range(150)]
    tags = [NS(key=f"part{i}", value="x" * 8000) for i in range(3)]
    tags += [NS(key=f"t{i}", value="v") for i in range(120)]
    batches = list(_pack_batches(metrics, params, tags, first_tags=3))
    assert [len(t) for _, _, t in batches[:1]] == [3] and batches[0][:2] == ([], [])
    for batch_metrics, batch_params, batch_tags in batches:
        assert len(batch_metrics) <= 1000 and len(batch_params) <= 100 and len(batch_tags) <= 100
        assert len(batch_metrics) + len(batch_params) + len(batch_tags) <= 1000
    assert sum(len(b[0]) for b in batches) == 2500
    assert sum(len(b[1]) for b in batches) == 150
    assert sum(len(b[2]) for b in batches) == 123
    assert list(_pack_batches([], [], [], 0)) == []
