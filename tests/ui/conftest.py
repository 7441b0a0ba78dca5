"""A real JupyterLab server and Debian's Chromium (driven by Python Playwright) for UI tests.

The server runs as in production: ``jupyter lab`` from this environment, started in a temp
directory (so the installed package is imported, not the checkout's working directory),
with temp workspaces and user-settings folders, a token, the news toast off, notebook
windowing off (every cell stays in the DOM) and the app object exposed to the page so
tests can run JupyterLab commands. See ``../shared/NOTES-jupyterlab-build.md``.

Browser: ``/usr/bin/chromium`` only (never ``playwright install``). In CI (``CI=true``) a
missing browser, Playwright or JupyterLab fails the tests; on a developer machine the tests
skip with the reason.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere, saying what is missing and how to get it."""
    if IN_CI:
        pytest.fail(f"UI tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"UI tests skipped on this machine: {reason}")


def _check_tools() -> None:
    if not CHROMIUM.exists():
        _unavailable(
            f"{CHROMIUM} is missing (install Debian's chromium: bash .ci/setup-chromium.sh)"
        )
    for module, package in (("playwright", "playwright"), ("jupyterlab", "jupyterlab>=4.6.4")):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"{module} is not installed (pip install '{package}')")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_settings(settings: Path) -> None:
    """User settings: no news toast, no notebook windowing, no kernel-choice dialog."""
    files: dict[str, dict[str, Any]] = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
            "windowingMode": "none",
        },
        "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {
            "theme": "JupyterLab Light",
        },
    }
    for name, content in files.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content))


class Lab:
    """A running ``jupyter lab``: its root folder, URL and token."""

    def __init__(self, root: Path, url: str, token: str, process: subprocess.Popen[bytes]):
        self.root = root
        self.url = url
        self.token = token
        self.process = process

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` on a free port with a throwaway nbmlops store."""
    _check_tools()
    base = tmp_path_factory.mktemp("lab")
    root, workspaces, settings = base / "root", base / "workspaces", base / "settings"
    for folder in (root, workspaces, settings):
        folder.mkdir()
    _write_settings(settings)
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    env["NBMLOPS_TRACKING_URI"] = f"sqlite:///{base / 'store' / 'nbmlops.db'}"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MPLBACKEND", None)  # the kernel uses the inline backend, as in real use
    env["JUPYTER_CONFIG_DIR"] = str(base / "jupyter-config")
    log = (base / "lab.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={workspaces}",
        f"--LabApp.user_settings_dir={settings}",
        "--LabApp.expose_app_in_browser=True",
    ]
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            text = (base / "lab.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"jupyter lab did not start:\n{text}", pytrace=False)
        time.sleep(0.3)
    try:
        yield Lab(root, url, token, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright."""
    _check_tools()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def copy_notebook(lab: Lab) -> Any:
    """Copy a notebook from the checkout into the server's root; returns its name."""

    def copy(source: Path) -> str:
        shutil.copy(source, lab.root / source.name)
        return source.name

    return copy
