"""The side-by-side comparison panel: ``%mlops compare`` / :func:`nbmlops.compare`.

2 to 20 runs in columns. Params that differ come first, highlighted (and marked ``≠``);
identical ones are collapsed behind a toggle. Each metric row marks its best value (``★``;
higher or lower is better per metric, configurable). Then metric histories overlaid in one
chart per metric, the unified diff between the runs' cell code, which datasets differ
(fingerprint or shape) and which environment entries differ (Python, packages, git). The
comparison itself is computed by :mod:`nbmlops.display.model`; this module only renders it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops.display import _html as h
from nbmlops.display._panel import Panel, notebook_experiment_ids
from nbmlops.display.model import (
    MAX_COMPARE,
    MIN_COMPARE,
    Comparison,
    Direction,
    MetricRow,
    ValueRow,
    infer_direction,
    load_comparison,
    resolve_run,
    select_runs,
)
from nbmlops.entities import Run
from nbmlops.errors import InvalidArgument


def _run_head(i: int, run: Any) -> str:
    return (
        f'<div class="nbm-run-head">{i + 1}. {h.esc(run.name)}<br>'
        f'<span class="nbm-muted">{h.esc(h.short_id(run.run_id))} · {h.esc(run.status)} · '
        f"{h.esc(h.fmt_duration(run.start_time, run.end_time))}</span></div>"
    )


def _value_cell(value: str | None) -> str:
    if value is None:
        return f'<span class="nbm-muted">{h.MISSING}</span>'
    text = value if len(value) <= 200 else value[:200] + "…"
    return f'<span title="{h.esc(value[:2000])}">{h.esc(text)}</span>'


def _key_cell(key: str, differs: bool) -> str:
    mark = f'<span class="nbm-mark">{h.DIFF_MARK}</span>' if differs else ""
    return f"{mark}{h.esc(key)}"


class ComparePanel(Panel):
    """Runs side by side (see the module docstring).

    Args:
        runs: 2 to 20 runs: :class:`~nbmlops.entities.Run` objects, run ids, unique id
            prefixes or run names (newest run with that name).
        directions: metric key -> ``"max"`` or ``"min"`` (which value is best).
        default_direction: direction for metrics not in ``directions`` (default: inferred
            from the name: loss/error/rmse/... are ``min``).
        first_metric: list this metric first (what the runs were chosen by).
        max_charts: draw history charts for at most this many metrics (0: none).
        client: a :class:`~nbmlops.client.Client` (default: the notebook's).
    """

    kind = "compare"
    title = "Compare runs"

    def __init__(
        self,
        runs: Sequence[Any],
        directions: Mapping[str, Direction] | None = None,
        default_direction: Direction | None = None,
        first_metric: str | None = None,
        max_charts: int = 8,
        client: Any = None,
    ) -> None:
        super().__init__(client)
        refs = list(runs)
        if not MIN_COMPARE <= len(refs) <= MAX_COMPARE:
            raise InvalidArgument(
                f"compare takes {MIN_COMPARE} to {MAX_COMPARE} runs, got {len(refs)}"
            )
        self.run_ids = [resolve_run(self.client, ref).info.run_id for ref in refs]
        self.directions: dict[str, Direction] = dict(directions or {})
        self.default_direction = default_direction
        self.first_metric = first_metric
        self.max_charts = max_charts
        self.code_from, self.code_to = 0, 1
        self.comparison: Comparison
        self._charts: dict[str, bytes | None] = {}
        self._w: dict[str, Any] = {}
        self._load()

    # ------------------------------------------------------------------ data
    def _load(self) -> None:
        runs = [self.client.get_run(rid) for rid in self.run_ids]
        self.comparison = load_comparison(
            self.client,
            runs,
            directions=self.directions,
            default_direction=self.default_direction,
            first_metric=self.first_metric,
            max_charts=self.max_charts,
        )
        self._charts = {}

    def set_direction(self, metric: str, direction: Direction) -> None:
        """Say whether higher (``max``) or lower (``min``) is better for ``metric``."""
        self.directions[metric] = direction
        self.comparison = self.comparison.with_directions(self.directions, self.default_direction)
        if self._widget is not None:
            self._w["metrics"].value = self.metrics_html()

    # ------------------------------------------------------------------ fragments
    def _headers(self) -> list[str]:
        return ["", *(_run_head(i, r) for i, r in enumerate(self.comparison.runs))]

    def _value_table(self, rows: Sequence[ValueRow], highlight: bool = True) -> str:
        body = [[_key_cell(r.key, r.differs), *map(_value_cell, r.values)] for r in rows]
        classes = ["nbm-diff" if (highlight and r.differs) else "" for r in rows]
        cols = ["nbm-key"] + [""] * len(self.comparison.runs)
        table = h.table(
            self._headers(), body, row_classes=classes, col_classes=cols, header_html=True
        )
        return f'<div class="nbm-scroll">{table}</div>'

    def runs_html(self) -> str:
        """Who is compared: one line per run (column number, name, id, status, start)."""
        rows = []
        for i, r in enumerate(self.comparison.runs):
            cell = "" if r.cell is None else f"[{r.cell}]"
            rows.append(
                [
                    h.esc(str(i + 1)),
                    h.esc(r.name),
                    f"<code>{h.esc(r.run_id)}</code>",
                    h.status_badge(r.status),
                    h.esc(r.run_type),
                    h.esc(cell),
                    h.esc(h.fmt_time(r.start_time)),
                    h.esc(h.fmt_duration(r.start_time, r.end_time)),
                ]
            )
        headers = ["#", "run", "run id", "status", "type", "cell", "started", "duration"]
        return h.details(
            f"{len(rows)} runs (column numbers below)",
            h.table(headers, rows, col_classes=["nbm-num"]),
        )

    def params_html(self) -> str:
        """Differing params highlighted first; identical ones behind a toggle."""
        c = self.comparison
        differ, same = c.params_differ, c.params_same
        parts = []
        if differ:
            parts.append(self._value_table(differ))
        else:
            parts.append(h.message("Every param is identical in these runs.", "ok"))
        if same:
            parts.append(
                h.details(f"{len(same)} identical params", self._value_table(same, highlight=False))
            )
        note = f"{len(differ)} differ, {len(same)} identical"
        return h.section("Params", "".join(parts), note, "nbm-params")

    def _metric_cells(self, row: MetricRow) -> list[str | tuple[str, str]]:
        cells: list[str | tuple[str, str]] = []
        for i, value in enumerate(row.values):
            text = h.esc(h.fmt_number(value))
            if i in row.best and len(row.best) < len(row.values):
                best = (
                    f'<span class="nbm-best" title="best ({row.direction})">{text}'
                    f'<span class="nbm-best-mark">{h.BEST_MARK}</span></span>'
                )
                cells.append((best, "nbm-bestcell"))
            else:
                cells.append(text)
        return cells

    def metrics_html(self) -> str:
        """One row per metric; the best value per row marked (★)."""
        c = self.comparison
        if not c.metrics:
            return h.section("Metrics", h.message("No metrics logged in these runs.", "info"))
        rows, classes = [], []
        for m in c.metrics:
            arrow = "↑" if m.direction == "max" else "↓"
            key = (
                f"{h.esc(m.key)} "
                f'<span class="nbm-muted" title="{m.direction} is best">{arrow}</span>'
            )
            rows.append([key, *self._metric_cells(m)])
            classes.append("nbm-metric")
        cols = ["nbm-key"] + ["nbm-num"] * len(c.runs)
        table = h.table(
            self._headers(), rows, row_classes=classes, col_classes=cols, header_html=True
        )
        note = "★ best per row; ↑ higher is better, ↓ lower is better"
        return h.section("Metrics", f'<div class="nbm-scroll">{table}</div>', note, "nbm-metrics")

    def tags_html(self) -> str:
        """User tags that differ (nbmlops' own tags are left out)."""
        c = self.comparison
        differ = c.tags_differ
        if not differ:
            return ""
        same = len(c.tags) - len(differ)
        return h.section(
            "Tags", self._value_table(differ), f"{len(differ)} differ, {same} identical"
        )

    def _chart(self, key: str) -> bytes | None:
        if key not in self._charts:
            from nbmlops.display._charts import history_chart, series_colors

            colors = series_colors(len(self.comparison.runs))
            self._charts[key] = history_chart(key, self.comparison.histories[key], colors)
        return self._charts[key]

    def legend_html(self) -> str:
        """The charts' legend: a colour swatch, the column number and the run's name."""
        from nbmlops.display._charts import series_colors

        colors = series_colors(len(self.comparison.runs))
        items = "".join(
            f'<span class="nbm-legend-item"><span class="nbm-swatch" style="background:{color}">'
            f"</span>{i + 1}. {h.esc(run.name)}</span>"
            for i, (run, color) in enumerate(zip(self.comparison.runs, colors, strict=True))
        )
        return f'<div class="nbm-legend">{items}</div>'

    def charts_html(self) -> str:
        """Metric histories overlaid, one chart per metric with more than one point."""
        from nbmlops.display import _charts

        multi = any(len(s[0]) > 1 for series in self.comparison.histories.values() for s in series)
        if multi and not _charts.available():
            return h.section("Metric histories", h.message(_charts.NO_MATPLOTLIB, "info"))
        figures = []
        for key in self.comparison.histories:
            png = self._chart(key)
            if png is not None:
                img = h.png_img(png, f"history of {key}")
                figures.append(f"<figure>{img}</figure>")
        if not figures:
            return ""
        return h.section(
            "Metric histories",
            self.legend_html() + f'<div class="nbm-charts">{"".join(figures)}</div>',
            "one chart per metric, one line per run",
        )

    def code_diff_html(self, from_index: int | None = None, to_index: int | None = None) -> str:
        """The unified diff of two runs' cell code (default: the panel's chosen pair)."""
        a = self.code_from if from_index is None else from_index
        b = self.code_to if to_index is None else to_index
        diff = self.comparison.code_diff(a, b)
        runs = self.comparison.runs
        label = f"{a + 1}. {runs[a].name} → {b + 1}. {runs[b].name}"
        if diff.missing:
            return h.message(f"{label}: no cell code recorded for one of the runs.", "info")
        if diff.identical:
            return h.message(f"{label}: identical code.", "ok")
        return h.diff_block(diff.lines)

    def code_html(self) -> str:
        """Static version: every run's code diffed against the first run's."""
        c = self.comparison
        if all(code is None for code in c.code):
            return h.section("Code", h.message("No cell code recorded for these runs.", "info"))
        parts = []
        for j in range(1, len(c.runs)):
            diff = c.code_diff(0, j)
            state = "identical" if diff.identical else "no code" if diff.missing else "differs"
            summary = f"1. {c.runs[0].name} → {j + 1}. {c.runs[j].name} ({state})"
            parts.append(h.details(summary, self.code_diff_html(0, j), open_=(j == 1)))
        return h.section("Code", "".join(parts), "unified diff against run 1", "nbm-code-diff")

    def inputs_html(self) -> str:
        """Datasets whose fingerprint or shape differ between the runs."""
        c = self.comparison
        if not c.inputs:
            return h.section("Data", h.message("No dataset fingerprints recorded.", "info"))
        rows, classes = [], []
        for row in c.inputs:
            cells = []
            for digest, shape in zip(row.digests, row.shapes, strict=True):
                if digest is None:
                    cells.append(f'<span class="nbm-muted">{h.MISSING}</span>')
                else:
                    dims = "×".join(str(s) for s in shape or ())
                    cells.append(
                        f'<code title="{h.esc(digest)}">{h.esc(digest[:12])}</code> {h.esc(dims)}'
                    )
            what = []
            if row.digest_differs:
                what.append("content")
            if row.shape_differs:
                what.append("shape")
            key = _key_cell(f"{row.name} ({row.context})", row.differs)
            if what:
                key += f' <span class="nbm-muted">{h.esc(" + ".join(what))} differ</span>'
            rows.append([key, *cells])
            classes.append("nbm-diff" if row.differs else "")
        table = h.table(
            self._headers(),
            rows,
            row_classes=classes,
            col_classes=["nbm-key"] + [""] * len(c.runs),
            header_html=True,
        )
        differ = sum(r.differs for r in c.inputs)
        return h.section(
            "Data",
            f'<div class="nbm-scroll">{table}</div>',
            f"{differ} of {len(c.inputs)} datasets differ (sha256 of content, shape)",
            "nbm-data",
        )

    def environment_html(self) -> str:
        """Environment entries (Python, packages, git) that differ between the runs."""
        c = self.comparison
        parts = []
        if c.environment:
            parts.append(self._value_table(c.environment))
        elif len(c.environment_missing) < len(c.runs):
            parts.append(h.message("Same environment in every run that recorded one.", "ok"))
        if c.environment_missing:
            names = ", ".join(f"{i + 1}. {c.runs[i].name}" for i in c.environment_missing)
            parts.append(h.message(f"No environment recorded for: {names}", "info"))
        note = f"{len(c.environment)} differ, {c.environment_same} identical"
        return h.section("Environment", "".join(parts), note, "nbm-env")

    def _extra(self) -> str:
        c = self.comparison
        return (
            f"{len(c.runs)} runs · {len(c.params_differ)} params differ · {len(c.metrics)} metrics"
        )

    # ------------------------------------------------------------------ static
    def to_html(self) -> str:
        """The whole comparison as static HTML."""
        body = "".join(
            [
                h.header(self.title, self.store_location, self._extra()),
                self.runs_html(),
                self.params_html(),
                self.metrics_html(),
                self.tags_html(),
                self.charts_html(),
                self.code_html(),
                self.inputs_html(),
                self.environment_html(),
            ]
        )
        return h.panel(
            "compare",
            body,
            "Static view. Re-run the cell to refresh; in Jupyter with ipywidgets the panel "
            "has refresh, metric-direction and code-diff controls.",
        )

    def _text(self) -> str:
        c = self.comparison
        lines = [f"Compare runs · {self._extra()} · store {self.store_location}"]
        for i, r in enumerate(c.runs):
            lines.append(f"  {i + 1}. {r.name} ({r.run_id[:8]}, {r.status})")
        if c.params_differ:
            lines.append("params that differ:")
            for p in c.params_differ:
                values = " | ".join(h.MISSING if v is None else v for v in p.values)
                lines.append(f"  {h.DIFF_MARK} {p.key}: {values}")
        lines.append(f"identical params: {len(c.params_same)}")
        if c.metrics:
            lines.append("metrics (* = best):")
            for m in c.metrics:
                values = " | ".join(
                    h.fmt_number(v) + ("*" if i in m.best else "") for i, v in enumerate(m.values)
                )
                lines.append(f"  {m.key} ({m.direction}): {values}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ widget
    def _build_widget(self) -> Any:
        import ipywidgets as w

        head, refresh = self._header_widgets(self._extra())
        self._w["head"] = head
        runs = w.HTML()
        params = w.HTML()
        metrics = w.HTML()
        lower = w.SelectMultiple(
            description="lower is better", rows=3, tooltip="metrics whose lowest value is best"
        )
        lower.style.description_width = "initial"
        lower.layout.width = "360px"
        lower.observe(self._guarded(self._on_lower), names="value")
        extra = w.HTML()
        code_from = w.Dropdown(description="code diff from")
        code_to = w.Dropdown(description="to")
        code_from.style.description_width = "initial"
        code_from.observe(self._guarded(self._on_pair), names="value")
        code_to.observe(self._guarded(self._on_pair), names="value")
        code = w.HTML()
        rest = w.HTML()
        self._w.update(
            runs=runs,
            params=params,
            metrics=metrics,
            lower=lower,
            extra=extra,
            code_from=code_from,
            code_to=code_to,
            code=code,
            rest=rest,
        )
        self._update_widget()
        box = w.VBox(
            [
                w.HBox([head, refresh]),
                self._message_widget(),
                runs,
                params,
                metrics,
                lower,
                extra,
                w.HTML(f'<div class="nbm-section"><h4>{h.esc("Code")}</h4></div>'),
                w.HBox([code_from, code_to]),
                code,
                rest,
            ]
        )
        return box

    def _update_widget(self) -> None:
        c = self.comparison
        self._filling = True
        try:
            self._w["head"].value = h.style_tag() + h.header(
                self.title, self.store_location, self._extra()
            )
            self._w["runs"].value = self.runs_html()
            self._w["params"].value = self.params_html()
            self._w["metrics"].value = self.metrics_html()
            keys = [m.key for m in c.metrics]
            lower = self._w["lower"]
            lower.options = keys
            lower.value = tuple(m.key for m in c.metrics if m.direction == "min")
            lower.layout.display = "" if keys else "none"
            self._w["extra"].value = self.tags_html() + self.charts_html()
            options = [(f"{i + 1}. {r.name}", i) for i, r in enumerate(c.runs)]
            self._w["code_from"].options = options
            self._w["code_to"].options = options
            self.code_from = min(self.code_from, len(options) - 1)
            self.code_to = min(self.code_to, len(options) - 1)
            self._w["code_from"].value = self.code_from
            self._w["code_to"].value = self.code_to
            self._w["code"].value = self.code_diff_html()
            self._w["rest"].value = self.inputs_html() + self.environment_html()
        finally:
            self._filling = False

    _filling = False

    def _on_lower(self, change: dict[str, Any]) -> None:
        if self._filling:
            return
        chosen = set(change["new"])
        for m in self.comparison.metrics:
            self.directions[m.key] = "min" if m.key in chosen else "max"
        self.comparison = self.comparison.with_directions(self.directions, self.default_direction)
        self._w["metrics"].value = self.metrics_html()

    def _on_pair(self, _change: dict[str, Any]) -> None:
        if self._filling:
            return
        self.code_from = int(self._w["code_from"].value)
        self.code_to = int(self._w["code_to"].value)
        self._w["code"].value = self.code_diff_html()


def compare(
    *runs: Any,
    last: int | None = None,
    best: int | None = None,
    metric: str | None = None,
    lower_is_better: bool | None = None,
    directions: Mapping[str, Direction] | None = None,
    experiment: str | None = None,
    filter_string: str = "",
    max_charts: int = 8,
    client: Any = None,
) -> ComparePanel:
    """Compare runs side by side (twin of ``%mlops compare``); see :class:`ComparePanel`.

    Give the runs (ids, id prefixes, names or Run objects; also a single list), or
    ``last=N`` (the newest N runs), or ``best=N, metric=M`` (the N best by M). ``--last`` and
    ``--best`` skip grouping runs (the notebook session, ``%mlops start`` parents) and look
    in the notebook's experiment (or ``experiment``; every experiment outside a notebook).
    ``lower_is_better`` sets the direction of ``metric`` (inferred from its name when None);
    ``directions`` sets others, e.g. ``{"loss": "min"}``.

    Examples: ``nbmlops.compare(run_a, run_b)``, ``nbmlops.compare(last=3)``,
    ``nbmlops.compare(best=5, metric="f1")``.
    """
    from nbmlops.display._panel import default_client

    client = default_client(client)
    refs: list[Any] = []
    for ref in runs:
        if isinstance(ref, (list, tuple)) and not isinstance(ref, Run):
            refs.extend(ref)
        else:
            refs.append(ref)
    if refs and (last is not None or best is not None):
        raise InvalidArgument("give runs, or last=N, or best=N with metric=M — not several")
    if lower_is_better is not None and metric is None:
        raise InvalidArgument("lower_is_better says which way `metric` is better: give metric=M")
    dirs: dict[str, Direction] = dict(directions or {})
    if metric is not None and lower_is_better is not None:
        dirs[metric] = "min" if lower_is_better else "max"
    if not refs:
        if last is None and best is None:
            raise InvalidArgument(
                "nothing to compare: give 2 to 20 runs, or last=N, or best=N with metric=M"
            )
        ids = notebook_experiment_ids(client, experiment)
        refs = select_runs(client, ids, last, best, metric, lower_is_better, filter_string)
        if len(refs) < MIN_COMPARE:
            where = f"experiment {experiment!r}" if experiment else "the selected experiment(s)"
            raise InvalidArgument(
                f"found {len(refs)} matching run(s) in {where}; compare needs at least "
                f"{MIN_COMPARE}"
            )
    if metric is not None and metric not in dirs:
        dirs[metric] = infer_direction(metric)
    return ComparePanel(
        refs, directions=dirs, first_metric=metric, max_charts=max_charts, client=client
    )
