"""``nbmlops demo`` runs notebooks headless into the default store and reports what they made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbmlops


def _notebook(path: Path, *cells: str) -> None:
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "id": f"c{i}",
                        "metadata": {},
                        "source": source,
                        "outputs": [],
                        "execution_count": None,
                    }
                    for i, source in enumerate(cells)
                ],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )


def _demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NBMLOPS_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "nbmlops.cli", "demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_demo_runs_notebooks_in_order_into_the_nearest_store(tmp_path: Path) -> None:
    project = tmp_path / "project"
    books = project / "notebooks"
    books.mkdir(parents=True)
    (project / ".nbmlops").mkdir()  # the nearest store from the working directory
    _notebook(
        books / "00-first.ipynb",
        "import os, nbmlops\n"
        "nbmlops.set_experiment('demo-first')\n"
        "with nbmlops.start_run(run_name='one'):\n"
        "    nbmlops.log_param('notebook', os.environ['NBMLOPS_NOTEBOOK_PATH'])\n"
        "    nbmlops.log_metric('f1', 0.5)\n"
        "print('exported first.ipynb -> /tmp/somewhere/pkg (model x)')",
    )
    _notebook(
        books / "01-second.ipynb",
        "import nbmlops\n"
        "nbmlops.set_experiment('demo-second')\n"
        "for i in range(2):\n"
        "    with nbmlops.start_run(run_name=f'r{i}') as run:\n"
        "        nbmlops.log_metric('f1', 0.6 + i / 10)\n"
        "        nbmlops.log_text('x', 'model/meta.json')\n"
        "client = nbmlops.get_client()\n"
        "client.store.create_model_version('demo-model', run.info.run_id, 'model')\n"
        "client.set_registered_model_alias('demo-model', 'champion', 1)",
    )
    before = {p.name: p.read_text() for p in books.iterdir()}
    result = _demo(project)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    db = project / ".nbmlops" / "nbmlops.db"
    assert f"store: sqlite:///{db}" in out
    assert out.index("00-first.ipynb") < out.index("01-second.ipynb")
    assert "1 run  (demo-first: 1)" in out
    assert "2 runs  (demo-second: 2)" in out
    assert "demo-model" in out and "@champion=v1" in out
    assert "/tmp/somewhere/pkg" in out
    assert "3 runs from 2 notebook(s)" in out
    assert "jupyter lab notebooks" in out
    assert "Kernel is running" not in out + result.stderr
    # the runs know their notebook; the notebooks were not rewritten
    client = nbmlops.Client(f"sqlite:///{db}")
    run = client.search_runs(None, "run_name = 'one'")[0]
    assert run.data.params["notebook"] == str(books / "00-first.ipynb")
    assert {p.name: p.read_text() for p in books.iterdir()} == before


def test_demo_reports_a_failing_notebook_and_goes_on(tmp_path: Path) -> None:
    books = tmp_path / "nbs"
    books.mkdir()
    _notebook(books / "a-broken.ipynb", "raise ValueError('broken on purpose')")
    _notebook(books / "b-fine.ipynb", "print('fine')")
    result = _demo(tmp_path, "--notebooks", str(books), "--tracking-uri", str(tmp_path / "s"))
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "ValueError: broken on purpose" in result.stdout
    assert "b-fine.ipynb" in result.stdout and "failed: a-broken.ipynb" in result.stdout


def test_demo_without_notebooks_is_a_usage_error(tmp_path: Path) -> None:
    result = _demo(tmp_path)
    assert result.returncode == 2
    assert "no notebooks folder" in result.stderr
