"""A real Jupyter kernel (via nbclient) autologs cells into the run tree, with cell ids."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import nbmlops
from nbmlops import RunStatus

CELLS = [
    "%load_ext nbmlops",
    "%mlops autolog on",
    "x = [1, 2, 3]",  # plain: no run
    "import nbmlops\nnbmlops.log_metric('acc', 0.91)",
    "%mlops metric f1=0.5",
    "nbmlops.log_metric('partial', 1)\nraise ValueError('broken cell')",
]


def test_kernel_run_tree_identity_and_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook_path = tmp_path / "kernel-demo.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(code) for code in CELLS]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, notebook_path)
    store = tmp_path / "store" / "nbmlops.db"
    monkeypatch.setenv("NBMLOPS_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.delenv("NBMLOPS_NOTEBOOK_PATH", raising=False)
    # What jupyter_server tells a kernel it starts for a notebook (path relative to its root).
    monkeypatch.setenv("JPY_SESSION_NAME", notebook_path.name)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # shuts the kernel down at the end

    nbmlops.set_tracking_uri(f"sqlite:///{store}")
    runs = nbmlops.search_runs(search_all_experiments=True, output_format="list")
    by_type: dict[str, list[nbmlops.Run]] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        by_type.setdefault(run.data.tags.get("nbmlops.run_type", ""), []).append(run)
    (session,) = by_type["session"]
    assert session.info.run_name == "kernel-demo"
    assert session.data.tags["nbmlops.notebook"] == str(notebook_path)
    assert "ipykernel_launcher" not in session.info.source.path
    # The kernel shut down with autolog still on: the session run ends KILLED.
    assert session.info.status is RunStatus.KILLED
    acc, f1, broken = by_type["cell"]
    assert all(r.info.parent_run_id == session.info.run_id for r in (acc, f1, broken))
    assert acc.data.metrics == {"acc": 0.91} and acc.info.status is RunStatus.FINISHED
    assert f1.data.metrics == {"f1": 0.5}
    assert broken.info.status is RunStatus.FAILED
    assert broken.data.tags["nbmlops.error"] == "ValueError: broken cell"
    assert broken.data.metrics == {"partial": 1.0}
    assert acc.info.source.execution_count == 4
    assert len(runs) == 4  # the plain cell made nothing


def _execute(client: object, code: str, cell_id: str) -> dict:
    """Send an execute_request the way JupyterLab does: the cell id in the metadata."""
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    message = client.session.msg("execute_request", content, metadata={"cellId": cell_id})
    client.shell_channel.send(message)
    while True:
        reply = client.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
            return reply["content"]


def test_cell_id_sent_by_the_frontend_reaches_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_client.manager import start_new_kernel

    store = tmp_path / "store" / "nbmlops.db"
    monkeypatch.setenv("NBMLOPS_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.setenv("NBMLOPS_NOTEBOOK_PATH", str(tmp_path / "ids.ipynb"))
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        assert (
            _execute(client, "%load_ext nbmlops\n%mlops autolog on", "setup-cell")["status"] == "ok"
        )
        reply = _execute(client, "import nbmlops\nnbmlops.log_metric('m', 1)", "cell-7f3a")
        assert reply["status"] == "ok"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    nbmlops.set_tracking_uri(f"sqlite:///{store}")
    (cell,) = nbmlops.search_runs(
        search_all_experiments=True,
        filter_string="tags.`nbmlops.run_type` = 'cell'",
        output_format="list",
    )
    assert cell.data.tags["nbmlops.cell_id"] == "cell-7f3a"
    assert cell.info.source.cell_id == "cell-7f3a"
    assert cell.info.source.execution_count == 2


def test_extension_loads_from_shell_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``c.InteractiveShellApp.extensions = ['nbmlops']`` (here on the command line) works."""
    from jupyter_client.manager import start_new_kernel

    monkeypatch.setenv("NBMLOPS_TRACKING_URI", f"sqlite:///{tmp_path / 'nbmlops.db'}")
    manager, client = start_new_kernel(
        kernel_name="python3",
        cwd=str(tmp_path),
        extra_arguments=["--InteractiveShellApp.extensions=nbmlops"],
    )
    try:
        reply = _execute(client, "%mlops autolog on --experiment from-config", "c1")
        assert reply["status"] == "ok", reply
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    assert nbmlops.get_experiment_by_name("from-config") is not None
