"""``export_notebook``: read -> analyse -> generate -> check -> write (-> verify)."""

from __future__ import annotations

import ast
import importlib.util
import json
import keyword
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from nbmlops.errors import InvalidArgument
from nbmlops.export.analysis import Analysis, ExportError, analyze
from nbmlops.export.codegen import generate
from nbmlops.export.reader import NotebookSource, read_notebook, read_run_lineage
from nbmlops.export.report import CellReport, ExportReport

__all__ = ["REPORT_FILE", "default_package_name", "export_notebook", "validate_package_name"]

REPORT_FILE = "export-report.json"
#: Top-level files an export writes next to the package (replaced with ``force=True``).
_TOP_FILES = ("README.md", "requirements.txt", REPORT_FILE)
_SHADOWED = {"nbmlops", "sklearn", "pandas", "numpy", "scipy", "joblib", "test", "tests"}


def validate_package_name(name: Any) -> str:
    """A package name must be a Python identifier (no path parts) that shadows nothing."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"invalid package name {name!r}: give a Python identifier")
    if "/" in name or "\\" in name or name in (".", "..") or "." in name:
        raise InvalidArgument(
            f"invalid package name {name!r}: a package name has no path parts (use --out for "
            "the folder)"
        )
    if not name.isidentifier() or keyword.iskeyword(name) or not name.isascii():
        raise InvalidArgument(
            f"invalid package name {name!r}: use a Python identifier (ASCII letters, digits "
            "and _, not starting with a digit, not a keyword)"
        )
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    if name in stdlib or name in _SHADOWED:
        raise InvalidArgument(f"invalid package name {name!r}: it would shadow the module {name!r}")
    return name


def default_package_name(stem: str) -> str:
    """A valid package name from a notebook's file stem (``01-quickstart`` -> ``nb_01_quickstart``)."""
    name = re.sub(r"\W+", "_", stem.encode("ascii", "ignore").decode()).strip("_").lower()
    if not name:
        name = "notebook"
    if name[0].isdigit():
        name = f"nb_{name}"
    if keyword.iskeyword(name):
        name += "_pkg"
    try:
        validate_package_name(name)
    except InvalidArgument:
        name += "_pipeline"
    if importlib.util.find_spec(name) is not None:
        name += "_pipeline"
    return name


def _prepare_out_dir(out: Path, package: str, force: bool) -> None:
    """Refuse an existing folder without ``force``; with it, remove what an export writes."""
    if out.exists() and not out.is_dir():
        raise InvalidArgument(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise InvalidArgument(
                f"output folder {out} already exists and is not empty; pass --force to "
                "replace the exported package in it"
            )
        target = out / package
        if target.is_symlink():
            raise InvalidArgument(f"refusing to replace {target}: it is a symbolic link")
        if target.exists():
            shutil.rmtree(target)
        for name in _TOP_FILES:
            path = out / name
            if path.is_symlink() or path.is_file():
                path.unlink()


def _write(out: Path, files: dict[str, str]) -> list[str]:
    root = out.resolve()
    written = []
    for relative, text in files.items():
        path = out / relative
        parent = path.parent
        parent.mkdir(parents=True, exist_ok=True)
        resolved = parent.resolve() / path.name
        if root != resolved and root not in resolved.parents:
            raise InvalidArgument(f"refusing to write {path}: it resolves outside {out}")
        if path.is_symlink():
            raise InvalidArgument(f"refusing to write {path}: it is a symbolic link")
        path.write_text(text, encoding="utf-8")
        written.append(relative)
    return written


def _check_generated(files: dict[str, str]) -> None:
    for relative, text in files.items():
        if not relative.endswith(".py"):
            continue
        try:
            compile(text, relative, "exec")
            ast.parse(text)
        except SyntaxError as exc:  # a bug in the exporter: never write broken code
            raise ExportError(
                f"internal error: the generated {relative} does not compile ({exc.msg}, line "
                f"{exc.lineno}); nothing was written — please report this with the notebook"
            ) from None


def _cell_reports(analysis: Analysis) -> list[CellReport]:
    reports = []
    for info in analysis.cells:
        reports.append(
            CellReport(
                label=info.cell.label,
                cell_id=info.cell.cell_id,
                role=info.role or "dropped",
                role_source=info.role_source,
                modules=tuple(info.modules),
                kept=bool(info.modules),
                reason=info.reason,
                notes=tuple(info.notes),
            )
        )
    return reports


def export_notebook(
    path: str | Path | None,
    out_dir: str | Path,
    package: str | None = None,
    verify: bool = False,
    *,
    force: bool = False,
    model: str | None = None,
    model_name: str | None = None,
    from_run: str | None = None,
    run: str | None = None,
    tracking_uri: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    record: bool = True,
    timeout: float = 1800.0,
) -> ExportReport:
    """Export a notebook into a modular train/infer package and optionally verify it.

    Args:
        path: the notebook (``.ipynb``). With ``from_run`` it may be None: the code comes
            from the run's execution history.
        out_dir: folder to write into (``<out_dir>/<package>/...``, ``requirements.txt``,
            ``README.md``, ``export-report.json``); refused when it exists and is not empty,
            unless ``force``.
        package: the package name (default: from the notebook's name).
        verify: run the exported training in a fresh interpreter and compare its metrics
            (and predictions) with the notebook's run (see :mod:`nbmlops.export.verify`).
        force: replace an earlier export in ``out_dir``.
        model: the model variable to export (default: the last fitted with ``X, y``).
        model_name: registered model name ``infer.py`` loads by default (default: package).
        from_run: rebuild from the exact code that produced this run (execution order).
        run: the notebook run to verify against (default: the latest matching one).
        tracking_uri: the store holding the notebook's runs (default rule otherwise).
        rtol, atol: metric tolerances for verification.
        record: record the verification result on the notebook's run.
        timeout: seconds allowed for each subprocess (and notebook execution).

    Returns:
        ExportReport: files written, cell -> module mapping, dropped cells with reasons,
        warnings and, with ``verify``, the verification result.

    Raises:
        NotebookError: an unreadable or invalid notebook (nothing is written).
        InvalidArgument: a bad package name or an existing output folder without ``force``.
        ExportError: no model can be found in the notebook.
    """
    from nbmlops.export.verify import DEFAULT_ATOL, DEFAULT_RTOL, verify_export

    started = time.perf_counter()
    if package is not None:
        validate_package_name(package)
    out = Path(out_dir).expanduser().absolute()
    run_cell_sha = None
    source: NotebookSource
    if from_run is not None:
        from nbmlops.client import Client
        from nbmlops.export.verify import _fit_run, store_exists
        from nbmlops.store import default_tracking_uri, normalize_uri

        start = Path(path).absolute().parent if path is not None else Path.cwd()
        uri = normalize_uri(tracking_uri or default_tracking_uri(start))
        if not store_exists(uri):
            raise InvalidArgument(f"--from-run {from_run}: there is no nbmlops store at {uri}")
        client = Client(uri)
        source, source_run = read_run_lineage(client, from_run)
        run_cell_sha = _fit_run(client, source_run).info.source.code_sha256 or None
        tracking_uri = uri
    else:
        if path is None:
            raise InvalidArgument("give the notebook to export (or --from-run RUN_ID)")
        source = read_notebook(path)
    package = package or default_package_name(source.name)
    validate_package_name(package)
    model_name = model_name or package
    analysis = analyze(source, model=model, run_cell_sha=run_cell_sha)
    files, codegen_warnings = generate(analysis, package, model_name)
    _check_generated(files)
    fit_statement = analysis.statements[analysis.fit_index]
    train_cell = analysis.cells[fit_statement.cell].cell
    warnings = list(analysis.warnings)
    for info in analysis.cells:
        warnings.extend(w for w in info.warnings if w not in warnings)
    warnings.extend(w for w in codegen_warnings if w not in warnings)
    notes = [n for info in analysis.cells for n in info.notes]
    report = ExportReport(
        source=source.described,
        out_dir=out,
        package=package,
        model_name=model_name,
        model_variable=analysis.model,
        files=[],
        cells=_cell_reports(analysis),
        params=[
            {"name": p.name, "type": p.type, "default": p.default, "cell": p.cell}
            for p in analysis.params
        ],
        warnings=warnings,
        notes=notes,
        origin=source.origin,
        run_id=source.run_id,
        model_candidates=analysis.model_candidates,
        train_x=analysis.x_train,
        train_y=analysis.y_train,
        holdout_x=analysis.holdout,
        train_cell_sha256=train_cell.code_sha256,
    )
    _prepare_out_dir(out, package, force)
    files[REPORT_FILE] = "{}\n"
    report.files = _write(out, files)
    report.seconds = time.perf_counter() - started
    _write_report(out, report)
    if verify:
        report.verification = verify_export(
            report,
            notebook=source.path if source.path is not None and source.path.is_file() else None,
            source_run_id=run or from_run,
            tracking_uri=tracking_uri,
            rtol=DEFAULT_RTOL if rtol is None else rtol,
            atol=DEFAULT_ATOL if atol is None else atol,
            timeout=timeout,
            record=record,
        )
        _write_report(out, report)
    return report


def _write_report(out: Path, report: ExportReport) -> None:
    (out / REPORT_FILE).write_text(
        json.dumps(report.to_dict(), indent=1, default=str) + "\n", encoding="utf-8"
    )
