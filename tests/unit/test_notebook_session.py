"""Cells as runs, driven through a real IPython shell (hooks, magics, statuses, lineage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

import nbmlops
from nbmlops import RunStatus
from nbmlops.autolog import session as session_module
from nbmlops.store.sqlite import SqliteStore


def _runs() -> list[nbmlops.Run]:
    return list(nbmlops.get_client().search_runs(None, max_results=1000))


def _by_type(kind: str) -> list[nbmlops.Run]:
    runs = [r for r in _runs() if r.data.tags.get("nbmlops.run_type") == kind]
    return sorted(runs, key=lambda r: r.info.start_time)


def _cell(shell: Any, code: str, cell_id: str | None = None) -> Any:
    return shell.run_cell(code, store_history=True, cell_id=cell_id)


def test_autolog_on_opens_session_run_named_after_notebook(ipshell: Any, tmp_path: Path) -> None:
    _cell(ipshell, "%mlops autolog on")
    (session,) = _by_type("session")
    assert session.info.run_name == "analysis"
    assert session.info.status is RunStatus.RUNNING
    assert session.data.tags["nbmlops.notebook"] == str(tmp_path / "analysis.ipynb")
    assert nbmlops.get_experiment(session.info.experiment_id).name == "analysis"


def test_plain_cells_create_no_runs(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    for code in ("x = 1", "y = [i * i for i in range(10)]", "print(y)", "def f(a):\n    return a"):
        assert _cell(ipshell, code).success
    assert [r.data.tags.get("nbmlops.run_type") for r in _runs()] == ["session"]


def test_explicit_log_cell_becomes_child_with_source(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    code = "import nbmlops\nnbmlops.log_metric('acc', 0.9)\nnbmlops.log_param('model', 'rf')"
    result = _cell(ipshell, code, cell_id="cell-abc")
    assert result.success
    (session,) = _by_type("session")
    (cell,) = _by_type("cell")
    assert cell.info.parent_run_id == session.info.run_id
    assert cell.info.status is RunStatus.FINISHED
    assert cell.data.metrics == {"acc": 0.9} and cell.data.params == {"model": "rf"}
    assert cell.info.source.code == code
    assert (
        cell.info.source.cell_id == "cell-abc" and cell.data.tags["nbmlops.cell_id"] == "cell-abc"
    )
    assert cell.info.source.execution_count == result.execution_count
    assert len(cell.info.source.code_sha256) == 64
    artifacts = {a.path for a in nbmlops.get_client().list_artifacts(cell.info.run_id)}
    assert {"nbmlops/lineage.json", "nbmlops/environment.json"} <= artifacts


def test_writes_are_flushed_at_the_end_of_every_cell(
    ipshell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbmlops.client as client_module

    monkeypatch.setattr(client_module, "FLUSH_INTERVAL_S", 3600.0)
    _cell(ipshell, "%mlops autolog on")
    _cell(ipshell, "import nbmlops\nnbmlops.log_metric('loss', 0.5)")
    (cell,) = _by_type("cell")
    reader = SqliteStore(Path(nbmlops.get_client().store.location))  # a second, independent reader
    try:
        assert reader.get_run(cell.info.run_id).data.metrics == {"loss": 0.5}
    finally:
        reader.close()


def test_failed_and_interrupted_cells_keep_the_users_exception(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    result = _cell(
        ipshell, "import nbmlops\nnbmlops.log_metric('a', 1)\nraise ValueError('bad data')"
    )
    assert isinstance(result.error_in_exec, ValueError) and str(result.error_in_exec) == "bad data"
    result = _cell(ipshell, "nbmlops.log_metric('b', 1)\nraise KeyboardInterrupt")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    failed, killed = _by_type("cell")
    assert failed.info.status is RunStatus.FAILED
    assert failed.data.tags["nbmlops.error"] == "ValueError: bad data"
    assert killed.info.status is RunStatus.KILLED


def test_rerun_of_a_cell_makes_a_new_run_with_the_same_cell_id(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    code = "import nbmlops\nnbmlops.log_metric('m', 1)"
    _cell(ipshell, code, cell_id="same")
    _cell(ipshell, code, cell_id="same")
    first, second = _by_type("cell")
    assert first.info.run_id != second.info.run_id
    assert first.data.tags["nbmlops.cell_id"] == second.data.tags["nbmlops.cell_id"] == "same"
    frame = nbmlops.search_runs(
        search_all_experiments=True, filter_string="tags.`nbmlops.cell_id` = 'same'"
    )
    assert len(frame) == 2


def test_lineage_records_out_of_order_execution_in_execution_order(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    _cell(ipshell, "a = 1", cell_id="c1")
    _cell(ipshell, "b = 2", cell_id="c2")
    _cell(ipshell, "a = 10", cell_id="c1")  # re-run of an earlier cell, out of order
    _cell(ipshell, "import nbmlops\nnbmlops.log_metric('total', a + b)", cell_id="c3")
    (cell,) = _by_type("cell")
    assert cell.data.metrics == {"total": 12.0}
    lineage = json.loads(
        nbmlops.get_client().read_artifact(cell.info.run_id, "nbmlops/lineage.json")
    )
    ids = [c["cell_id"] for c in lineage["cells"]]
    assert ids[-4:] == ["c1", "c2", "c1", "c3"]
    codes = [lineage["code"][c["code_sha256"]] for c in lineage["cells"][-4:]]
    assert codes[:3] == ["a = 1", "b = 2", "a = 10"]


def test_start_end_parent_and_cell_magic_run(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    _cell(ipshell, "%mlops start sweep --tags purpose=demo")
    _cell(
        ipshell,
        "%%mlops run --name baseline --tags kind=manual\nimport nbmlops\nnbmlops.log_metric('f1', 0.7)",
    )
    _cell(ipshell, "%mlops metric f1=0.8 --step 3\n%mlops param depth=5\n%mlops tag stage=dev")
    _cell(ipshell, "%mlops end")
    (session,) = _by_type("session")
    (parent,) = _by_type("parent")
    baseline, quick = _by_type("cell")
    assert parent.info.parent_run_id == session.info.run_id
    assert parent.info.status is RunStatus.FINISHED and parent.data.tags["purpose"] == "demo"
    assert baseline.info.run_name == "baseline" and baseline.data.tags["kind"] == "manual"
    assert baseline.info.parent_run_id == parent.info.run_id
    assert baseline.data.metrics == {"f1": 0.7}
    assert quick.info.parent_run_id == parent.info.run_id
    assert quick.data.params == {"depth": "5"} and quick.data.tags["stage"] == "dev"
    history = nbmlops.get_client().get_metric_history(quick.info.run_id, "f1")
    assert [(m.step, m.value) for m in history] == [(3, 0.8)]


def test_cell_magic_run_records_failure_of_its_body(ipshell: Any) -> None:
    _cell(ipshell, "%%mlops run --name broken\nraise RuntimeError('nope')")
    (cell,) = _by_type("cell")
    assert cell.info.status is RunStatus.FAILED
    assert cell.data.tags["nbmlops.error"] == "RuntimeError: nope"


def test_bad_magic_arguments_are_one_line_usage_errors(ipshell: Any) -> None:
    for line in (
        "bogus",
        "autolog maybe",
        "metric f1=high",
        "param novalue",
        "end",
        "runs --last x",
        "start",
    ):
        with pytest.raises(UsageError) as info:
            ipshell.run_line_magic("mlops", line)
        assert "\n" not in str(info.value).strip(), line
    with pytest.raises(UsageError, match="'run'"):
        ipshell.run_cell_magic("mlops", "bogus", "pass")  # `tune` is a cell subcommand now


def test_help_and_docstring_are_the_manual(
    ipshell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ipshell.run_line_magic("mlops", "help")
    out = capsys.readouterr().out
    for word in ("autolog on|off", "%mlops start", "%%mlops run", "%mlops runs", "e.g."):
        assert word in out
    doc = ipshell.find_line_magic("mlops").__doc__
    assert "%mlops autolog on|off" in doc


def test_status_and_runs_table(ipshell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _cell(ipshell, "%mlops autolog on")
    _cell(ipshell, "import nbmlops\nnbmlops.log_metric('f1', 0.5)")
    capsys.readouterr()
    ipshell.run_line_magic("mlops", "status")
    out = capsys.readouterr().out
    assert "analysis.ipynb" in out and "autolog: True" in out
    panel = ipshell.run_line_magic("mlops", "runs")  # the runs panel (nbmlops.runs_view)
    tree = panel.table.tree
    assert [t.row.run_type for t in tree] == ["session", "cell"]
    assert [t.depth for t in tree] == [0, 1] and tree[1].row.parent_run_id == tree[0].row.run_id
    assert tree[1].row.metrics["f1"] == 0.5 and "f1" in panel.table.metrics
    table = panel.to_pandas()
    assert table["run"].iloc[1].startswith("└ ") and table["metrics.f1"].iloc[1] == 0.5
    filtered = ipshell.run_line_magic("mlops", 'runs --filter "metrics.f1 > 0.9"')
    assert len(filtered.table) == 0 and "No runs match" in filtered.to_html()


def test_autolog_off_finishes_session_and_shutdown_kills_open_runs(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    _cell(ipshell, "%mlops autolog off")
    (first,) = _by_type("session")
    assert first.info.status is RunStatus.FINISHED
    _cell(ipshell, "%mlops autolog on")
    _cell(ipshell, "%mlops start long-running")
    session_module.current().shutdown()  # what the kernel's exit does
    sessions = _by_type("session")
    assert sessions[-1].info.status is RunStatus.KILLED
    assert _by_type("parent")[0].info.status is RunStatus.KILLED


def test_user_start_run_inside_a_cell_nests_under_the_session(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    _cell(
        ipshell,
        "import nbmlops\nwith nbmlops.start_run(run_name='manual'):\n    nbmlops.log_metric('x', 1)",
    )
    (session,) = _by_type("session")
    manual = next(r for r in _runs() if r.info.run_name == "manual")
    assert manual.info.parent_run_id == session.info.run_id
    assert manual.data.metrics == {"x": 1.0}


def test_figures_are_logged_for_run_cells_but_plain_plots_make_no_run(ipshell: Any) -> None:
    _cell(ipshell, "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt")
    _cell(ipshell, "%mlops autolog on")
    _cell(ipshell, "plt.figure(); plt.plot([1, 2, 3]); plt.close('all') if False else None")
    assert _by_type("cell") == []  # an EDA plot alone is not a run
    _cell(ipshell, "plt.close('all')")
    _cell(ipshell, "%mlops start plotting")
    _cell(ipshell, "fig = plt.figure(); plt.plot([3, 2, 1])")
    _cell(ipshell, "%mlops end")
    (cell,) = _by_type("cell")
    png = nbmlops.get_client().read_artifact(cell.info.run_id, "figures/figure-1.png")
    assert png.startswith(b"\x89PNG")
    _cell(ipshell, "plt.close('all')")


def test_an_internal_failure_warns_once_and_the_cell_result_stands(
    ipshell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cell(ipshell, "%mlops autolog on")
    client = nbmlops.get_client()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(client, "log_text", broken)
    with pytest.warns(RuntimeWarning, match="autolog failed after the cell"):
        result = _cell(ipshell, "import nbmlops\nnbmlops.log_metric('m', 1)\n41 + 1")
    assert result.success and result.result == 42
    with _no_warning():
        second = _cell(ipshell, "nbmlops.log_metric('m', 2)\n'still fine'")
    assert second.result == "still fine"


class _no_warning:
    """Asserts that no RuntimeWarning is raised inside the block (warned once only)."""

    def __enter__(self) -> None:
        import warnings

        self._catcher = warnings.catch_warnings(record=True)
        self._records = self._catcher.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc: object) -> None:
        self._catcher.__exit__(*exc)
        assert not [w for w in self._records if issubclass(w.category, RuntimeWarning)]


def test_python_twin_autolog_is_callable_after_subpackage_import(ipshell: Any) -> None:
    import nbmlops.autolog  # the subpackage replaces the attribute; it must stay callable

    run_id = nbmlops.autolog(experiment="twin")
    assert nbmlops.get_run(run_id).info.status is RunStatus.RUNNING
    assert nbmlops.get_experiment(nbmlops.get_run(run_id).info.experiment_id).name == "twin"
    nbmlops.autolog(enable=False)
    assert nbmlops.get_run(run_id).info.status is RunStatus.FINISHED


def test_traitlets_configuration_and_environment_precedence(
    ipshell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``c.NbMlops.*`` configures the extension; NBMLOPS_* environment variables win."""
    configured_store = tmp_path / "configured" / "nbmlops.db"
    ipshell.run_line_magic("unload_ext", "nbmlops")
    session_module.drop()
    monkeypatch.delenv("NBMLOPS_TRACKING_URI")
    import nbmlops.tracking as tracking

    tracking._reset_for_tests()
    ipshell.config.NbMlops.tracking_uri = f"sqlite:///{configured_store}"
    ipshell.config.NbMlops.experiment = "from-config"
    ipshell.config.NbMlops.autolog = True
    try:
        ipshell.run_line_magic("load_ext", "nbmlops")
        session = session_module.current()
        assert session is not None and session.autolog_enabled  # c.NbMlops.autolog
        assert nbmlops.get_tracking_uri() == f"sqlite:///{configured_store}"
        assert session.experiment_name() == "from-config"
        monkeypatch.setenv("NBMLOPS_EXPERIMENT_NAME", "from-env")
        assert session.experiment_name() == "from-env"
        session.autolog_off()
        session.autolog_on(experiment="explicit")
        assert session.experiment_name() == "explicit"
        assert configured_store.is_file()
    finally:
        del ipshell.config["NbMlops"]
        tracking._reset_for_tests()


def test_configuration_rejects_a_negative_model_cap() -> None:
    from traitlets import TraitError
    from traitlets.config import Config

    from nbmlops.config import NbMlops

    config = Config()
    config.NbMlops.max_model_bytes = -1
    with pytest.raises(TraitError, match="max_model_bytes"):
        NbMlops(config=config)
