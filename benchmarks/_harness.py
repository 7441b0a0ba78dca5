"""Small shared helpers for the scripts in ``benchmarks/`` (timing, workers, reporting).

Every benchmark script follows the same shape:

* the parent process checks what is installed, then runs one **worker subprocess per
  library** (so one library's imports, heap and background threads never skew the other's
  figures) and collects the worker's figures from its last stdout line
  (:data:`WORKER_PREFIX` + JSON, see :func:`emit_worker_result` / :func:`run_worker`);
* it prints a table of :class:`Row` (:func:`print_table`) and one final line
  :data:`RESULT_PREFIX` + JSON with every figure (:func:`emit_result`).

Times are kept in seconds and memory in MB everywhere; formatting happens only at the end.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WORKER_PREFIX = "WORKER_JSON "
RESULT_PREFIX = "RESULT_JSON "

#: Environment that keeps MLflow quiet and offline (no telemetry, no progress bars).
QUIET_MLFLOW_ENV: dict[str, str] = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    "PYTHONWARNINGS": "ignore",
}

_NOISY_LOGGERS = ("mlflow", "alembic", "sqlalchemy", "urllib3", "git")


# --------------------------------------------------------------------------- environment


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (checked without importing it)."""
    return importlib.util.find_spec(module) is not None


def package_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None (does not import it)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def quiet_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``os.environ`` with :data:`QUIET_MLFLOW_ENV` (and ``extra``) applied."""
    env = dict(os.environ)
    env.update(QUIET_MLFLOW_ENV)
    if extra:
        env.update(extra)
    return env


def silence_mlflow() -> None:
    """Silence MLflow's warnings and log noise in this process (call before importing it)."""
    for key, value in QUIET_MLFLOW_ENV.items():
        os.environ.setdefault(key, value)
    warnings.simplefilter("ignore")
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def machine_info(packages: Sequence[str] = ()) -> dict[str, Any]:
    """CPU count and model, OS, Python and the versions of ``packages``."""
    cpu_model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "nproc": len(affinity(0)) if affinity is not None else os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "versions": {name: package_version(name) for name in packages},
    }


@contextmanager
def fresh_dir(prefix: str = "nbmlops-bench-") -> Iterator[Path]:
    """A new, empty temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as name:
        yield Path(name)


# --------------------------------------------------------------------------- timing


def time_each(fn: Callable[[int], object], n: int, warmup: int = 1) -> list[float]:
    """Seconds taken by each of ``n`` calls ``fn(i)`` (after ``warmup`` untimed calls)."""
    for i in range(warmup):
        fn(-1 - i)
    clock = time.perf_counter
    samples = []
    for i in range(n):
        start = clock()
        fn(i)
        samples.append(clock() - start)
    return samples


def time_block(fn: Callable[[], object]) -> float:
    """Seconds taken by one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, mean, min, max and count of ``samples``."""
    if not samples:
        raise ValueError("no samples")
    return {
        "median": statistics.median(samples),
        "mean": statistics.fmean(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def time_snippet(
    stmt: str,
    setup: str = "",
    repeats: int = 5,
    warmup: int = 1,
    env: Mapping[str, str] | None = None,
    bytecode_cache: Path | None = None,
    cwd: Path | None = None,
) -> list[float]:
    """Seconds ``stmt`` takes in fresh interpreters (``repeats`` samples), after ``setup``.

    Each sample is one ``python -c`` subprocess that runs ``setup`` untimed, then times
    ``stmt`` with ``perf_counter`` (interpreter start-up is not included). ``warmup`` untimed
    runs first fill the OS file cache (and the bytecode cache).

    Args:
        bytecode_cache: a folder used as ``PYTHONPYCACHEPREFIX`` with bytecode writing
            enabled, so after the warm-up every module loads from cached bytecode, as an
            installed package does, even where ``PYTHONDONTWRITEBYTECODE`` is set or the
            source tree is read-only. None: the environment's own settings apply.
    """
    code = (
        f"{setup}\nimport time as _t\n_start = _t.perf_counter()\n{stmt}\n"
        "print(_t.perf_counter() - _start)"
    )
    run_env = dict(env) if env is not None else quiet_env()
    if bytecode_cache is not None:
        run_env.pop("PYTHONDONTWRITEBYTECODE", None)
        run_env["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)
    samples = []
    for i in range(warmup + repeats):
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=run_env,
            cwd=cwd,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"timing {stmt!r} failed:\n{done.stderr.strip()[-2000:]}")
        if i >= warmup:
            samples.append(float(done.stdout.strip().splitlines()[-1]))
    return samples


def import_time(
    module: str,
    repeats: int = 5,
    warmup: int = 1,
    env: Mapping[str, str] | None = None,
    bytecode_cache: Path | None = None,
) -> list[float]:
    """Seconds to ``import module`` in fresh interpreters (see :func:`time_snippet`)."""
    return time_snippet(
        f"import {module}", repeats=repeats, warmup=warmup, env=env, bytecode_cache=bytecode_cache
    )


# --------------------------------------------------------------------------- workers


def emit_worker_result(payload: Mapping[str, Any]) -> None:
    """Print a worker's figures as its last stdout line (read by :func:`run_worker`)."""
    sys.stdout.flush()
    print(WORKER_PREFIX + json.dumps(payload, allow_nan=True), flush=True)


def run_worker(
    argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """Run ``python *argv`` and return the JSON its last :data:`WORKER_PREFIX` line carries.

    The worker's stderr is captured (that is where library log noise goes) and shown only if
    the worker fails.
    """
    done = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else quiet_env(),
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(WORKER_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"benchmark worker {' '.join(argv)} failed (exit {done.returncode}):\n"
            f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len(WORKER_PREFIX) :])


# --------------------------------------------------------------------------- reporting


def fmt_seconds(seconds: float | None) -> str:
    """``seconds`` with a readable unit (ns, µs, ms, s)."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "n/a"
    for scale, unit in ((1e-6, "ns"), (1e-3, "µs"), (1.0, "ms")):
        if seconds < scale:
            return f"{_three_digits(seconds * 1e3 / scale)} {unit}"
    return f"{_three_digits(seconds)} s"


def _three_digits(value: float) -> str:
    """About three significant digits without scientific notation: 8.28, 59.5, 168."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_mb(megabytes: float | None) -> str:
    return "n/a" if megabytes is None else f"{megabytes:.1f} MB"


@dataclasses.dataclass
class Row:
    """One line of a comparison table.

    ``ours``/``theirs`` are seconds when ``unit == "s"`` and megabytes when ``unit == "MB"``;
    ``budget`` is an upper bound in the same unit (None: report only).
    """

    key: str
    operation: str
    ours: float | None
    theirs: float | None = None
    budget: float | None = None
    unit: str = "s"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """theirs / ours: how many times faster (or leaner) we are."""
        if self.ours is None or self.theirs is None or self.ours <= 0:
            return None
        return self.theirs / self.ours

    @property
    def within_budget(self) -> bool | None:
        if self.budget is None or self.ours is None:
            return None
        return self.ours <= self.budget

    def _fmt(self, value: float | None) -> str:
        return fmt_mb(value) if self.unit == "MB" else fmt_seconds(value)

    def cells(self) -> list[str]:
        ratio = self.ratio
        within = self.within_budget
        return [
            self.operation,
            self._fmt(self.ours),
            self._fmt(self.theirs),
            "n/a" if ratio is None else f"{ratio:,.1f}×",
            "—" if self.budget is None else f"≤ {self._fmt(self.budget)}",
            "—" if within is None else ("yes" if within else "no"),
        ]

    def as_dict(self, ours_name: str, theirs_name: str) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "unit": self.unit,
            ours_name: self.ours,
            theirs_name: self.theirs,
            "ratio": self.ratio,
            "budget": self.budget,
            "within_budget": self.within_budget,
            "note": self.note,
        }


def table_lines(rows: Sequence[Row], headers: Sequence[str], markdown: bool = False) -> list[str]:
    """The table as text lines: aligned plain text, or a Markdown table."""
    body = [row.cells() for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return lines
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return " | ".join([first, *rest])

    return [line(headers), "-+-".join("-" * w for w in widths), *(line(c) for c in body)]


def print_table(rows: Sequence[Row], headers: Sequence[str], markdown: bool = False) -> None:
    print("\n".join(table_lines(rows, headers, markdown)), flush=True)


def emit_result(payload: Mapping[str, Any]) -> None:
    """Print the single final :data:`RESULT_PREFIX` line with every figure."""
    print(RESULT_PREFIX + json.dumps(payload, allow_nan=True, sort_keys=False), flush=True)
