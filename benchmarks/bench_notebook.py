"""Per-cell overhead of notebook autologging: nbmlops vs ``mlflow.sklearn.autolog()``.

Cells run through IPython's real ``InteractiveShell.run_cell`` (what a kernel calls). Three
modes, each in its own worker process, same machine, same run:

* ``off``     — no tracking at all (the baseline);
* ``nbmlops`` — ``%load_ext nbmlops`` + ``%mlops autolog on`` (embedded SQLite store);
* ``mlflow``  — ``mlflow.sklearn.autolog()`` on MLflow's local SQLite backend.

Two cells are timed: a plain cell (``x = 1``: no ML work, so nbmlops must stay out of the way,
budget ≤ 0.5 ms added) and a cell fitting a small ``LogisticRegression`` (200 × 10, which
becomes a run with params, training metrics, a data fingerprint and the model). The worker
also reports the RSS added by ``%load_ext nbmlops`` + ``autolog on`` (budget ≤ 30 MB).

    python benchmarks/bench_notebook.py [--quick] [--no-mlflow] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Row,
    emit_result,
    emit_worker_result,
    fresh_dir,
    is_installed,
    machine_info,
    print_table,
    quiet_env,
    run_worker,
    silence_mlflow,
    summarize,
)

PLAIN_CELL = "x = 1"
FIT_CELL = "model = LogisticRegression(max_iter=200).fit(X, y)"
SETUP_CELL = (
    "import numpy as np\n"
    "from sklearn.datasets import make_classification\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = make_classification(n_samples=200, n_features=10, random_state=0)"
)


def _rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _time_cells(shell: Any, code: str, n: int) -> list[float]:
    import time

    samples = []
    for _ in range(3):  # warm-up
        shell.run_cell(code, store_history=True)
    for _ in range(n):
        start = time.perf_counter()
        result = shell.run_cell(code, store_history=True)
        samples.append(time.perf_counter() - start)
        if not result.success:
            raise RuntimeError(f"cell failed: {result.error_in_exec!r}")
    return samples


def worker(mode: str, plain_n: int, fit_n: int) -> None:
    """Time the cells in one mode and print the figures (runs in a subprocess)."""
    with fresh_dir() as tmp:
        os.environ["NBMLOPS_TRACKING_URI"] = f"sqlite:///{tmp / 'nbmlops.db'}"
        os.environ["NBMLOPS_NOTEBOOK_PATH"] = str(tmp / "bench.ipynb")
        os.chdir(tmp)  # nothing either library writes may land in the checkout
        from IPython.core.interactiveshell import InteractiveShell

        shell = InteractiveShell.instance()
        rss_before = _rss_mb()
        added_rss = None
        if mode == "nbmlops":
            shell.run_line_magic("load_ext", "nbmlops")
            shell.run_line_magic("mlops", "autolog on")
            added_rss = _rss_mb() - rss_before
        elif mode == "mlflow":
            silence_mlflow()
            import mlflow

            mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
            # Keep MLflow's artifacts in the temp folder (its default is ./mlruns).
            mlflow.create_experiment("bench", artifact_location=(tmp / "artifacts").as_uri())
            mlflow.set_experiment("bench")
            mlflow.sklearn.autolog(silent=True)
        shell.run_cell(SETUP_CELL)
        plain = _time_cells(shell, PLAIN_CELL, plain_n)
        fit = _time_cells(shell, FIT_CELL, fit_n)
        if mode == "nbmlops":
            shell.run_line_magic("mlops", "autolog off")
            import nbmlops

            runs = nbmlops.search_runs(search_all_experiments=True)
            assert len(runs) >= fit_n + 1, "every fit cell must have become a run"
        emit_worker_result(
            {"plain": summarize(plain), "fit": summarize(fit), "added_rss_mb": added_rss}
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--worker", choices=["off", "nbmlops", "mlflow"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    plain_n, fit_n = (200, 10) if args.quick else (3000, 60)
    if args.worker:
        worker(args.worker, plain_n, fit_n)
        return 0
    if not args.no_mlflow and not is_installed("mlflow"):
        print(
            "MLflow is not installed: pip install -e '.[bench]' (or pass --no-mlflow)",
            file=sys.stderr,
        )
        return 2
    script = str(Path(__file__).resolve())
    passthrough = ["--quick"] if args.quick else []
    env = quiet_env({"MPLBACKEND": "Agg"})
    results = {
        mode: run_worker([script, "--worker", mode, *passthrough], env=env, timeout=1800)
        for mode in (["off", "nbmlops"] + ([] if args.no_mlflow else ["mlflow"]))
    }
    base = results["off"]
    ours = results["nbmlops"]
    theirs = results.get("mlflow")

    def added(result: dict[str, Any] | None, cell: str) -> float | None:
        if result is None:
            return None
        return max(0.0, result[cell]["median"] - base[cell]["median"])

    rows = [
        Row(
            "plain_cell",
            "plain cell, median (no tracking: " + f"{base['plain']['median'] * 1e6:.0f} µs)",
            ours["plain"]["median"],
            theirs["plain"]["median"] if theirs else None,
        ),
        Row(
            "plain_cell_added",
            "plain cell, added over no tracking",
            added(ours, "plain"),
            added(theirs, "plain"),
            budget=0.5e-3,
        ),
        Row(
            "fit_cell",
            "LogisticRegression fit cell, median (no tracking: "
            + f"{base['fit']['median'] * 1e3:.1f} ms)",
            ours["fit"]["median"],
            theirs["fit"]["median"] if theirs else None,
        ),
        Row(
            "fit_cell_added",
            "fit cell, added over no tracking",
            added(ours, "fit"),
            added(theirs, "fit"),
        ),
        Row(
            "load_ext_rss",
            "%load_ext + autolog on, RSS added",
            ours["added_rss_mb"],
            unit="MB",
            budget=30.0,
        ),
    ]
    print_table(
        rows,
        ["operation", "nbmlops", "mlflow", "ratio (mlflow/nbmlops)", "budget", "within budget"],
        markdown=args.markdown,
    )
    emit_result(
        {
            "machine": machine_info(["nbmlops", "mlflow", "scikit-learn", "ipython"]),
            "sizes": {"plain_cells": plain_n, "fit_cells": fit_n},
            "rows": [row.as_dict("nbmlops", "mlflow") for row in rows],
            "raw": results,
            "median_plain_noise_us": statistics.median([base["plain"]["median"] * 1e6]),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
