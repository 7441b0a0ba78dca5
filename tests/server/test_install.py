"""The installed package registers both halves: ``jupyter labextension list`` and
``jupyter server extension list`` show nbmlops enabled and OK."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbmlops

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(*args: str) -> str:
    jupyter = Path(sys.executable).with_name("jupyter")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_")}
    result = subprocess.run(
        [str(jupyter), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    return ANSI.sub("", result.stdout + result.stderr)


def test_labextension_is_installed_enabled_and_ok() -> None:
    output = _jupyter("labextension", "list")
    line = next((x for x in output.splitlines() if x.strip().startswith("nbmlops ")), None)
    assert line is not None, output
    assert f"nbmlops v{nbmlops.__version__}" in line
    assert "enabled" in line and "OK" in line, line


def test_server_extension_is_enabled_and_ok() -> None:
    output = _jupyter("server", "extension", "list")
    assert re.search(r"nbmlops\.server\s+enabled", output), output
    assert re.search(rf"nbmlops\.server\s+{re.escape(nbmlops.__version__)}\s+OK", output), output


def test_frontend_and_python_versions_agree() -> None:
    """The panel compares its version with the server's: they must be released together."""
    import json

    root = Path(__file__).resolve().parents[2] / "labextension"
    package = json.loads((root / "package.json").read_text())
    assert package["version"] == nbmlops.__version__
    context = (root / "src" / "context.ts").read_text()
    assert f"FRONTEND_VERSION = '{nbmlops.__version__}'" in context
    from nbmlops.server import API_VERSION

    assert f"API_VERSION = {API_VERSION};" in context
