"""The runs table panel: ``%mlops runs`` / :func:`nbmlops.runs_view`.

Runs as a tree (session run → cell runs → trials), with status, name, cell, duration and
chosen key params and metrics; sortable (a sort applies among siblings at every level),
filterable with the search language, paginated, with selection checkboxes and a
"Compare selected" button. Only one page of rows is ever rendered: the widget keeps a fixed
set of row slots and refills them, so a 10 000-run store costs one page of widgets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nbmlops.display import _html as h
from nbmlops.display._panel import Panel, close_widgets, notebook_experiment_ids
from nbmlops.display.model import (
    MAX_COMPARE,
    MAX_TABLE_RUNS,
    MIN_COMPARE,
    RunsTable,
    TreeRow,
    field_ref,
    load_run_rows,
)
from nbmlops.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

#: Page sizes offered by the widget.
PAGE_SIZES = (10, 25, 50, 100)
_ALL = "(all experiments)"
_DEFAULT_ORDER = ""  # the sort dropdown's value for the default (tree, newest first)
_ROW_PAD = 12  # horizontal padding of a cell (px), inside its width


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: title, width in the widget (px), CSS class and how to render a row."""

    title: str
    width: int
    css: str
    render: Callable[[TreeRow], tuple[str, str]]  # -> (cell HTML, plain text)


def _name_cell(item: TreeRow) -> tuple[str, str]:
    indent = ("   " * (item.depth - 1) + "└─ ") if item.depth else ""
    hint = ""
    if item.missing_parent:
        hint = f' <span class="nbm-muted">↰ {h.esc(h.short_id(item.missing_parent))}</span>'
    html = f'<span class="nbm-tree">{h.esc(indent)}</span>{h.esc(item.row.name)}{hint}'
    return html, indent + item.row.name


def _status_cell(item: TreeRow) -> tuple[str, str]:
    return h.status_badge(item.row.status), item.row.status


def _duration_cell(item: TreeRow) -> tuple[str, str]:
    text = h.fmt_duration(item.row.start_time, item.row.end_time)
    return h.esc(text), text


def _plain(text: str) -> tuple[str, str]:
    return h.esc(text), text


def _param_column(key: str) -> Column:
    def render(item: TreeRow) -> tuple[str, str]:
        value = item.row.params.get(key)
        return _plain(h.MISSING if value is None else value)

    return Column(key, 100, "nbm-key-param", render)


def _metric_column(key: str) -> Column:
    def render(item: TreeRow) -> tuple[str, str]:
        return _plain(h.fmt_number(item.row.metrics.get(key)))

    return Column(key, 90, "nbm-num", render)


BASE_COLUMNS: tuple[Column, ...] = (
    Column("run", 250, "nbm-name", _name_cell),
    Column("id", 86, "nbm-key", lambda t: _plain(h.short_id(t.row.run_id))),
    Column("status", 84, "", _status_cell),
    Column("type", 64, "", lambda t: _plain(t.row.run_type)),
    Column(
        "cell", 44, "nbm-num", lambda t: _plain("" if t.row.cell is None else f"[{t.row.cell}]")
    ),
    Column("duration", 76, "nbm-num", _duration_cell),
)


class RunsView(Panel):
    """The runs of an experiment as a paginated tree (see the module docstring).

    Args:
        experiment: experiment name (default: the notebook's experiment, else all).
        filter_string: a search filter, e.g. ``"metrics.f1 > 0.8 and params.model = 'rf'"``.
        order_by: e.g. ``"metrics.f1 DESC"`` (or a list); default: newest top-level runs
            first, children in execution order.
        last: only the newest N runs.
        all_experiments: every experiment in the store.
        page_size: rows per page.
        params, metrics: the key columns (default: chosen from the runs).
        client: a :class:`~nbmlops.client.Client` (default: the notebook's).
        max_runs: load at most this many runs (the table says when there were more).
    """

    kind = "runs"
    title = "Runs"

    def __init__(
        self,
        experiment: str | None = None,
        filter_string: str = "",
        order_by: str | Sequence[str] | None = None,
        last: int | None = None,
        all_experiments: bool = False,
        page_size: int = 25,
        params: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
        client: Any = None,
        max_runs: int = MAX_TABLE_RUNS,
    ) -> None:
        super().__init__(client)
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
            raise InvalidArgument(f"last must be a positive integer, got {last!r}")
        if not isinstance(filter_string, str):
            raise InvalidArgument(f"filter_string must be a string, got {filter_string!r}")
        if isinstance(order_by, str):
            order_by = [o.strip() for o in order_by.split(",") if o.strip()]
        self.experiment = experiment
        self.all_experiments = all_experiments
        self.filter_string = filter_string
        self.order_by: list[str] | None = list(order_by) if order_by else None
        self.last = last
        self.page_size = page_size
        self.max_runs = max_runs
        self._params = list(params) if params is not None else None
        self._metrics = list(metrics) if metrics is not None else None
        self.page = 0
        self.selected: set[str] = set()
        self.table: RunsTable
        self._experiment_ids: list[str] | None = None
        self._slots: list[Any] = []
        self._w: dict[str, Any] = {}
        self._filling = False
        self._load()

    # ------------------------------------------------------------------ data
    def _load(self) -> None:
        ids = notebook_experiment_ids(self.client, self.experiment, self.all_experiments)
        rows, truncated = load_run_rows(
            self.client, ids, self.filter_string, self.order_by, self.last, self.max_runs
        )
        old = getattr(self, "table", None)
        table = RunsTable(
            rows,
            page_size=self.page_size,
            params=self._params,
            metrics=self._metrics,
            children_by_time=not self.order_by,
            truncated=truncated,
        )
        if old is not None:
            table.collapsed = {t.row.run_id for t in table.tree} & old.collapsed
        self.table = table
        self._experiment_ids = ids
        self.selected &= {r.run_id for r in rows}
        self.page = table.clamp_page(self.page)

    @property
    def columns(self) -> list[Column]:
        """The columns shown: base columns, then the chosen params and metrics."""
        return [
            *BASE_COLUMNS,
            *(_param_column(k) for k in self.table.params),
            *(_metric_column(k) for k in self.table.metrics),
        ]

    def set_columns(
        self, params: Sequence[str] | None = None, metrics: Sequence[str] | None = None
    ) -> None:
        """Choose the key param and metric columns (None keeps the current choice)."""
        if params is not None:
            self._params = list(params)
            self.table.params = list(params)
        if metrics is not None:
            self._metrics = list(metrics)
            self.table.metrics = list(metrics)
        if self._widget is not None:
            self._fill()

    def _scope(self) -> str:
        if self._experiment_ids is None:
            return "all experiments"
        names = []
        for eid in self._experiment_ids:
            try:
                names.append(self.client.get_experiment(eid).name)
            except Exception:
                names.append(eid)
        return "experiment " + ", ".join(repr(n) for n in names)

    def _summary(self) -> str:
        parts = [f"{len(self.table):,} runs", self._scope()]
        if self.filter_string:
            parts.append(f"filter: {self.filter_string}")
        if self.order_by:
            parts.append("order: " + ", ".join(self.order_by))
        if self.last:
            parts.append(f"last {self.last}")
        if self.table.truncated:
            parts.append(f"first {self.max_runs:,} loaded; narrow with a filter")
        return " · ".join(parts)

    def to_pandas(self) -> pd.DataFrame:
        """Every loaded run in tree order as a DataFrame (depth, ids, status, params, metrics)."""
        import pandas as pd

        records = []
        for item in self.table.tree:
            row = item.row
            record: dict[str, Any] = {
                "run": ("  " * (item.depth - 1) + "└ " if item.depth else "") + row.name,
                "run_id": row.run_id,
                "depth": item.depth,
                "parent_run_id": row.parent_run_id,
                "status": row.status,
                "type": row.run_type,
                "cell": row.cell,
                "duration_s": row.duration_s,
            }
            record.update({f"params.{k}": row.params.get(k) for k in self.table.params})
            record.update({f"metrics.{k}": row.metrics.get(k) for k in self.table.metrics})
            records.append(record)
        frame = pd.DataFrame.from_records(records)
        if "cell" in frame:
            frame["cell"] = frame["cell"].astype("Int64")
        return frame

    # ------------------------------------------------------------------ static renderings
    def to_html(self) -> str:
        """The current page as a static table, with the store and the query stated."""
        cols = self.columns
        rows = []
        classes = []
        for item in self.table.page(self.page):
            rows.append([col.render(item)[0] for col in cols])
            classes.append("nbm-selected" if item.row.run_id in self.selected else "")
        body = h.header(self.title, self.store_location, self._summary())
        body += f'<div class="nbm-muted">{h.esc(self.table.page_label(self.page))}</div>'
        if rows:
            table = h.table(
                [c.title for c in cols],
                rows,
                row_classes=classes,
                col_classes=[c.css for c in cols],
            )
            body += f'<div class="nbm-scroll">{table}</div>'
        else:
            body += h.message("No runs match.", "info")
        return h.panel(
            "runs",
            body,
            "Static view of one page. Run the cell in Jupyter with ipywidgets to page, sort, "
            "filter and compare, or use nbmlops.runs_view(...).to_pandas().",
        )

    def _text(self) -> str:
        cols = self.columns
        lines = [f"Runs · {self._summary()} · store {self.store_location}"]
        lines.append(self.table.page_label(self.page))
        widths = [min(max(len(c.title), 6), 40) for c in cols]
        cells = [[c.render(item)[1] for c in cols] for item in self.table.page(self.page)]
        for row in cells:
            widths = [min(40, max(w, len(v))) for w, v in zip(widths, row, strict=True)]
        lines.append("  ".join(c.title.ljust(w)[:w] for c, w in zip(cols, widths, strict=True)))
        for row in cells:
            lines.append("  ".join(v.ljust(w)[:w] for v, w in zip(row, widths, strict=True)))
        return "\n".join(lines)

    # ------------------------------------------------------------------ widget
    def _line_width(self) -> int:
        """Width (px) of a row line: the sum of the column widths."""
        return sum(col.width for col in self.columns) + 4

    def _row_line(self, item: TreeRow | None) -> str:
        parts = []
        for col in self.columns:
            if item is None:
                html, text = h.esc(col.title), col.title
            else:
                html, text = col.render(item)
            align = "text-align:right;" if col.css == "nbm-num" else ""
            parts.append(
                f'<span class="nbm-c" style="width:{col.width}px;{align}" title="{h.esc(text)}">'
                f"{html}</span>"
            )
        css = "nbm-rowline nbm-rowhead" if item is None else "nbm-rowline"
        return f'<div class="{css}">{"".join(parts)}</div>'

    def _build_widget(self) -> Any:
        import ipywidgets as w

        head, refresh = self._header_widgets(self._summary())
        self._w["head"] = head
        experiments = [e.name for e in self.client.search_experiments()]
        current = _ALL
        if self._experiment_ids and len(self._experiment_ids) == 1:
            try:
                current = self.client.get_experiment(self._experiment_ids[0]).name
            except Exception:
                current = _ALL
        exp = w.Dropdown(
            options=[_ALL, *experiments] if current in (_ALL, *experiments) else [_ALL, current],
            value=current,
            description="experiment",
        )
        exp.layout.width = "260px"
        exp.observe(self._guarded(self._on_experiment), names="value")
        flt = w.Text(
            value=self.filter_string,
            placeholder="metrics.f1 > 0.8 and params.model = 'rf'",
            description="filter",
            continuous_update=False,
        )
        flt.layout.flex = "1 1 auto"
        flt.observe(self._guarded(self._on_filter), names="value")
        apply_btn = w.Button(description="Apply", tooltip="apply the filter")
        apply_btn.layout.width = "auto"
        apply_btn.on_click(self._guarded(lambda _b: self._apply_filter(flt.value)))
        order = w.Dropdown(description="sort", options=self._order_options())
        order.layout.width = "260px"
        direction = w.ToggleButtons(options=["desc", "asc"], value="desc")
        direction.style.button_width = "52px"
        if self.order_by:
            field, _, way = self.order_by[0].partition(" ")
            values = [v for _, v in order.options]
            if field in values:
                order.value = field
            direction.value = "asc" if way.strip().upper() == "ASC" else "desc"
        order.observe(self._guarded(self._on_order), names="value")
        direction.observe(self._guarded(self._on_order), names="value")
        columns_btn = w.ToggleButton(description="Columns…", tooltip="choose key params/metrics")
        columns_btn.layout.width = "auto"
        expand = w.Button(description="Expand all")
        collapse = w.Button(description="Collapse all")
        for b in (expand, collapse):
            b.layout.width = "auto"
        expand.on_click(self._guarded(lambda _b: self._tree_all(True)))
        collapse.on_click(self._guarded(lambda _b: self._tree_all(False)))
        pick_params = w.SelectMultiple(description="params", rows=6)
        pick_metrics = w.SelectMultiple(description="metrics", rows=6)
        columns_box = w.HBox([pick_params, pick_metrics])
        columns_box.layout.display = "none"
        columns_btn.observe(
            lambda change: setattr(columns_box.layout, "display", "" if change["new"] else "none"),
            names="value",
        )
        pick_params.observe(self._guarded(self._on_columns), names="value")
        pick_metrics.observe(self._guarded(self._on_columns), names="value")

        header_line = w.HTML()
        page_all = w.Checkbox(value=False, indent=False, tooltip="select this page")
        page_all.layout.width = "28px"
        page_all.observe(self._guarded(self._on_select_page), names="value")
        spacer1, spacer2 = w.HTML(), w.HTML()
        for item, width in ((spacer1, "28px"), (page_all, "28px"), (spacer2, "52px")):
            item.layout.width = item.layout.min_width = width
            item.layout.flex = "0 0 auto"
        header_line.layout.flex = "0 0 auto"
        header_row = w.HBox([spacer1, page_all, spacer2, header_line])
        header_row.layout.width = "max-content"
        rows_box = w.VBox()
        table_box = w.VBox([header_row, rows_box])
        table_box.layout.overflow_x = "auto"

        first, prev = w.Button(description="«"), w.Button(description="‹ prev")
        nxt, last = w.Button(description="next ›"), w.Button(description="»")
        for b, move in ((first, "first"), (prev, -1), (nxt, 1), (last, "last")):
            b.layout.width = "auto"
            b.on_click(self._guarded(lambda _b, m=move: self._go(m)))
        page_label = w.Label()
        size = w.Dropdown(
            options=sorted({*PAGE_SIZES, self.page_size}), value=self.page_size, description="rows"
        )
        size.layout.width = "140px"
        size.observe(self._guarded(self._on_page_size), names="value")

        compare = w.Button(
            description="Compare selected", icon="columns", button_style="primary", disabled=True
        )
        compare.layout.width = "auto"
        compare.on_click(self._guarded(lambda _b: self.compare_selected()))
        clear = w.Button(description="Clear selection")
        clear.layout.width = "auto"
        clear.on_click(self._guarded(lambda _b: self._clear_selection()))
        selection = w.Label()
        below = w.VBox()

        self._w.update(
            experiment=exp,
            filter=flt,
            order=order,
            direction=direction,
            pick_params=pick_params,
            pick_metrics=pick_metrics,
            header_line=header_line,
            page_all=page_all,
            rows=rows_box,
            page_label=page_label,
            size=size,
            compare=compare,
            selection=selection,
            below=below,
            nav=(first, prev, nxt, last),
        )
        self._make_slots()
        self._fill()
        return w.VBox(
            [
                w.HBox([head, refresh]),
                w.HBox([exp, flt, apply_btn]),
                w.HBox([order, direction, columns_btn, expand, collapse]),
                columns_box,
                self._message_widget(),
                table_box,
                w.HBox([first, prev, page_label, nxt, last, size]),
                w.HBox([compare, clear, selection]),
                below,
            ]
        )

    def _order_options(self) -> list[tuple[str, str]]:
        options: list[tuple[str, str]] = [
            ("newest first (tree)", _DEFAULT_ORDER),
            ("start time", "start_time"),
            ("end time", "end_time"),
            ("name", "run_name"),
            ("status", "status"),
        ]
        options += [(f"metric {k}", field_ref("metrics", k)) for k in self.table.metric_keys]
        options += [(f"param {k}", field_ref("params", k)) for k in self.table.param_keys]
        return options

    def _make_slots(self) -> None:
        import ipywidgets as w

        close_widgets(*self._slots)
        slots = []
        for _ in range(self.page_size):
            toggle = w.Button(description="", tooltip="collapse / expand")
            check = w.Checkbox(value=False, indent=False)
            open_btn = w.Button(description="open", tooltip="show this run's detail")
            for item, width in ((toggle, "28px"), (check, "28px"), (open_btn, "52px")):
                item.layout.width = item.layout.min_width = width
                item.layout.flex = "0 0 auto"
            toggle.add_class("nbm-tiny")
            open_btn.add_class("nbm-tiny")
            line = w.HTML()
            line.layout.flex = "0 0 auto"
            line.layout.width = f"{self._line_width()}px"
            slot = w.HBox([toggle, check, open_btn, line])
            slot.layout.width = "max-content"
            slot.add_class("nbm-slot")
            slot.run_id = None  # type: ignore[attr-defined]
            toggle.on_click(self._guarded(lambda _b, s=slot: self._toggle(s.run_id)))
            open_btn.on_click(self._guarded(lambda _b, s=slot: self.show_detail(s.run_id)))
            check.observe(self._guarded(lambda c, s=slot: self._on_check(s, c)), names="value")
            slots.append(slot)
        self._slots = slots
        self._w["rows"].children = slots

    def _fill(self) -> None:
        """Put the current page into the row slots and update every control."""
        self._filling = True
        try:
            table = self.table
            self.page = table.clamp_page(self.page)
            items = table.page(self.page)
            self._w["header_line"].value = self._row_line(None)
            width = f"{self._line_width()}px"
            self._w["header_line"].layout.width = width
            for slot in self._slots:
                slot.children[3].layout.width = width
            for slot, item in zip(self._slots, [*items, *[None] * len(self._slots)], strict=False):
                toggle, check, _open, line = slot.children
                if item is None:
                    slot.run_id = None
                    slot.layout.display = "none"
                    continue
                slot.layout.display = ""
                run_id = item.row.run_id
                slot.run_id = run_id
                toggle.description = (
                    ("▸" if run_id in table.collapsed else "▾") if item.has_children else ""
                )
                toggle.layout.visibility = "visible" if item.has_children else "hidden"
                check.value = run_id in self.selected
                line.value = self._row_line(item)
            shown = [i.row.run_id for i in items]
            self._w["page_all"].value = bool(shown) and all(r in self.selected for r in shown)
            self._w["page_label"].value = table.page_label(self.page)
            first, prev, nxt, last = self._w["nav"]
            first.disabled = prev.disabled = self.page == 0
            nxt.disabled = last.disabled = self.page >= table.page_count - 1
            pick_p, pick_m = self._w["pick_params"], self._w["pick_metrics"]
            if tuple(pick_p.options) != tuple(table.param_keys):
                pick_p.options = table.param_keys
            if tuple(pick_m.options) != tuple(table.metric_keys):
                pick_m.options = table.metric_keys
            pick_p.value = tuple(k for k in table.params if k in table.param_keys)
            pick_m.value = tuple(k for k in table.metrics if k in table.metric_keys)
            order = self._w["order"]
            options = self._order_options()
            if list(order.options) != options:
                current = order.value
                order.options = options
                order.value = current if current in [v for _, v in options] else _DEFAULT_ORDER
            self._w["head"].value = h.style_tag() + h.header(
                self.title, self.store_location, self._summary()
            )
            self._update_selection_label()
        finally:
            self._filling = False

    def _update_widget(self) -> None:
        if self.page_size != len(self._slots):
            self._make_slots()
        self._fill()

    def _update_selection_label(self) -> None:
        n = len(self.selected)
        self._w["selection"].value = f"{n} selected" if n else ""
        self._w["compare"].disabled = not (MIN_COMPARE <= n <= MAX_COMPARE)

    # ------------------------------------------------------------------ actions
    def _go(self, move: int | str) -> None:
        if move == "first":
            self.page = 0
        elif move == "last":
            self.page = self.table.page_count - 1
        else:
            assert isinstance(move, int)
            self.page = self.table.clamp_page(self.page + move)
        self._fill()

    def go_to_page(self, page: int) -> None:
        """Show page ``page`` (0-based, clamped)."""
        self.page = self.table.clamp_page(page)
        if self._widget is not None:
            self._fill()

    def _toggle(self, run_id: str | None) -> None:
        if run_id:
            self.table.toggle(run_id)
            self._fill()

    def _tree_all(self, expand: bool) -> None:
        if expand:
            self.table.expand_all()
        else:
            self.table.collapse_all()
        self.page = 0
        self._fill()

    def _on_check(self, slot: Any, change: dict[str, Any]) -> None:
        if self._filling or slot.run_id is None:
            return
        if change["new"]:
            self.selected.add(slot.run_id)
        else:
            self.selected.discard(slot.run_id)
        self._update_selection_label()

    def _on_select_page(self, change: dict[str, Any]) -> None:
        if self._filling:
            return
        ids = {i.row.run_id for i in self.table.page(self.page)}
        if change["new"]:
            self.selected |= ids
        else:
            self.selected -= ids
        self._fill()

    def _clear_selection(self) -> None:
        self.selected.clear()
        self._fill()

    def _apply_filter(self, text: str) -> None:
        previous = self.filter_string
        self.filter_string = text.strip()
        try:
            self.refresh()
        except Exception:
            self.filter_string = previous
            raise
        self.page = 0
        self._fill()
        self._say("")

    def _on_filter(self, change: dict[str, Any]) -> None:
        if not self._filling:
            self._apply_filter(change["new"])

    def _on_experiment(self, change: dict[str, Any]) -> None:
        if self._filling:
            return
        previous = (self.experiment, self.all_experiments)
        if change["new"] == _ALL:
            self.experiment, self.all_experiments = None, True
        else:
            self.experiment, self.all_experiments = change["new"], False
        try:
            self.refresh()
        except Exception:
            self.experiment, self.all_experiments = previous
            raise
        self.page = 0
        self._fill()

    def _on_order(self, _change: dict[str, Any]) -> None:
        if self._filling:
            return
        field = self._w["order"].value
        previous = self.order_by
        self.order_by = (
            None if field == _DEFAULT_ORDER else [f"{field} {self._w['direction'].value.upper()}"]
        )
        try:
            self.refresh()
        except Exception:
            self.order_by = previous
            raise
        self._say("")

    def _on_columns(self, _change: dict[str, Any]) -> None:
        if self._filling:
            return
        self.set_columns(list(self._w["pick_params"].value), list(self._w["pick_metrics"].value))

    def _on_page_size(self, change: dict[str, Any]) -> None:
        if self._filling:
            return
        first_row = self.page * self.page_size
        self.page_size = int(change["new"])
        self.table.page_size = self.page_size
        self.page = first_row // self.page_size
        self._make_slots()
        self._fill()

    def selected_runs(self) -> list[str]:
        """The selected run ids, in tree order."""
        return self.table.selectable(self.selected)

    def compare_selected(self) -> Any:
        """Open a comparison of the selected runs below the table (2 to 20 runs)."""
        from nbmlops.display.compare import ComparePanel

        ids = self.selected_runs()
        if not MIN_COMPARE <= len(ids) <= MAX_COMPARE:
            raise InvalidArgument(
                f"select {MIN_COMPARE} to {MAX_COMPARE} runs to compare ({len(ids)} selected)"
            )
        panel = ComparePanel(ids, client=self.client)
        self._show_below(panel)
        return panel

    def show_detail(self, run_id: str | None) -> Any:
        """Open the detail of one run below the table."""
        from nbmlops.display.run_detail import RunDetailPanel

        if not run_id:
            return None
        panel = RunDetailPanel(run_id, client=self.client)
        self._show_below(panel)
        return panel

    def _show_below(self, panel: Panel) -> None:
        if self._widget is None:
            return
        import ipywidgets as w

        close = w.Button(description="Close", icon="times")
        close.layout.width = "auto"
        below = self._w["below"]

        def close_below(_button: Any = None) -> None:
            old = below.children
            below.children = ()
            close_widgets(*old)

        close.on_click(close_below)
        close_below()
        below.children = (close, panel.widget())
        self._say("")


def runs_view(
    experiment: str | None = None,
    filter_string: str = "",
    order_by: str | Sequence[str] | None = None,
    last: int | None = None,
    all_experiments: bool = False,
    page_size: int = 25,
    params: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    client: Any = None,
) -> RunsView:
    """The runs table panel (twin of ``%mlops runs``); see :class:`RunsView`.

    Example: ``nbmlops.runs_view(filter_string="metrics.f1 > 0.8", order_by="metrics.f1 DESC")``.
    """
    return RunsView(
        experiment=experiment,
        filter_string=filter_string,
        order_by=order_by,
        last=last,
        all_experiments=all_experiments,
        page_size=page_size,
        params=params,
        metrics=metrics,
        client=client,
    )
