"""Tuning with real worker processes on a journal-file study, and the Stop button / interrupt
in a real Jupyter kernel."""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

import nbmlops
from nbmlops import RunStatus, tuning


def slow_objective(trial: optuna.Trial) -> float:
    """Module level: worker processes import it by reference."""
    x = trial.suggest_float("x", -2.0, 2.0)
    time.sleep(0.05)
    nbmlops.log_metric("pid", os.getpid())
    return -(x**2)


def _children(parent_run_id: str) -> list[nbmlops.Run]:
    client = nbmlops.get_client()
    return list(client.search_runs(None, f"parent_run_id = '{parent_run_id}'", max_results=1000))


@pytest.mark.slow
def test_workers_share_one_journal_study_exact_count_no_duplicates(tmp_path: Path) -> None:
    journal = tmp_path / "optuna" / "shared.journal"
    result = nbmlops.tune(
        slow_objective,
        n_trials=10,
        n_workers=2,
        storage=f"journal:///{journal}",
        study_name="shared",
        sampler="random",
        seed=7,
        show=False,
    )
    assert journal.is_file()
    numbers = sorted(t.number for t in result.study.trials)
    assert numbers == list(range(10))  # exact count, no duplicate trial numbers
    assert all(t.state.name == "COMPLETE" for t in result.study.trials)
    assert len({t.params["x"] for t in result.study.trials}) == 10  # reseeded per worker
    children = _children(result.parent_run_id)
    assert len(children) == 10
    assert sorted(int(r.data.tags["nbmlops.trial.number"]) for r in children) == numbers
    assert all(r.info.status is RunStatus.FINISHED for r in children)
    pids = {int(r.data.metrics["pid"]) for r in children}
    assert len(pids) == 2 and os.getpid() not in pids  # two real worker processes
    assert {r.data.tags["nbmlops.trial.worker"] for r in children} == {"0", "1"}
    parent = nbmlops.get_run(result.parent_run_id)
    assert parent.info.status is RunStatus.FINISHED
    assert parent.data.metrics["n_trials_complete"] == 10
    assert parent.data.params["n_workers"] == "2"
    assert parent.data.params["storage"].startswith("journal file")
    # Resume: the same study name and storage continue the study.
    again = nbmlops.tune(
        slow_objective,
        n_trials=4,
        n_workers=2,
        storage=f"journal:///{journal}",
        study_name="shared",
        show=False,
    )
    assert sorted(t.number for t in again.study.trials) == list(range(14))
    assert sorted(
        int(r.data.tags["nbmlops.trial.number"]) for r in _children(again.parent_run_id)
    ) == [10, 11, 12, 13]


@pytest.mark.slow
def test_stopping_workers_keeps_every_finished_trial() -> None:
    tuning._last_tuning.clear()

    def stop_after_first_trial() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = tuning.last_result()
            if result is not None and result.progress.n_done >= 1:
                assert tuning.stop() == 1
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=stop_after_first_trial, daemon=True)
    watcher.start()
    result = nbmlops.tune(slow_objective, n_trials=400, n_workers=2, show=False)
    watcher.join(5)
    assert result.state == "stopped"
    study_trials = result.study.trials
    assert 1 <= len(study_trials) < 400
    assert all(t.state.name == "COMPLETE" for t in study_trials)  # none left running
    children = _children(result.parent_run_id)
    assert len(children) == len(study_trials)
    assert all(r.info.status is RunStatus.FINISHED for r in children)


def _widget_state(message: dict[str, Any]) -> dict[str, Any]:
    return message["content"].get("data", {}).get("state", {})


@pytest.mark.slow
def test_stop_button_and_interrupt_work_while_the_cell_runs_in_a_real_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_client.manager import start_new_kernel

    monkeypatch.setenv("NBMLOPS_TRACKING_URI", f"sqlite:///{tmp_path / 'store' / 'nbmlops.db'}")
    monkeypatch.chdir(tmp_path)
    kernel_manager, client = start_new_kernel(kernel_name="python3")
    cell = (
        "import time, nbmlops\n"
        "def objective(trial):\n"
        "    x = trial.suggest_float('x', 0, 1)\n"
        "    time.sleep(0.2)\n"
        "    return x\n"
        "r = nbmlops.tune(objective, n_trials=500, sampler='random', seed=0)\n"
        "print('RESULT', r.state, r.stop_reason, r.n_trials, len(r.study.trials))\n"
    )

    def run(action: str) -> str:
        msg_id = client.execute(cell)
        button = None
        acted = progressed = False
        printed = ""
        started = time.monotonic()
        while True:
            try:
                message = client.get_iopub_msg(timeout=60)
            except queue.Empty:
                raise AssertionError("the kernel went silent") from None
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            state = _widget_state(message) if kind in ("comm_open", "comm_msg") else {}
            if state.get("_model_name") == "ButtonModel" and state.get("description") == "Stop":
                button = content["comm_id"]
            value = state.get("value")
            if isinstance(value, str) and re.search(r"\b[1-9]\d*/500 trials", value):
                progressed = True  # a trial finished: the study (and its handlers) is running
            if kind == "stream":
                printed += content["text"]
            if kind == "error":
                raise AssertionError(f"{content['ename']}: {content['evalue']}")
            if not acted and button and progressed and time.monotonic() - started > 1.0:
                acted = True
                if action == "click":  # exactly what the frontend sends for a click
                    click = {"method": "custom", "content": {"event": "click"}}
                    request = client.session.msg("comm_msg", {"comm_id": button, "data": click})
                    client.shell_channel.send(request)
                else:
                    kernel_manager.interrupt_kernel()
            if kind == "status" and content["execution_state"] == "idle":
                return printed

    try:
        for action, reason in (("click", "Stop button"), ("interrupt", "interrupt")):
            printed = run(action)
            line = next(x for x in printed.splitlines() if x.startswith("RESULT"))
            _, state, *why, done, in_study = line.split()
            assert state == "stopped" and " ".join(why) == reason
            assert 1 <= int(done) == int(in_study) < 100  # stopped long before 500 trials
    finally:
        client.stop_channels()
        kernel_manager.shutdown_kernel(now=True)
    runs = list(nbmlops.get_client().search_runs(None, "", max_results=1000))
    trial_runs = [r for r in runs if r.data.tags.get("nbmlops.run_type") == "trial"]
    assert trial_runs and all(r.info.status is RunStatus.FINISHED for r in trial_runs)


@pytest.mark.slow
def test_cell_magic_runs_its_body_in_worker_processes(ipshell: Any) -> None:
    ipshell.run_cell("%mlops autolog on", store_history=True)
    ipshell.user_ns["shift"] = 0.25  # a notebook variable the cell body reads in the workers
    ipshell.run_cell_magic(
        "mlops",
        "tune --trials 6 --workers 2 --metric score --no-panel --study cells",
        "import os\n"
        "import nbmlops\n"
        "x = trial.suggest_float('x', 0.0, 1.0)\n"
        "nbmlops.log_metric('pid', os.getpid())\n"
        "score = -(x - shift) ** 2",
    )
    result = ipshell.user_ns["tune_result"]
    assert result.state == "completed" and len(result.study.trials) == 6
    for trial in result.study.trials:
        assert trial.value == pytest.approx(-((trial.params["x"] - 0.25) ** 2))
    children = _children(result.parent_run_id)
    assert len(children) == 6
    assert len({r.data.metrics["pid"] for r in children}) == 2
    assert os.getpid() not in {int(r.data.metrics["pid"]) for r in children}
    session_runs = [
        r
        for r in nbmlops.get_client().search_runs(None, "", max_results=100)
        if r.data.tags.get("nbmlops.run_type") == "session"
    ]
    parent = nbmlops.get_run(result.parent_run_id)
    assert parent.info.parent_run_id == session_runs[0].info.run_id
    assert set(ipshell.user_ns["best_params"]) == {"x"}
