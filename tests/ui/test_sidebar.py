"""The JupyterLab sidebar in a real lab, in headless Debian Chromium.

Writes a small notebook into the lab's root, opens it, executes its cells and checks that
the runs appear live in the MLOps sidebar (a new run within 2 s of its cell finishing),
opens a run's detail view, jumps to the cell that made a run, compares two runs, sets an
alias in the Models tab (through its confirmation dialog) and runs Export from the notebook
toolbar. Screenshots of each step, light and dark, go to ``docs/screenshots/sidebar-*.png``
(used by the README; ``NBMLOPS_SCREENSHOT_DIR`` sends them elsewhere).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("NBMLOPS_SCREENSHOT_DIR", REPO / "docs" / "screenshots"))
NOTEBOOK = "sidebar-demo.ipynb"
SIDEBAR = "#nbmlops-sidebar"
ROW = f"{SIDEBAR} .jp-nbmlops-tree-row"

CELLS = [
    "%load_ext nbmlops\n%mlops autolog on --experiment sidebar-demo",
    "from sklearn.datasets import make_classification\n"
    "from sklearn.model_selection import train_test_split\n"
    "X, y = make_classification(n_samples=300, n_features=6, random_state=0)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import f1_score\n"
    "logreg = LogisticRegression(C=1.0, max_iter=500).fit(X_train, y_train)\n"
    "f1_score(y_test, logreg.predict(X_test))",
    "from sklearn.tree import DecisionTreeClassifier\n"
    "tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_train, y_train)\n"
    "f1_score(y_test, tree.predict(X_test))",
    "from sklearn.model_selection import GridSearchCV\n"
    "search = GridSearchCV(DecisionTreeClassifier(random_state=0), {'max_depth': [2, 4]}, cv=2)\n"
    "search.fit(X_train, y_train).best_params_",
    "from nbmlops.registry import register_run\n"
    "import nbmlops\n"
    "fits = nbmlops.search_runs(experiment_names=['sidebar-demo'],\n"
    '                           filter_string="metrics.f1_score_X_test > 0 and "\n'
    "                                         \"tags.`nbmlops.run_type` = 'cell'\",\n"
    "                           order_by=['start_time'])\n"
    "[register_run(run_id, 'sidebar-model').version for run_id in fits.run_id]",
]
PROBE = "%%mlops run --name live-probe\nnbmlops.log_metric('probe', 1.0)"


def _notebook(cells: list[str]) -> dict[str, Any]:
    return {
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{i}",
                "metadata": {},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
            for i, source in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _command(page: Any, command: str, args: dict[str, Any] | None = None) -> Any:
    return page.evaluate(
        "([command, args]) => window.jupyterapp.commands.execute(command, args)",
        [command, args or {}],
    )


def _executed(page: Any, count: int, timeout_ms: int = 120_000) -> None:
    """The first ``count`` code cells show an execution number."""
    page.wait_for_function(
        """(count) => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
            return prompts.length >= count &&
                prompts.slice(0, count).every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        arg=count,
        timeout=timeout_ms,
    )


def _shot(target: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"sidebar-{name}.png"
    target.screenshot(path=str(path), animations="disabled")
    return path


def _open_sidebar(page: Any) -> None:
    tab = page.locator(".jp-SideBar [data-id='nbmlops-sidebar']").first
    tab.wait_for(timeout=30_000)
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    page.locator(SIDEBAR).wait_for(state="visible", timeout=10_000)


def _widen_sidebar(page: Any, width: int) -> None:
    """Drag the left area's split handle so the panel is ``width`` pixels wide."""
    left = page.locator("#jp-left-stack").bounding_box()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    if left is None or box is None:
        return
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(left["x"] + width, y, steps=5)
    page.mouse.up()


def _row(page: Any, name_prefix: str) -> Any:
    return page.locator(f"{ROW}[data-run-name^='{name_prefix}']").first


@pytest.mark.timeout(240)
def test_sidebar_runs_detail_compare_models_export(lab: Any, browser: Any) -> None:
    (lab.root / NOTEBOOK).write_text(json.dumps(_notebook(CELLS)))
    page = browser.new_page(viewport={"width": 1440, "height": 960})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(lab.notebook_url(NOTEBOOK))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=30_000)
    _command(page, "apputils:change-theme", {"theme": "JupyterLab Light"})
    _open_sidebar(page)
    _widen_sidebar(page, 400)
    sidebar = page.locator(SIDEBAR)
    # the server extension answered: version and store in the status line
    page.wait_for_selector(f"{SIDEBAR} .jp-nbmlops-store-line", timeout=30_000)
    assert "nbmlops" in sidebar.locator(".jp-nbmlops-store-line").inner_text()
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

    # ---- runs appear live as the cells execute
    _command(page, "notebook:run-all-cells")
    _executed(page, len(CELLS))
    _row(page, "cell[3]").wait_for(timeout=10_000)
    _row(page, "cell[4]").wait_for(timeout=10_000)
    session = _row(page, "sidebar-demo")
    assert session.get_attribute("aria-expanded") == "true"
    assert session.locator(".jp-nbmlops-badge").get_attribute("data-status") == "RUNNING"
    cell_row = _row(page, "cell[3]")
    assert cell_row.locator(".jp-nbmlops-badge").get_attribute("data-status") == "FINISHED"
    assert cell_row.locator(".jp-nbmlops-badge").inner_text() == "done"
    assert cell_row.get_attribute("aria-level") == "2"
    assert cell_row.locator(".jp-nbmlops-col-metric").inner_text().strip() != ""
    # the search cell's candidates are trials under it: closed by default, Right opens
    search_row = _row(page, "cell[5]")
    assert search_row.get_attribute("aria-expanded") == "false"
    search_row.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f"{ROW}[aria-level='3']", timeout=5_000)
    assert _row(page, "cell[5]").get_attribute("aria-expanded") == "true"

    # a run made by a newly executed cell shows up within 2 s of the cell finishing
    _command(page, "notebook:insert-cell-below")
    _command(page, "notebook:enter-edit-mode")
    page.keyboard.insert_text(PROBE)
    _command(page, "notebook:run-cell")
    _executed(page, len(CELLS) + 1)
    done = time.monotonic()
    _row(page, "live-probe").wait_for(timeout=2_000)
    assert time.monotonic() - done <= 2.0
    _shot(sidebar, "runs-light")

    # ---- the filter box uses the search language; a bad filter says why
    filter_box = sidebar.locator(".jp-nbmlops-filter")
    filter_box.fill("metrics.f1_score_X_test > 0")
    filter_box.press("Enter")
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{ROW}')].every("
        "r => (r.dataset.runName || '').startsWith('cell['))"
    )
    filter_box.fill("metrics.f1 >>> 1")
    filter_box.press("Enter")
    page.wait_for_selector(f"{SIDEBAR} .jp-nbmlops-filter-error:not(:empty)", timeout=10_000)
    filter_box.fill("")
    filter_box.press("Enter")
    _row(page, "live-probe").wait_for(timeout=10_000)

    # ---- keyboard: focus a row, Enter opens its detail view
    cell_row = _row(page, "cell[3]")
    cell_row.focus()
    page.keyboard.press("Enter")
    detail = page.locator(".jp-nbmlops-detail").first
    detail.locator(".jp-nbmlops-params").wait_for(timeout=15_000)
    assert "C" in detail.locator(".jp-nbmlops-params").inner_text()
    assert "LogisticRegression" in detail.locator(".jp-nbmlops-code").first.inner_text()
    assert "f1_score_X_test" in detail.locator(".jp-nbmlops-metrics").inner_text()
    detail.get_by_role("heading", name="Lineage").wait_for()
    _shot(page.locator(".jp-MainAreaWidget:has(.jp-nbmlops-detail)").first, "run-detail-light")

    # ---- the cell link scrolls the notebook to the cell that made the run
    detail.locator(".jp-nbmlops-go-to-cell").click()
    page.wait_for_function(
        """() => {
            const active = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active');
            return active && active.textContent.includes('LogisticRegression');
        }""",
        timeout=10_000,
    )

    # ---- multi-select two runs and compare them
    for name in ("cell[3]", "cell[4]"):
        _row(page, name).locator(".jp-nbmlops-check").check()
    compare_button = sidebar.locator(".jp-nbmlops-compare")
    assert compare_button.inner_text() == "Compare (2)"
    compare_button.click()
    view = page.locator(".jp-nbmlops-compare-view").first
    view.locator(".jp-nbmlops-diff").wait_for(timeout=15_000)
    assert "Parameters" in view.inner_text()
    assert view.locator(".jp-nbmlops-best").count() >= 1
    assert view.locator(".jp-nbmlops-diff-add").count() >= 1
    _shot(page.locator(".jp-MainAreaWidget:has(.jp-nbmlops-compare-view)").first, "compare-light")

    # ---- Models tab: set an alias (confirmed in a dialog) and see it with the audit log
    sidebar.locator("[data-tab='models']").click()
    model = sidebar.locator(".jp-nbmlops-model-item[data-model='sidebar-model']")
    model.wait_for(timeout=15_000)
    model.click()
    version_row = sidebar.locator(".jp-nbmlops-versions tr[data-version='1']")
    version_row.wait_for(timeout=10_000)
    version_row.get_by_role("button", name="Set an alias on version 1").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input[aria-label='Alias']").fill("champion")
    dialog.locator("input[aria-label='Reason (audit log)']").fill("best f1 in the sidebar test")
    dialog.get_by_role("button", name="Set alias").click()
    page.wait_for_function(
        """() => [...document.querySelectorAll("#nbmlops-sidebar .jp-nbmlops-versions tr[data-version='1'] .jp-nbmlops-chip")]
            .some(chip => chip.textContent.includes('@champion'))""",
        timeout=10_000,
    )
    sidebar.locator(".jp-nbmlops-audit summary").click()
    assert "best f1 in the sidebar test" in sidebar.locator(".jp-nbmlops-audit").inner_text()
    _shot(sidebar, "models-light")

    # ---- Export from the notebook toolbar, with its report
    _command(page, "notebook:enter-command-mode")
    page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-nbmlops-export-button button"
    ).first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_role("button", name="Export").click()
    report = page.locator(".jp-Dialog .jp-nbmlops-report")
    report.wait_for(timeout=120_000)
    title = page.locator(".jp-Dialog .jp-Dialog-header").inner_text()
    text = report.inner_text()
    if _export_available():
        assert title.startswith("Exported to"), (title, text)
    else:
        assert "not available" in text, (title, text)
    _shot(page.locator(".jp-Dialog-content"), "export-light")
    page.locator(".jp-Dialog").get_by_role("button", name="Close").click()

    # ---- dark theme: the panel follows JupyterLab's theme variables
    sidebar.locator("[data-tab='runs']").click()
    _command(page, "apputils:change-theme", {"theme": "JupyterLab Dark"})
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(400)
    background = sidebar.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")
    _shot(sidebar, "runs-dark")
    _command(page, "apputils:change-theme", {"theme": "JupyterLab Light"})
    assert not [e for e in errors if "nbmlops" in e.lower()], errors
    page.close()


def _export_available() -> bool:
    from nbmlops.server.services import _export_function

    return _export_function() is not None
