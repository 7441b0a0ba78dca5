"""Registry benchmark: nbmlops vs MLflow 3, same machine, same run.

Usage::

    python benchmarks/bench_registry.py              # full run (about 90 s on 2 cores)
    python benchmarks/bench_registry.py --quick      # tiny sizes: a smoke test
    python benchmarks/bench_registry.py --no-mlflow  # nbmlops only (comparison skipped)

Each library runs in its own worker subprocess on its embedded SQLite store in a fresh
temporary folder (MLflow: its SQLAlchemy SQLite backend, artifacts in a local folder). The
same scikit-learn model (a ``LogisticRegression`` on the breast-cancer data set, bundled with
scikit-learn) is logged once per iteration, untimed for the registry figures, then:

* **register** — ``register_model(<logged model URI>, name)``: the next version;
* **set alias** — ``set_registered_model_alias(name, "champion", version)``;
* **load by alias** — ``load_model("models:/<name>@champion")`` and one ``predict`` check
  (nbmlops: sha256 verification + unpickling + its wrapper; MLflow:
  ``mlflow.sklearn.load_model``, which returns the bare estimator);
* **register + alias + load** — the three, per iteration.

``log_model`` itself is reported too (informational). Output: a table and, as the very last
line, ``RESULT_JSON {...}`` with every figure in seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # benchmarks/ is not a package: imported from beside this file
    Row,
    emit_result,
    emit_worker_result,
    fresh_dir,
    is_installed,
    machine_info,
    print_table,
    run_worker,
    silence_mlflow,
    summarize,
)

OPERATIONS = ("log_model", "register", "set_alias", "load_by_alias", "register_alias_load")
LABELS = {
    "log_model": "log_model (sklearn LogisticRegression)",
    "register": "register_model (new version)",
    "set_alias": "set_registered_model_alias",
    "load_by_alias": "load_model('models:/name@champion')",
    "register_alias_load": "register + set alias + load by alias",
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Iterations per library (MLflow is slower per operation, so it does fewer)."""

    iterations: int = 60
    ml_iterations: int = 15
    warmup: int = 2

    @classmethod
    def quick(cls) -> Sizes:
        return cls(iterations=5, ml_iterations=3, warmup=1)

    def pick(self, library: str) -> int:
        return self.ml_iterations if library == "mlflow" else self.iterations


def _model() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=5000).fit(x, y), x


@dataclasses.dataclass
class Backend:
    """The library-specific calls; the measurement loop is shared."""

    name: str
    open_store: Callable[[Path], None]
    log_model: Callable[[Any, Any], str]  # returns the model URI to register
    register: Callable[[str, str], int]  # returns the version
    set_alias: Callable[[str, int], None]
    load: Callable[[str], Any]


def nbmlops_backend() -> Backend:
    import nbmlops

    def open_store(folder: Path) -> None:
        nbmlops.set_tracking_uri(f"sqlite:///{folder / 'nbmlops.db'}")
        nbmlops.set_experiment("bench-registry")

    def log_model(model: Any, example: Any) -> str:
        with nbmlops.start_run():
            return nbmlops.log_model(model, input_example=example).model_uri

    client = nbmlops.get_client  # resolved after open_store

    return Backend(
        name="nbmlops",
        open_store=open_store,
        log_model=log_model,
        register=lambda uri, name: nbmlops.register_model(uri, name).version,
        set_alias=lambda name, v: client().set_registered_model_alias(name, "champion", v),
        load=lambda name: nbmlops.load_model(f"models:/{name}@champion"),
    )


def mlflow_backend() -> Backend:
    silence_mlflow()
    import mlflow
    import mlflow.sklearn

    silence_mlflow()

    def open_store(folder: Path) -> None:
        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
        experiment_id = mlflow.create_experiment(
            "bench-registry", artifact_location=(folder / "artifacts").as_uri()
        )
        mlflow.set_experiment(experiment_id=experiment_id)

    def log_model(model: Any, example: Any) -> str:
        with mlflow.start_run():
            return mlflow.sklearn.log_model(model, name="model", input_example=example).model_uri

    def set_alias(name: str, version: int) -> None:
        mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)

    return Backend(
        name="mlflow",
        open_store=open_store,
        log_model=log_model,
        register=lambda uri, name: int(mlflow.register_model(uri, name).version),
        set_alias=set_alias,
        load=lambda name: mlflow.sklearn.load_model(f"models:/{name}@champion"),
    )


def run_suite(backend: Backend, sizes: Sizes) -> dict[str, Any]:
    """Time each operation per iteration on a fresh store; returns summaries per operation."""
    import numpy as np

    model, x = _model()
    example = x.head(5)
    expected = model.predict(x.head(20))
    samples: dict[str, list[float]] = {op: [] for op in OPERATIONS}
    clock = time.perf_counter
    n = sizes.pick(backend.name)
    with fresh_dir(f"bench-registry-{backend.name}-") as folder:
        backend.open_store(folder)
        for i in range(sizes.warmup + n):
            start = clock()
            uri = backend.log_model(model, example)
            logged = clock()
            version = backend.register(uri, "bench-model")
            registered = clock()
            backend.set_alias("bench-model", version)
            aliased = clock()
            loaded = backend.load("bench-model")
            done = clock()
            if not np.array_equal(loaded.predict(x.head(20)), expected):
                raise RuntimeError(f"{backend.name}: loaded model predicts differently")
            if i < sizes.warmup:
                continue
            samples["log_model"].append(logged - start)
            samples["register"].append(registered - logged)
            samples["set_alias"].append(aliased - registered)
            samples["load_by_alias"].append(done - aliased)
            samples["register_alias_load"].append(done - logged)
    return {op: summarize(values) for op, values in samples.items()}


def worker_main(kind: str, sizes: Sizes) -> None:
    backend = nbmlops_backend() if kind == "nbmlops" else mlflow_backend()
    emit_worker_result(run_suite(backend, sizes))


def parent_main(args: argparse.Namespace, sizes: Sizes) -> int:
    script = str(Path(__file__).resolve())
    passthrough = ["--quick"] if args.quick else []
    with_mlflow = not args.no_mlflow
    for module, hint in (("nbmlops", "pip install -e '.[bench,sklearn]'"), ("sklearn", "pip install -e '.[sklearn]'")):  # fmt: skip
        if not is_installed(module):
            print(f"error: {module} is not importable; run `{hint}`", file=sys.stderr)
            return 2
    if with_mlflow and not is_installed("mlflow"):
        print(
            "error: MLflow is not installed, so the comparison cannot run.\n"
            "  install it with `pip install -e '.[bench]'` (or `pip install 'mlflow>=3'`),\n"
            "  or pass --no-mlflow to benchmark nbmlops alone.",
            file=sys.stderr,
        )
        return 2
    machine = machine_info(["nbmlops", "mlflow", "scikit-learn", "joblib"])
    print(
        f"# bench_registry{' (quick)' if args.quick else ''}: {machine['nproc']} CPU(s), "
        f"{machine['cpu_model']}, Python {machine['python']}, "
        f"nbmlops {machine['versions']['nbmlops']}, mlflow {machine['versions']['mlflow'] or '-'}, "
        f"scikit-learn {machine['versions']['scikit-learn']}",
        flush=True,
    )
    if not with_mlflow:
        print("# MLflow comparison SKIPPED (--no-mlflow): the mlflow column shows n/a", flush=True)
    started = time.perf_counter()
    print("[parent] nbmlops worker ...", file=sys.stderr, flush=True)
    ours = run_worker([script, "--worker", "nbmlops", *passthrough], timeout=1800)
    theirs = None
    if with_mlflow:
        print("[parent] mlflow worker ...", file=sys.stderr, flush=True)
        theirs = run_worker([script, "--worker", "mlflow", *passthrough], timeout=1800)
    elapsed = time.perf_counter() - started

    rows = [
        Row(
            key=op,
            operation=LABELS[op],
            ours=ours[op]["median"],
            theirs=None if theirs is None else theirs[op]["median"],
            note="median per iteration",
        )
        for op in OPERATIONS
    ]
    headers = ["operation (median)", "nbmlops", "mlflow", "ratio (mlflow/nbmlops)", "budget", "within budget"]  # fmt: skip
    print()
    print_table(rows, headers, markdown=args.markdown)
    print()
    print(
        f"# iterations: nbmlops {sizes.pick('nbmlops')}, mlflow {sizes.pick('mlflow')} "
        f"(after {sizes.warmup} warm-up); total wall time {elapsed:.0f} s"
    )
    emit_result(
        {
            "benchmark": "bench_registry",
            "quick": args.quick,
            "mlflow_skipped": not with_mlflow,
            "machine": machine,
            "sizes": dataclasses.asdict(sizes),
            "wall_time_s": elapsed,
            "table": {r.key: r.as_dict("nbmlops", "mlflow") for r in rows},
            "raw": {"nbmlops": ours, "mlflow": theirs},
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
    parser.add_argument("--worker", choices=["nbmlops", "mlflow"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.worker:
        worker_main(args.worker, sizes)
        return 0
    return parent_main(args, sizes)


if __name__ == "__main__":
    raise SystemExit(main())
