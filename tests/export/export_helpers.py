"""Helpers shared by the export tests: fixture notebooks, running generated packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def fixture(name: str) -> Path:
    """Path of a committed fixture notebook."""
    return FIXTURES / f"{name}.ipynb"


def write_notebook(path: Path, cells: list[str], tags: dict[int, list[str]] | None = None) -> Path:
    """A small nbformat 4 notebook of code cells (``tags``: cell index -> tags)."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for index, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        cell.id = f"c{index}"
        if tags and index in tags:
            cell.metadata["tags"] = tags[index]
        notebook.cells.append(cell)
    nbformat.write(notebook, path)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: no notebook identity, the repo importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NBMLOPS_NOTEBOOK_PATH", "JPY_SESSION_NAME")
    }
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def run_python(
    args: list[str], cwd: Path, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python *args`` in ``cwd`` (captured, never raising on failure)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ruff_syntax(path: Path) -> subprocess.CompletedProcess[str]:
    """ruff's syntax and undefined-name checks on generated code (isolated from repo config)."""
    ruff = Path(sys.executable).with_name("ruff")
    command = [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]
    return subprocess.run(
        [*command, "check", "--isolated", "--no-cache", "--select", "E9,F63,F7,F82", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
