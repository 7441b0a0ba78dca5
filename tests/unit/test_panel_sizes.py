"""Large stores: the panels render one page, build a bounded number of widgets, and stay fast.

The timing ceilings here are deliberately loose guards against accidental O(n) widget or
HTML building; the budgets themselves (runs table over 10 000 runs ≤ 1 s, compare of 20 runs
× 200 params ≤ 1 s) are measured in ``benchmarks/bench_panels.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ipywidgets.widgets.tests.utils import setup_test_comm, teardown_test_comm

import nbmlops
from nbmlops.display._panel import iter_widgets
from nbmlops.entities import Metric, Param, RunSource

N_SESSIONS, N_CELLS, N_TRIALS = 10, 100, 9  # 10 + 1 000 + 9 000 = 10 010 runs
GUARD_S = 5.0


@pytest.fixture(scope="module")
def big_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[nbmlops.Client]:
    """A store with 10 010 runs: sessions -> cells -> trials, with params and metrics."""
    path: Path = tmp_path_factory.mktemp("big") / "nbmlops.db"
    client = nbmlops.Client(f"sqlite:///{path}")
    exp = client.create_experiment("big")
    for s in range(N_SESSIONS):
        session = client.create_run(
            exp, run_name=f"session-{s}", tags={"nbmlops.run_type": "session"}
        )
        for c in range(N_CELLS):
            cell = client.create_run(
                exp,
                run_name=f"cell-{s}-{c}",
                parent_run_id=session.info.run_id,
                tags={"nbmlops.run_type": "cell"},
            )
            client.log_batch(
                cell.info.run_id,
                metrics=[Metric("f1", (c % 17) / 17, 0, 0)],
                params=[Param("depth", str(c % 7))],
            )
            for t in range(N_TRIALS):
                trial = client.create_run(
                    exp, run_name=f"trial-{t}", parent_run_id=cell.info.run_id
                )
                client.log_batch(trial.info.run_id, metrics=[Metric("f1", t / 10, 0, 0)])
    client.flush()
    yield client
    client.close()


@pytest.fixture
def test_comm() -> Iterator[None]:
    setup_test_comm()
    yield
    teardown_test_comm()


def test_runs_view_over_10000_runs_renders_one_page(
    big_client: nbmlops.Client, test_comm: None
) -> None:
    start = time.perf_counter()
    view = nbmlops.runs_view(experiment="big", client=big_client)
    html = view.to_html()
    root = view.widget()
    elapsed = time.perf_counter() - start
    assert len(view.table) == 10_010 and not view.table.truncated
    assert view.table.page_label(0) == "rows 1–25 of 10,010 · page 1 / 401"
    assert html.count("<tr") == 26  # header + one page, never 10 000 rows
    assert len(html) < 60_000
    built = sum(1 for _ in iter_widgets(root))
    small = nbmlops.runs_view(experiment="big", last=30, client=big_client)
    assert built == sum(1 for _ in iter_widgets(small.widget()))  # independent of the store
    assert built < 600, f"{built} widgets for one page"  # never one widget per run
    view._w["size"].value = 100
    assert len(view._slots) == 100
    view.go_to_page(400)
    assert view.table.page(view.page)[-1].row.name.startswith("trial-")
    assert elapsed < GUARD_S, f"opening took {elapsed:.2f} s"


def test_compare_20_runs_with_200_params(big_client: nbmlops.Client, test_comm: None) -> None:
    exp = big_client.create_experiment("wide")
    ids = []
    for r in range(20):
        run = big_client.create_run(
            exp, run_name=f"wide-{r}", source=RunSource(code=f"x = {r}\nfit(x)\n")
        )
        params = [Param(f"p{k:03d}", str(k if k % 10 else k + r)) for k in range(200)]
        metrics = [Metric(f"m{k}", r + k / 10, 0, s) for k in range(5) for s in range(3)]
        big_client.log_batch(run.info.run_id, metrics=metrics, params=params)
        big_client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    start = time.perf_counter()
    panel = nbmlops.compare(*ids, client=big_client)
    html = panel.to_html()
    panel.widget()
    elapsed = time.perf_counter() - start
    c = panel.comparison
    assert len(c.runs) == 20 and len(c.params_differ) == 20 and len(c.params_same) == 180
    assert all(m.best == (19,) for m in c.metrics)
    assert html.count('class="nbm-diff"') >= 20
    assert elapsed < GUARD_S, f"compare took {elapsed:.2f} s"
