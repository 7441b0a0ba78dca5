"""Optuna tuning: trial -> run mapping, nesting, pruned/failed trials, stop, interrupt, resume,
the panel and the magics (all in-process; worker processes are in tests/integration)."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from IPython.core.error import UsageError

import nbmlops
from nbmlops import RunStatus, tuning
from nbmlops.display import tuning_panel
from nbmlops.errors import InvalidArgument


@pytest.fixture(autouse=True)
def _fresh_tuning_state() -> Any:
    """Studies kept by name in this process and the last objective are per test."""
    tuning._memory_studies.clear()
    tuning._last_tuning.clear()
    yield
    tuning._memory_studies.clear()
    tuning._last_tuning.clear()


def _runs(filter_string: str = "") -> list[nbmlops.Run]:
    client = nbmlops.get_client()
    return list(client.search_runs(None, filter_string, max_results=1000))


def _children(parent_run_id: str) -> list[nbmlops.Run]:
    runs = _runs(f"parent_run_id = '{parent_run_id}'")
    return sorted(runs, key=lambda r: int(r.data.tags["nbmlops.trial.number"]))


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -4.0, 4.0)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    nbmlops.log_metric("seen_x", x)  # an explicit log call inside the objective
    return -((x - 1.0) ** 2) + (0.5 if kind == "a" else 0.0)


# --------------------------------------------------------------------------- trial -> run


def test_each_trial_is_a_child_run_with_its_params_and_value() -> None:
    with nbmlops.start_run(run_name="outer") as outer:
        result = nbmlops.tune(
            quadratic, n_trials=6, sampler="random", seed=3, metric="score", show=False
        )
        assert nbmlops.active_run() is outer  # the thread's stack is as it was
    parent = nbmlops.get_run(result.parent_run_id)
    assert parent.info.parent_run_id == outer.run_id
    assert parent.info.status is RunStatus.FINISHED
    assert parent.data.tags["nbmlops.run_type"] == "tuning"
    children = _children(result.parent_run_id)
    assert len(children) == 6 == len(result.study.trials)
    for run, trial in zip(children, result.study.trials, strict=True):
        assert run.info.run_name == f"trial-{trial.number}"
        assert run.info.status is RunStatus.FINISHED
        assert run.data.tags["nbmlops.run_type"] == "trial"
        assert run.data.tags["nbmlops.trial.state"] == "COMPLETE"
        assert run.data.params == {k: str(v) for k, v in trial.params.items()}
        assert run.data.metrics["score"] == trial.value
        assert run.data.metrics["seen_x"] == trial.params["x"]
        assert trial.user_attrs["nbmlops_run_id"] == run.info.run_id
    best = max(result.study.trials, key=lambda t: t.value)
    assert result.best_params == best.params and result.best_value == best.value
    assert result.best_run_id == best.user_attrs["nbmlops_run_id"]
    assert parent.data.metrics["best_value"] == best.value == parent.data.metrics["best_score"]
    assert parent.data.params["best_x"] == str(best.params["x"])
    assert parent.data.params["sampler"] == "RandomSampler"
    assert parent.data.params["sampler_seed"] == "3"
    assert parent.data.metrics["n_trials_complete"] == 6
    assert parent.data.tags["nbmlops.tuning.best_run_id"] == result.best_run_id
    frame = result.trials_dataframe()
    assert list(frame["run_id"]) == [r.info.run_id for r in children]
    assert set(result.runs()["run_id"]) == {r.info.run_id for r in children}
    assert "tuning/trials.csv" in {
        a.path for a in nbmlops.get_client().list_artifacts(result.parent_run_id)
    }


def test_pruned_failed_and_invalid_trials_map_to_run_statuses() -> None:
    def objective(trial: optuna.Trial) -> Any:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 2:
            raise ValueError("boom")
        if trial.number == 4:
            return "not a number"
        for step in range(3):
            trial.report(x + step, step)
        if trial.number in (1, 3):
            raise optuna.TrialPruned()
        return x

    result = nbmlops.tune(objective, n_trials=6, sampler="random", seed=0, show=False)
    runs = {int(r.data.tags["nbmlops.trial.number"]): r for r in _children(result.parent_run_id)}
    assert len(runs) == 6
    for number in (0, 5):
        assert runs[number].info.status is RunStatus.FINISHED
        assert runs[number].data.tags["nbmlops.trial.state"] == "COMPLETE"
    for number in (1, 3):
        pruned = runs[number]
        assert pruned.info.status is RunStatus.KILLED
        assert pruned.data.tags["nbmlops.trial.state"] == "PRUNED"
        assert "f1" not in pruned.data.metrics  # no final value, only the reports
        history = nbmlops.get_client().get_metric_history(pruned.info.run_id, "f1_intermediate")
        assert [m.step for m in history] == [0, 1, 2]
    failed = runs[2]
    assert failed.info.status is RunStatus.FAILED
    assert failed.data.tags["nbmlops.trial.state"] == "FAIL"
    assert failed.data.tags["nbmlops.error"] == "ValueError: boom"
    assert "x" in failed.data.params  # what it tried is kept
    invalid = runs[4]
    assert invalid.info.status is RunStatus.FAILED
    assert "'not a number'" in invalid.data.tags["nbmlops.error"]
    parent = nbmlops.get_run(result.parent_run_id)
    assert parent.data.metrics["n_trials_complete"] == 2
    assert parent.data.metrics["n_trials_pruned"] == 2
    assert parent.data.metrics["n_trials_failed"] == 2
    assert result.state == "completed"


def test_param_names_that_are_not_valid_keys_are_logged_under_safe_keys() -> None:
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("model/lr", 0.0, 1.0) + trial.suggest_int("n\tlayers", 1, 3)

    result = nbmlops.tune(objective, n_trials=2, show=False)
    for run, trial in zip(_children(result.parent_run_id), result.study.trials, strict=True):
        assert run.info.status is RunStatus.FINISHED
        assert run.data.params == {
            "model.lr": str(trial.params["model/lr"]),
            "n.layers": str(trial.params["n\tlayers"]),
        }
    assert "best_model.lr" in nbmlops.get_run(result.parent_run_id).data.params


def test_a_study_whose_trials_all_fail_stops_early_and_raises_the_first_error() -> None:
    def broken(trial: optuna.Trial) -> float:
        trial.suggest_int("n", 1, 3)
        raise KeyError("missing column")

    with pytest.raises(tuning.TuningFailed, match="every trial failed") as info:
        nbmlops.tune(broken, n_trials=50, show=False)
    assert isinstance(info.value.__cause__, KeyError)
    result = info.value.result
    assert result is not None and len(result.study.trials) == tuning.FAIL_FAST_TRIALS
    parent = nbmlops.get_run(result.parent_run_id)
    assert parent.info.status is RunStatus.FAILED
    assert "KeyError" in parent.data.tags["nbmlops.error"]


def test_threads_each_log_into_their_own_trial_run() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        time.sleep(0.01)
        nbmlops.log_metric("number", trial.number)
        return x

    result = nbmlops.tune(objective, n_trials=8, n_jobs=2, show=False)
    children = _children(result.parent_run_id)
    assert len(children) == 8
    for run in children:
        assert run.data.metrics["number"] == int(run.data.tags["nbmlops.trial.number"])


def test_multi_objective_logs_one_metric_per_direction() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        return x, 1.0 - x

    result = nbmlops.tune(
        objective,
        n_trials=4,
        directions=["maximize", "minimize"],
        metric=["gain", "cost"],
        show=False,
    )
    for run in _children(result.parent_run_id):
        assert run.data.metrics["gain"] + run.data.metrics["cost"] == pytest.approx(1.0)
    assert len(result.best_values) == 2


# --------------------------------------------------------------------------- cells as objectives


def test_cell_objective_assigns_returns_or_logs_the_metric() -> None:
    namespace: dict[str, Any] = {"offset": 10.0, "nbmlops": nbmlops}
    assign = tuning.objective_from_cell(
        "x = trial.suggest_float('x', 0, 1)\nf1 = x + offset", namespace
    )
    returns = tuning.objective_from_cell(
        "x = trial.suggest_float('x', 0, 1)\nif x >= 0:\n    return x * 2", namespace
    )
    logs = tuning.objective_from_cell(
        "x = trial.suggest_float('x', 0, 1)\nnbmlops.log_metric('f1', x - 1)", namespace
    )
    for objective, expected in (
        (assign, lambda t: t.params["x"] + 10.0),
        (returns, lambda t: t.params["x"] * 2),
        (logs, lambda t: t.params["x"] - 1),
    ):
        result = nbmlops.tune(objective, n_trials=2, show=False)
        for trial, run in zip(result.study.trials, _children(result.parent_run_id), strict=True):
            assert trial.value == pytest.approx(expected(trial))
            history = nbmlops.get_client().get_metric_history(run.info.run_id, "f1")
            assert len(history) == 1  # a logged objective value is not logged twice
    assert set(namespace) == {"offset", "nbmlops"}  # the cell's names stay local to trials
    silent = tuning.objective_from_cell("x = trial.suggest_float('x', 0, 1)", namespace)
    with pytest.raises(tuning.TuningFailed) as info:
        nbmlops.tune(silent, n_trials=5, show=False)
    assert "must assign `f1`" in str(info.value.__cause__)


# --------------------------------------------------------------------------- the notebook


def _cell(shell: Any, code: str, cell_id: str | None = None) -> Any:
    return shell.run_cell(code, store_history=True, cell_id=cell_id)


TUNE_CELL = """%%mlops tune --trials 3 --metric acc --sampler random --seed 0 --no-panel
from sklearn.metrics import accuracy_score
C = trial.suggest_float("C", 1e-2, 10.0, log=True)
model = LogisticRegression(C=C, max_iter=300).fit(X_train, y_train)
acc = accuracy_score(y_test, model.predict(X_test))
"""


def test_magic_trials_nest_under_the_open_parent_and_capture_autologged_fits(
    ipshell: Any,
) -> None:
    _cell(ipshell, "%mlops autolog on")
    setup = (
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split\n"
        "from sklearn.preprocessing import scale\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(scale(X), y, random_state=0)"
    )
    assert _cell(ipshell, setup).success
    _cell(ipshell, "%mlops start sweep")
    for name in ("C", "acc", "model"):  # the shell is shared by tests: start without these
        ipshell.user_ns.pop(name, None)
    result = _cell(ipshell, TUNE_CELL, cell_id="tune-cell")
    assert result.success, result.error_in_exec
    runs = _runs()
    by_type: dict[str, list[nbmlops.Run]] = {}
    for run in runs:
        by_type.setdefault(run.data.tags.get("nbmlops.run_type", ""), []).append(run)
    (sweep,) = by_type["parent"]
    (tuning_run,) = by_type["tuning"]
    assert tuning_run.info.parent_run_id == sweep.info.run_id
    assert tuning_run.info.source.code == TUNE_CELL
    assert tuning_run.data.tags["nbmlops.cell_id"] == "tune-cell"
    trials = by_type["trial"]
    assert len(trials) == 3
    assert "cell" not in by_type  # fits inside trials are not cell runs beside them
    for run in trials:
        assert run.info.parent_run_id == tuning_run.info.run_id
        assert run.data.tags["estimator_name"] == "LogisticRegression"  # autologged fit
        assert run.data.params["max_iter"] == "300"
        assert "training_accuracy_score" in run.data.metrics
        assert run.data.metrics["acc"] == run.data.metrics["accuracy_score_X_test"]
    best = ipshell.user_ns["best_params"]
    assert set(best) == {"C"}
    assert ipshell.user_ns["tune_result"].best_params == best
    assert "C" not in ipshell.user_ns and "acc" not in ipshell.user_ns


def test_magic_usage_errors_are_one_line(ipshell: Any) -> None:
    with pytest.raises(UsageError, match="--trials N"):
        ipshell.run_cell_magic("mlops", "tune --metric f1", "f1 = trial.suggest_float('x', 0, 1)")
    with pytest.raises(UsageError, match="invalid choice"):
        ipshell.run_cell_magic("mlops", "tune --trials 2 --sampler nope", "f1 = 1.0")
    with pytest.raises(UsageError, match="cell magic"):
        ipshell.run_line_magic("mlops", "tune --trials 3")
    with pytest.raises(UsageError, match="does not parse"):
        ipshell.run_cell_magic("mlops", "tune --trials 2", "f1 = (")
    with pytest.raises(UsageError, match="SQLite is not safe"):
        ipshell.run_cell_magic(
            "mlops", "tune --trials 2 --workers 2 --storage sqlite:///x.db", "f1 = 1.0"
        )


def test_grid_sampler_reads_the_space_from_the_cell(ipshell: Any) -> None:
    body = (
        "depth = trial.suggest_int('depth', 1, 3)\n"
        "kind = trial.suggest_categorical('kind', ['x', 'y'])\n"
        "f1 = depth + (kind == 'x')"
    )
    ipshell.run_cell_magic("mlops", "tune --trials 20 --sampler grid --no-panel", body)
    result = ipshell.user_ns["tune_result"]
    assert len(result.study.trials) == 6  # the grid is exhausted: Optuna stops the study
    assert {(t.params["depth"], t.params["kind"]) for t in result.study.trials} == {
        (d, k) for d in (1, 2, 3) for k in ("x", "y")
    }
    assert ipshell.user_ns["best_params"] == {"depth": 3, "kind": "x"}


# --------------------------------------------------------------------------- stopping


def test_stop_button_ends_the_study_after_the_running_trial() -> None:
    clicked_in: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 2:
            panel = tuning.last_result().panel  # type: ignore[union-attr]
            panel._stop.click()  # what the frontend's click does
            clicked_in.append(trial.number)
        return x

    result = nbmlops.tune(objective, n_trials=30, show="widgets")
    assert clicked_in == [2]
    assert result.state == "stopped" and result.stop_reason == "Stop button"
    assert len(result.study.trials) == 3  # the running trial finished, no new one started
    children = _children(result.parent_run_id)
    assert [r.info.status for r in children] == [RunStatus.FINISHED] * 3
    parent = nbmlops.get_run(result.parent_run_id)
    assert parent.info.status is RunStatus.FINISHED
    assert parent.data.tags["nbmlops.tuning.outcome"] == "stopped"
    assert result.panel._stop.disabled


def test_stop_clicks_are_observed_on_the_kernel_routing_hook() -> None:
    class FakeComm:
        def _reply_subshell_for(self, data: Any, default: Any) -> Any:
            return ("routed", default)

    class FakeButton:
        comm = FakeComm()

    calls: list[str] = []
    button = FakeButton()
    assert tuning_panel.observe_clicks_early(button, lambda: calls.append("stop"))
    click = {"method": "custom", "content": {"event": "click"}}
    assert button.comm._reply_subshell_for(click, "main") == ("routed", "main")
    assert calls == ["stop"]
    assert button.comm._reply_subshell_for({"method": "update", "state": {}}, None) == (
        "routed",
        None,
    )
    assert calls == ["stop"]
    assert not tuning_panel.observe_clicks_early(object(), lambda: None)


def test_first_interrupt_stops_after_the_running_trial() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C / kernel interrupt
        return x

    previous = signal.getsignal(signal.SIGINT)
    result = nbmlops.tune(objective, n_trials=30, show=False)
    assert signal.getsignal(signal.SIGINT) is previous  # the handler is put back
    assert result.state == "stopped" and result.stop_reason == "interrupt"
    assert len(result.study.trials) == 2
    assert [r.info.status for r in _children(result.parent_run_id)] == [RunStatus.FINISHED] * 2


def test_second_interrupt_aborts_the_running_trial_and_keeps_finished_ones() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # not reached: the second interrupt raises here
        return x

    with pytest.raises(KeyboardInterrupt):
        nbmlops.tune(objective, n_trials=30, show=False)
    result = tuning.last_result()
    assert result is not None and result.state == "interrupted"
    statuses = [r.info.status for r in _children(result.parent_run_id)]
    assert statuses == [RunStatus.FINISHED, RunStatus.FINISHED, RunStatus.KILLED]
    parent = nbmlops.get_run(result.parent_run_id)
    assert parent.info.status is RunStatus.KILLED
    assert parent.data.metrics["n_trials_complete"] == 2
    assert nbmlops.active_run() is None


def test_background_study_stops_on_request_and_keeps_its_trials() -> None:
    started = threading.Event()

    def objective(trial: optuna.Trial) -> float:
        started.set()
        time.sleep(0.02)
        return trial.suggest_float("x", 0.0, 1.0)

    result = nbmlops.tune(objective, n_trials=10_000, show=False, background=True)
    assert started.wait(30)
    assert tuning.stop() == 1
    result.wait(timeout=60)
    assert result.done and result.state == "stopped"
    assert 1 <= len(result.study.trials) < 10_000
    children = _children(result.parent_run_id)
    assert len(children) == len(result.study.trials)
    assert all(r.info.status is RunStatus.FINISHED for r in children)


# --------------------------------------------------------------------------- resume and storage


def test_same_study_name_resumes_in_memory_and_in_a_journal_file(tmp_path: Path) -> None:
    first = nbmlops.tune(quadratic, n_trials=3, study_name="s", show=False)
    second = nbmlops.tune(quadratic, n_trials=2, study_name="s", show=False)
    assert second.study is first.study and len(second.study.trials) == 5
    assert [r.data.tags["nbmlops.trial.number"] for r in _children(second.parent_run_id)] == [
        "3",
        "4",
    ]
    journal = tmp_path / "j" / "study.journal"
    nbmlops.tune(quadratic, n_trials=3, study_name="j", storage=str(journal), show=False)
    tuning._memory_studies.clear()  # nothing kept in memory: the journal alone resumes
    resumed = nbmlops.tune(
        quadratic, n_trials=2, study_name="j", storage=f"journal://{journal}", show=False
    )
    assert sorted(t.number for t in resumed.study.trials) == [0, 1, 2, 3, 4]
    assert resumed.n_trials == 2
    assert nbmlops.get_run(resumed.parent_run_id).data.metrics["n_trials_study"] == 5
    with pytest.raises(InvalidArgument, match="optimizes"):
        nbmlops.tune(
            quadratic, n_trials=1, study_name="j", storage=str(journal), direction="minimize"
        )


def test_storage_choices(tmp_path: Path) -> None:
    choice = tuning._resolve_storage(None, 1, "a")
    assert choice.kind == "memory"
    choice = tuning._resolve_storage(None, 3, "my study/1")
    assert choice.kind == "journal" and choice.spec.endswith("my_study_1.journal")
    assert Path(choice.spec).parent.parent == Path(nbmlops.get_client().store.location).parent
    choice = tuning._resolve_storage("journal:///tmp/x.journal", 2, "a")
    assert (choice.kind, choice.spec) == ("journal", "/tmp/x.journal")
    choice = tuning._resolve_storage("postgresql://me:secret@db/optuna", 4, "a")
    assert choice.kind == "rdb" and "secret" not in choice.description
    with pytest.raises(InvalidArgument, match="SQLite is not safe"):
        tuning._resolve_storage("sqlite:///optuna.db", 2, "a")
    assert tuning._resolve_storage("sqlite:///optuna.db", 1, "a").kind == "rdb"
    nbmlops.set_tracking_uri("memory:")
    with pytest.raises(InvalidArgument, match="memory: store"):
        tuning._resolve_storage(None, 2, "a")


def test_param_importances_are_logged_once_ten_trials_completed() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -3.0, 3.0)
        y = trial.suggest_float("y", -3.0, 3.0)
        return -(x**2) - 0.01 * y

    first = nbmlops.tune(
        objective, n_trials=9, study_name="imp", sampler="random", seed=0, show=False
    )
    client = nbmlops.get_client()
    assert "tuning/param_importances.json" not in {
        a.path for a in client.list_artifacts(first.parent_run_id)
    }
    second = nbmlops.tune(objective, n_trials=3, study_name="imp", show=False)
    paths = {a.path for a in client.list_artifacts(second.parent_run_id)}
    assert "tuning/param_importances.json" in paths
    data = json.loads(client.read_artifact(second.parent_run_id, "tuning/param_importances.json"))
    assert data["n_complete"] == 12 and set(data["importances"]) == {"x", "y"}
    assert sum(data["importances"].values()) == pytest.approx(1.0)  # Optuna's normalized values


def test_search_spaces_parse_and_grid() -> None:
    space = tuning.parse_space(
        {"C": (0.01, 10.0, "log"), "depth": (1, 5), "lr": (0.0, 1.0, 0.25), "k": ["a", "b"]}
    )
    assert space["C"].log and space["C"].low == 0.01
    assert type(space["depth"]).__name__ == "IntDistribution"
    assert space["lr"].step == 0.25
    assert space["k"].choices == ("a", "b")
    assert tuning.grid_from_space({"lr": (0.0, 1.0, 0.25), "k": ["a", "b"]}) == {
        "lr": [0.0, 0.25, 0.5, 0.75, 1.0],
        "k": ["a", "b"],
    }
    with pytest.raises(InvalidArgument, match="needs a step"):
        tuning.grid_from_space({"x": (0.0, 1.0)})
    for bad in ({"x": (1, 0)}, {"x": []}, {"x": "abc"}, {}):
        with pytest.raises(InvalidArgument):
            tuning.parse_space(bad)
    source = "def f(t):\n    a = t.suggest_int('a', 0, 4, step=2)\n    return a"
    assert tuning.space_from_code(source) == {"a": {"low": 0, "high": 4, "log": False, "step": 2}}
    try:
        sampler = tuning._make_sampler("cmaes", 0, None, None)
        assert type(sampler).__name__ == "CmaEsSampler"  # cmaes installed
    except InvalidArgument as exc:
        assert "pip install cmaes" in str(exc)


# --------------------------------------------------------------------------- panel


def _progress(n_trials: int | None = 20) -> tuning.TuningProgress:
    return tuning.TuningProgress("study", ["f1"], ["maximize"], n_trials, None)


def _row(number: int, value: float | None, state: str = "COMPLETE", **params: Any) -> Any:
    return tuning.TrialRow(
        number=number,
        state=state,
        values=None if value is None else (value,),
        params=params or {"x": number / 10},
        duration_s=0.01,
        run_id="a" * 32,
    )


def test_panel_throttles_redraws() -> None:
    now = [100.0]
    progress = _progress(n_trials=100)
    panel = tuning_panel.TuningPanel(
        progress, mode="widgets", on_stop=lambda reason: None, clock=lambda: now[0]
    )
    for number in range(50):  # 50 trials finishing within the same instant: one redraw
        progress.add(_row(number, number / 50))
        panel.update()
    assert panel.draws == 1 and panel.chart_draws == 0  # the first chart after a second
    now[0] += 0.1
    panel.update()
    assert panel.draws == 1  # < 0.25 s later: still throttled
    now[0] += 0.2
    progress.add(_row(50, 0.5))
    panel.update()
    assert panel.draws == 2 and panel.chart_draws == 0  # text yes, chart not yet
    now[0] += 1.0
    progress.add(_row(51, 0.5))
    panel.update()
    assert panel.chart_draws == 1
    now[0] += 0.5
    progress.add(_row(52, 0.5))
    panel.update()
    assert panel.draws == 4 and panel.chart_draws == 1  # the chart at most once a second
    now[0] += 60.0  # the chart interval is >= 1 s and grows with its rendering cost
    progress.add(_row(53, 0.5))
    panel.update()
    assert panel.chart_draws == 2
    assert panel.update(force=True) and panel.draws == 6
    assert panel._bar.value == 54 and "54/100 trials" in panel._status.value


def test_panel_escapes_user_strings_everywhere() -> None:
    hostile = "<script>alert(1)</script>"
    progress = tuning.TuningProgress(hostile, [hostile], ["maximize"], 3, None)
    progress.add(_row(0, 0.5, **{hostile: hostile}))
    progress.add(
        tuning.TrialRow(1, "FAIL", None, {hostile: 1.0}, 0.1, None, error=f"ValueError: {hostile}")
    )
    panel = tuning_panel.TuningPanel(progress, mode="html", title=f"Tuning {hostile}")
    summary = panel.summary()
    assert "<script>" not in summary.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in summary.html
    assert hostile in repr(summary)  # the text form is plain text
    widgets = tuning_panel.TuningPanel(progress, mode="widgets", title=hostile)
    widgets.update(force=True)
    for html_widget in (widgets._title, widgets._best, widgets._table, widgets._status):
        assert "<script>" not in html_widget.value


def test_panel_final_summary_has_charts_and_insights_after_ten_trials() -> None:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(
        lambda t: t.suggest_float("x", 0, 1) + 0.1 * t.suggest_int("n", 0, 3), n_trials=12
    )
    progress = _progress(12)
    for trial in study.trials:
        progress.add(tuning._row_from_frozen(trial), trial.distributions)
    progress.importances = tuning.param_importances(study)
    progress.finish("completed")
    panel = tuning_panel.TuningPanel(progress, mode="html")
    panel.update(force=True)
    assert panel.insight_draws == 1
    summary = panel.summary()
    assert summary.html.count("data:image/png;base64,") == 2  # objective chart + insights
    assert "12/12 trials" in repr(summary) and "param importances: x" in repr(summary)
    assert not math.isnan(progress.best.value)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- interactive


def test_manual_trials_join_the_study_as_nested_runs(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    ipshell.run_cell_magic(
        "mlops",
        "tune --trials 3 --sampler random --seed 1 --no-panel",
        "C = trial.suggest_float('C', 0.01, 10.0, log=True)\n"
        "k = trial.suggest_categorical('k', ['a', 'b'])\n"
        "n = trial.suggest_int('n', 1, 9)\n"
        "f1 = -abs(C - 1) + (k == 'a') + n / 10",
    )
    study = ipshell.user_ns["tune_result"].study
    space = {"C": (0.01, 10.0, "log"), "k": ["a", "b"], "n": (1, 9)}
    ipshell.user_ns["space"] = space
    ipshell.run_line_magic("mlops", "tune --interactive space")  # a terminal: no sliders
    from_magic = tuning.last_tuner()
    assert from_magic is not None and from_magic.study is study
    manual = from_magic.run_trial({"C": 0.5, "k": "b", "n": 2})
    assert manual.params == {"C": 0.5, "k": "b", "n": 2} and len(study.trials) == 4
    tuner = nbmlops.tune_interactive(space=space, show="widgets")  # last objective and study
    assert tuner.study is study
    panel = tuner.panel
    assert set(panel.controls) == {"C", "k", "n"}
    assert type(panel.controls["C"]).__name__ == "FloatLogSlider"
    panel.controls["C"].value = 1.0
    panel.controls["k"].value = "a"
    panel.controls["n"].value = 7
    row = panel.run()
    assert row is not None and row.params == {"C": 1.0, "k": "a", "n": 7}
    assert row.value == pytest.approx(1.7)
    assert len(study.trials) == 5 and study.trials[-1].params == row.params
    run = nbmlops.get_run(row.run_id)  # type: ignore[arg-type]
    parent = nbmlops.get_run(run.info.parent_run_id)  # type: ignore[arg-type]
    assert parent.data.tags["nbmlops.tuning.mode"] == "interactive"
    assert run.data.params == {"C": "1.0", "k": "a", "n": "7"}
    panel.finish()
    parent = nbmlops.get_run(parent.info.run_id)
    assert parent.info.status is RunStatus.FINISHED
    assert parent.data.metrics["n_trials"] == 1
    assert parent.data.params["best_C"] == "1.0"  # the manual trial is the study's best
    assert panel.run_button.disabled
    assert from_magic.finish() is not None
