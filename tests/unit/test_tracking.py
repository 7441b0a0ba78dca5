"""The fluent API: MLflow-compatible names and the semantics the issue spells out."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbmlops
from nbmlops import AlreadyExists, InvalidArgument, NotFound, RunStatus


def test_default_store_follows_env_override(_isolated_tracking: Path) -> None:
    """NBMLOPS_TRACKING_URI (set by the fixture) decides where runs go."""
    with nbmlops.start_run():
        nbmlops.log_metric("m", 1)
    assert (_isolated_tracking / "nbmlops.db").is_file()
    assert nbmlops.get_tracking_uri() == f"sqlite:///{_isolated_tracking / 'nbmlops.db'}"


def test_start_run_context_manager_finishes_and_exposes_info_and_data() -> None:
    with nbmlops.start_run(run_name="first", tags={"team": "x"}) as run:
        nbmlops.log_param("alpha", 0.5)
        nbmlops.log_metric("f1", 0.75)
        assert run.info.status is RunStatus.RUNNING
        assert run.data.params == {"alpha": "0.5"}
        assert run.data.metrics == {"f1": 0.75}
        assert run.data.tags["team"] == "x"
    stored = nbmlops.get_run(run.info.run_id)
    assert stored.info.status is RunStatus.FINISHED
    assert stored.info.run_name == "first"
    assert stored.info.end_time is not None and stored.info.end_time >= stored.info.start_time
    assert nbmlops.active_run() is None
    last = nbmlops.last_active_run()
    assert last is not None and last.info.run_id == run.info.run_id


def test_exception_in_with_block_marks_failed_and_keeps_exception() -> None:
    with pytest.raises(ZeroDivisionError), nbmlops.start_run() as run:
        nbmlops.log_metric("before", 1)
        _ = 1 / 0
    stored = nbmlops.get_run(run.run_id)
    assert stored.info.status is RunStatus.FAILED
    assert stored.data.tags["nbmlops.error"].startswith("ZeroDivisionError")
    assert stored.data.metrics == {"before": 1.0}


def test_keyboard_interrupt_marks_killed() -> None:
    with pytest.raises(KeyboardInterrupt), nbmlops.start_run() as run:
        raise KeyboardInterrupt
    assert nbmlops.get_run(run.run_id).info.status is RunStatus.KILLED


def test_second_run_without_nested_is_an_error_naming_the_active_run() -> None:
    with nbmlops.start_run() as outer:
        with pytest.raises(InvalidArgument, match=outer.run_id):
            nbmlops.start_run()
        assert nbmlops.active_run() is outer


def test_nested_runs_of_depth_three() -> None:
    with nbmlops.start_run(run_name="session") as session:  # noqa: SIM117 - asserts between levels
        with nbmlops.start_run(run_name="cell", nested=True) as cell:
            with nbmlops.start_run(run_name="trial", nested=True) as trial:
                assert nbmlops.active_run() is trial
            assert nbmlops.active_run() is cell
    assert nbmlops.get_run(cell.run_id).info.parent_run_id == session.run_id
    assert nbmlops.get_run(trial.run_id).info.parent_run_id == cell.run_id
    frame = nbmlops.search_runs(filter_string=f"parent_run_id = '{session.run_id}'")
    assert list(frame["run_name"]) == ["cell"]


def test_end_run_of_parent_ends_open_children() -> None:
    parent = nbmlops.start_run()
    child = nbmlops.start_run(nested=True)
    nbmlops.end_run()  # ends the child (top of stack)
    assert nbmlops.active_run() is parent
    grandchild = nbmlops.start_run(nested=True)
    from nbmlops.tracking import _end

    _end(parent, RunStatus.FAILED)
    assert nbmlops.active_run() is None
    assert nbmlops.get_run(child.run_id).info.status is RunStatus.FINISHED
    assert nbmlops.get_run(grandchild.run_id).info.status is RunStatus.FAILED


def test_logging_without_active_run_starts_one() -> None:
    nbmlops.log_metric("auto", 3)
    active = nbmlops.active_run()
    assert active is not None
    assert active.data.metrics == {"auto": 3.0}
    nbmlops.end_run()


def test_param_immutability_same_value_noop_different_value_names_both() -> None:
    with nbmlops.start_run() as run:
        nbmlops.log_param("model", "rf")
        nbmlops.log_param("model", "rf")
        with pytest.raises(AlreadyExists) as info:
            nbmlops.log_param("model", "svm")
        message = str(info.value)
        assert "'model'" in message and "'rf'" in message and "'svm'" in message
    assert nbmlops.get_run(run.run_id).data.params == {"model": "rf"}


def test_param_conflict_with_value_stored_by_another_client_is_detected() -> None:
    with nbmlops.start_run() as run:
        nbmlops.log_param("k", "1")
        nbmlops.flush()
        other = nbmlops.Client(nbmlops.get_tracking_uri())
        other.log_param(run.run_id, "k", "1")  # same value: fine
        with pytest.raises(AlreadyExists, match="'k'"):
            other.log_param(run.run_id, "k", "2")
    assert nbmlops.get_run(run.run_id).data.params == {"k": "1"}


def test_special_float_metrics_round_trip_exactly() -> None:
    with nbmlops.start_run() as run:
        nbmlops.log_metric("nan", float("nan"))
        nbmlops.log_metric("pinf", float("inf"))
        nbmlops.log_metric("ninf", float("-inf"))
        nbmlops.log_metric("np", np.float32(0.25))
        nbmlops.log_metric("npint", np.int64(7))
    metrics = nbmlops.get_run(run.run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["pinf"] == math.inf and metrics["ninf"] == -math.inf
    assert metrics["np"] == 0.25 and metrics["npint"] == 7.0
    history = nbmlops.get_client().get_metric_history(run.run_id, "nan")
    assert len(history) == 1 and math.isnan(history[0].value)


@pytest.mark.parametrize("bad", ["0.5", None, [1], {"a": 1}, 1j])
def test_non_numeric_metric_is_refused_and_nothing_written(bad: object) -> None:
    with nbmlops.start_run() as run:
        nbmlops.log_metric("ok", 1)
        with pytest.raises(InvalidArgument, match="'bad'"):
            nbmlops.log_metric("bad", bad)
        with pytest.raises(InvalidArgument):
            nbmlops.log_metrics({"good": 2, "bad": bad})
    assert nbmlops.get_run(run.run_id).data.metrics == {"ok": 1.0}


@pytest.mark.parametrize("key", ["", "a/b", "a\\b", "tab\there", " padded", "..", "x" * 251])
def test_invalid_keys_are_refused_with_the_rule(key: str) -> None:
    with nbmlops.start_run():
        with pytest.raises(InvalidArgument, match="keys are 1-250 characters"):
            nbmlops.log_metric(key, 1)
        with pytest.raises(InvalidArgument, match="keys are"):
            nbmlops.log_param(key, 1)
        with pytest.raises(InvalidArgument, match="keys are"):
            nbmlops.set_tag(key, 1)


def test_large_param_stored_byte_exact_or_refused_with_limit() -> None:
    big = "é" * 30_000  # 60,000 bytes: under the 64 KiB limit
    too_big = "x" * (64 * 1024 + 1)
    with nbmlops.start_run() as run:
        nbmlops.log_param("big", big)
        with pytest.raises(InvalidArgument, match="65536 bytes"):
            nbmlops.log_param("too_big", too_big)
    assert nbmlops.get_run(run.run_id).data.params == {"big": big}


def test_logging_into_finished_or_unknown_run_is_a_clear_error() -> None:
    client = nbmlops.get_client()
    with nbmlops.start_run() as run:
        pass
    with pytest.raises(InvalidArgument, match="ended"):
        client.log_metric(run.run_id, "late", 1)
    with pytest.raises(InvalidArgument, match="ended"):
        client.log_param(run.run_id, "late", 1)
    with pytest.raises(NotFound):
        client.log_metric("0" * 32, "m", 1)
    with pytest.raises(InvalidArgument, match="run id"):
        client.log_metric("not-a-run", "m", 1)
    # Tags remain settable on ended runs (annotations such as review notes).
    client.set_tag(run.run_id, "reviewed", "yes")
    assert nbmlops.get_run(run.run_id).data.tags["reviewed"] == "yes"


def test_resuming_a_running_run_and_refusing_an_ended_one() -> None:
    run = nbmlops.start_run()
    nbmlops.log_metric("a", 1)
    nbmlops.end_run()
    with pytest.raises(InvalidArgument, match="does not reopen"):
        nbmlops.start_run(run_id=run.run_id)
    other = nbmlops.get_client().create_run(nbmlops.set_experiment("resume").experiment_id)
    with nbmlops.start_run(run_id=other.info.run_id) as resumed:
        nbmlops.log_metric("b", 2)
    assert resumed.run_id == other.info.run_id
    assert nbmlops.get_run(other.info.run_id).data.metrics == {"b": 2.0}


def test_set_experiment_creates_once_and_scopes_search() -> None:
    first = nbmlops.set_experiment("churn")
    again = nbmlops.set_experiment("churn")
    assert first.experiment_id == again.experiment_id
    with nbmlops.start_run(run_name="in-churn"):
        nbmlops.log_metric("f1", 0.9)
    nbmlops.set_experiment("other")
    with nbmlops.start_run(run_name="in-other"):
        nbmlops.log_metric("f1", 0.1)
    assert list(nbmlops.search_runs()["run_name"]) == ["in-other"]
    assert list(nbmlops.search_runs(experiment_names=["churn"])["run_name"]) == ["in-churn"]
    assert set(nbmlops.search_runs(search_all_experiments=True)["run_name"]) == {
        "in-churn",
        "in-other",
    }
    assert nbmlops.get_experiment_by_name("missing") is None


def test_search_runs_dataframe_shape_filter_and_order() -> None:
    nbmlops.set_experiment("search")
    for name, model, f1 in [("a", "rf", 0.7), ("b", "svm", 0.9), ("c", "rf", 0.85)]:
        with nbmlops.start_run(run_name=name):
            nbmlops.log_params({"model": model})
            nbmlops.log_metric("f1", f1)
            nbmlops.set_tag("stage", "dev" if name != "c" else "x")
    frame = nbmlops.search_runs(
        filter_string="metrics.f1 > 0.8 and params.model = 'rf' and tags.stage != 'dev'"
    )
    assert list(frame["run_name"]) == ["c"]
    ordered = nbmlops.search_runs(order_by=["metrics.f1 DESC"])
    assert list(ordered["run_name"]) == ["b", "c", "a"]
    assert isinstance(ordered, pd.DataFrame)
    for column in ("run_id", "experiment_id", "status", "start_time", "end_time", "parent_run_id"):
        assert column in ordered.columns
    assert {"params.model", "metrics.f1", "tags.stage"} <= set(ordered.columns)
    assert str(ordered["metrics.f1"].dtype) == "float64"
    assert str(ordered["start_time"].dtype).startswith("datetime64")
    as_list = nbmlops.search_runs(output_format="list", max_results=2, order_by=["metrics.f1"])
    assert [r.info.run_name for r in as_list] == ["a", "c"]
    with pytest.raises(InvalidArgument, match="filter"):
        nbmlops.search_runs(filter_string="metrics.f1 >")


def test_search_runs_pages_through_more_than_one_page() -> None:
    client = nbmlops.get_client()
    experiment = nbmlops.set_experiment("many")
    for i in range(25):
        run = client.create_run(
            experiment.experiment_id, run_name=f"r{i:02d}", start_time=1_000 + i
        )
        client.set_terminated(run.info.run_id)
    page = client.search_runs([experiment.experiment_id], max_results=10)
    names = [r.info.run_name for r in page]
    while page.token:
        page = client.search_runs([experiment.experiment_id], max_results=10, page_token=page.token)
        names.extend(r.info.run_name for r in page)
    assert names == [f"r{i:02d}" for i in reversed(range(25))]


def test_artifacts_text_dict_file_folder_and_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    (local / "a.csv").write_text("x,y\n1,2\n")
    (local / "sub" / "b.txt").write_text("b")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with nbmlops.start_run() as run:
        nbmlops.log_text("hello", "notes/hello.txt")
        nbmlops.log_dict({"a": 1}, "config.json")
        nbmlops.log_dict({"a": 1}, "config.yaml")
        nbmlops.log_artifact(local / "a.csv", "data")
        nbmlops.log_artifacts(local, "copy")
        nbmlops.log_figure(fig, "plots/line.png")
    plt.close(fig)
    client = nbmlops.get_client()
    paths = [a.path for a in client.list_artifacts(run.run_id)]
    assert paths == [
        "config.json",
        "config.yaml",
        "copy/a.csv",
        "copy/sub/b.txt",
        "data/a.csv",
        "notes/hello.txt",
        "plots/line.png",
    ]
    assert client.read_artifact(run.run_id, "notes/hello.txt") == b"hello"
    assert client.read_artifact(run.run_id, "plots/line.png").startswith(b"\x89PNG")
    png = next(a for a in client.list_artifacts(run.run_id, "plots"))
    assert png.media_type == "image/png" and png.size > 100 and len(png.sha256) == 64
    out = client.download_artifacts(run.run_id, "copy", tmp_path / "dl")
    assert (out / "sub" / "b.txt").read_text() == "b"
    with pytest.raises(InvalidArgument, match=r"\.\."):
        client.log_text(run.run_id, "x", "../escape.txt")
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(InvalidArgument, match="not a file"):
        nbmlops.log_artifact(tmp_path / "missing.bin")


def test_log_input_fingerprints_dataframes_and_arrays() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    with nbmlops.start_run() as run:
        nbmlops.log_input(frame, name="train", context="training")
        nbmlops.log_input(frame, name="train", context="training")  # deduplicated
        nbmlops.log_input(np.arange(6).reshape(2, 3), name="arr", context="evaluation")
    inputs = nbmlops.get_run(run.run_id).inputs
    assert [(i.name, i.context) for i in inputs] == [("train", "training"), ("arr", "evaluation")]
    assert inputs[0].shape == (3, 2) and inputs[0].schema["a"] == "int64"
    assert inputs[1].shape == (2, 3)
    changed = frame.copy()
    changed.loc[0, "a"] = 99
    from nbmlops.data import fingerprint

    assert fingerprint(changed).digest != inputs[0].digest
    assert fingerprint(frame.copy()).digest == inputs[0].digest
    with pytest.raises(InvalidArgument, match="context"):
        fingerprint(frame, context="bogus")
    with pytest.raises(InvalidArgument, match="DataFrame"):
        fingerprint(object())


def test_active_run_stack_is_per_thread() -> None:
    seen: dict[str, object] = {}

    def worker() -> None:
        seen["active"] = nbmlops.active_run()
        with nbmlops.start_run(run_name="thread-run") as run:
            seen["run"] = run.run_id

    with nbmlops.start_run(run_name="main-run") as main:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert nbmlops.active_run() is main
    assert seen["active"] is None
    assert nbmlops.get_run(str(seen["run"])).info.parent_run_id is None


def test_set_tracking_uri_accepts_folder_and_memory(tmp_path: Path) -> None:
    nbmlops.set_tracking_uri(tmp_path / "elsewhere")
    with nbmlops.start_run():
        nbmlops.log_metric("m", 1)
    assert (tmp_path / "elsewhere" / "nbmlops.db").is_file()
    nbmlops.set_tracking_uri("memory:")
    with nbmlops.start_run() as run:
        nbmlops.log_metric("m", 2)
    assert nbmlops.get_run(run.run_id).data.metrics == {"m": 2.0}
    with pytest.raises(InvalidArgument, match="unknown tracking URI"):
        nbmlops.set_tracking_uri("ftp://nowhere")
    with nbmlops.start_run(), pytest.raises(InvalidArgument, match="while a run is active"):
        nbmlops.set_tracking_uri(tmp_path / "third")
    nbmlops.end_run()


def test_delete_and_restore_run_hide_it_from_search() -> None:
    client = nbmlops.get_client()
    with nbmlops.start_run(run_name="gone") as run:
        pass
    client.delete_run(run.run_id)
    assert nbmlops.search_runs().empty
    client.restore_run(run.run_id)
    assert list(nbmlops.search_runs()["run_name"]) == ["gone"]
