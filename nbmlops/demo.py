"""``nbmlops demo``: run the example notebooks headless and say what they produced.

The notebooks of ``notebooks/`` (or ``--notebooks DIR``) run in name order through nbclient,
each in its own kernel started in the notebook's folder, with

* ``NBMLOPS_TRACKING_URI`` — the embedded default store: ``--tracking-uri``, else the
  ``NBMLOPS_TRACKING_URI`` already set, else the nearest ``.nbmlops/`` folder above the working
  directory (created in the working directory when there is none);
* ``NBMLOPS_NOTEBOOK_PATH`` — the notebook's own path, so its runs know their notebook (the
  JupyterLab sidebar then shows them when the notebook is opened);
* ``MPLBACKEND=Agg``.

The notebooks are executed in memory: their files are not rewritten. Afterwards the command
prints, per notebook, its status, time and the runs it logged (by experiment), then the
registered models with their aliases, and the packages exported (read from the
``exported <notebook> -> <folder>`` lines that ``nbmlops.export_notebook`` reports print).
Exit status 0 when every notebook ran, 1 when one failed (the others still run unless
``--stop-on-error``), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from nbmlops.errors import InvalidArgument, NotFound

#: Seconds a single cell may run.
DEFAULT_CELL_TIMEOUT = 900
_EXPORTED = re.compile(r"^exported \S+ -> (\S+)", re.MULTILINE)


@dataclasses.dataclass
class NotebookResult:
    """What one notebook did."""

    path: Path
    seconds: float
    error: str | None
    runs_by_experiment: dict[str, int]
    exported: list[str]

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def runs(self) -> int:
        return sum(self.runs_by_experiment.values())


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``nbmlops demo``."""
    parser.add_argument(
        "--notebooks",
        metavar="DIR",
        default=None,
        help="folder of notebooks to run in name order (default: ./notebooks)",
    )
    parser.add_argument(
        "--only",
        metavar="GLOB",
        action="append",
        default=None,
        help="run only the notebooks whose file name matches (repeatable), e.g. '0[0-2]*'",
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=int,
        default=DEFAULT_CELL_TIMEOUT,
        help=f"seconds a cell may run (default {DEFAULT_CELL_TIMEOUT})",
    )
    parser.add_argument(
        "--kernel", metavar="NAME", default="python3", help="kernel to run them with (python3)"
    )
    parser.add_argument(
        "--stop-on-error", action="store_true", help="stop at the first notebook that fails"
    )


def find_notebooks(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The ``.ipynb`` files directly in ``folder``, by name (checkpoints skipped)."""
    if not folder.is_dir():
        raise NotFound(
            f"no notebooks folder at {folder}; run from the nbmlops checkout or pass --notebooks DIR"
        )
    found = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        found = [p for p in found if any(p.match(pattern) for pattern in only)]
    if not found:
        raise NotFound(f"no notebooks to run in {folder}")
    return found


def store_uri(explicit: str | None) -> str:
    """The store the notebooks write to (see the module docstring)."""
    from nbmlops.store import default_tracking_uri, normalize_uri

    return normalize_uri(explicit or default_tracking_uri(Path.cwd()))


def _outputs_text(notebook: Any) -> str:
    parts: list[str] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("text")
            if text:
                parts.append(text if isinstance(text, str) else "".join(text))
            data = output.get("data", {}).get("text/plain")
            if data:
                parts.append(data if isinstance(data, str) else "".join(data))
    return "\n".join(parts)


def _error_summary(exc: BaseException) -> str:
    name = getattr(exc, "ename", None) or type(exc).__name__
    value = getattr(exc, "evalue", None) or str(exc)
    lines = [line for line in str(value).splitlines() if line.strip()]
    return f"{name}: {lines[-1] if lines else ''}".strip()


def run_notebook(path: Path, uri: str, timeout: int, kernel: str) -> tuple[Any, str | None, float]:
    """Execute one notebook in a fresh kernel; returns (executed notebook, error, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    env = {
        **os.environ,
        "NBMLOPS_TRACKING_URI": uri,
        "NBMLOPS_NOTEBOOK_PATH": str(path),
        "MPLBACKEND": "Agg",
    }
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=kernel,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    error = None
    try:
        # The kernels' own start-up chatter (not cell output) stays out of the report.
        client.execute(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except Exception as exc:  # a failing cell: report it and go on with the others
        error = _error_summary(exc)
    return notebook, error, time.perf_counter() - started


def _runs_between(client: Any, start_ms: int, end_ms: int) -> dict[str, int]:
    names = {e.experiment_id: e.name for e in client.search_experiments()}
    counts: Counter[str] = Counter()
    token = None
    while True:
        page = client.search_runs(
            None,
            f"start_time >= {start_ms} and start_time <= {end_ms}",
            max_results=5000,
            page_token=token,
        )
        for run in page:
            counts[names.get(run.info.experiment_id, run.info.experiment_id)] += 1
        token = page.token
        if not token:
            return dict(counts)


def run(args: argparse.Namespace) -> int:
    """``nbmlops demo``: run the notebooks, then report."""
    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        raise InvalidArgument(
            "nbmlops demo needs nbclient, nbformat and ipykernel: pip install 'nbmlops[jupyter]'"
        ) from None
    from nbmlops.client import Client
    from nbmlops.store import resolve_store

    folder = Path(args.notebooks or "notebooks").expanduser().absolute()
    notebooks = find_notebooks(folder, args.only)
    uri = store_uri(args.tracking_uri)
    print(f"nbmlops demo: {len(notebooks)} notebook(s) from {folder}")
    print(f"store: {uri}")
    client = Client(store=resolve_store(uri))
    results: list[NotebookResult] = []
    width = max(len(p.name) for p in notebooks) + 2
    for path in notebooks:
        print(f"  {path.name:.<{width}} ", end="", flush=True)
        start_ms = int(time.time() * 1000)
        executed, error, seconds = run_notebook(path, uri, args.timeout, args.kernel)
        end_ms = int(time.time() * 1000)
        runs = _runs_between(client, start_ms, end_ms)
        exported = _EXPORTED.findall(_outputs_text(executed))
        result = NotebookResult(path, seconds, error, runs, exported)
        results.append(result)
        by_experiment = ", ".join(f"{name}: {n}" for name, n in sorted(runs.items()))
        state = "ok" if result.ok else "FAILED"
        print(
            f"{state:<6} {seconds:6.1f} s  {result.runs:4d} run{'s' if result.runs != 1 else ''}"
            + (f"  ({by_experiment})" if by_experiment else "")
        )
        if error:
            print(f"      {error}")
            if args.stop_on_error:
                break
    _report_models(client)
    exported = [e for r in results for e in r.exported]
    print("exported packages:" if exported else "exported packages: none")
    for package in exported:
        print(f"  {package}")
    total = sum(r.runs for r in results)
    failed = [r.path.name for r in results if not r.ok]
    print(
        f"{total} runs from {len(results)} notebook(s)"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    print(
        "See them in JupyterLab: jupyter lab "
        f"{os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else folder}"
        "  (open a notebook, then the MLOps tab in the left sidebar)"
    )
    client.close()
    return 1 if failed else 0


def _report_models(client: Any) -> None:
    models = client.search_registered_models()
    if not models:
        print("registered models: none")
        return
    print("registered models:")
    for model in models:
        aliases = " ".join(f"@{a}=v{v}" for a, v in sorted(model.aliases.items()))
        latest = f"v{model.latest_version}" if model.latest_version else "no versions"
        print(f"  {model.name:<24} latest {latest:<5} {aliases}".rstrip())
