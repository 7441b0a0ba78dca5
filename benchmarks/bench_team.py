"""Team-scale benchmark: nbmlops -> MLflow server vs plain MLflow calls to the same server.

Usage::

    python benchmarks/bench_team.py                 # starts PostgreSQL + mlflow server itself
    python benchmarks/bench_team.py --quick         # 10 child runs: a smoke test
    python benchmarks/bench_team.py --server http://127.0.0.1:5000   # an existing server
    python benchmarks/bench_team.py --uvicorn       # the server on MLflow's default uvicorn
    python benchmarks/bench_team.py --variants nbmlops mlflow mlflow_async mlflow_batch

The workload is notebook-shaped: one parent run and N child runs (N = 100), each with 5
params (one ``log_params`` call) and a metric logged at 50 steps (one ``log_metric`` call per
step, as a training loop does), then ended. Every library runs it in its own worker
subprocess against **the same server in the same run**, each in a fresh experiment:

* **nbmlops** — ``import nbmlops as mlflow`` code (``start_run(nested=True)``, ``log_params``,
  ``log_metric``) with ``NBMLOPS_TRACKING_URI=mlflow+http://...``: records are buffered and
  sent in batches; ``end_run`` flushes (the run's data is on the server when it returns);
* **mlflow (per call)** — the same code with ``import mlflow``: one request per call;
* **mlflow (async)** — the same, with MLflow's asynchronous logging
  (``MLFLOW_ENABLE_ASYNC_LOGGING=true``); the time includes ``flush_async_logging``
  (not run by default: it takes about two minutes);
* **mlflow (log_batch)** — hand-batched plain MLflow: ``MlflowClient.create_run``, one
  ``log_batch`` with the 5 params and 50 points, ``set_terminated`` (best case for MLflow).

Each worker first runs an untimed warm-up (10 child runs in another experiment), then the
timed workload. After it (untimed) the worker checks that the server holds N + 1 runs and 50
points per child. Reported: the whole workload (wall time) and per child run (median), and
how many child runs per second. The server is MLflow on a private PostgreSQL cluster (see
``tests/mlflow_server/servers.py``), with gunicorn workers unless ``--uvicorn``.
The last stdout line is ``RESULT_JSON {...}`` with every figure in seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # mlflow_server.servers

from _harness import (  # benchmarks/ is not a package: imported from beside this file
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

VARIANTS = ("nbmlops", "mlflow", "mlflow_async", "mlflow_batch")
DEFAULT_VARIANTS = ("nbmlops", "mlflow", "mlflow_batch")
LABELS = {
    "nbmlops": "nbmlops -> MLflow server",
    "mlflow": "mlflow (per call)",
    "mlflow_async": "mlflow (async logging)",
    "mlflow_batch": "mlflow (hand-made log_batch)",
}
PARAMS = 5
STEPS = 50
#: Child runs of the untimed warm-up each worker does first.
WARMUP_CHILDREN = 10


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Child runs of the workload."""

    children: int = 100

    @classmethod
    def quick(cls) -> Sizes:
        return cls(children=10)


def _params(i: int) -> dict[str, Any]:
    return {"model": "rf", "depth": 3 + i % 5, "lr": 0.1, "seed": i, "features": "all"}


def _fluent_workload(module: Any, children: int) -> list[float]:
    """The notebook-shaped loop with an MLflow-style fluent module; per-child seconds."""
    clock = time.perf_counter
    per_child = []
    with module.start_run(run_name="sweep"):
        for i in range(children):
            start = clock()
            with module.start_run(run_name=f"child-{i}", nested=True):
                module.log_params(_params(i))
                for step in range(STEPS):
                    module.log_metric("loss", 1.0 / (step + 1) + i * 1e-3, step=step)
            per_child.append(clock() - start)
    return per_child


def _check(url: str, experiment_name: str, children: int) -> None:
    """The server holds the parent and every child, each child with its 50 points."""
    from mlflow import MlflowClient

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id], max_results=children + 10)
    if len(runs) != children + 1:
        raise RuntimeError(f"{experiment_name}: {len(runs)} runs on the server, not {children + 1}")
    child = next(r for r in runs if r.info.run_name == "child-0")
    points = client.get_metric_history(child.info.run_id, "loss")
    if len(points) != STEPS or len(child.data.params) != PARAMS:
        raise RuntimeError(f"{experiment_name}: child-0 has {len(points)} points")
    if child.info.status != "FINISHED":
        raise RuntimeError(f"{experiment_name}: child-0 is {child.info.status}")


def run_variant(kind: str, url: str, children: int) -> dict[str, Any]:
    """Run the workload once with ``kind`` against ``url``; figures in seconds."""
    experiment = f"bench-team-{kind}-{uuid.uuid4().hex[:8]}"
    clock = time.perf_counter
    flush: Callable[[], None] = lambda: None  # noqa: E731
    if kind == "nbmlops":
        os.environ["NBMLOPS_TRACKING_URI"] = f"mlflow+{url}"
        import nbmlops

        nbmlops.set_experiment(experiment)
        module: Any = nbmlops
    else:
        if kind == "mlflow_async":
            os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "true"
        silence_mlflow()
        import mlflow

        silence_mlflow()
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment(experiment)
        module = mlflow
        if kind == "mlflow_async":
            flush = mlflow.flush_async_logging
    # Untimed warm-up in its own experiment: connections, server workers, caches.
    warm = experiment + "-warmup"
    module.set_experiment(warm)
    if kind == "mlflow_batch":
        _batch_workload(module, warm, WARMUP_CHILDREN)
    else:
        _fluent_workload(module, WARMUP_CHILDREN)
    flush()
    module.set_experiment(experiment)
    start = clock()
    if kind == "mlflow_batch":
        per_child = _batch_workload(module, experiment, children)
    else:
        per_child = _fluent_workload(module, children)
    flush()
    total = clock() - start
    _check(url, experiment, children)
    return {"total": total, "per_child": summarize(per_child), "children": children}


def _batch_workload(mlflow: Any, experiment: str, children: int) -> list[float]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient()
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    clock = time.perf_counter
    per_child = []
    parent = client.create_run(experiment_id, run_name="sweep").info.run_id
    for i in range(children):
        start = clock()
        run = client.create_run(
            experiment_id, run_name=f"child-{i}", tags={"mlflow.parentRunId": parent}
        ).info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run,
            metrics=[Metric("loss", 1.0 / (s + 1) + i * 1e-3, now, s) for s in range(STEPS)],
            params=[Param(k, str(v)) for k, v in _params(i).items()],
        )
        client.set_terminated(run)
        per_child.append(clock() - start)
    client.set_terminated(parent)
    return per_child


def worker_main(kind: str, url: str, sizes: Sizes) -> None:
    import contextlib
    import io

    # MLflow prints a "View run" link per ended run: keep it out of the worker's stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_variant(kind, url, sizes.children)
    emit_worker_result(result)


def parent_main(args: argparse.Namespace, sizes: Sizes) -> int:
    for module, hint in (("nbmlops", "pip install -e ."), ("mlflow", "pip install -e '.[mlflow]'")):
        if not is_installed(module):
            print(f"error: {module} is not importable; run `{hint}`", file=sys.stderr)
            return 2
    machine = machine_info(["nbmlops", "mlflow", "psycopg2-binary"])
    app = "uvicorn" if args.uvicorn else "gunicorn"
    print(
        f"# bench_team{' (quick)' if args.quick else ''}: {machine['nproc']} CPU(s), "
        f"{machine['cpu_model']}, Python {machine['python']}, nbmlops "
        f"{machine['versions']['nbmlops']}, mlflow {machine['versions']['mlflow']}",
        flush=True,
    )
    script = str(Path(__file__).resolve())
    passthrough = ["--quick"] if args.quick else []

    def measure(url: str) -> dict[str, dict[str, Any]]:
        results = {}
        for kind in args.variants:
            print(f"[parent] {kind} worker against {url} ...", file=sys.stderr, flush=True)
            results[kind] = run_worker(
                [script, "--worker", kind, "--server", url, *passthrough],
                env=quiet_env(),
                timeout=3600,
            )
        return results

    started = time.perf_counter()
    if args.server:
        where = f"existing server {args.server}"
        results = measure(args.server)
    else:
        from mlflow_server.servers import ServerUnavailable, mlflow_server_on_postgres

        try:
            with (
                fresh_dir("bench-team-") as folder,
                mlflow_server_on_postgres(folder, app_server=app) as server,
            ):
                where = f"mlflow server ({app}, 4 workers) on a private PostgreSQL cluster"
                results = measure(server.url)
        except ServerUnavailable as exc:
            print(f"error: cannot start the MLflow server: {exc}", file=sys.stderr)
            return 2
    elapsed = time.perf_counter() - started
    ours = results.get("nbmlops")
    rows = []
    for kind in args.variants:
        figures = results[kind]
        rows.append(
            Row(
                key=f"{kind}_total",
                operation=f"{LABELS[kind]}: {sizes.children} children, whole workload",
                ours=None if ours is None else ours["total"],
                theirs=None if kind == "nbmlops" else figures["total"],
            )
        )
    for kind in args.variants:
        figures = results[kind]
        rows.append(
            Row(
                key=f"{kind}_child",
                operation=f"{LABELS[kind]}: one child run (median)",
                ours=None if ours is None else ours["per_child"]["median"],
                theirs=None if kind == "nbmlops" else figures["per_child"]["median"],
            )
        )
    rows = [r for r in rows if not (r.key.startswith("nbmlops_") and r.key != "nbmlops_total")]
    headers = ["workload", "nbmlops", "other", "ratio (other/nbmlops)", "budget", "within budget"]
    print()
    print(f"# server: {where}")
    print_table(rows, headers, markdown=args.markdown)
    print()
    for kind in args.variants:
        figures = results[kind]
        print(
            f"# {LABELS[kind]}: {figures['total']:.2f} s total, "
            f"{figures['children'] / figures['total']:.1f} child runs/s, "
            f"median child {figures['per_child']['median'] * 1000:.1f} ms"
        )
    print(f"# total wall time {elapsed:.0f} s")
    emit_result(
        {
            "benchmark": "bench_team",
            "quick": args.quick,
            "server": where,
            "app_server": app,
            "machine": machine,
            "sizes": dataclasses.asdict(sizes),
            "wall_time_s": elapsed,
            "table": {r.key: r.as_dict("nbmlops", "other") for r in rows},
            "raw": results,
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10 child runs (a smoke test)")
    parser.add_argument("--server", default=None, help="an existing MLflow server URL")
    parser.add_argument("--uvicorn", action="store_true", help="start the server on uvicorn")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(DEFAULT_VARIANTS),
        choices=VARIANTS,
        help="which workloads to run (default: nbmlops mlflow mlflow_batch; mlflow_async adds "
        "about 2 minutes)",
    )
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.worker:
        worker_main(args.worker, args.server, sizes)
        return 0
    return parent_main(args, sizes)


if __name__ == "__main__":
    raise SystemExit(main())
