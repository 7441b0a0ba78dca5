"""Tracking benchmark: nbmlops vs MLflow, same machine, same run (design doc §9).

Usage::

    python benchmarks/bench_tracking.py            # full run (about 1-1.5 minutes on 2 cores)
    python benchmarks/bench_tracking.py --quick    # tiny sizes: a smoke test
    python benchmarks/bench_tracking.py --no-mlflow  # nbmlops only (comparison skipped)

Both libraries run the *same* code through their MLflow-style fluent API and client, each on
its embedded SQLite store in a fresh temporary folder per measurement (MLflow: its default
SQLAlchemy SQLite backend with a temporary artifact location). Each library runs in its own
worker subprocess so neither one's imports, heap or background threads skew the other.

Output: a table ``operation | nbmlops | mlflow | ratio | budget | within budget`` and, as the
very last line, ``RESULT_JSON {...}`` with every figure (seconds / MiB).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # benchmarks/ is not a package: imported from beside this file
    Row,
    emit_result,
    emit_worker_result,
    fmt_seconds,
    fresh_dir,
    import_time,
    is_installed,
    machine_info,
    print_table,
    quiet_env,
    run_worker,
    silence_mlflow,
    summarize,
    time_block,
    time_each,
    time_snippet,
)

MIB = 1024 * 1024

# Budgets from design doc §9 (seconds; MiB for memory). None: report only.
BUDGETS: dict[str, float | None] = {
    "import": 0.100,  # `%load_ext nbmlops` <= 100 ms; `import nbmlops` is its proxy
    "load_ext": 0.100,
    "store_open": None,
    "empty_run": None,
    "log_param": None,
    "log_metric": 20e-6,
    "log_metrics_call": None,
    "log_metrics_metric": None,
    "child_run": 0.5e-3,
    "search_runs": 0.030,
    "metric_history": None,
    "memory_peak": 8.0,  # pending records flush at <= 10 000 records or <= 8 MiB
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much work each measurement does (``ml_*``: the MLflow side, which is ~1000x slower)."""

    import_repeats: int = 5
    empty_runs: int = 500
    ml_empty_runs: int = 50
    params: int = 2_000
    ml_params: int = 200
    metrics: int = 20_000
    ml_metrics: int = 200
    batch_calls: int = 200
    ml_batch_calls: int = 20
    batch_width: int = 100
    reps: int = 3
    child_runs: int = 300
    ml_child_runs: int = 30
    search_runs: int = 1_000
    search_calls: int = 15
    ml_search_calls: int = 5
    history_points: int = 10_000
    history_reads: int = 10
    ml_history_reads: int = 5
    memory_metrics: int = 200_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            import_repeats=2,
            empty_runs=20,
            ml_empty_runs=5,
            params=50,
            ml_params=10,
            metrics=200,
            ml_metrics=10,
            batch_calls=5,
            ml_batch_calls=2,
            reps=1,
            child_runs=10,
            ml_child_runs=3,
            search_runs=50,
            search_calls=3,
            ml_search_calls=2,
            history_points=2_000,
            history_reads=3,
            ml_history_reads=2,
            memory_metrics=20_000,
        )

    def pick(self, name: str, library: str) -> int:
        """The size ``name`` for ``library`` (the ``ml_`` variant for MLflow when there is one)."""
        if library == "mlflow" and hasattr(self, f"ml_{name}"):
            return int(getattr(self, f"ml_{name}"))
        return int(getattr(self, name))


# --------------------------------------------------------------------------- backends


@dataclasses.dataclass
class Backend:
    """What differs between the libraries; everything else is the same benchmark code."""

    name: str
    fluent: Any  # the module: nbmlops or mlflow
    client: Callable[[], Any]
    metric: type
    param: type
    open_store: Callable[[Path], str]  # set URI + experiment in a fresh folder; experiment id
    close: Callable[[], None]


def nbmlops_backend() -> Backend:
    import nbmlops

    def open_store(folder: Path) -> str:
        nbmlops.set_tracking_uri(f"sqlite:///{folder / 'nbmlops.db'}")
        return nbmlops.set_experiment("bench").experiment_id

    return Backend(
        name="nbmlops",
        fluent=nbmlops,
        client=nbmlops.get_client,
        metric=nbmlops.Metric,
        param=nbmlops.Param,
        open_store=open_store,
        close=lambda: nbmlops.get_client().close(),
    )


def mlflow_backend() -> Backend:
    silence_mlflow()
    import mlflow
    from mlflow.entities import Metric, Param

    silence_mlflow()  # again: importing mlflow may have configured its loggers

    def open_store(folder: Path) -> str:
        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
        experiment_id = mlflow.create_experiment(
            "bench", artifact_location=(folder / "artifacts").as_uri()
        )
        mlflow.set_experiment(experiment_id=experiment_id)
        return str(experiment_id)

    return Backend(
        name="mlflow",
        fluent=mlflow,
        client=mlflow.MlflowClient,
        metric=Metric,
        param=Param,
        open_store=open_store,
        close=lambda: None,
    )


# --------------------------------------------------------------------------- measurements


def _now_ms() -> int:
    return int(time.time() * 1000)


def bench_empty_run(b: Backend, n: int) -> dict[str, Any]:
    def op(_: int) -> None:
        with b.fluent.start_run():
            pass

    return summarize(time_each(op, n, warmup=2))


def _amortised(b: Backend, n: int, reps: int, body: Callable[[int], None]) -> dict[str, Any]:
    """Per-call time of ``n`` calls of ``body`` in one run, including the ``end_run`` flush."""
    with_end, calls_only = [], []
    for _ in range(reps):
        b.fluent.start_run()
        body(-1)  # warm-up call (first write to this run)
        start = time.perf_counter()
        for i in range(n):
            body(i)
        mid = time.perf_counter()
        b.fluent.end_run()
        end = time.perf_counter()
        with_end.append((end - start) / n)
        calls_only.append((mid - start) / n)
    return {**summarize(with_end), "calls_only_median": summarize(calls_only)["median"], "calls": n}


def bench_log_param(b: Backend, n: int, reps: int) -> dict[str, Any]:
    log_param = b.fluent.log_param
    return _amortised(b, n, reps, lambda i: log_param(f"param_{i}", i))


def bench_log_metric(b: Backend, n: int, reps: int) -> dict[str, Any]:
    log_metric = b.fluent.log_metric
    return _amortised(b, n, reps, lambda i: log_metric("loss", 1.0 / (i + 2), step=i))


def bench_log_metrics(b: Backend, calls: int, width: int, reps: int) -> dict[str, Any]:
    log_metrics = b.fluent.log_metrics
    values = {f"metric_{j}": float(j) for j in range(width)}
    per_call = _amortised(b, calls, reps, lambda i: log_metrics(values, step=i))
    return {**per_call, "width": width, "per_metric_median": per_call["median"] / width}


def bench_child_run(b: Backend, n: int) -> dict[str, Any]:
    fluent = b.fluent
    params = {f"p{j}": j for j in range(5)}
    metrics = {f"m{j}": j / 7 for j in range(5)}

    def op(_: int) -> None:
        with fluent.start_run(nested=True):
            fluent.log_params(params)
            fluent.log_metrics(metrics)

    fluent.start_run()
    try:
        return summarize(time_each(op, n, warmup=2))
    finally:
        fluent.end_run()


def bench_search_runs(b: Backend, experiment_id: str, n_runs: int, calls: int) -> dict[str, Any]:
    client = b.client()

    def populate() -> None:
        ts = _now_ms()
        for i in range(n_runs):
            run_id = client.create_run(experiment_id).info.run_id
            client.log_batch(
                run_id,
                metrics=[b.metric(f"m{j}", i / (j + 1), ts, 0) for j in range(3)],
                params=[b.param(f"p{j}", str((i + j) % 11)) for j in range(3)],
            )
            client.set_terminated(run_id)

    populate_s = time_block(populate)
    frames: list[Any] = []

    def search(_: int) -> None:
        frames.append(b.fluent.search_runs(experiment_ids=[experiment_id]))

    first = time_block(lambda: search(0))  # nbmlops imports pandas here, on first use
    samples = time_each(search, calls, warmup=0)
    shape = frames[-1].shape
    if shape[0] != n_runs:
        raise AssertionError(f"{b.name}: search_runs returned {shape[0]} rows, expected {n_runs}")
    return {
        **summarize(samples),
        "first_call": first,
        "populate_s": populate_s,
        "rows": shape[0],
        "columns": shape[1],
    }


def bench_metric_history(b: Backend, experiment_id: str, points: int, reads: int) -> dict[str, Any]:
    client = b.client()
    run_id = client.create_run(experiment_id).info.run_id
    ts = _now_ms()
    for start in range(0, points, 1000):  # MLflow accepts at most 1000 metrics per batch
        chunk = range(start, min(points, start + 1000))
        points_batch = [b.metric("loss", 1.0 / (i + 1), ts + i, i) for i in chunk]
        client.log_batch(run_id, metrics=points_batch)
    client.set_terminated(run_id)
    reader = b.client()
    histories: list[Any] = []

    def read(_: int) -> None:
        histories.append(reader.get_metric_history(run_id, "loss"))

    samples = time_each(read, reads)
    if len(histories[-1]) != points:
        got = len(histories[-1])
        raise AssertionError(f"{b.name}: history has {got} points, expected {points}")
    return {**summarize(samples), "points": points}


def run_suite(b: Backend, sizes: Sizes) -> dict[str, Any]:
    """Every timed measurement for one library, each in a fresh store."""
    lib = b.name
    results: dict[str, Any] = {}
    opens: list[float] = []

    def section(name: str, measure: Callable[[str], dict[str, Any]]) -> None:
        print(f"[{lib}] {name} ...", file=sys.stderr, flush=True)
        with fresh_dir(f"bench-{lib}-") as folder:
            start = time.perf_counter()
            experiment_id = b.open_store(folder)
            opens.append(time.perf_counter() - start)
            try:
                results[name] = measure(experiment_id)
            finally:
                b.close()

    section("empty_run", lambda _: bench_empty_run(b, sizes.pick("empty_runs", lib)))
    section("log_param", lambda _: bench_log_param(b, sizes.pick("params", lib), sizes.reps))
    section("log_metric", lambda _: bench_log_metric(b, sizes.pick("metrics", lib), sizes.reps))
    batch_calls = sizes.pick("batch_calls", lib)
    width, reps = sizes.batch_width, sizes.reps
    section("log_metrics", lambda _: bench_log_metrics(b, batch_calls, width, reps))
    section("child_run", lambda _: bench_child_run(b, sizes.pick("child_runs", lib)))
    section(
        "search_runs",
        lambda e: bench_search_runs(b, e, sizes.search_runs, sizes.pick("search_calls", lib)),
    )
    reads = sizes.pick("history_reads", lib)
    section("metric_history", lambda e: bench_metric_history(b, e, sizes.history_points, reads))
    results["store_open"] = summarize(opens)
    return results


def run_memory(sizes: Sizes) -> dict[str, Any]:
    """nbmlops only: a tight ``log_metric`` loop never grows memory without bound.

    Run with the timer flush disabled (``NBMLOPS_FLUSH_INTERVAL`` set very high by the
    parent) so only the size bound (10 000 records / 8 MiB) can keep the buffer small.
    """
    b = nbmlops_backend()
    import nbmlops

    n = sizes.memory_metrics
    sample_every = 100
    with fresh_dir("bench-nbmlops-mem-") as folder:
        b.open_store(folder)
        client = nbmlops.get_client()

        # Pass 1, untraced: speed and resident-set growth.
        nbmlops.start_run()
        nbmlops.log_metric("warm", 0.0)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        for i in range(n):
            nbmlops.log_metric("loss", i * 0.5, step=i)
        loop_s = time.perf_counter() - start
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        nbmlops.end_run()

        # Pass 2, traced: peak Python allocations while the loop runs.
        nbmlops.start_run()
        nbmlops.log_metric("warm", 0.0)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        max_pending = 0
        early_peak = 0.0
        for i in range(n):
            nbmlops.log_metric("loss", i * 0.5, step=i)
            if i % sample_every == 0:
                max_pending = max(max_pending, int(getattr(client, "_pending_records", 0)))
                if i == n // 10:
                    early_peak = (tracemalloc.get_traced_memory()[1] - base) / MIB
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        nbmlops.end_run()
        b.close()
    return {
        "metrics": n,
        "peak_traced_mib": (peak - base) / MIB,
        "peak_traced_mib_after_10pct": early_peak,
        "traced_mib_at_end": (current - base) / MIB,
        "max_pending_records_sampled": max_pending,
        "maxrss_growth_mib": rss_after - rss_before,
        "untraced_loop_s": loop_s,
        "untraced_per_call_s": loop_s / n,
    }


def worker_main(kind: str, sizes: Sizes) -> None:
    if kind == "nbmlops":
        emit_worker_result(run_suite(nbmlops_backend(), sizes))
    elif kind == "mlflow":
        emit_worker_result(run_suite(mlflow_backend(), sizes))
    elif kind == "nbmlops-memory":
        emit_worker_result(run_memory(sizes))
    else:
        raise SystemExit(f"unknown worker {kind!r}")


# --------------------------------------------------------------------------- parent


def _median(results: dict[str, Any] | None, *path: str) -> float | None:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if value is not None else None


def build_rows(
    sizes: Sizes,
    imports: dict[str, list[float]],
    ours: dict[str, Any],
    theirs: dict[str, Any] | None,
    memory: dict[str, Any],
) -> list[Row]:
    def med(res: dict[str, Any] | None, name: str, field: str = "median") -> float | None:
        return _median(res, name, field)

    def row(key: str, label: str, field: str = "median", note: str = "") -> Row:
        ours_value, theirs_value = med(ours, key, field), med(theirs, key, field)
        return Row(key, label, ours_value, theirs_value, BUDGETS[key], note=note)

    width = sizes.batch_width
    return [
        Row(
            "import",
            f"import (new interpreter, cached bytecode, median of {sizes.import_repeats})",
            statistics.median(imports["nbmlops"]),
            statistics.median(imports["mlflow"]) if imports.get("mlflow") else None,
            BUDGETS["import"],
            note="proxy for `%load_ext nbmlops`",
        ),
        Row(
            "load_ext",
            f"%load_ext nbmlops (IPython shell, median of {sizes.import_repeats})",
            statistics.median(imports["nbmlops_load_ext"]) if imports["nbmlops_load_ext"] else None,
            None,
            BUDGETS["load_ext"],
            note="nbmlops only; IPython imported before timing",
        ),
        row("store_open", "open a new store + create experiment"),
        row("empty_run", "empty run (start + end), per run"),
        row("log_param", "log_param, amortised incl. end_run"),
        row("log_metric", "log_metric, amortised incl. end_run flush"),
        Row(
            "log_metrics_call",
            f"log_metrics ({width} keys), per call",
            med(ours, "log_metrics"),
            med(theirs, "log_metrics"),
            BUDGETS["log_metrics_call"],
        ),
        Row(
            "log_metrics_metric",
            f"log_metrics ({width} keys), per metric",
            med(ours, "log_metrics", "per_metric_median"),
            med(theirs, "log_metrics", "per_metric_median"),
            BUDGETS["log_metrics_metric"],
        ),
        row("child_run", "nested child run, 5 params + 5 metrics"),
        row("search_runs", f"search_runs {sizes.search_runs} runs -> DataFrame"),
        row("metric_history", f"get_metric_history, {sizes.history_points:,} points"),
        Row(
            "memory_peak",
            f"{sizes.memory_metrics:,} log_metric loop, peak traced",
            memory["peak_traced_mib"],
            None,
            BUDGETS["memory_peak"],
            unit="MB",
            note="MiB; nbmlops only; timer flush disabled",
        ),
    ]


def load_ext_time(repeats: int, bytecode_cache: Path) -> list[float]:
    """``%load_ext nbmlops`` in a fresh IPython shell (IPython itself imported untimed).

    Empty when it cannot run (IPython missing or the extension failing): the proxy row,
    ``import nbmlops``, still stands in for it then.
    """
    if not is_installed("IPython"):
        return []
    setup = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()"
    )
    with fresh_dir("bench-load-ext-") as folder:
        env = quiet_env({"NBMLOPS_TRACKING_URI": f"sqlite:///{folder / 'nbmlops.db'}"})
        try:
            return time_snippet(
                "shell.run_line_magic('load_ext', 'nbmlops')",
                setup=setup,
                repeats=repeats,
                env=env,
                bytecode_cache=bytecode_cache,
                cwd=folder,
            )
        except RuntimeError as exc:
            print(f"# %load_ext nbmlops could not be timed: {exc}", file=sys.stderr)
            return []


def parent_main(args: argparse.Namespace, sizes: Sizes) -> int:
    script = str(Path(__file__).resolve())
    passthrough = ["--quick"] if args.quick else []
    with_mlflow = not args.no_mlflow
    if not is_installed("nbmlops"):
        print("error: nbmlops is not importable; run `pip install -e '.[bench]'`", file=sys.stderr)
        return 2
    if with_mlflow and not is_installed("mlflow"):
        print(
            "error: MLflow is not installed, so the comparison cannot run.\n"
            "  install it with `pip install -e '.[bench]'` (or `pip install 'mlflow>=3'`),\n"
            "  or pass --no-mlflow to benchmark nbmlops alone.",
            file=sys.stderr,
        )
        return 2

    machine = machine_info(["nbmlops", "mlflow", "pandas", "sqlalchemy"])
    print(
        f"# bench_tracking{' (quick)' if args.quick else ''}: {machine['nproc']} CPU(s), "
        f"{machine['cpu_model']}, Python {machine['python']}, "
        f"nbmlops {machine['versions']['nbmlops']}, mlflow {machine['versions']['mlflow'] or '-'}",
        flush=True,
    )
    if not with_mlflow:
        print("# MLflow comparison SKIPPED (--no-mlflow): the mlflow column shows n/a", flush=True)

    started = time.perf_counter()
    print("[parent] import times ...", file=sys.stderr, flush=True)
    repeats = sizes.import_repeats
    with fresh_dir("bench-pycache-") as cache:  # both libraries load from cached bytecode
        imports: dict[str, list[float]] = {
            "nbmlops": import_time("nbmlops", repeats=repeats, bytecode_cache=cache)
        }
        if with_mlflow:
            imports["mlflow"] = import_time("mlflow", repeats=repeats, bytecode_cache=cache)
        imports["nbmlops_load_ext"] = load_ext_time(repeats, cache)
    # The same import under this environment's own settings (with PYTHONDONTWRITEBYTECODE
    # set and no __pycache__ in the source tree, nbmlops is compiled from source each time).
    imports["nbmlops_env_settings"] = import_time("nbmlops", repeats=repeats)

    print("[parent] nbmlops worker ...", file=sys.stderr, flush=True)
    ours = run_worker([script, "--worker", "nbmlops", *passthrough], timeout=1800)
    theirs = None
    if with_mlflow:
        print("[parent] mlflow worker ...", file=sys.stderr, flush=True)
        theirs = run_worker([script, "--worker", "mlflow", *passthrough], timeout=1800)
    print("[parent] nbmlops memory worker ...", file=sys.stderr, flush=True)
    memory = run_worker(
        [script, "--worker", "nbmlops-memory", *passthrough],
        env=quiet_env({"NBMLOPS_FLUSH_INTERVAL": "3600"}),
        timeout=1800,
    )
    elapsed = time.perf_counter() - started

    rows = build_rows(sizes, imports, ours, theirs, memory)
    headers = [
        "operation",
        "nbmlops",
        "mlflow",
        "ratio (mlflow/nbmlops)",
        "budget",
        "within budget",
    ]
    print()
    print_table(rows, headers, markdown=args.markdown)
    print()
    print(
        f"# memory loop: peak traced {memory['peak_traced_mib']:.2f} MiB (after the first "
        f"{sizes.memory_metrics // 10:,} calls: {memory['peak_traced_mib_after_10pct']:.2f} MiB); "
        f"max pending records sampled {memory['max_pending_records_sampled']:,}; "
        f"max RSS growth {memory['maxrss_growth_mib']:.1f} MiB"
    )
    env_import = fmt_seconds(statistics.median(imports["nbmlops_env_settings"]))
    no_bytecode = (
        " (PYTHONDONTWRITEBYTECODE is set)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    )
    print(f"# import nbmlops under this environment's bytecode settings{no_bytecode}: {env_import}")
    first_search = fmt_seconds(ours["search_runs"]["first_call"])
    print(f"# nbmlops search_runs first call in the process (imports pandas): {first_search}")
    print(f"# total wall time {elapsed:.0f} s")
    misses = [r.operation for r in rows if r.within_budget is False]
    print(f"# budgets: {'all met' if not misses else 'MISSED: ' + '; '.join(misses)}", flush=True)

    emit_result(
        {
            "benchmark": "bench_tracking",
            "quick": args.quick,
            "mlflow_skipped": not with_mlflow,
            "machine": machine,
            "sizes": dataclasses.asdict(sizes),
            "wall_time_s": elapsed,
            "table": {r.key: r.as_dict("nbmlops", "mlflow") for r in rows},
            "imports_s": imports,
            "raw": {"nbmlops": ours, "mlflow": theirs, "nbmlops_memory": memory},
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    workers = ["nbmlops", "mlflow", "nbmlops-memory"]
    parser.add_argument("--worker", choices=workers, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.worker:
        worker_main(args.worker, sizes)
        return 0
    return parent_main(args, sizes)


if __name__ == "__main__":
    raise SystemExit(main())
