"""Tuning benchmark: per-trial overhead of nbmlops tuning vs bare Optuna vs Optuna's
MLflowCallback, same machine, same run.

Usage::

    python benchmarks/bench_tuning.py              # full run (about 2 minutes on 2 cores)
    python benchmarks/bench_tuning.py --quick      # tiny sizes: a smoke test
    python benchmarks/bench_tuning.py --no-mlflow  # without the MLflowCallback comparison
    python benchmarks/bench_tuning.py --markdown   # the table as Markdown

The objective is trivial (``trial.suggest_float("x", 0, 1)``), so what is measured is the cost
each library adds per trial. Four kinds of worker subprocess, each on a fresh temporary store:

* **optuna** — ``study.optimize(objective, n_trials=N)`` on an in-memory study (the baseline);
* **nbmlops** — ``nbmlops.tune(objective, n_trials=N, show=False)`` on an embedded SQLite
  store: a tuning run plus one child run per trial (params, metric, tags), the parent's summary
  (best params/value, counts, ``trials.csv``, param importances) — the whole call is timed;
* **nbmlops_panel** — the same with the live panel (``show="widgets"``: ipywidgets without a
  frontend, charts rendered with matplotlib; redraws throttled as in a notebook);
* **mlflow** — ``study.optimize`` with ``optuna_integration.MLflowCallback`` logging each trial
  as a nested run of an outer ``mlflow.start_run()`` (the same run tree) into MLflow's SQLite
  store.

Every worker times a study with the random sampler and one with TPE (both seeded), after an
untimed warm-up study. The workers run in rounds (optuna, nbmlops, panel, mlflow, then again)
so that a change in machine load hits every library alike; the table shows the median over
rounds of the per-trial time (wall time of the call / N) and the overhead over bare Optuna
(median per-trial time minus bare Optuna's). Output: a table and, as the very last line,
``RESULT_JSON {...}`` with every figure in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import statistics
import sys
import time
import warnings
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
)

KINDS = ("optuna", "nbmlops", "nbmlops_panel", "mlflow")
SAMPLERS = ("random", "tpe")
BUDGET_S = 0.002  # ≤ 2 ms per trial over bare Optuna


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Trials per study and rounds of workers."""

    n_trials: int = 200
    rounds: int = 3
    warmup_trials: int = 20

    @classmethod
    def quick(cls) -> Sizes:
        return cls(n_trials=30, rounds=1, warmup_trials=12)


def objective(trial: Any) -> float:
    return float(trial.suggest_float("x", 0.0, 1.0))


def _sampler(name: str) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=0)
    return optuna.samplers.TPESampler(seed=0)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")


#: A runner runs one study and returns the seconds its trial loop took (None: the whole call).
Runner = Callable[[str, int], "float | None"]


def optuna_runner(folder: Path) -> Runner:
    import optuna

    def run(sampler: str, n_trials: int) -> None:
        study = optuna.create_study(direction="maximize", sampler=_sampler(sampler))
        study.optimize(objective, n_trials=n_trials)

    return run


def nbmlops_runner(folder: Path, show: bool | str) -> Runner:
    import nbmlops
    from nbmlops import tuning

    counter = iter(range(10**6))

    def run(sampler: str, n_trials: int) -> float:
        # A fresh store per study, as for the other libraries (not timed apart: it is cheap).
        nbmlops.tracking._reset_for_tests()
        nbmlops.set_tracking_uri(f"sqlite:///{folder / f'store-{next(counter)}' / 'nbmlops.db'}")
        nbmlops.set_experiment("bench-tuning")
        with contextlib.redirect_stdout(io.StringIO()):  # display() prints without a frontend
            nbmlops.tune(objective, n_trials=n_trials, sampler=_sampler(sampler), show=show)
        progress = tuning.last_result().progress  # type: ignore[union-attr]
        assert progress.ended is not None and progress.n_complete == n_trials
        return progress.ended - progress.started  # from the tuning run's start to the last trial

    return run


def mlflow_runner(folder: Path) -> Runner:
    silence_mlflow()
    import mlflow
    import optuna
    from optuna_integration.mlflow import MLflowCallback

    silence_mlflow()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment(
        "bench-tuning", artifact_location=(folder / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment_id)

    def run(sampler: str, n_trials: int) -> None:
        callback = MLflowCallback(
            tracking_uri=uri,
            metric_name="value",
            create_experiment=False,
            mlflow_kwargs={"nested": True, "experiment_id": experiment_id},
        )
        study = optuna.create_study(direction="maximize", sampler=_sampler(sampler))
        with mlflow.start_run(run_name="tuning"):
            study.optimize(objective, n_trials=n_trials, callbacks=[callback])

    return run


def worker_main(kind: str, sizes: Sizes) -> None:
    _quiet_optuna()
    with fresh_dir(f"bench-tuning-{kind}-") as folder:
        if kind == "optuna":
            run = optuna_runner(folder)
        elif kind == "nbmlops":
            run = nbmlops_runner(folder, show=False)
        elif kind == "nbmlops_panel":
            run = nbmlops_runner(folder, show="widgets")
        else:
            run = mlflow_runner(folder)
        _quiet_optuna()
        figures: dict[str, dict[str, float]] = {}
        for sampler in SAMPLERS:
            run(sampler, sizes.warmup_trials)  # imports, first-use caches, JIT-free warm-up
            started = time.perf_counter()
            loop = run(sampler, sizes.n_trials)
            total = time.perf_counter() - started
            loop = total if loop is None else loop
            figures[sampler] = {
                "per_trial": total / sizes.n_trials,
                "loop_per_trial": loop / sizes.n_trials,
                "end_s": total - loop,
            }
    emit_worker_result(figures)


def parent_main(args: argparse.Namespace, sizes: Sizes) -> int:
    script = str(Path(__file__).resolve())
    passthrough = ["--quick"] if args.quick else []
    with_mlflow = not args.no_mlflow
    for module, hint in (("nbmlops", "pip install -e '.[bench]'"), ("optuna", "pip install -e '.[bench]'")):  # fmt: skip
        if not is_installed(module):
            print(f"error: {module} is not importable; run `{hint}`", file=sys.stderr)
            return 2
    if with_mlflow and not (is_installed("mlflow") and is_installed("optuna_integration")):
        print(
            "error: MLflow and optuna-integration are needed for the MLflowCallback comparison.\n"
            "  install them with `pip install -e '.[bench]'`,\n"
            "  or pass --no-mlflow to benchmark nbmlops against bare Optuna alone.",
            file=sys.stderr,
        )
        return 2
    machine = machine_info(["nbmlops", "optuna", "optuna-integration", "mlflow", "matplotlib"])
    versions = machine["versions"]
    print(
        f"# bench_tuning{' (quick)' if args.quick else ''}: {machine['nproc']} CPU(s), "
        f"{machine['cpu_model']}, Python {machine['python']}, nbmlops {versions['nbmlops']}, "
        f"optuna {versions['optuna']}, mlflow {versions['mlflow'] or '-'}",
        flush=True,
    )
    if not with_mlflow:
        print("# MLflowCallback comparison SKIPPED (--no-mlflow): its column shows n/a", flush=True)
    kinds = [k for k in KINDS if with_mlflow or k != "mlflow"]
    fields = ("per_trial", "loop_per_trial", "end_s")
    samples: dict[str, dict[str, dict[str, list[float]]]] = {
        k: {s: {f: [] for f in fields} for s in SAMPLERS} for k in kinds
    }
    started = time.perf_counter()
    for round_index in range(sizes.rounds):
        for kind in kinds:
            print(f"[parent] round {round_index + 1}: {kind} ...", file=sys.stderr, flush=True)
            figures = run_worker([script, "--worker", kind, *passthrough], timeout=1800)
            for sampler in SAMPLERS:
                for field in fields:
                    samples[kind][sampler][field].append(figures[sampler][field])
    elapsed = time.perf_counter() - started
    median = {
        k: {s: {f: statistics.median(v) for f, v in by_field.items()} for s, by_field in by.items()}
        for k, by in samples.items()
    }

    rows: list[Row] = []
    for sampler in SAMPLERS:
        bare = median["optuna"][sampler]["per_trial"]
        ours, panel = median["nbmlops"][sampler], median["nbmlops_panel"][sampler]
        mlflow = median["mlflow"][sampler]["per_trial"] if "mlflow" in median else None
        mlflow_over = None if mlflow is None else mlflow - bare
        rows += [
            Row(
                key=f"per_trial_{sampler}",
                operation=f"per trial, {sampler} sampler (bare Optuna: {bare * 1e3:.3f} ms)",
                ours=ours["per_trial"],
                theirs=mlflow,
            ),
            Row(
                key=f"overhead_{sampler}",
                operation=f"overhead per trial over bare Optuna, {sampler} (whole call)",
                ours=ours["per_trial"] - bare,
                theirs=mlflow_over,
                budget=BUDGET_S,
            ),
            Row(
                key=f"overhead_loop_{sampler}",
                operation=f"  of which during the trials, {sampler}",
                ours=ours["loop_per_trial"] - bare,
                theirs=mlflow_over,
                budget=BUDGET_S,
            ),
            Row(
                key=f"overhead_panel_{sampler}",
                operation=f"overhead per trial with the live panel, {sampler} (whole call)",
                ours=panel["per_trial"] - bare,
                theirs=mlflow_over,
            ),
            Row(
                key=f"overhead_panel_loop_{sampler}",
                operation=f"  of which during the trials, {sampler}",
                ours=panel["loop_per_trial"] - bare,
                theirs=mlflow_over,
                budget=BUDGET_S,
            ),
            Row(
                key=f"end_{sampler}",
                operation=f"once per study at the end, {sampler}: summary, CSV, importances",
                ours=ours["end_s"],
            ),
            Row(
                key=f"end_panel_{sampler}",
                operation=f"once per study at the end with the panel, {sampler} (+ final charts)",
                ours=panel["end_s"],
            ),
        ]
    headers = ["operation (median of rounds)", "nbmlops", "MLflowCallback", "ratio (mlflow/nbmlops)", "budget", "within budget"]  # fmt: skip
    print()
    print_table(rows, headers, markdown=args.markdown)
    print()
    print(
        f"# {sizes.n_trials} trials per study, {sizes.rounds} round(s) of workers "
        f"(after a {sizes.warmup_trials}-trial warm-up study each); total wall time {elapsed:.0f} s"
    )
    emit_result(
        {
            "benchmark": "bench_tuning",
            "quick": args.quick,
            "mlflow_skipped": not with_mlflow,
            "machine": machine,
            "sizes": dataclasses.asdict(sizes),
            "wall_time_s": elapsed,
            "table": {r.key: r.as_dict("nbmlops", "mlflow_callback") for r in rows},
            "per_trial_s": {"median": median, "samples": samples},
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflowCallback run")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.worker:
        worker_main(args.worker, sizes)
        return 0
    return parent_main(args, sizes)


if __name__ == "__main__":
    raise SystemExit(main())
