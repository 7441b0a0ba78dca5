"""``nbmlops export``: the command-line face of :func:`nbmlops.export_notebook`.

Exit status: 0 exported (and verified, with ``--verify``); 1 the verification found a
mismatch or could not run; 2 bad input (the message names the file and the problem, and
nothing was written).
"""

from __future__ import annotations

import argparse

EXIT_MISMATCH = 1


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``nbmlops export`` (``--tracking-uri`` is added by the CLI for all)."""
    parser.add_argument("notebook", nargs="?", help="the notebook to export (.ipynb)")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write the package into"
    )
    parser.add_argument(
        "--name", metavar="PKG", help="package name (default: from the notebook's name)"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="run the exported train.py in a fresh interpreter and compare with the notebook",
    )
    parser.add_argument("--force", action="store_true", help="replace an earlier export in DIR")
    parser.add_argument(
        "--model", metavar="VAR", help="the model variable to export (default: the last fitted)"
    )
    parser.add_argument(
        "--model-name",
        metavar="NAME",
        help="registered model name infer.py loads by default (default: the package name)",
    )
    parser.add_argument(
        "--from-run",
        metavar="RUN_ID",
        help="rebuild from the exact code (in execution order) that produced this run",
    )
    parser.add_argument(
        "--run", metavar="RUN_ID", help="the notebook run to verify against (default: latest)"
    )
    parser.add_argument(
        "--rtol", type=float, default=None, help="relative tolerance for metrics (1e-9)"
    )
    parser.add_argument(
        "--atol", type=float, default=None, help="absolute tolerance for metrics (1e-12)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds per subprocess (1800)"
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not tag the notebook's run with the verification result",
    )


def run(args: argparse.Namespace) -> int:
    """Export (and verify); print the report; return the exit status."""
    from nbmlops.errors import InvalidArgument
    from nbmlops.export.exporter import export_notebook

    if args.notebook is None and args.from_run is None:
        raise InvalidArgument("give the notebook to export, or --from-run RUN_ID")
    if args.from_run and args.run and args.run != args.from_run:
        raise InvalidArgument("--run and --from-run name different runs; give one of them")
    report = export_notebook(
        args.notebook,
        args.out,
        args.name,
        args.verify,
        force=args.force,
        model=args.model,
        model_name=args.model_name,
        from_run=args.from_run,
        run=args.run,
        tracking_uri=args.tracking_uri,
        rtol=args.rtol,
        atol=args.atol,
        record=not args.no_record,
        timeout=args.timeout,
    )
    print(report.summary())
    if report.verification is not None and not report.verification.ok:
        return EXIT_MISMATCH
    return 0
