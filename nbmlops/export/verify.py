"""``--verify``: does the exported package reproduce the notebook?

1. **The notebook's run** (the *source run*): the run given with ``--run``/``--from-run``;
   else the latest autologged cell run of this notebook whose code is exactly the current
   code of the cell that fits the model (a run of an older version of the cell does not
   count). With no such run, the notebook is executed with nbclient into a temporary store
   (autologging switched on if the notebook does not do it) and that run is used.
2. **The exported run**: ``python -m PKG.train`` in a fresh interpreter (same Python, same
   environment, default parameters = the notebook's values), logging into a temporary
   store and writing a held-out sample; then ``python -m PKG.infer`` on that sample.
3. **Comparison**: every metric of the source run (its fit metrics and those of the cells
   that evaluated the model) against the exported run's, within ``rtol``/``atol``
   (``math.isclose``); the training-data fingerprints; and the sha256 of the predictions the
   notebook's own model and the exported model make on the held-out sample.
4. **Record**: tag ``nbmlops.export.verified=true|false`` and artifacts
   ``nbmlops/export/verification.json`` / ``.txt`` on the source run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nbmlops.errors import InvalidArgument, NbMlopsError, NotFound
from nbmlops.export.report import ExportReport, VerificationResult, VerificationRow

__all__ = ["DEFAULT_ATOL", "DEFAULT_RTOL", "find_source_run", "verify_export"]

#: Default tolerances: tight enough that only floating-point noise passes; deterministic
#: pipelines reproduce exactly.
DEFAULT_RTOL = 1e-9
DEFAULT_ATOL = 1e-12
EVALUATES_TAG = "nbmlops.evaluates"
VERIFIED_TAG = "nbmlops.export.verified"
_MAX_SCAN = 20_000


def _client_for(uri: str) -> Any:
    from nbmlops.client import Client

    return Client(uri)


def store_exists(uri: str) -> bool:
    """Whether ``uri`` names a store that already exists (never creates one)."""
    from nbmlops.store import sqlite_path_from_uri

    path = sqlite_path_from_uri(uri)
    if path is None:
        return True  # memory: and server stores exist as long as they answer
    path = path.expanduser().absolute()
    return path.is_file() and path.stat().st_size > 0


def _iterate_runs(client: Any, filter_string: str) -> Iterator[Any]:
    token = None
    seen = 0
    while True:
        page = client.search_runs(None, filter_string, ["start_time DESC"], 1000, token)
        yield from page
        seen += len(page)
        token = page.token
        if not token or seen >= _MAX_SCAN:
            return


def find_source_run(client: Any, notebook: Path, code_sha256: str) -> Any | None:
    """The newest autologged cell run of ``notebook`` whose code has ``code_sha256``."""
    candidates = {str(notebook), str(notebook.absolute())}
    with contextlib.suppress(OSError):
        candidates.add(str(notebook.resolve()))
    same_name = None
    for run in _iterate_runs(client, "tags.`nbmlops.run_type` = 'cell'"):
        source = run.info.source
        if source.code_sha256 != code_sha256:
            continue
        if source.path in candidates:
            return run
        if same_name is None and Path(source.path).name == notebook.name:
            same_name = run
    return same_name


def _fit_run(client: Any, run: Any) -> Any:
    """The run the model was fitted in (an evaluating cell's run points at it)."""
    target = run.data.tags.get(EVALUATES_TAG)
    if target:
        with contextlib.suppress(NotFound):
            return client.get_run(target)
    return run


def _notebook_metrics(client: Any, fit_run: Any) -> dict[str, float]:
    metrics = dict(fit_run.data.metrics)
    evaluating = list(_iterate_runs(client, f"tags.`{EVALUATES_TAG}` = '{fit_run.info.run_id}'"))
    for run in sorted(evaluating, key=lambda r: r.info.start_time):
        metrics.update(run.data.metrics)
    return metrics


def _training_inputs(run: Any) -> dict[str, str]:
    return {d.name: d.digest for d in run.inputs if d.context == "training"}


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def _subprocess_env(store_uri: str, out_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("NBMLOPS_NOTEBOOK_PATH", "JPY_SESSION_NAME", "NBMLOPS_EXPERIMENT_NAME"):
        env.pop(key, None)
    env["NBMLOPS_TRACKING_URI"] = store_uri
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(out_dir), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    try:
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, "", f"timed out after {timeout:.0f} s"
    return done.returncode, done.stdout, done.stderr


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def execute_notebook(path: Path, store_uri: str, timeout: float) -> None:
    """Run the notebook with nbclient, autologging into ``store_uri`` (from its folder)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    if "autolog on" not in code and "nbmlops.autolog(" not in code:
        notebook.cells.insert(0, nbformat.v4.new_code_cell("%load_ext nbmlops\n%mlops autolog on"))
    env = dict(os.environ)
    env.update(
        {
            "NBMLOPS_TRACKING_URI": store_uri,
            "NBMLOPS_NOTEBOOK_PATH": str(path.absolute()),
            "MPLBACKEND": "Agg",
        }
    )
    env.pop("JPY_SESSION_NAME", None)
    client = NotebookClient(
        notebook,
        timeout=int(timeout),
        kernel_name="python3",
        resources={"metadata": {"path": str(path.absolute().parent)}},
    )
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        first = str(exc).strip().splitlines()
        raise InvalidArgument(
            f"executing {path} to get a reference run failed: {first[-1] if first else exc}"
        ) from None


def verify_export(
    report: ExportReport,
    *,
    notebook: Path | None,
    source_run_id: str | None = None,
    tracking_uri: str | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    timeout: float = 1800.0,
    record: bool = True,
    execute_if_missing: bool = True,
) -> VerificationResult:
    """Verify the package described by ``report`` (see the module docstring)."""
    from nbmlops.store import default_tracking_uri, normalize_uri

    started = time.perf_counter()
    messages: list[str] = []
    start_dir = notebook.parent if notebook is not None else Path.cwd()
    uri = normalize_uri(tracking_uri or default_tracking_uri(start_dir))
    with tempfile.TemporaryDirectory(prefix="nbmlops-verify-") as scratch_name:
        scratch = Path(scratch_name)
        executed = False
        client = _client_for(uri) if store_exists(uri) else None
        source_run = None
        if source_run_id is not None:
            if client is None:
                raise NotFound(f"no nbmlops store at {uri} to find run {source_run_id} in")
            source_run = client.get_run(source_run_id)
        elif client is not None and notebook is not None and report.train_cell_sha256:
            source_run = find_source_run(client, notebook, report.train_cell_sha256)
        if source_run is None:
            if notebook is None or not execute_if_missing:
                return VerificationResult(
                    ok=False,
                    rows=[],
                    source_run_id=None,
                    source_store=uri,
                    rtol=rtol,
                    atol=atol,
                    error="no recorded run of the notebook's current training cell to compare with",
                    seconds=time.perf_counter() - started,
                )
            uri = normalize_uri(f"sqlite:///{scratch / 'notebook-store' / 'nbmlops.db'}")
            messages.append(
                f"no autologged run of the current training cell in the store; executed "
                f"{notebook.name} with nbclient into a temporary store"
            )
            execute_notebook(notebook, uri, timeout)
            executed = True
            client = _client_for(uri)
            source_run = find_source_run(client, notebook, report.train_cell_sha256 or "")
            if source_run is None:
                return VerificationResult(
                    ok=False,
                    rows=[],
                    source_run_id=None,
                    source_store=uri,
                    notebook_executed=True,
                    rtol=rtol,
                    atol=atol,
                    messages=messages,
                    error=(
                        "the executed notebook recorded no run for the training cell (is the "
                        "model fitted with scikit-learn while autolog is on?)"
                    ),
                    seconds=time.perf_counter() - started,
                )
        assert client is not None
        fit_run = _fit_run(client, source_run)
        result = _compare(report, client, fit_run, scratch, rtol, atol, timeout, messages)
        result.source_store = uri
        result.notebook_executed = executed
        result.seconds = time.perf_counter() - started
        if record:
            try:
                _record(client, fit_run.info.run_id, report, result)
                result.recorded = True
            except NbMlopsError as exc:
                result.messages.append(f"could not record the result on the run: {exc}")
            if executed:
                result.messages.append(
                    "the result was recorded on the run in the temporary store (discarded); "
                    "run the notebook with autolog on to keep a reference run"
                )
        return result


def _compare(
    report: ExportReport,
    client: Any,
    fit_run: Any,
    scratch: Path,
    rtol: float,
    atol: float,
    timeout: float,
    messages: list[str],
) -> VerificationResult:
    from nbmlops.store import normalize_uri

    out_dir = Path(report.out_dir)
    store_uri = normalize_uri(f"sqlite:///{scratch / 'export-store' / 'nbmlops.db'}")
    env = _subprocess_env(store_uri, out_dir)
    holdout = scratch / "holdout.csv"
    code, stdout, stderr = _run(
        [
            "-m",
            f"{report.package}.train",
            "--tracking-uri",
            store_uri,
            "--sample-out",
            str(holdout),
        ],
        out_dir,
        env,
        timeout,
    )
    base = {
        "source_run_id": fit_run.info.run_id,
        "source_store": None,
        "rtol": rtol,
        "atol": atol,
        "messages": messages,
    }
    if code != 0:
        return VerificationResult(
            ok=False,
            rows=[],
            error=f"the exported train.py failed (exit {code}):\n{_tail(stderr or stdout)}",
            **base,
        )
    exported_client = _client_for(store_uri)
    runs = [r for r in _iterate_runs(exported_client, "tags.`nbmlops.run_type` = 'export-train'")]
    if not runs:
        return VerificationResult(
            ok=False, rows=[], error="the exported train.py logged no run", **base
        )
    exported = runs[0]
    rows: list[VerificationRow] = []
    notebook_metrics = _notebook_metrics(client, fit_run)
    exported_metrics = exported.data.metrics
    for key in sorted(notebook_metrics):
        ours = notebook_metrics[key]
        theirs = exported_metrics.get(key)
        if theirs is None:
            rows.append(
                VerificationRow("metric", key, ours, None, False, "not produced by the export")
            )
        else:
            rows.append(
                VerificationRow("metric", key, ours, theirs, _close(ours, theirs, rtol, atol))
            )
    if not notebook_metrics:
        messages.append("the notebook's run has no metrics to compare")
    notebook_inputs = _training_inputs(fit_run)
    exported_inputs = _training_inputs(exported)
    for name in sorted(set(notebook_inputs) & set(exported_inputs)):
        same = notebook_inputs[name] == exported_inputs[name]
        rows.append(
            VerificationRow(
                "data", name, notebook_inputs[name][:12], exported_inputs[name][:12], same
            )
        )
    rows.append(
        _prediction_row(
            report, client, fit_run, exported, holdout, scratch, store_uri, env, timeout, messages
        )
    )
    compared = [r for r in rows if r.ok is not None]
    ok = bool(notebook_metrics) and all(r.ok for r in compared)
    return VerificationResult(ok=ok, rows=rows, exported_run_id=exported.info.run_id, **base)


def _prediction_row(
    report: ExportReport,
    client: Any,
    fit_run: Any,
    exported: Any,
    holdout: Path,
    scratch: Path,
    store_uri: str,
    env: dict[str, str],
    timeout: float,
    messages: list[str],
) -> VerificationRow:
    from nbmlops.export import runtime
    from nbmlops.models import load_model

    name = f"sha256 on {report.holdout_x or 'held-out'} sample"
    if not holdout.is_file():
        return VerificationRow("predictions", name, None, None, None, "no held-out sample")
    predictions = scratch / "predictions.csv"
    code, stdout, stderr = _run(
        [
            "-m",
            f"{report.package}.infer",
            "--model-uri",
            f"runs:/{exported.info.run_id}/model",
            "--input",
            str(holdout),
            "--output",
            str(predictions),
            "--tracking-uri",
            store_uri,
        ],
        Path(report.out_dir),
        env,
        timeout,
    )
    if code != 0:
        return VerificationRow(
            "predictions", name, None, None, False, f"infer.py failed: {_tail(stderr or stdout, 3)}"
        )
    exported_client = _client_for(store_uri)
    inference = list(_iterate_runs(exported_client, "tags.`nbmlops.run_type` = 'inference'"))
    exported_digest = (
        inference[0].data.tags.get("nbmlops.predictions_sha256") if inference else None
    )
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = load_model(f"runs:/{fit_run.info.run_id}/model", client=client)
            frame = runtime.read_table(holdout)
            data: Any = frame
            if (
                model.signature is None
                and getattr(model.raw_model, "feature_names_in_", None) is None
                and all(str(c).isdigit() for c in frame.columns)
            ):
                data = frame.to_numpy()
            notebook_digest = runtime.prediction_digest(model.predict(data))
    except (NbMlopsError, AttributeError, ImportError, ModuleNotFoundError) as exc:
        messages.append(
            f"the notebook's model could not be loaded for the prediction check ({exc})"
        )
        return VerificationRow(
            "predictions", name, None, exported_digest, None, "notebook model unavailable"
        )
    except Exception as exc:  # unpickling a notebook-defined class, a failing predict...
        messages.append(f"the notebook's model could not predict the held-out sample ({exc!r})")
        return VerificationRow(
            "predictions", name, None, exported_digest, None, "notebook model unavailable"
        )
    return VerificationRow(
        "predictions", name, notebook_digest, exported_digest, notebook_digest == exported_digest
    )


def _record(client: Any, run_id: str, report: ExportReport, result: VerificationResult) -> None:
    client.set_tag(run_id, VERIFIED_TAG, "true" if result.ok else "false")
    client.set_tag(run_id, "nbmlops.export.package", report.package)
    payload = {"verification": result.to_dict(), "export": report.to_dict()}
    payload["export"]["verification"] = None
    client.log_text(
        run_id, json.dumps(payload, indent=1, default=str), "nbmlops/export/verification.json"
    )
    client.log_text(run_id, str(result) + "\n", "nbmlops/export/verification.txt")
    client.flush()
