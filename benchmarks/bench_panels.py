"""Inline panels benchmark: opening the runs table on a large store, comparing wide runs.

Usage::

    python benchmarks/bench_panels.py             # full run (about 40 s on 2 cores)
    python benchmarks/bench_panels.py --quick     # small sizes: a smoke test
    python benchmarks/bench_panels.py --markdown  # the table as Markdown

MLflow has no inline notebook panels, so the MLflow column is ``n/a`` throughout.

The parent process fills two SQLite stores in a fresh temporary folder (untimed):

* **big** — 10 010 runs as a notebook tree: 10 session runs → 100 cell runs each (2 params,
  2 metrics) → 9 trial runs each (2 params, 1 metric);
* **wide** — 20 runs with 200 params each (every 10th differs between runs), 5 metrics with
  a 5-point history each, cell code, and an environment artifact.

Then one worker subprocess (nothing imported yet, as in a fresh kernel) measures:

* **open the runs table**: ``nbmlops.runs_view(...)`` + its static HTML + its widget (the
  mimebundle a notebook displays) — the first time in the process (it imports ipywidgets),
  then the median of 5;
* **page change, filter**: next page in the widget; a new filter (re-query + refill);
* **compare 20 × 200**: ``nbmlops.compare(*ids)`` + static HTML + widget, first time (imports
  matplotlib for the history charts), median of 5, and without charts (``max_charts=0``);
* **memory**: the ``tracemalloc`` peak while opening the runs table (design §9: ≤ 50 MB);
* **sizes**: static HTML of each panel and the number of widget models each builds
  (containers, controls and their layout/style models; the runs table's count does not
  depend on the number of runs).

Widgets are built without a kernel (ipywidgets then uses ``comm``'s dummy comm), so the
figures leave out sending the widget state to a browser. Output: a table, a sizes table and,
as the very last line, ``RESULT_JSON {...}`` with every figure (seconds, MiB, bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # benchmarks/ is not a package: imported from beside this file
    Row,
    emit_result,
    emit_worker_result,
    fresh_dir,
    machine_info,
    print_table,
    run_worker,
    summarize,
)

HEADERS = ["operation", "nbmlops", "mlflow", "ratio", "budget", "within budget"]
NO_MLFLOW = "MLflow has no inline notebook panels (n/a)"


# --------------------------------------------------------------------------- stores


def fill_big(uri: str, sessions: int, cells: int, trials: int) -> str:
    """A notebook-shaped tree of runs; returns the experiment name."""
    import nbmlops
    from nbmlops.entities import Metric, Param

    client = nbmlops.Client(uri)
    exp = client.create_experiment("big")
    now = int(time.time() * 1000)
    for s in range(sessions):
        session = client.create_run(
            exp, run_name=f"session-{s}", tags={"nbmlops.run_type": "session"}
        )
        for c in range(cells):
            cell = client.create_run(
                exp,
                run_name=f"cell-{s}-{c}",
                parent_run_id=session.info.run_id,
                tags={"nbmlops.run_type": "cell"},
            )
            client.log_batch(
                cell.info.run_id,
                metrics=[Metric("f1", (c % 17) / 17, now), Metric("loss", c / 100, now)],
                params=[Param("model", "rf"), Param("max_depth", str(c % 7))],
            )
            for t in range(trials):
                trial = client.create_run(
                    exp,
                    run_name=f"trial-{t}",
                    parent_run_id=cell.info.run_id,
                    tags={"nbmlops.run_type": "trial"},
                )
                client.log_batch(
                    trial.info.run_id,
                    metrics=[Metric("f1", t / 10, now)],
                    params=[Param("lr", str(0.01 * (t + 1))), Param("max_depth", str(t))],
                )
                client.set_terminated(trial.info.run_id)
            client.set_terminated(cell.info.run_id)
        client.set_terminated(session.info.run_id)
    client.close()
    return "big"


def fill_wide(uri: str, runs: int, params: int) -> list[str]:
    """``runs`` runs with ``params`` params each; returns their ids."""
    import nbmlops
    from nbmlops.entities import Metric, Param, RunSource

    client = nbmlops.Client(uri)
    exp = client.create_experiment("wide")
    ids = []
    for r in range(runs):
        code = f"model = Model(alpha={r})\nmodel.fit(X_train, y_train)\nscore(model)\n"
        run = client.create_run(exp, run_name=f"wide-{r}", source=RunSource(code=code))
        rid = run.info.run_id
        client.log_batch(
            rid,
            params=[Param(f"p{k:03d}", str(k + (r if k % 10 == 0 else 0))) for k in range(params)],
            metrics=[Metric(f"m{k}", r + k + s / 10, 0, s) for k in range(5) for s in range(5)],
        )
        env = {"python": "3.11.7", "packages": {"numpy": "2.1", "sklearn": f"1.{r % 3}"}}
        client.log_text(rid, json.dumps(env), "nbmlops/environment.json")
        client.set_terminated(rid)
        ids.append(rid)
    client.close()
    return ids


# --------------------------------------------------------------------------- worker


def _widget_count(root: Any) -> int:
    """Widgets in a panel's tree (containers, controls, and their layout/style models)."""
    from nbmlops.display._panel import iter_widgets

    return sum(1 for _ in iter_widgets(root))


def _median(fn: Any, n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return summarize(samples)


def worker(config: dict[str, Any]) -> None:
    """Measure in a fresh process; report with emit_worker_result."""
    start = time.perf_counter()
    import nbmlops

    import_s = time.perf_counter() - start
    big = nbmlops.Client(config["big_uri"])
    wide = nbmlops.Client(config["wide_uri"])
    ids = config["wide_ids"]
    repeats = config["repeats"]
    out: dict[str, Any] = {"import_nbmlops_s": import_s}

    def open_runs() -> Any:
        view = nbmlops.runs_view(experiment="big", client=big)
        html = view.to_html()
        view.widget()
        return view, html

    start = time.perf_counter()
    view, runs_html = open_runs()
    out["runs_open_first_s"] = time.perf_counter() - start
    out["runs_count"] = len(view.table)
    out["runs_widgets"] = _widget_count(view.widget())
    out["runs_open"] = _median(open_runs, repeats)
    out["runs_html_bytes"] = len(runs_html.encode())

    def next_page() -> None:
        view._go(1)

    out["runs_next_page"] = _median(next_page, repeats)
    filters = iter(
        [f"metrics.f1 > {i / 20}" for i in range(repeats)] + ["metrics.f1 > 0.5"] * repeats
    )
    out["runs_filter"] = _median(lambda: view._apply_filter(next(filters)), repeats)

    tracemalloc.start()
    open_runs()
    out["runs_open_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    def compare(max_charts: int = 8) -> Any:
        panel = nbmlops.compare(*ids, client=wide, max_charts=max_charts)
        html = panel.to_html()
        panel.widget()
        return panel, html

    start = time.perf_counter()
    panel, compare_html = compare()
    out["compare_first_s"] = time.perf_counter() - start
    out["compare_params_differ"] = len(panel.comparison.params_differ)
    out["compare_widgets"] = _widget_count(panel.widget())
    out["compare"] = _median(compare, repeats)
    out["compare_no_charts"] = _median(lambda: compare(0), repeats)
    out["compare_html_bytes"] = len(compare_html.encode())

    detail = nbmlops.show_run(ids[0], client=wide)
    out["detail_html_bytes"] = len(detail.to_html().encode())
    emit_worker_result(out)


# --------------------------------------------------------------------------- parent


def _fmt_bytes(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    sessions, cells, trials = (2, 10, 4) if args.quick else (10, 100, 9)
    wide_runs, wide_params = (5, 50) if args.quick else (20, 200)
    with fresh_dir() as folder:
        print(f"filling stores in {folder} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        big_uri = f"sqlite:///{folder / 'big' / 'nbmlops.db'}"
        wide_uri = f"sqlite:///{folder / 'wide' / 'nbmlops.db'}"
        fill_big(big_uri, sessions, cells, trials)
        ids = fill_wide(wide_uri, wide_runs, wide_params)
        print(f"filled in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        config = {
            "big_uri": big_uri,
            "wide_uri": wide_uri,
            "wide_ids": ids,
            "repeats": 3 if args.quick else 5,
        }
        result = run_worker(
            [__file__, "--worker", json.dumps(config)],
            env={**os.environ, "MPLBACKEND": "Agg"},
        )
    n_runs = result["runs_count"]
    rows = [
        Row(
            "runs_open_first",
            f"open runs table, {n_runs:,} runs, first in process (imports ipywidgets)",
            result["runs_open_first_s"],
            note=NO_MLFLOW,
        ),
        Row(
            "runs_open",
            f"open runs table, {n_runs:,} runs (load + HTML + widget), median",
            result["runs_open"]["median"],
            budget=1.0,
            note=NO_MLFLOW,
        ),
        Row(
            "runs_next_page",
            "runs table: next page (refill row slots)",
            result["runs_next_page"]["median"],
        ),
        Row(
            "runs_filter",
            "runs table: apply a filter (re-query + refill)",
            result["runs_filter"]["median"],
        ),
        Row(
            "runs_open_peak",
            f"open runs table, {n_runs:,} runs: tracemalloc peak",
            result["runs_open_peak_mib"],
            budget=50.0,
            unit="MB",
        ),
        Row(
            "compare_first",
            f"compare {len(ids)} runs × {wide_params} params, first in process (imports matplotlib)",
            result["compare_first_s"],
        ),
        Row(
            "compare",
            f"compare {len(ids)} runs × {wide_params} params (+ charts, HTML, widget), median",
            result["compare"]["median"],
            budget=1.0,
        ),
        Row(
            "compare_no_charts",
            f"compare {len(ids)} runs × {wide_params} params without charts, median",
            result["compare_no_charts"]["median"],
        ),
    ]
    print_table(rows, HEADERS, markdown=args.markdown)
    sizes = [
        (
            "runs table static HTML (one page of 25 rows)",
            result["runs_html_bytes"],
            result["runs_widgets"],
        ),
        (
            f"compare static HTML ({len(ids)} × {wide_params}, 5 charts)",
            result["compare_html_bytes"],
            result["compare_widgets"],
        ),
        ("run detail static HTML", result["detail_html_bytes"], None),
    ]
    print()
    if args.markdown:
        print("| rendering | static HTML | widgets built |\n|---|---|---|")
        for label, size, widgets in sizes:
            print(f"| {label} | {_fmt_bytes(size)} | {widgets if widgets is not None else '—'} |")
    else:
        for label, size, widgets in sizes:
            print(
                f"{label:<48} {_fmt_bytes(size):>10}   widgets: {widgets if widgets is not None else '—'}"
            )
    print(f"(MLflow column: {NO_MLFLOW})")
    emit_result(
        {
            "benchmark": "panels",
            "quick": args.quick,
            "rows": {row.key: row.as_dict("nbmlops", "mlflow") for row in rows},
            "raw": result,
            "sizes": {label: {"bytes": size, "widgets": w} for label, size, w in sizes},
            "machine": machine_info(["ipywidgets", "matplotlib", "pygments"]),
            "median_of": config["repeats"],
        }
    )


if __name__ == "__main__":
    main()
