"""The inline panels in a real JupyterLab, in headless Chromium.

Opens ``notebooks/03-compare-and-registry.ipynb``, runs it, and checks in the DOM that the
compare cell rendered as a live widget (not the static fallback) with its table text and
the highlighted differing param; clicks through a registry action; and saves a screenshot
of each panel in the light and the dark theme under ``docs/screenshots/`` (used by the
README). ``NBMLOPS_SCREENSHOT_DIR`` sends the screenshots elsewhere.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "03-compare-and-registry.ipynb"
SHOTS = Path(os.environ.get("NBMLOPS_SCREENSHOT_DIR", REPO / "docs" / "screenshots"))
PANELS = ("runs", "compare", "detail", "registry")
WIDGET = ".jp-OutputArea-output .jupyter-widgets.nbm-widget"


def _command(page: Any, command: str, args: dict[str, Any] | None = None) -> None:
    """Start a JupyterLab command (not awaited: callers wait for its effect in the DOM)."""
    page.evaluate(
        "([command, args]) => { window.jupyterapp.commands.execute(command, args); }",
        [command, args or {}],
    )


def _notebook_id(page: Any, name: str) -> str:
    """The DOM id of the notebook panel showing ``name`` (other notebooks may be open too:
    the lab server is shared with the other UI tests)."""
    page.wait_for_function(
        "(name) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return !!w && !!w.context && w.context.path.endsWith(name) && !!w.id; }",
        arg=name,
        timeout=60_000,
    )
    return str(page.evaluate("() => window.jupyterapp.shell.currentWidget.id"))


def _wait_idle(page: Any, panel_id: str, timeout_s: float = 120) -> None:
    """Every code cell of the notebook has run: a number in each prompt, none pending."""
    script = (
        "(id) => [...document.getElementById(id)"
        ".querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent)"
    )
    deadline = time.monotonic() + timeout_s
    prompts: list[str] = []
    while time.monotonic() < deadline:
        prompts = page.evaluate(script, panel_id)
        if prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts):
            return
        page.wait_for_timeout(500)
    shot = Path(tempfile.gettempdir()) / "nbmlops-ui-failure.png"
    page.screenshot(path=str(shot))  # for whoever debugs it
    raise AssertionError(f"cells did not finish: {prompts} (screenshot: {shot})")


def _wait_kernel(page: Any) -> None:
    """The current notebook's kernel is connected and idle (commands sent earlier are lost)."""
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel;"
        " return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }",
        timeout=90_000,
    )


def _panel(page: Any, notebook: str, kind: str) -> Any:
    """The first ``kind`` panel widget in notebook panel ``notebook`` (a DOM id)."""
    return page.locator(f"#{notebook} {WIDGET}.nbm-{kind}").first


def _shoot(page: Any, notebook: str, theme: str) -> list[Path]:
    """Screenshot every panel of the notebook into ``SHOTS/<kind>-<theme>.png``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    viewport = page.viewport_size
    for kind in PANELS:
        target = SHOTS / f"{kind}-{theme}.png"
        panel = _panel(page, notebook, kind)
        box = panel.bounding_box()
        assert box is not None, f"{kind} panel not rendered"
        # the notebook scrolls inside the page: make the page tall enough for the whole panel
        page.set_viewport_size({"width": viewport["width"], "height": int(box["height"]) + 400})
        panel.scroll_into_view_if_needed()
        page.wait_for_timeout(200)
        panel.screenshot(path=str(target), animations="disabled")
        saved.append(target)
    page.set_viewport_size(viewport)
    return saved


def _theme(page: Any, light: bool) -> None:
    name = "JupyterLab Light" if light else "JupyterLab Dark"
    _command(page, "apputils:change-theme", {"theme": name})
    flag = "true" if light else "false"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{flag}'")
    page.wait_for_timeout(500)  # the theme's stylesheet applies


@pytest.mark.timeout(240)
def test_panels_render_as_widgets_in_jupyterlab(lab: Any, browser: Any, copy_notebook: Any) -> None:
    name = copy_notebook(NOTEBOOK)
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    notebook = _notebook_id(page, name)
    left_was_open = page.locator("#jp-left-stack").is_visible()
    try:
        if left_was_open:
            _command(page, "application:toggle-left-area")  # more width for the panels
        _check_panels(page, notebook, errors)
    finally:
        _leave_lab_as_found(page, left_was_open)
        page.close()


def _leave_lab_as_found(page: Any, left_was_open: bool) -> None:
    """The lab server is shared with the other UI tests: close this notebook (without a
    save dialog) and stop its kernel, reopen the left area, back to the light theme."""
    page.evaluate(
        """() => { const w = window.jupyterapp.shell.currentWidget;
                   if (w && w.sessionContext) { w.sessionContext.shutdown(); }
                   if (w) { w.dispose(); } }"""
    )
    if left_was_open and not page.locator("#jp-left-stack").is_visible():
        _command(page, "application:toggle-left-area")
    _theme(page, light=True)
    page.wait_for_timeout(1_000)  # let the workspace save the layout


def _check_panels(page: Any, notebook: str, errors: list[str]) -> None:
    """Run the notebook, check the panels in the DOM, click an action, take screenshots."""
    _theme(page, light=True)
    _wait_kernel(page)
    _command(page, "notebook:run-all-cells")
    _wait_idle(page, notebook)

    # the compare cell rendered the live widget, not the static fallback
    compare = _panel(page, notebook, "compare")
    compare.wait_for(timeout=30_000)
    assert compare.locator(".widget-html").count() > 3
    params = compare.locator(".nbm-params")
    assert "1 differ" in params.inner_text()
    diff_row = params.locator("tr.nbm-diff").first
    assert diff_row.locator("td").first.inner_text().strip() == "≠alpha"
    cells = [c.strip() for c in diff_row.locator("td").all_inner_texts()]
    assert cells[1:] == ["0.0001", "0.01"]
    header = compare.locator(".nbm-params thead").inner_text()
    assert "1. sgd-small-alpha" in header and "2. sgd-large-alpha" in header
    background = diff_row.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")  # highlighted
    best = compare.locator(".nbm-metrics .nbm-bestcell")
    assert best.count() == 2 and "★" in best.first.inner_text()
    assert compare.locator("img[alt='history of val_loss']").count() == 1
    assert compare.locator(".nbm-dl-add").count() >= 1  # the code diff

    # the other panels are live widgets too
    runs = _panel(page, notebook, "runs")
    assert "sgd-small-alpha" in runs.inner_text()
    assert _panel(page, notebook, "detail").locator("img[alt='figures/figure-1.png']").count() == 1
    registry = _panel(page, notebook, "registry")
    assert "churn-panels" in registry.inner_text()

    # a registry action: asks first, then reports inline
    registry.get_by_label("version", exact=True).select_option(label="v1")
    registry.get_by_role("button", name="Archive").click()
    registry.get_by_role("button", name="Confirm").click()
    registry.locator(".nbm-msg-ok").wait_for(timeout=15_000)
    assert "churn-panels v1 archived" in registry.locator(".nbm-msg-ok").inner_text()

    light = _shoot(page, notebook, "light")
    _theme(page, light=False)
    panel_bg = _panel(page, notebook, "compare").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert panel_bg != "rgb(255, 255, 255)"  # the panel follows the dark theme
    dark = _shoot(page, notebook, "dark")
    assert all(p.stat().st_size > 5_000 for p in light + dark)
    assert not [e for e in errors if "nbm" in e.lower()], errors
