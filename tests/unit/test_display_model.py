"""The panels' pure model: run tree, pages, key columns, comparison, best markers, diffs."""

from __future__ import annotations

import json
import math

import pytest

import nbmlops
from nbmlops.display import model as m
from nbmlops.entities import (
    DatasetInput,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunSource,
    RunStatus,
    to_dict,
)
from nbmlops.errors import InvalidArgument, NotFound


def _row(run_id: str, parent: str | None = None, start: int = 0, **kw: object) -> m.RunRow:
    return m.RunRow(
        run_id=run_id,
        name=kw.get("name", run_id),  # type: ignore[arg-type]
        status="FINISHED",
        start_time=start,
        end_time=start + 10,
        parent_run_id=parent,
        experiment_id="1",
        run_type="",
        cell=None,
        params=kw.get("params", {}),  # type: ignore[arg-type]
        metrics=kw.get("metrics", {}),  # type: ignore[arg-type]
    )


def _run(
    run_id: str,
    params: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    code: str = "",
    inputs: tuple[DatasetInput, ...] = (),
) -> Run:
    info = RunInfo(
        run_id=run_id.ljust(32, "0"),
        experiment_id="1",
        run_name=f"run-{run_id}",
        status=RunStatus.FINISHED,
        start_time=1000,
        end_time=2000,
        parent_run_id=None,
        user="me",
        source=RunSource(code=code),
    )
    return Run(info, RunData(params or {}, metrics or {}, tags or {}), inputs)


# --------------------------------------------------------------------------- tree and pages


def test_tree_rows_nest_children_in_execution_order_under_store_ordered_roots() -> None:
    rows = [  # the store's default order: newest first
        _row("s2", start=50),
        _row("c2b", "s2", start=70),
        _row("c2a", "s2", start=60),
        _row("s1", start=0),
        _row("t1", "c1", start=20),
        _row("c1", "s1", start=10),
        _row("orphan", "gone", start=5),
    ]
    tree = m.tree_rows(rows)
    assert [(t.row.run_id, t.depth) for t in tree] == [
        ("s2", 0),
        ("c2a", 1),
        ("c2b", 1),
        ("s1", 0),
        ("c1", 1),
        ("t1", 2),
        ("orphan", 0),
    ]
    assert [t.has_children for t in tree] == [True, False, False, True, True, False, False]
    assert tree[-1].missing_parent == "gone"  # a child whose parent was filtered out
    # with a chosen sort, children keep the store's order too
    by_store = m.tree_rows(rows, children_by_time=False)
    assert [t.row.run_id for t in by_store][:3] == ["s2", "c2b", "c2a"]


def test_runs_table_pages_and_collapse() -> None:
    rows = [_row(f"s{i}", start=1000 - i) for i in range(3)]
    rows += [_row(f"c{i}", "s0", start=2000 + i) for i in range(60)]
    table = m.RunsTable(rows, page_size=25)
    assert len(table.visible()) == 63 and table.page_count == 3
    assert [t.row.run_id for t in table.page(0)][:3] == ["s0", "c0", "c1"]
    assert len(table.page(2)) == 13 and table.page(99) == table.page(2)  # clamped
    assert table.page_label(1) == "rows 26–50 of 63 · page 2 / 3"
    table.toggle("s0")
    assert [t.row.run_id for t in table.visible()] == ["s0", "s1", "s2"]
    assert table.page_count == 1 and "(60 collapsed)" in table.page_label(0)
    table.toggle("s0")
    assert len(table.visible()) == 63
    table.collapse_all()
    assert len(table.visible()) == 3
    table.expand_all()
    assert len(table.visible()) == 63
    with pytest.raises(InvalidArgument):
        m.RunsTable(rows, page_size=0)


def test_choose_columns_prefers_varying_params_and_common_metrics() -> None:
    rows = [
        _row("a", params={"seed": "0", "depth": "3", "rare": "x"}, metrics={"f1": 1, "loss": 2}),
        _row("b", params={"seed": "0", "depth": "5"}, metrics={"f1": 1, "nbmlops.internal": 1}),
        _row("c", params={"seed": "0", "depth": "7"}, metrics={"f1": 1}),
    ]
    params, metrics = m.choose_columns(rows, n_params=2, n_metrics=5)
    assert params == ["depth", "seed"]  # depth varies; seed is constant; rare is seen once
    assert metrics == ["f1", "loss"]  # nbmlops' own metrics are left out


def test_field_ref_quotes_keys_the_search_language_cannot_read_plain() -> None:
    assert m.field_ref("metrics", "f1") == "metrics.f1"
    assert m.field_ref("params", "val loss") == "params.`val loss`"
    assert m.field_ref("params", "a`b c") == 'params."a`b c"'


# --------------------------------------------------------------------------- comparison


def test_comparison_puts_differing_params_first_and_marks_best_per_direction() -> None:
    runs = [
        _run("a", {"model": "rf", "depth": "3", "seed": "0"}, {"f1": 0.7, "loss": 0.3}),
        _run("b", {"model": "rf", "depth": "5", "seed": "0"}, {"f1": 0.8, "loss": 0.4}),
        _run("c", {"model": "rf", "seed": "0", "extra": "1"}, {"f1": 0.8, "loss": 0.5}),
    ]
    c = m.build_comparison(runs)
    assert [p.key for p in c.params] == ["depth", "extra", "model", "seed"]
    assert [p.key for p in c.params_differ] == ["depth", "extra"]
    assert c.params[0].values == ("3", "5", None)  # missing shows as None
    assert [p.key for p in c.params_same] == ["model", "seed"]
    f1, loss = c.metrics
    assert (f1.key, f1.direction, f1.best) == ("f1", "max", (1, 2))  # a tie: both best
    assert (loss.key, loss.direction, loss.best) == ("loss", "min", (0,))
    flipped = c.with_directions({"loss": "max"})
    assert flipped.metrics[1].best == (2,) and flipped.metrics[0].best == (1, 2)
    json.dumps(to_dict(c))  # JSON-ready for the REST API


def test_best_ignores_nan_and_missing_values() -> None:
    row = m.metric_row("f1", [float("nan"), None, 0.5, 0.4], "max")
    assert row.best == (2,)
    assert m.metric_row("f1", [float("nan"), None], "max").best == ()
    assert math.isnan(row.values[0])


def test_direction_is_inferred_from_the_metric_name_and_validated() -> None:
    assert [m.infer_direction(k) for k in ("f1", "accuracy", "roc_auc", "r2_score")] == ["max"] * 4
    assert [m.infer_direction(k) for k in ("loss", "val_loss", "rmse", "mean_absolute_error")] == [
        "min"
    ] * 4
    runs = [_run("a", metrics={"x": 1}), _run("b", metrics={"x": 2})]
    assert m.build_comparison(runs, default_direction="min").metrics[0].best == (0,)
    with pytest.raises(InvalidArgument, match="'max' or 'min'"):
        m.build_comparison(runs, directions={"x": "sideways"})  # type: ignore[dict-item]


def test_comparison_takes_2_to_20_distinct_runs() -> None:
    with pytest.raises(InvalidArgument, match="2 to 20"):
        m.build_comparison([_run("a")])
    with pytest.raises(InvalidArgument, match="2 to 20"):
        m.build_comparison([_run(f"{i:02x}") for i in range(21)])
    with pytest.raises(InvalidArgument, match="twice"):
        m.build_comparison([_run("a"), _run("a")])
    assert len(m.build_comparison([_run(f"{i:02x}") for i in range(20)]).runs) == 20


def test_code_diff_inputs_environment_and_tags() -> None:
    x8 = DatasetInput("X", "d1" * 32, "training", (10, 8))
    x9 = DatasetInput("X", "d2" * 32, "training", (10, 9))
    y = DatasetInput("y", "e" * 64, "training", (10,))
    runs = [
        _run(
            "a", tags={"team": "a", "nbmlops.cell_id": "1"}, code="x = 1\ny = 2\n", inputs=(x8, y)
        ),
        _run(
            "b", tags={"team": "b", "nbmlops.cell_id": "2"}, code="x = 1\ny = 3\n", inputs=(x9, y)
        ),
        _run("c", tags={"team": "a"}, code="", inputs=(y,)),
    ]
    env = {"python": "3.11", "packages": {"numpy": "2.0", "scikit-learn": "1.9"}}
    env2 = {"python": "3.11", "packages": {"numpy": "2.0", "scikit-learn": "1.8"}}
    c = m.build_comparison(runs, environments=[env, env2, None])
    diff = c.code_diff(0, 1)
    assert not diff.identical and "-y = 2" in diff.lines and "+y = 3" in diff.lines
    assert c.code_diff(0, 0).identical
    assert c.code_diff(0, 2).missing  # run c has no recorded code
    with pytest.raises(InvalidArgument):
        c.code_diff(0, 9)
    x_row, y_row = c.inputs  # differing datasets first
    assert (x_row.name, x_row.digest_differs, x_row.shape_differs) == ("X", True, True)
    assert x_row.shapes == ((10, 8), (10, 9), None)
    assert not y_row.differs
    assert [(e.key, e.values) for e in c.environment] == [
        ("package scikit-learn", ("1.9", "1.8", None))
    ]
    assert c.environment_same == 2 and c.environment_missing == (2,)
    assert [t.key for t in c.tags_differ] == ["team"]  # nbmlops.* tags are not compared


# --------------------------------------------------------------------------- store access


def test_resolve_and_select_runs_against_a_store() -> None:
    client = nbmlops.get_client()
    exp = client.create_experiment("sel")
    parent = client.create_run(exp, run_name="session", tags={"nbmlops.run_type": "session"})
    ids = []
    for i in range(4):
        run = client.create_run(
            exp, run_name=f"r{i}", parent_run_id=parent.info.run_id, start_time=1000 + i
        )
        client.log_metric(run.info.run_id, "loss", 1.0 - 0.1 * i)
        client.log_metric(run.info.run_id, "f1", 0.5 + 0.1 * (i % 3))
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    assert m.resolve_run(client, ids[1]).info.run_id == ids[1]
    assert m.resolve_run(client, ids[1][:10]).info.run_id == ids[1]  # a unique prefix
    assert m.resolve_run(client, "r2").info.run_id == ids[2]  # a name
    quoted = client.create_run(client.create_experiment("q"), run_name='it\'s "quoted"')
    assert m.resolve_run(client, 'it\'s "quoted"').info.run_id == quoted.info.run_id
    client.set_terminated(quoted.info.run_id)
    with pytest.raises(NotFound):
        m.resolve_run(client, "no-such-run")
    last = m.select_runs(client, [exp], last=2)
    assert [r.info.run_id for r in last] == ids[2:]  # oldest of the two first; no session
    best = m.select_runs(client, [exp], best=2, metric="loss")  # inferred: lower is better
    assert [r.info.run_id for r in best] == [ids[3], ids[2]]
    best_f1 = m.select_runs(client, [exp], best=1, metric="f1")
    assert best_f1[0].info.run_id == ids[2]
    with pytest.raises(InvalidArgument, match="metric"):
        m.select_runs(client, [exp], best=2)
    with pytest.raises(InvalidArgument, match="at most 20"):
        m.select_runs(client, [exp], last=21)
    rows, truncated = m.load_run_rows(client, [exp], max_runs=3)
    assert len(rows) == 3 and truncated
    rows, truncated = m.load_run_rows(client, [exp], "metrics.f1 > 0.55")
    assert {r.name for r in rows} == {"r1", "r2"} and not truncated


def test_load_comparison_reads_environment_and_histories() -> None:
    client = nbmlops.get_client()
    exp = client.create_experiment("hist")
    runs = []
    for i in range(2):
        run = client.create_run(exp, run_name=f"r{i}")
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric("loss", 1.0 / (s + 1 + i), 0, s) for s in range(4)])
        client.log_text(rid, json.dumps({"python": f"3.1{i}"}), m.ENVIRONMENT_ARTIFACT)
        client.set_terminated(rid)
        runs.append(client.get_run(rid))
    c = m.load_comparison(client, runs)
    assert c.histories["loss"][0] == ((0, 1, 2, 3), (1.0, 0.5, 1 / 3, 0.25))
    assert [(e.key, e.values) for e in c.environment] == [("python", ("3.10", "3.11"))]
    assert m.load_comparison(client, runs, max_charts=0).histories == {}
