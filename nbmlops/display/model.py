"""What the inline panels show, computed without widgets or HTML.

This is the panels' business logic: the run tree and its pages, the choice of key columns,
the side-by-side comparison (differing params first, best metric per row, code / data /
environment differences), the data of a run's detail view and of the registry view. It is
pure Python over :mod:`nbmlops.entities`, so it is unit-tested directly and reusable by the
JupyterLab sidebar and the REST API (:func:`nbmlops.entities.to_dict` turns every result
into JSON). The ``load_*`` functions read what they need through a
:class:`~nbmlops.client.Client`; everything else takes plain values.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any, Literal

from nbmlops.entities import (
    Artifact,
    DatasetInput,
    Metric,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    Run,
)
from nbmlops.errors import InvalidArgument, NbMlopsError, NotFound

Direction = Literal["max", "min"]

#: Tags written by nbmlops itself (and MLflow's own) are not "user" tags in a comparison.
INTERNAL_TAG_PREFIXES = ("nbmlops.", "mlflow.")
#: Metrics nbmlops logs for its own bookkeeping are left out of key columns.
INTERNAL_METRIC_PREFIXES = ("nbmlops.",)
#: Where cell autologging stores the environment a run executed in.
ENVIRONMENT_ARTIFACT = "nbmlops/environment.json"
#: Run types that group other runs; ``--last``/``--best`` skip them.
GROUP_RUN_TYPES = frozenset({"session", "parent"})
#: Fewest and most runs a comparison takes.
MIN_COMPARE, MAX_COMPARE = 2, 20
#: Largest number of runs a runs table loads (the rest: narrow with a filter).
MAX_TABLE_RUNS = 50_000
_LOWER_IS_BETTER = re.compile(
    r"(loss|error|err$|^err|mse|rmse|mae|mape|smape|deviance|brier|perplexity|"
    r"latency|duration|time_s$|_time$|regret|wer$|cer$|fpr$|fnr$|hamming|distance)",
    re.IGNORECASE,
)
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_RUN_PREFIX = re.compile(r"^[0-9a-f]{4,31}$")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def infer_direction(metric: str) -> Direction:
    """``min`` for names that read as costs (loss, error, rmse, mae, latency...), else ``max``."""
    return "min" if _LOWER_IS_BETTER.search(metric) else "max"


def field_ref(kind: str, key: str) -> str:
    """``metrics.f1`` / ``params.`my key``` — a key as the search language spells it."""
    if _PLAIN_KEY.match(key):
        return f"{kind}.{key}"
    if "`" not in key:
        return f"{kind}.`{key}`"
    return f'{kind}."{key}"'


# =========================================================================== runs table


@dataclasses.dataclass(slots=True)
class RunRow:
    """The few facts of a run that a table row shows (lighter than a whole :class:`Run`)."""

    run_id: str
    name: str
    status: str
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    experiment_id: str
    run_type: str
    cell: int | None
    params: Mapping[str, str]
    metrics: Mapping[str, float]

    @classmethod
    def from_run(cls, run: Run) -> RunRow:
        """Keep what a table needs; the run's code, tags and inputs are dropped."""
        info = run.info
        return cls(
            run_id=info.run_id,
            name=info.run_name,
            status=info.status.value,
            start_time=info.start_time,
            end_time=info.end_time,
            parent_run_id=info.parent_run_id,
            experiment_id=info.experiment_id,
            run_type=run.data.tags.get("nbmlops.run_type", ""),
            cell=info.source.execution_count,
            params=run.data.params,
            metrics=run.data.metrics,
        )

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (None while running)."""
        return None if self.end_time is None else (self.end_time - self.start_time) / 1000


@dataclasses.dataclass(slots=True)
class TreeRow:
    """A row placed in the tree: its depth, whether it has children among the shown runs,
    and the id of a parent that is not shown (a filtered-out or older parent)."""

    row: RunRow
    depth: int
    has_children: bool
    missing_parent: str | None = None


def tree_rows(rows: Sequence[RunRow], children_by_time: bool = True) -> list[TreeRow]:
    """``rows`` ordered parent-before-children (depth first), each with its depth.

    Top-level runs (and runs whose parent is not in ``rows``) keep the order of ``rows``
    (the store's order: newest first by default, or the chosen sort). Children follow their
    parent, oldest first when ``children_by_time`` (notebook execution order), otherwise in
    the order of ``rows`` (a chosen sort applies at every level).
    """
    by_id = {r.run_id: r for r in rows}
    children: dict[str | None, list[RunRow]] = {}
    for row in rows:
        parent = row.parent_run_id if row.parent_run_id in by_id else None
        children.setdefault(parent, []).append(row)
    if children_by_time:
        for parent, siblings in children.items():
            if parent is not None:
                siblings.sort(key=lambda r: (r.start_time, r.run_id))
    ordered: list[TreeRow] = []
    stack: list[tuple[RunRow, int]] = [(r, 0) for r in reversed(children.get(None, []))]
    seen: set[str] = set()
    while stack:
        row, depth = stack.pop()
        if row.run_id in seen:  # a parent cycle cannot happen in a store, but never loop
            continue
        seen.add(row.run_id)
        kids = children.get(row.run_id, [])
        missing = row.parent_run_id if depth == 0 and row.parent_run_id else None
        ordered.append(TreeRow(row, depth, bool(kids), missing))
        stack.extend((c, depth + 1) for c in reversed(kids))
    return ordered


@dataclasses.dataclass
class KeyStats:
    """How often each param and metric key occurs in a set of runs, and which params vary."""

    metric_count: Counter[str]
    param_count: Counter[str]
    param_varies: dict[str, bool]

    @classmethod
    def of(cls, rows: Sequence[RunRow]) -> KeyStats:
        """Count keys over ``rows`` (C-level counting: this runs over every loaded run)."""
        metric_count = Counter(chain.from_iterable(r.metrics for r in rows))
        param_count = Counter(chain.from_iterable(r.params for r in rows))
        pairs = set(chain.from_iterable(r.params.items() for r in rows))
        distinct = Counter(key for key, _ in pairs)
        for key in list(metric_count):
            if key.startswith(INTERNAL_METRIC_PREFIXES):
                del metric_count[key]
        return cls(metric_count, param_count, {k: n > 1 for k, n in distinct.items()})

    def choose(self, n_params: int = 3, n_metrics: int = 4) -> tuple[list[str], list[str]]:
        """See :func:`choose_columns`."""
        first_metric = {k: i for i, k in enumerate(self.metric_count)}
        first_param = {k: i for i, k in enumerate(self.param_count)}
        metrics = sorted(self.metric_count, key=lambda k: (-self.metric_count[k], first_metric[k]))
        params = sorted(
            self.param_count,
            key=lambda k: (not self.param_varies[k], -self.param_count[k], first_param[k]),
        )
        return params[:n_params], metrics[:n_metrics]


def choose_columns(
    rows: Sequence[RunRow], n_params: int = 3, n_metrics: int = 4
) -> tuple[list[str], list[str]]:
    """Default key columns: the most common metrics, and the params that vary most often.

    Params whose value differs between runs come before constant ones (a constant param
    tells nothing in a table); ties keep the order keys were first seen. nbmlops' own
    metrics (``nbmlops.*``) are left out.
    """
    return KeyStats.of(rows).choose(n_params, n_metrics)


class RunsTable:
    """The runs of one query as a tree, with collapsed nodes, chosen columns and pages.

    Args:
        rows: the runs, in the store's order (see :func:`tree_rows`).
        page_size: rows per page.
        params, metrics: key columns (None: :func:`choose_columns`).
        children_by_time: see :func:`tree_rows`.
        truncated: the query matched more runs than were loaded.
    """

    def __init__(
        self,
        rows: Sequence[RunRow],
        page_size: int = 50,
        params: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
        children_by_time: bool = True,
        truncated: bool = False,
    ) -> None:
        if not isinstance(page_size, int) or page_size < 1:
            raise InvalidArgument(f"page_size must be a positive integer, got {page_size!r}")
        self.rows = list(rows)
        self.tree = tree_rows(self.rows, children_by_time=children_by_time)
        self.page_size = page_size
        self.truncated = truncated
        self.collapsed: set[str] = set()
        self._visible: list[TreeRow] | None = None
        stats = KeyStats.of(self.rows)
        default_params, default_metrics = stats.choose()
        self.params = list(default_params if params is None else params)
        self.metrics = list(default_metrics if metrics is None else metrics)
        self.param_keys = sorted(stats.param_count)
        self.metric_keys = sorted(stats.metric_count)

    def __len__(self) -> int:
        return len(self.rows)

    # ------------------------------------------------------------------ collapse
    def toggle(self, run_id: str) -> None:
        """Collapse an expanded node or expand a collapsed one."""
        if run_id in self.collapsed:
            self.collapsed.discard(run_id)
        else:
            self.collapsed.add(run_id)
        self._visible = None

    def collapse_all(self) -> None:
        """Show only the top-level runs."""
        self.collapsed = {t.row.run_id for t in self.tree if t.has_children}
        self._visible = None

    def expand_all(self) -> None:
        """Show every run."""
        self.collapsed.clear()
        self._visible = None

    def visible(self) -> list[TreeRow]:
        """The rows not hidden under a collapsed ancestor, in tree order."""
        if self._visible is None:
            if not self.collapsed:
                self._visible = self.tree
            else:
                shown: list[TreeRow] = []
                hide_below: int | None = None
                for item in self.tree:
                    if hide_below is not None:
                        if item.depth > hide_below:
                            continue
                        hide_below = None
                    shown.append(item)
                    if item.row.run_id in self.collapsed and item.has_children:
                        hide_below = item.depth
                self._visible = shown
        return self._visible

    # ------------------------------------------------------------------ pages
    @property
    def page_count(self) -> int:
        """Number of pages (at least 1, even when empty)."""
        return max(1, math.ceil(len(self.visible()) / self.page_size))

    def clamp_page(self, page: int) -> int:
        """``page`` (0-based) limited to the existing pages."""
        return min(max(0, page), self.page_count - 1)

    def page(self, page: int) -> list[TreeRow]:
        """The rows of page ``page`` (0-based; out-of-range pages are clamped)."""
        page = self.clamp_page(page)
        start = page * self.page_size
        return self.visible()[start : start + self.page_size]

    def page_label(self, page: int) -> str:
        """``rows 51–100 of 10,010 · page 2 / 201``."""
        total = len(self.visible())
        page = self.clamp_page(page)
        if total == 0:
            return "no runs"
        first = page * self.page_size + 1
        last = min(total, first + self.page_size - 1)
        hidden = len(self.tree) - total
        extra = f" ({hidden:,} collapsed)" if hidden else ""
        return f"rows {first:,}–{last:,} of {total:,}{extra} · page {page + 1} / {self.page_count}"

    def selectable(self, run_ids: Iterable[str]) -> list[str]:
        """``run_ids`` that are in this table, in tree order."""
        wanted = set(run_ids)
        return [t.row.run_id for t in self.tree if t.row.run_id in wanted]


def load_run_rows(
    client: Any,
    experiment_ids: Sequence[str] | None,
    filter_string: str = "",
    order_by: Sequence[str] | None = None,
    last: int | None = None,
    max_runs: int = MAX_TABLE_RUNS,
) -> tuple[list[RunRow], bool]:
    """The matching runs as :class:`RunRow` (in the store's order) and whether more matched.

    ``last`` keeps the newest N runs. Pages through the store so that only one page of whole
    :class:`Run` objects is alive at a time.
    """
    limit = max_runs if last is None else min(last, max_runs)
    rows: list[RunRow] = []
    token: str | None = None
    order = list(order_by) if order_by else None
    if last is not None and order is None:
        order = ["start_time DESC"]
    while len(rows) < limit:
        page = client.search_runs(
            experiment_ids,
            filter_string,
            order,
            max_results=min(10_000, limit - len(rows)),
            page_token=token,
        )
        rows.extend(RunRow.from_run(run) for run in page)
        token = page.token
        if not token:
            break
    truncated = bool(token) and last is None
    return rows, truncated


# =========================================================================== comparison


@dataclasses.dataclass(frozen=True)
class RunHeader:
    """A compared run's column header."""

    run_id: str
    name: str
    status: str
    start_time: int
    end_time: int | None
    experiment_id: str
    run_type: str
    cell: int | None


@dataclasses.dataclass(frozen=True)
class ValueRow:
    """One key across runs (None where a run lacks it) and whether the values differ."""

    key: str
    values: tuple[str | None, ...]
    differs: bool


@dataclasses.dataclass(frozen=True)
class MetricRow:
    """One metric across runs, its direction and the indexes of the best value(s)."""

    key: str
    values: tuple[float | None, ...]
    direction: Direction
    best: tuple[int, ...]
    differs: bool


@dataclasses.dataclass(frozen=True)
class InputRow:
    """A dataset (name, context) across runs: digest and shape per run, what differs."""

    name: str
    context: str
    digests: tuple[str | None, ...]
    shapes: tuple[tuple[int, ...] | None, ...]
    digest_differs: bool
    shape_differs: bool

    @property
    def differs(self) -> bool:
        """Digest or shape differ (or the dataset is missing in some runs)."""
        return self.digest_differs or self.shape_differs


@dataclasses.dataclass(frozen=True)
class CodeDiff:
    """A unified diff of run ``to_index``'s cell code against run ``from_index``'s."""

    from_index: int
    to_index: int
    lines: tuple[str, ...]
    identical: bool
    missing: bool = False  # one side has no recorded code


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Everything the compare panel shows, runs in the order given.

    ``params`` / ``tags`` list the differing keys first (sorted), then the identical ones;
    ``metrics`` carry the best index per row; ``environment`` holds only the differing
    entries (``environment_same`` counts the others); ``histories`` maps metric key ->
    per-run ``(steps, values)`` for charts.
    """

    runs: tuple[RunHeader, ...]
    params: tuple[ValueRow, ...]
    metrics: tuple[MetricRow, ...]
    tags: tuple[ValueRow, ...]
    inputs: tuple[InputRow, ...]
    environment: tuple[ValueRow, ...]
    environment_same: int
    environment_missing: tuple[int, ...]
    code: tuple[str | None, ...]
    histories: Mapping[str, tuple[tuple[tuple[int, ...], tuple[float, ...]], ...]]

    @property
    def params_differ(self) -> tuple[ValueRow, ...]:
        """Params whose value differs between the runs (or that some runs lack)."""
        return tuple(p for p in self.params if p.differs)

    @property
    def params_same(self) -> tuple[ValueRow, ...]:
        """Params every run has with the same value."""
        return tuple(p for p in self.params if not p.differs)

    @property
    def tags_differ(self) -> tuple[ValueRow, ...]:
        """User tags that differ."""
        return tuple(t for t in self.tags if t.differs)

    def code_diff(self, from_index: int = 0, to_index: int = 1, context: int = 3) -> CodeDiff:
        """The unified diff of two runs' cell code (``from`` → ``to``)."""
        n = len(self.runs)
        if not (0 <= from_index < n and 0 <= to_index < n):
            raise InvalidArgument(f"run index out of range 0..{n - 1}")
        return diff_code(
            self.code[from_index],
            self.code[to_index],
            _label(self.runs[from_index]),
            _label(self.runs[to_index]),
            from_index,
            to_index,
            context,
        )

    def with_directions(
        self, directions: Mapping[str, Direction], default: Direction | None = None
    ) -> Comparison:
        """The same comparison with metric directions changed (best markers recomputed)."""
        rows = tuple(
            metric_row(
                m.key, m.values, _direction_for(m.key, directions, default), differs=m.differs
            )
            for m in self.metrics
        )
        return dataclasses.replace(self, metrics=rows)


def _label(run: RunHeader) -> str:
    return f"{run.name} ({run.run_id[:8]})"


def _direction_for(
    key: str, directions: Mapping[str, Direction] | None, default: Direction | None
) -> Direction:
    if directions and key in directions:
        return _check_direction(directions[key])
    if default is not None:
        return _check_direction(default)
    return infer_direction(key)


def _check_direction(value: str) -> Direction:
    text = str(value).lower()
    if text in ("max", "maximize", "higher", "up"):
        return "max"
    if text in ("min", "minimize", "lower", "down"):
        return "min"
    raise InvalidArgument(f"metric direction must be 'max' or 'min', got {value!r}")


def metric_row(
    key: str,
    values: Sequence[float | None],
    direction: Direction,
    differs: bool | None = None,
) -> MetricRow:
    """A metric row with its best value(s) marked: the highest (``max``) or lowest
    (``min``) among the runs that have a real number; NaN never wins; ties all win."""
    real = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    best: tuple[int, ...] = ()
    if real:
        pick = max if direction == "max" else min
        target = pick(v for _, v in real)
        best = tuple(i for i, v in real if v == target)
    if differs is None:
        differs = len({("nan" if v is not None and math.isnan(v) else v) for v in values}) > 1
    return MetricRow(key, tuple(values), direction, best, differs)


def _value_rows(maps: Sequence[Mapping[str, str]], keys: Iterable[str]) -> tuple[ValueRow, ...]:
    rows = []
    for key in keys:
        values = tuple(m.get(key) for m in maps)
        rows.append(ValueRow(key, values, len(set(values)) > 1))
    rows.sort(key=lambda r: (not r.differs, r.key))
    return tuple(rows)


def diff_code(
    old: str | None,
    new: str | None,
    old_label: str,
    new_label: str,
    from_index: int = 0,
    to_index: int = 1,
    context: int = 3,
) -> CodeDiff:
    """A unified diff between two code texts (``missing`` when either is unknown)."""
    if old is None or new is None:
        return CodeDiff(from_index, to_index, (), identical=False, missing=True)
    if old == new:
        return CodeDiff(from_index, to_index, (), identical=True)
    lines = tuple(
        difflib.unified_diff(
            old.splitlines(),
            new.splitlines(),
            fromfile=old_label,
            tofile=new_label,
            lineterm="",
            n=context,
        )
    )
    return CodeDiff(from_index, to_index, lines, identical=False)


def _env_entries(env: Mapping[str, Any] | None, run: Run) -> dict[str, str] | None:
    """Flatten an environment snapshot into ``python``, ``platform``, ``git commit``,
    ``git dirty`` and one entry per package."""
    if env is None:
        commit = run.data.tags.get("mlflow.source.git.commit")
        return {"git commit": commit} if commit else None
    flat: dict[str, str] = {}
    if env.get("python"):
        flat["python"] = str(env["python"])
    if env.get("platform"):
        flat["platform"] = str(env["platform"])
    git = env.get("git") or {}
    if isinstance(git, Mapping):
        if git.get("commit"):
            flat["git commit"] = str(git["commit"])
        if "dirty" in git:
            flat["git dirty"] = str(git["dirty"])
    packages = env.get("packages") or {}
    if isinstance(packages, Mapping):
        for name, version in packages.items():
            flat[f"package {name}"] = str(version)
    return flat


def build_comparison(
    runs: Sequence[Run],
    environments: Sequence[Mapping[str, Any] | None] | None = None,
    histories: Mapping[str, Sequence[Sequence[Metric]]] | None = None,
    directions: Mapping[str, Direction] | None = None,
    default_direction: Direction | None = None,
    first_metric: str | None = None,
) -> Comparison:
    """Compare ``runs`` side by side (pure: everything it needs is passed in).

    Args:
        runs: 2 to 20 runs, shown in this order (the first is the diffs' baseline).
        environments: per run, the parsed ``nbmlops/environment.json`` (None: unknown).
        histories: metric key -> per run, its points (for charts).
        directions: metric key -> ``max``/``min``; others use ``default_direction`` or
            :func:`infer_direction`.
        first_metric: a metric to list first (the one runs were chosen by).
    """
    if not MIN_COMPARE <= len(runs) <= MAX_COMPARE:
        raise InvalidArgument(f"compare takes {MIN_COMPARE} to {MAX_COMPARE} runs, got {len(runs)}")
    ids = [r.info.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dupes = sorted({i[:8] for i in ids if ids.count(i) > 1})
        raise InvalidArgument(f"a run is listed twice in the comparison: {', '.join(dupes)}")
    headers = tuple(
        RunHeader(
            run_id=r.info.run_id,
            name=r.info.run_name,
            status=r.info.status.value,
            start_time=r.info.start_time,
            end_time=r.info.end_time,
            experiment_id=r.info.experiment_id,
            run_type=r.data.tags.get("nbmlops.run_type", ""),
            cell=r.info.source.execution_count,
        )
        for r in runs
    )
    param_maps = [r.data.params for r in runs]
    param_keys = sorted({k for m in param_maps for k in m})
    params = _value_rows(param_maps, param_keys)

    tag_maps = [
        {k: v for k, v in r.data.tags.items() if not k.startswith(INTERNAL_TAG_PREFIXES)}
        for r in runs
    ]
    tags = _value_rows(tag_maps, sorted({k for m in tag_maps for k in m}))

    metric_keys = sorted(
        {k for r in runs for k in r.data.metrics if not k.startswith(INTERNAL_METRIC_PREFIXES)}
    )
    if first_metric in metric_keys:
        metric_keys.remove(first_metric)
        metric_keys.insert(0, first_metric)
    metrics = tuple(
        metric_row(
            key,
            [r.data.metrics.get(key) for r in runs],
            _direction_for(key, directions, default_direction),
        )
        for key in metric_keys
    )

    inputs: list[InputRow] = []
    keys: dict[tuple[str, str], None] = {}
    per_run: list[dict[tuple[str, str], DatasetInput]] = []
    for r in runs:
        found = {(d.name, d.context): d for d in r.inputs}
        per_run.append(found)
        keys.update(dict.fromkeys(found))
    for name, context in keys:
        got = [m.get((name, context)) for m in per_run]
        digests = tuple(d.digest if d else None for d in got)
        shapes = tuple(tuple(d.shape) if d else None for d in got)
        inputs.append(
            InputRow(name, context, digests, shapes, len(set(digests)) > 1, len(set(shapes)) > 1)
        )
    inputs.sort(key=lambda i: (not i.differs, i.context, i.name))

    envs = list(environments) if environments is not None else [None] * len(runs)
    if len(envs) != len(runs):
        raise InvalidArgument("environments must have one entry per run")
    flat = [_env_entries(e, r) for e, r in zip(envs, runs, strict=True)]
    missing_env = tuple(i for i, f in enumerate(flat) if f is None)
    known = [f for f in flat if f is not None]
    env_rows: list[ValueRow] = []
    same = 0
    if known:
        env_keys = sorted({k for f in known for k in f}, key=lambda k: (k.startswith("pack"), k))
        for key in env_keys:
            values = tuple(None if f is None else f.get(key) for f in flat)
            present = {v for v, f in zip(values, flat, strict=True) if f is not None}
            if len(present) > 1:
                env_rows.append(ValueRow(key, values, True))
            else:
                same += 1

    charted: dict[str, tuple[tuple[tuple[int, ...], tuple[float, ...]], ...]] = {}
    for key, series in (histories or {}).items():
        charted[key] = tuple(
            (tuple(p.step for p in points), tuple(p.value for p in points)) for points in series
        )

    return Comparison(
        runs=headers,
        params=params,
        metrics=metrics,
        tags=tags,
        inputs=tuple(inputs),
        environment=tuple(env_rows),
        environment_same=same,
        environment_missing=missing_env,
        code=tuple(r.info.source.code or None for r in runs),
        histories=charted,
    )


def read_environment(client: Any, run_id: str) -> dict[str, Any] | None:
    """The run's ``nbmlops/environment.json`` (None when it has none or it is unreadable)."""
    try:
        data = json.loads(client.read_artifact(run_id, ENVIRONMENT_ARTIFACT))
    except (NbMlopsError, ValueError, OSError):
        return None
    return data if isinstance(data, dict) else None


def load_histories(
    client: Any, run_ids: Sequence[str], keys: Sequence[str]
) -> dict[str, list[list[Metric]]]:
    """``key -> per run, its metric history`` (empty list where a run lacks the key)."""
    return {key: [client.get_metric_history(rid, key) for rid in run_ids] for key in keys}


def load_comparison(
    client: Any,
    runs: Sequence[Run],
    directions: Mapping[str, Direction] | None = None,
    default_direction: Direction | None = None,
    first_metric: str | None = None,
    max_charts: int = 8,
) -> Comparison:
    """Read the environments and metric histories of ``runs`` and compare them.

    Histories are read for at most ``max_charts`` metrics (``first_metric`` first), the
    charts' budget; the table shows every metric.
    """
    ids = [r.info.run_id for r in runs]
    keys = sorted(
        {k for r in runs for k in r.data.metrics if not k.startswith(INTERNAL_METRIC_PREFIXES)}
    )
    if first_metric in keys:
        keys.remove(first_metric)
        keys.insert(0, first_metric)
    histories = load_histories(client, ids, keys[:max_charts]) if max_charts > 0 else {}
    return build_comparison(
        runs,
        environments=[read_environment(client, rid) for rid in ids],
        histories=histories,
        directions=directions,
        default_direction=default_direction,
        first_metric=first_metric,
    )


# =========================================================================== choosing runs


def resolve_run(client: Any, ref: Any, experiment_ids: Sequence[str] | None = None) -> Run:
    """A run from a :class:`Run`, a run id, a unique id prefix (4+ hex characters) or a run
    name (the newest run with that name in ``experiment_ids``, or anywhere).

    Raises NotFound (nothing matches) or InvalidArgument (an ambiguous prefix).
    """
    if isinstance(ref, Run):
        return ref
    info = getattr(ref, "info", None)
    if info is not None and hasattr(info, "run_id"):
        return client.get_run(info.run_id)
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidArgument(f"a run is given by its id, id prefix or name, got {ref!r}")
    text = ref.strip()
    if _RUN_ID.match(text):
        return client.get_run(text)
    if _RUN_PREFIX.match(text):
        found = client.search_runs(None, f"run_id LIKE '{text}%'", max_results=2)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InvalidArgument(f"run id prefix {text!r} is ambiguous; give more characters")
    quoted = text.replace("'", "''")
    named = client.search_runs(
        experiment_ids, f"run_name = '{quoted}'", ["start_time DESC"], max_results=1
    )
    if named:
        return named[0]
    raise NotFound(f"no run with id, id prefix or name {text!r}")


def _leaf_filter(filter_string: str) -> str:
    kinds = ", ".join(f"'{k}'" for k in sorted(GROUP_RUN_TYPES))
    tag = field_ref("tags", "nbmlops.run_type")
    base = f"({tag} IS NULL or {tag} NOT IN ({kinds}))"
    return f"({filter_string}) and {base}" if filter_string.strip() else base


def select_runs(
    client: Any,
    experiment_ids: Sequence[str] | None,
    last: int | None = None,
    best: int | None = None,
    metric: str | None = None,
    lower_is_better: bool | None = None,
    filter_string: str = "",
) -> list[Run]:
    """The newest ``last`` runs, or the ``best`` runs by ``metric``, skipping grouping runs
    (notebook session and ``%mlops start`` parents).

    ``lower_is_better`` None infers the direction from the metric's name.
    """
    if (last is None) == (best is None):
        raise InvalidArgument("give either last=N or best=N (with metric=M)")
    count = last if last is not None else best
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise InvalidArgument(f"the number of runs must be a positive integer, got {count!r}")
    if count > MAX_COMPARE:
        raise InvalidArgument(f"compare takes at most {MAX_COMPARE} runs, got {count}")
    where = _leaf_filter(filter_string)
    if last is not None:
        return list(client.search_runs(experiment_ids, where, ["start_time DESC"], count))[::-1]
    if not metric:
        raise InvalidArgument("best=N needs metric=M (the metric to rank runs by)")
    if lower_is_better is None:
        lower_is_better = infer_direction(metric) == "min"
    ref = field_ref("metrics", metric)
    order = [f"{ref} {'ASC' if lower_is_better else 'DESC'}"]
    return list(client.search_runs(experiment_ids, f"{where} and {ref} IS NOT NULL", order, count))


# =========================================================================== run detail


@dataclasses.dataclass(frozen=True)
class RunDetail:
    """What the run detail panel shows.

    ``images`` maps PNG artifact paths to their bytes (the first few, size-capped);
    ``histories`` holds metrics with more than one point; ``model`` is the logged model's
    metadata (None without one); ``versions`` are the registry versions made from this run.
    """

    run: Run
    experiment_name: str | None
    parent: RunRow | None
    children: tuple[RunRow, ...]
    more_children: bool
    artifacts: tuple[Artifact, ...]
    images: Mapping[str, bytes]
    histories: Mapping[str, tuple[Metric, ...]]
    model: Mapping[str, Any] | None
    model_error: str | None
    versions: tuple[ModelVersion, ...]

    @property
    def user_tags(self) -> dict[str, str]:
        """Tags other than nbmlops'/MLflow's own."""
        return {
            k: v for k, v in self.run.data.tags.items() if not k.startswith(INTERNAL_TAG_PREFIXES)
        }

    @property
    def system_tags(self) -> dict[str, str]:
        """Tags written by nbmlops or MLflow."""
        return {k: v for k, v in self.run.data.tags.items() if k.startswith(INTERNAL_TAG_PREFIXES)}


def load_run_detail(
    client: Any,
    run: Run,
    max_children: int = 200,
    max_images: int = 12,
    max_image_bytes: int = 4 * 1024 * 1024,
    max_charts: int = 12,
) -> RunDetail:
    """Read what :class:`RunDetail` holds for ``run`` through ``client``."""
    info = run.info
    try:
        experiment_name: str | None = client.get_experiment(info.experiment_id).name
    except NbMlopsError:
        experiment_name = None
    parent = None
    if info.parent_run_id:
        try:
            parent = RunRow.from_run(client.get_run(info.parent_run_id))
        except NotFound:
            parent = None
    kids = client.search_runs(
        None,
        f"parent_run_id = '{info.run_id}'",
        ["start_time ASC"],
        max_results=max_children + 1,
    )
    children = tuple(RunRow.from_run(r) for r in list(kids)[:max_children])
    artifacts = tuple(client.list_artifacts(info.run_id))
    images: dict[str, bytes] = {}
    for artifact in artifacts:
        if len(images) >= max_images:
            break
        if artifact.path.lower().endswith(".png") and artifact.size <= max_image_bytes:
            try:
                images[artifact.path] = client.read_artifact(info.run_id, artifact.path)
            except NbMlopsError:
                continue
    histories: dict[str, tuple[Metric, ...]] = {}
    for key in sorted(run.data.metrics)[:max_charts]:
        points = tuple(client.get_metric_history(info.run_id, key))
        if len(points) > 1:
            histories[key] = points
    model, model_error = None, None
    model_path = run.data.tags.get("nbmlops.model")
    if model_path is None and any(a.path == "model/meta.json" for a in artifacts):
        model_path = "model"
    if model_path:
        from nbmlops.models import read_model_metadata

        try:
            model = dict(
                read_model_metadata(info.run_id, model_path, client=client), path=model_path
            )
        except NbMlopsError as exc:
            model_error = str(exc)
    try:
        versions = tuple(client.search_model_versions(run_id=info.run_id))
    except NbMlopsError:
        versions = ()
    return RunDetail(
        run=run,
        experiment_name=experiment_name,
        parent=parent,
        children=children,
        more_children=len(kids) > max_children,
        artifacts=artifacts,
        images=images,
        histories=histories,
        model=model,
        model_error=model_error,
        versions=versions,
    )


# =========================================================================== registry


@dataclasses.dataclass(frozen=True)
class VersionRow:
    """A model version with its source run's metrics (empty when the run is gone)."""

    version: ModelVersion
    run_name: str | None
    run_status: str | None
    metrics: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class ModelView:
    """One registered model: its versions (newest first), metric keys and audit log."""

    model: RegisteredModel
    versions: tuple[VersionRow, ...]
    metric_keys: tuple[str, ...]
    history: tuple[RegistryEvent, ...]

    def series(self, metric: str) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
        """Version numbers (ascending) and the source-run value of ``metric`` for each."""
        ordered = sorted(self.versions, key=lambda v: v.version.version)
        return (
            tuple(v.version.version for v in ordered),
            tuple(v.metrics.get(metric) for v in ordered),
        )

    def default_metric(self, preferred: str | None = None) -> str | None:
        """``preferred`` when versions have it, else ``f1``, else the first metric key."""
        for key in (preferred, "f1"):
            if key and key in self.metric_keys:
                return key
        return self.metric_keys[0] if self.metric_keys else None


def load_model_view(client: Any, name: str) -> ModelView:
    """Read a registered model, its versions with their source-run metrics and its log."""
    model = client.get_registered_model(name)
    rows = []
    keys: dict[str, None] = {}
    for version in sorted(
        client.search_model_versions(name=name), key=lambda v: v.version, reverse=True
    ):
        try:
            run = client.get_run(version.source_run_id)
            metrics = {
                k: v
                for k, v in run.data.metrics.items()
                if not k.startswith(INTERNAL_METRIC_PREFIXES)
            }
            rows.append(VersionRow(version, run.info.run_name, run.info.status.value, metrics))
            keys.update(dict.fromkeys(sorted(metrics)))
        except NotFound:
            rows.append(VersionRow(version, None, None, {}))
    history = tuple(client.get_model_history(name))
    return ModelView(model, tuple(rows), tuple(sorted(keys)), history)


def load_registry(client: Any, name: str | None = None) -> list[ModelView]:
    """The named model, or every registered model (by name)."""
    if name is not None:
        return [load_model_view(client, name)]
    return [load_model_view(client, m.name) for m in client.search_registered_models()]
