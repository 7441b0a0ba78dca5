"""The ``nbmlops`` command line: look at a store from a terminal.

Subcommands (each one a ``configure(parser)`` plus a ``handler(args) -> exit code`` in
:data:`COMMANDS`, so adding one is adding an entry):

* ``nbmlops runs`` — a table of runs (filter, order, experiment);
* ``nbmlops doctor`` — where the store is and whether it is healthy.

The store is the one ``--tracking-uri`` names, else the default rule of
:func:`nbmlops.store.default_tracking_uri` (``NBMLOPS_TRACKING_URI``, else the nearest
``.nbmlops/`` folder above the working directory). Neither command creates a store.

Errors the user can fix (a bad filter, an unknown experiment, a damaged store, a wrong
option) print one line ``nbmlops: error: <message>`` on stderr and exit with status 2; the
CLI never shows a Python traceback for them. ``doctor`` is the exception: finding a problem
is its job, so it reports a missing, damaged or inconsistent store in its output (a
``problem:`` line) and exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from nbmlops._version import __version__
from nbmlops.errors import NbMlopsError, NotFound

if TYPE_CHECKING:
    from nbmlops.entities import Run
    from nbmlops.store.base import AbstractStore

PROG = "nbmlops"
#: Exit status for errors the user can fix (same as argparse's usage errors).
EXIT_USAGE = 2
#: Widest a single table cell gets before it is shortened with an ellipsis.
MAX_CELL_WIDTH = 32
#: Runs shown by ``nbmlops runs`` unless ``--max-results`` says otherwise.
DEFAULT_MAX_RUNS = 100


class UsageError(Exception):
    """A command-line mistake found by argparse (reported on one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# --------------------------------------------------------------------------- helpers


def _one_line(message: object) -> str:
    """``message`` as a single line (newlines folded into spaces)."""
    return " ".join(str(message).splitlines()).strip()


def _resolve_uri(args: argparse.Namespace) -> str:
    """The tracking URI the command works on: ``--tracking-uri`` or the default rule."""
    from nbmlops.store import default_tracking_uri, normalize_uri

    uri = args.tracking_uri if args.tracking_uri else default_tracking_uri()
    return normalize_uri(uri)


def _missing_store_file(uri: str) -> Path | None:
    """The SQLite file ``uri`` names when that file does not exist (or is empty), else None."""
    from nbmlops.store import sqlite_path_from_uri

    path = sqlite_path_from_uri(uri)
    if path is None:
        return None
    path = path.expanduser().absolute()
    if path.is_file() and path.stat().st_size > 0:
        return None
    if path.is_dir():
        return None  # let the store report "is a folder"
    return path


def _open_existing_store(uri: str) -> AbstractStore:
    """Open the store at ``uri`` without ever creating one (NotFound if there is none)."""
    from nbmlops.store import open_store

    missing = _missing_store_file(uri)
    if missing is not None:
        raise NotFound(_no_store_message(missing))
    return open_store(uri)


def _no_store_message(path: Path) -> str:
    what = "is empty" if path.is_file() else "does not exist"
    return (
        f"no nbmlops store at {path} (the file {what}; nothing was created). Pass "
        "--tracking-uri, set NBMLOPS_TRACKING_URI, or run from a folder below the .nbmlops/ "
        "store."
    )


def _shorten(text: str, width: int = MAX_CELL_WIDTH) -> str:
    """``text`` cut to ``width`` characters, ending with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _format_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _format_duration(start_ms: int | None, end_ms: int | None) -> str:
    """``1.2s``, ``3m04s``, ``2h05m``; empty while the run has no end time."""
    if start_ms is None or end_ms is None:
        return ""
    seconds = max(0.0, (end_ms - start_ms) / 1000)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _format_metric(value: float) -> str:
    return f"{value:.6g}"


# --------------------------------------------------------------------------- runs


def _configure_runs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", metavar="NAME", help="only runs of this experiment")
    parser.add_argument(
        "--filter",
        metavar="F",
        default="",
        help="search filter, e.g. \"metrics.rmse < 0.5 and params.model = 'ridge'\"",
    )
    parser.add_argument(
        "--order-by",
        metavar="K",
        nargs="+",
        action="extend",
        default=None,
        help="sort keys, e.g. 'metrics.rmse ASC' (default: newest first)",
    )
    parser.add_argument(
        "--max-results",
        metavar="N",
        type=int,
        default=DEFAULT_MAX_RUNS,
        help=f"show at most N runs (default {DEFAULT_MAX_RUNS})",
    )
    parser.add_argument(
        "--all-columns",
        action="store_true",
        help="show every column (tags too) without fitting the table to the terminal",
    )


def _search(
    store: AbstractStore, args: argparse.Namespace
) -> tuple[list[Run], bool, dict[str, str]]:
    """Matching runs (at most ``--max-results``), whether more match, experiment names by id."""
    from nbmlops.client import Client
    from nbmlops.errors import InvalidArgument
    from nbmlops.store.base import MAX_RESULTS_LIMIT

    if args.max_results < 1:
        raise InvalidArgument(f"--max-results must be at least 1, got {args.max_results}")
    client = Client(store=store)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    experiment_ids: list[str] | None = None
    if args.experiment is not None:
        found = client.get_experiment_by_name(args.experiment)
        if found is None:
            known = ", ".join(sorted(experiments.values())) or "none"
            raise NotFound(f"no experiment named {args.experiment!r} (experiments: {known})")
        experiment_ids = [found.experiment_id]
    runs: list[Run] = []
    token: str | None = None
    more = False
    while True:
        wanted = args.max_results - len(runs)
        page = client.search_runs(
            experiment_ids,
            args.filter,
            args.order_by,
            max_results=min(MAX_RESULTS_LIMIT, wanted),
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
        if len(runs) >= args.max_results:
            more = True
            break
    return runs, more, experiments


def _runs_frame(runs: Sequence[Run], experiments: dict[str, str], all_columns: bool) -> Any:
    """A DataFrame of display strings, one row per run.

    Columns: the run's facts, then ``metrics.*`` (latest values), ``params.*`` and, with
    ``all_columns``, ``tags.*``. Metrics come before params so a narrow terminal keeps them.
    """
    import pandas as pd

    columns: dict[str, list[str]] = {
        "run_id": [r.info.run_id[:8] for r in runs],
        "name": [_shorten(r.info.run_name) for r in runs],
    }
    if len({r.info.experiment_id for r in runs}) > 1:
        columns["experiment"] = [
            _shorten(experiments.get(r.info.experiment_id, r.info.experiment_id)) for r in runs
        ]
    columns["status"] = [r.info.status.value for r in runs]
    columns["start"] = [_format_time(r.info.start_time) for r in runs]
    columns["duration"] = [_format_duration(r.info.start_time, r.info.end_time) for r in runs]
    columns["parent"] = [(r.info.parent_run_id or "")[:8] for r in runs]
    sections: list[tuple[str, Callable[[Run], dict[str, Any]], Callable[[Any], str]]] = [
        ("metrics", lambda r: r.data.metrics, _format_metric),
        ("params", lambda r: r.data.params, str),
    ]
    if all_columns:
        sections.append(("tags", lambda r: r.data.tags, str))
    for prefix, mapping, render in sections:
        keys: dict[str, None] = {}
        for run in runs:
            keys.update(dict.fromkeys(mapping(run)))
        for key in sorted(keys):
            values = []
            for run in runs:
                value = mapping(run).get(key)
                text = "" if value is None else render(value)
                values.append(text if all_columns else _shorten(text))
            columns[f"{prefix}.{key}"] = values
    return pd.DataFrame(columns)


def _column_width(frame: Any, column: str) -> int:
    return max([len(str(column)), *(len(cell) for cell in frame[column].tolist())])


def _fit_columns(frame: Any, width: int) -> tuple[Any, int]:
    """Keep the columns that fit in ``width`` characters, left first; returns (frame, dropped)."""
    kept: list[str] = []
    used = 0
    for column in frame.columns:
        needed = _column_width(frame, column) + (2 if kept else 0)
        if kept and used + needed > width:
            continue  # too wide here; a narrower column further right may still fit
        kept.append(column)
        used += needed
    return frame[kept], len(frame.columns) - len(kept)


def _render_table(frame: Any) -> str:
    """Text table of a frame of strings: numbers right-aligned, text left-aligned."""
    widths = {column: _column_width(frame, column) for column in frame.columns}
    right = {column for column in frame.columns if str(column).startswith("metrics.")}

    def line(cells: Sequence[str], columns: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[c]) if c in right else cell.ljust(widths[c])
            for cell, c in zip(cells, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    columns = list(frame.columns)
    rows = [line([str(c) for c in columns], columns)]
    rows.extend(line(values, columns) for values in frame.itertuples(index=False, name=None))
    return "\n".join(rows)


def _cmd_runs(args: argparse.Namespace) -> int:
    uri = _resolve_uri(args)
    store = _open_existing_store(uri)
    try:
        runs, more, experiments = _search(store, args)
    finally:
        store.close()
    if not runs:
        where = f" in experiment {args.experiment!r}" if args.experiment else ""
        matching = " matching the filter" if args.filter else ""
        print(f"no runs{matching}{where} ({store.location})")
        return 0
    frame = _runs_frame(runs, experiments, args.all_columns)
    dropped = 0
    if not args.all_columns:
        width = shutil.get_terminal_size((120, 24)).columns
        frame, dropped = _fit_columns(frame, max(40, width))
    print(_render_table(frame))
    footer = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    if more:
        footer += f" shown; more match (raise --max-results above {args.max_results})"
    if dropped:
        footer += f"; {dropped} more column{'s' if dropped != 1 else ''} hidden (--all-columns)"
    print(footer)
    return 0


# --------------------------------------------------------------------------- doctor


def _configure_doctor(parser: argparse.ArgumentParser) -> None:
    del parser  # only the common --tracking-uri


def _cmd_doctor(args: argparse.Namespace) -> int:
    from nbmlops.errors import StoreError
    from nbmlops.store import sqlite_path_from_uri

    uri = _resolve_uri(args)
    path = sqlite_path_from_uri(uri)
    lines: list[tuple[str, str]] = [("tracking URI", uri)]
    if path is not None:
        lines.append(("store file", str(path)))
    missing = _missing_store_file(uri)
    if missing is not None:
        _print_facts(lines)
        print(f"problem: {_no_store_message(missing)}")
        return 1
    store = None
    try:
        store = _open_existing_store(uri)
        facts = store.describe()
    except StoreError as exc:  # damaged, foreign or newer-schema file: report, touch nothing
        _print_facts(lines)
        print(f"problem: {_one_line(exc)}")
        return 1
    finally:
        if store is not None:
            store.close()
    return _report(uri, facts)


def _report(uri: str, facts: dict[str, object]) -> int:
    """Print the facts of :meth:`AbstractStore.describe`; 0 when the store is healthy."""
    lines: list[tuple[str, str]] = [
        ("tracking URI", uri),
        ("store", str(facts.get("location", ""))),
    ]
    if "size_bytes" in facts:
        lines[-1] = ("store file", f"{facts['location']} ({_format_size(facts['size_bytes'])})")
    if "artifact_root" in facts:
        lines.append(("artifact root", str(facts["artifact_root"])))
    for key, label in (("schema_version", "schema version"), ("journal_mode", "journal mode")):
        if key in facts:
            lines.append((label, str(facts[key])))
    integrity = facts.get("integrity_check")
    shown = "n/a (not a file store)" if integrity is None else str(integrity)
    lines.append(("integrity check", shown))
    counts = facts.get("counts")
    if isinstance(counts, dict):
        lines.append(("rows", ", ".join(f"{table} {n}" for table, n in counts.items())))
    else:
        simple = [
            (k, v) for k, v in facts.items() if k in ("experiments", "runs") and isinstance(v, int)
        ]
        if simple:
            lines.append(("rows", ", ".join(f"{k} {v}" for k, v in simple)))
    by_status = facts.get("runs_by_status")
    if isinstance(by_status, dict):
        statuses = ", ".join(f"{s} {n}" for s, n in sorted(by_status.items()))
        lines.append(("runs by status", statuses or "no runs"))
    _print_facts(lines)
    healthy = integrity is None or integrity == "ok"
    if healthy:
        print("ok")
    else:
        print("problem: the integrity check failed (see above); back up the file before any repair")
    return 0 if healthy else 1


def _format_size(size: object) -> str:
    value = float(size) if isinstance(size, (int, float)) else 0.0
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover - loop always returns


def _print_facts(lines: Sequence[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label + ':':<{width + 1}}  {value}")


# --------------------------------------------------------------------------- sync


def _configure_sync(parser: argparse.ArgumentParser) -> None:
    from nbmlops.sync import configure_cli

    configure_cli(parser)


def _cmd_sync(args: argparse.Namespace) -> int:
    from nbmlops.sync import run_cli

    return run_cli(args)


# --------------------------------------------------------------------------- export


def _configure_export(parser: argparse.ArgumentParser) -> None:
    from nbmlops.export.command import configure

    configure(parser)


def _cmd_export(args: argparse.Namespace) -> int:
    from nbmlops.export.command import run

    return run(args)


# --------------------------------------------------------------------------- demo


def _demo() -> Any:
    from nbmlops import demo

    return demo


# --------------------------------------------------------------------------- wiring


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, how to add its options, and what runs it."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


#: Subcommand name -> definition. Later steps add ``export``, ``sync``, ``demo`` here.
COMMANDS: dict[str, Command] = {
    "runs": Command("list runs as a table", _configure_runs, _cmd_runs),
    "doctor": Command(
        "check where the store is and whether it is healthy", _configure_doctor, _cmd_doctor
    ),
    "sync": Command(
        "copy runs and models between two stores (e.g. to an MLflow server), idempotently",
        _configure_sync,
        _cmd_sync,
    ),
    "export": Command(
        "export a notebook into a train/infer package (and --verify it reproduces the notebook)",
        _configure_export,
        _cmd_export,
    ),
    "demo": Command(
        "run the example notebooks headless into the default store and show what they made",
        lambda parser: _demo().configure(parser),
        lambda args: _demo().run(args),
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`COMMANDS`."""
    parser = _Parser(prog=PROG, description="nbmlops: look at runs and stores from a terminal.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        child = sub.add_parser(name, help=command.help, description=command.help)
        child.add_argument(
            "--tracking-uri",
            metavar="URI",
            default=None,
            help="store to use (default: NBMLOPS_TRACKING_URI, else the nearest .nbmlops/ folder)",
        )
        command.configure(child)
        child.set_defaults(handler=command.handler)
    return parser


def _error(message: object) -> int:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Run the ``nbmlops`` command line and return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _error(exc)
    except SystemExit as exc:  # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return int(args.handler(args))
    except NbMlopsError as exc:
        return _error(exc)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `nbmlops runs | head`
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
