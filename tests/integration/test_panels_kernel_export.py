"""In a real kernel the panels display as widgets with a static HTML fallback, and an HTML
export (nbconvert) of the executed notebook shows the escaped static panels."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
HOSTILE = "<img src=x onerror=alert(1)>"

CELLS = [
    "%load_ext nbmlops\n%mlops autolog on --experiment export-demo",
    "import nbmlops\n"
    "ids = []\n"
    f"for i, name in enumerate([{HOSTILE!r}, 'second']):\n"
    "    with nbmlops.start_run(run_name=name, nested=True) as run:\n"
    "        nbmlops.log_param('depth', i)\n"
    "        nbmlops.log_metric('f1', 0.5 + i / 10)\n"
    "    ids.append(run.info.run_id)",
    "nbmlops.compare(*ids)",
    "%mlops runs",
    "%mlops show {ids[0]}",
    "%mlops registry",
]
PANELS = ["nbm-compare", "nbm-runs", "nbm-detail", "nbm-registry"]


def test_panels_in_a_kernel_and_in_an_html_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBMLOPS_TRACKING_URI", f"sqlite:///{tmp_path / 'store' / 'nbmlops.db'}")
    monkeypatch.setenv("NBMLOPS_NOTEBOOK_PATH", str(tmp_path / "export-demo.ipynb"))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(code) for code in CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        store_widget_state=False,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()

    for cell, panel in zip(notebook.cells[2:], PANELS, strict=True):
        (output,) = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert WIDGET_VIEW in output.data, cell.source  # a kernel: the live widget...
        assert panel in output.data["text/html"]  # ...and the static fallback beside it
        assert HOSTILE not in output.data["text/html"]

    html, _ = HTMLExporter().from_notebook_node(notebook)
    for panel in PANELS:
        assert f'class="nbm-panel {panel}"' in html, panel  # no widget state: static HTML
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
