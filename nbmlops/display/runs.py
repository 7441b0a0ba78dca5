"""The runs table as a tree-ordered DataFrame: session run, its cell runs, their children."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from nbmlops.entities import Run

if TYPE_CHECKING:
    import pandas as pd

#: Metric keys shown first when present.
_INTERNAL_PREFIXES = ("nbmlops.",)


def tree_order(runs: Sequence[Run]) -> list[tuple[Run, int]]:
    """``runs`` ordered parent-before-children (oldest first), each with its depth.

    A run whose parent is not among ``runs`` is shown at the top level.
    """
    by_id = {r.info.run_id: r for r in runs}
    children: dict[str | None, list[Run]] = {}
    for run in runs:
        parent = run.info.parent_run_id if run.info.parent_run_id in by_id else None
        children.setdefault(parent, []).append(run)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r.info.start_time, r.info.run_id))
    ordered: list[tuple[Run, int]] = []
    stack: list[tuple[Run, int]] = [(r, 0) for r in reversed(children.get(None, []))]
    while stack:
        run, depth = stack.pop()
        ordered.append((run, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(run.info.run_id, [])))
    return ordered


def runs_frame(runs: Sequence[Run], metric_columns: int = 8) -> pd.DataFrame:
    """A compact table: tree-indented name, status, type, cell, duration and key metrics."""
    import pandas as pd

    ordered = tree_order(runs)
    metric_keys: dict[str, None] = {}
    for run, _ in ordered:
        metric_keys.update(
            dict.fromkeys(k for k in run.data.metrics if not k.startswith(_INTERNAL_PREFIXES))
        )
    shown = list(metric_keys)[:metric_columns]
    rows = []
    for run, depth in ordered:
        info = run.info
        duration = None
        if info.end_time is not None:
            duration = round((info.end_time - info.start_time) / 1000, 3)
        row = {
            "run": ("  " * (depth - 1) + "└ " if depth else "") + info.run_name,
            "run_id": info.run_id[:8],
            "status": info.status.value,
            "type": run.data.tags.get("nbmlops.run_type", ""),
            "cell": info.source.execution_count,
            "duration_s": duration,
        }
        for key in shown:
            row[key] = run.data.metrics.get(key)
        rows.append(row)
    columns = ["run", "run_id", "status", "type", "cell", "duration_s", *shown]
    frame = pd.DataFrame(rows, columns=columns)
    frame["cell"] = frame["cell"].astype("Int64")
    return frame
