"""The REST API's budgets (design doc §9): a page of 100 runs from a 100 000-run store in
≤ 50 ms, and no RSS growth of the server over 10 000 requests.

    python benchmarks/bench_server.py              # 100 000 runs, 10 000 requests (~3-4 min)
    python benchmarks/bench_server.py --quick      # 5 000 runs, 1 000 requests (~20 s)
    python benchmarks/bench_server.py --markdown   # the table as Markdown

The store is filled through the store API (5 params and 5 metrics per run), then a real
``jupyter server`` (this environment's, with the nbmlops extension enabled on install) serves
it; the timings are wall-clock HTTP round trips from this process (token auth), after warm-up.
``ApiService.runs`` (the same call without HTTP) is timed in-process too. The last stdout
line is ``RESULT_JSON {...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import fresh_dir, machine_info

BUDGET_PAGE_S = 0.050


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fill(db: Path, runs: int) -> str:
    """``runs`` finished runs with 5 params and 5 metrics each; returns the experiment id."""
    from nbmlops.entities import Metric, Param, RunStatus
    from nbmlops.store.sqlite import SqliteStore

    store = SqliteStore(db)
    experiment = store.create_experiment("bench").experiment_id
    started = time.perf_counter()
    for i in range(runs):
        info = store.create_run(experiment, f"run-{i}", 1_000_000 + i, "bench")
        store.log_batch(
            info.run_id,
            metrics=[
                Metric(f"m{k}", ((i * 7919 + k) % 1000) / 1000, 1_000_000 + i, 0) for k in range(5)
            ],
            params=[Param(f"p{k}", str((i + k) % 17)) for k in range(5)],
        )
        store.end_run(info.run_id, RunStatus.FINISHED, 1_000_001 + i)
        if (i + 1) % 10_000 == 0:
            _log(f"  {i + 1} runs ({time.perf_counter() - started:.0f} s)")
    store.close()
    return experiment


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _get(url: str, token: str) -> tuple[float, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as reply:
        body = reply.read()
    return time.perf_counter() - started, json.loads(body)


def _median(fn: Any, n: int) -> float:
    for _ in range(3):
        fn()
    return statistics.median(fn() for _ in range(n))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 000 runs, 1 000 requests")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    runs = args.runs or (5_000 if args.quick else 100_000)
    requests = args.requests or (1_000 if args.quick else 10_000)

    with fresh_dir("nbmlops-bench-server-") as root:
        store_dir = root / ".nbmlops"
        store_dir.mkdir()
        _log(f"filling a store with {runs} runs ...")
        experiment = fill(store_dir / "nbmlops.db", runs)
        token = secrets.token_hex(16)
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k != "NBMLOPS_TRACKING_URI"}
        log = (root / "server.log").open("wb")
        server = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
                f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
            ],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}/nbmlops/api"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    _get(f"{base}/status", token)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit((root / "server.log").read_text()[-2000:]) from None
                    time.sleep(0.2)

            def page(query: dict[str, Any]) -> float:
                seconds, body = _get(
                    f"{base}/runs?{urllib.parse.urlencode(query, doseq=True)}", token
                )
                assert len(body["runs"]) == 100, body
                return seconds

            first = {"experiment": experiment, "max_results": 100}
            _, body = _get(f"{base}/runs?{urllib.parse.urlencode(first)}", token)
            second = {**first, "page_token": body["next_page_token"]}
            filtered = {
                **first,
                "filter": "metrics.m0 > 0.5 and params.p1 = '3'",
                "order_by": "metrics.m0 DESC",
            }
            timings = {
                "GET runs (page 1 of 100, newest first)": _median(lambda: page(first), 30),
                "GET runs (page 2, with page_token)": _median(lambda: page(second), 30),
                "GET runs (filter + order_by metric)": _median(lambda: page(filtered), 15),
            }
            from nbmlops.server.services import ApiService

            service = ApiService(root)
            ref = service.catalog.select()

            def direct() -> float:
                started = time.perf_counter()
                service.runs(ref, experiment=experiment, max_results=100)
                return time.perf_counter() - started

            timings["ApiService.runs in-process (page 1)"] = _median(direct, 30)
            _log(f"{requests} requests for the RSS check ...")
            for _ in range(200):
                _get(f"{base}/runs?{urllib.parse.urlencode(first)}", token)
            rss_before = _rss_mb(server.pid)
            for i in range(requests):
                route = ("runs", "experiments", "status", "models")[i % 4]
                query = first if route == "runs" else {}
                _get(f"{base}/{route}?{urllib.parse.urlencode(query)}", token)
            rss_after = _rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()

    rows = [
        (name, f"{s * 1000:.1f} ms", "≤ 50 ms", "yes" if s <= BUDGET_PAGE_S else "NO")
        for name, s in timings.items()
    ]
    rows.append(
        (
            f"server RSS over {requests} requests",
            f"{rss_before:.0f} → {rss_after:.0f} MiB",
            "no growth",
            "yes" if rss_after - rss_before < 5 else "NO",
        )
    )
    headers = ("operation", f"{runs:,} runs", "budget", "within budget")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    sep = " | " if args.markdown else "  "
    lines = [sep.join(str(c).ljust(w) for c, w in zip(headers, widths, strict=True))]
    if args.markdown:
        lines = [f"| {lines[0]} |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += [f"| {sep.join(str(c) for c in r)} |" for r in rows]
    else:
        lines += [sep.join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    print("\n".join(lines))
    print(
        "RESULT_JSON "
        + json.dumps(
            {
                "runs": runs,
                "requests": requests,
                "timings_s": timings,
                "rss_mb": {"before": rss_before, "after": rss_after},
                "machine": machine_info(["jupyter_server", "tornado"]),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
