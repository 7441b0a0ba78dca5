"""The run detail panel: ``%mlops show RUN`` / :func:`nbmlops.show_run`.

Params, metrics (with history charts), tags, artifacts (PNG figures inline, other files
listed with their size), data inputs, the logged model and its registry versions, the cell's
source code, and links to the parent and children runs (in the widget they open that run's
detail in place, with a Back button).
"""

from __future__ import annotations

import json
from typing import Any

from nbmlops.display import _html as h
from nbmlops.display._panel import Panel, close_widgets
from nbmlops.display.model import RunDetail, RunRow, load_run_detail, resolve_run

#: Children listed as buttons in the widget (the static view lists up to the loaded 200).
MAX_CHILD_BUTTONS = 40


def _kv(pairs: list[tuple[str, str]]) -> str:
    """A definition list; keys are plain text, values are HTML built by the caller."""
    items = "".join(f"<dt>{h.esc(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="nbm-kv">{items}</dl>'


def _run_ref(row: RunRow) -> str:
    return (
        f"{h.esc(row.name)} <code>{h.esc(h.short_id(row.run_id))}</code> "
        f"{h.status_badge(row.status)}"
    )


class RunDetailPanel(Panel):
    """Everything about one run (see the module docstring).

    Args:
        run: a :class:`~nbmlops.entities.Run`, run id, unique id prefix or run name.
        client: a :class:`~nbmlops.client.Client` (default: the notebook's).
    """

    kind = "detail"
    title = "Run"

    def __init__(self, run: Any, client: Any = None) -> None:
        super().__init__(client)
        self.run_id = resolve_run(self.client, run).info.run_id
        self.history: list[str] = []
        self.detail: RunDetail
        self._w: dict[str, Any] = {}
        self._load()

    def _load(self) -> None:
        self.detail = load_run_detail(self.client, self.client.get_run(self.run_id))

    def open(self, run_id: str) -> None:
        """Show another run (the widget's parent/children links call this)."""
        previous = self.run_id
        self.run_id = resolve_run(self.client, run_id).info.run_id
        try:
            self._load()
        except Exception:
            self.run_id = previous
            raise
        self.history.append(previous)
        if self._widget is not None:
            self._update_widget()

    def back(self) -> None:
        """Return to the run shown before the last :meth:`open`."""
        if not self.history:
            return
        self.run_id = self.history.pop()
        self._load()
        if self._widget is not None:
            self._update_widget()

    # ------------------------------------------------------------------ fragments
    def _extra(self) -> str:
        run = self.detail.run
        return f"{run.info.run_name} · {run.info.status.value}"

    def summary_html(self) -> str:
        """Identity, status, times, experiment and source of the run."""
        d = self.detail
        info, tags = d.run.info, d.run.data.tags
        source = info.source
        pairs = [
            ("name", h.esc(info.run_name)),
            ("run id", f"<code>{h.esc(info.run_id)}</code>"),
            ("status", h.status_badge(info.status.value)),
            ("experiment", h.esc(d.experiment_name or info.experiment_id)),
            ("started", h.esc(h.fmt_time(info.start_time))),
            ("duration", h.esc(h.fmt_duration(info.start_time, info.end_time))),
            ("user", h.esc(info.user)),
        ]
        if tags.get("nbmlops.run_type"):
            pairs.append(("type", h.esc(tags["nbmlops.run_type"])))
        notebook = source.path or tags.get("nbmlops.notebook")
        if notebook:
            pairs.append(("notebook", f"<code>{h.esc(notebook)}</code>"))
        if source.execution_count is not None or source.cell_id:
            cell = f"[{source.execution_count}]" if source.execution_count is not None else ""
            cell_id = f" id <code>{h.esc(source.cell_id)}</code>" if source.cell_id else ""
            pairs.append(("cell", h.esc(cell) + cell_id))
        if tags.get("nbmlops.error"):
            pairs.append(("error", f'<span class="nbm-best">{h.esc(tags["nbmlops.error"])}</span>'))
        return _kv(pairs)

    def links_html(self) -> str:
        """Parent and children runs (static text; the widget shows buttons instead)."""
        d = self.detail
        parts = []
        if d.parent is not None:
            parts.append(f"<div>parent: {_run_ref(d.parent)}</div>")
        elif d.run.info.parent_run_id:
            parts.append(
                f"<div>parent: <code>{h.esc(d.run.info.parent_run_id)}</code> (deleted)</div>"
            )
        if d.children:
            items = "".join(f"<li>{_run_ref(c)}</li>" for c in d.children)
            more = " (first 200)" if d.more_children else ""
            parts.append(h.details(f"{len(d.children)} children{more}", f"<ul>{items}</ul>", True))
        return h.section("Parent and children", "".join(parts)) if parts else ""

    def params_html(self) -> str:
        """The run's params, by key."""
        params = self.detail.run.data.params
        if not params:
            return ""
        rows = [[h.esc(k), h.esc(params[k])] for k in sorted(params)]
        table = h.table(["param", "value"], rows, col_classes=["nbm-key", "nbm-wrap"])
        return h.section("Params", table, f"{len(rows)}")

    def metrics_html(self) -> str:
        """Latest value of each metric, and a chart for each metric with a history."""
        d = self.detail
        metrics = d.run.data.metrics
        if not metrics:
            return ""
        rows = []
        for key in sorted(metrics):
            points = d.histories.get(key)
            rows.append(
                [h.esc(key), h.esc(h.fmt_number(metrics[key])), h.esc(len(points) if points else 1)]
            )
        table = h.table(
            ["metric", "latest", "points"], rows, col_classes=["nbm-key", "nbm-num", "nbm-num"]
        )
        charts = []
        from nbmlops.display import _charts

        if d.histories and not _charts.available():
            charts.append(h.message(_charts.NO_MATPLOTLIB, "info"))
        elif d.histories:
            from nbmlops.display._charts import history_chart

            for key, points in d.histories.items():
                png = history_chart(key, [([p.step for p in points], [p.value for p in points])])
                if png is not None:
                    charts.append(f"<figure>{h.png_img(png, f'history of {key}')}</figure>")
        chart_html = f'<div class="nbm-charts">{"".join(charts)}</div>' if charts else ""
        return h.section("Metrics", table + chart_html, f"{len(rows)}")

    def tags_html(self) -> str:
        """User tags, then nbmlops'/MLflow's own tags behind a toggle."""
        d = self.detail
        user, system = d.user_tags, d.system_tags
        if not user and not system:
            return ""
        parts = []
        if user:
            rows = [[h.esc(k), h.esc(user[k])] for k in sorted(user)]
            parts.append(h.table(["tag", "value"], rows, col_classes=["nbm-key", "nbm-wrap"]))
        if system:
            rows = [[h.esc(k), h.esc(system[k])] for k in sorted(system)]
            table = h.table(["tag", "value"], rows, col_classes=["nbm-key", "nbm-wrap"])
            parts.append(h.details(f"{len(system)} system tags (nbmlops., mlflow.)", table))
        return h.section("Tags", "".join(parts))

    def artifacts_html(self) -> str:
        """PNG figures inline, every file listed with its size."""
        d = self.detail
        if not d.artifacts:
            return ""
        images = "".join(
            f"<figure>{h.png_img(data, path)}<figcaption>{h.esc(path)}</figcaption></figure>"
            for path, data in d.images.items()
        )
        rows = [
            [f"<code>{h.esc(a.path)}</code>", h.esc(h.fmt_bytes(a.size)), h.esc(a.media_type)]
            for a in d.artifacts
        ]
        table = h.table(["file", "size", "type"], rows, col_classes=["", "nbm-num", ""])
        figures = f'<div class="nbm-charts">{images}</div>' if images else ""
        return h.section("Artifacts", figures + table, f"{len(rows)} files")

    def inputs_html(self) -> str:
        """Data fingerprints: name, context, digest, shape and columns."""
        inputs = self.detail.run.inputs
        if not inputs:
            return ""
        rows = []
        for d in inputs:
            schema = ", ".join(f"{k}: {v}" for k, v in d.schema.items())
            rows.append(
                [
                    h.esc(d.name),
                    h.esc(d.context),
                    f'<code title="{h.esc(d.digest)}">{h.esc(d.digest[:16])}</code>',
                    h.esc("×".join(str(s) for s in d.shape)),
                    f'<span title="{h.esc(schema)}">{h.esc(len(d.schema))} columns</span>',
                ]
            )
        table = h.table(["dataset", "context", "digest", "shape", "schema"], rows)
        return h.section("Inputs", table)

    def model_html(self) -> str:
        """The logged model's metadata and the registry versions made from this run."""
        d = self.detail
        if d.model is None and d.model_error is None and not d.versions:
            return ""
        parts = []
        if d.model_error:
            parts.append(h.message(d.model_error, "warn"))
        if d.model is not None:
            m = d.model
            pairs = [
                ("path", f"<code>{h.esc(m.get('path'))}</code>"),
                ("class", h.esc(m.get("class"))),
                ("flavor / format", h.esc(f"{m.get('flavor')} / {m.get('format')}")),
                ("file", f"<code>{h.esc(m.get('file'))}</code>"),
                ("size", h.esc(h.fmt_bytes(m.get("size")))),
                ("sha256", f"<code>{h.esc(m.get('sha256'))}</code>"),
            ]
            versions = m.get("versions") or {}
            if versions:
                pairs.append(
                    ("libraries", h.esc(", ".join(f"{k} {v}" for k, v in versions.items())))
                )
            signature = m.get("signature")
            if signature:
                text = json.dumps(signature, indent=1)[:4000]
                pairs.append(
                    ("signature", h.details("inputs / outputs", f"<pre>{h.esc(text)}</pre>"))
                )
            parts.append(_kv(pairs))
        if d.versions:
            items = ", ".join(
                f"{h.esc(v.name)} v{v.version}"
                + "".join(f' <span class="nbm-alias">@{h.esc(a)}</span>' for a in v.aliases)
                for v in d.versions
            )
            parts.append(f"<div>registered as: {items}</div>")
        return h.section("Model", "".join(parts))

    def source_html(self) -> str:
        """The cell's code, syntax highlighted."""
        code = self.detail.run.info.source.code
        if not code:
            return ""
        return h.section(
            "Source", h.code_block(code), f"sha256 {self.detail.run.info.source.code_sha256[:12]}"
        )

    def body_html(self, summary: bool = True) -> str:
        """Every section but the links (the widget draws those as buttons)."""
        pairs = (
            f'<div class="nbm-cols">{self.params_html()}{self.metrics_html()}</div>'
            f'<div class="nbm-cols">{self.tags_html()}{self.inputs_html()}</div>'
        )
        return "".join(
            [
                self.summary_html() if summary else "",
                pairs,
                self.artifacts_html(),
                self.model_html(),
                self.source_html(),
            ]
        )

    # ------------------------------------------------------------------ static
    def to_html(self) -> str:
        """The run's detail as static HTML."""
        body = h.header(self.title, self.store_location, self._extra())
        body += self.summary_html() + self.links_html() + self.body_html(summary=False)
        return h.panel("detail", body, "Static view. Re-run the cell to refresh.")

    def _text(self) -> str:
        d = self.detail
        info = d.run.info
        lines = [
            f"Run {info.run_name} ({info.run_id}) · {info.status.value} · "
            f"{h.fmt_duration(info.start_time, info.end_time)} · store {self.store_location}"
        ]
        if d.parent is not None:
            lines.append(f"parent: {d.parent.name} ({d.parent.run_id[:8]})")
        if d.children:
            lines.append(f"children: {len(d.children)}")
        for key in sorted(d.run.data.params):
            lines.append(f"  param  {key} = {d.run.data.params[key]}")
        for key in sorted(d.run.data.metrics):
            lines.append(f"  metric {key} = {h.fmt_number(d.run.data.metrics[key])}")
        if d.artifacts:
            lines.append(f"artifacts: {len(d.artifacts)} files")
        return "\n".join(lines)

    # ------------------------------------------------------------------ widget
    def _build_widget(self) -> Any:
        import ipywidgets as w

        head, refresh = self._header_widgets(self._extra())
        back = w.Button(description="Back", icon="arrow-left", disabled=True)
        back.layout.width = "auto"
        back.on_click(self._guarded(lambda _b: self.back()))
        links = w.Box()
        links.layout.flex_flow = "row wrap"
        body = w.HTML()
        self._w.update(head=head, back=back, links=links, body=body)
        self._update_widget()
        box = w.VBox([w.HBox([head, back, refresh]), self._message_widget(), links, body])
        return box

    def _link_button(self, label: str, run_id: str, tooltip: str) -> Any:
        import ipywidgets as w

        button = w.Button(description=label[:40], tooltip=tooltip[:200])
        button.layout.width = "auto"
        button.on_click(self._guarded(lambda _b: self.open(run_id)))
        return button

    def _update_widget(self) -> None:
        import ipywidgets as w

        d = self.detail
        self._w["head"].value = h.style_tag() + h.header(
            self.title, self.store_location, self._extra()
        )
        self._w["back"].disabled = not self.history
        buttons: list[Any] = []
        if d.parent is not None:
            buttons.append(w.Label("parent:"))
            buttons.append(
                self._link_button(f"↑ {d.parent.name}", d.parent.run_id, d.parent.run_id)
            )
        if d.children:
            buttons.append(w.Label(f"children ({len(d.children)}):"))
            for child in d.children[:MAX_CHILD_BUTTONS]:
                buttons.append(
                    self._link_button(
                        f"↓ {child.name}", child.run_id, f"{child.run_id} {child.status}"
                    )
                )
            if len(d.children) > MAX_CHILD_BUTTONS:
                buttons.append(w.Label(f"… {len(d.children) - MAX_CHILD_BUTTONS} more"))
        old = self._w["links"].children
        self._w["links"].children = buttons
        close_widgets(*old)
        self._w["body"].value = self.body_html()


def show_run(run: Any, client: Any = None) -> RunDetailPanel:
    """The run detail panel (twin of ``%mlops show RUN``): ``run`` is a Run, an id, a unique
    id prefix, a name (the newest run with that name), or ``"last"``: the newest run of the
    notebook's experiment that is not a grouping run (session, ``%mlops start`` parent)."""
    from nbmlops.display._panel import default_client, notebook_experiment_ids
    from nbmlops.display.model import select_runs
    from nbmlops.errors import NotFound

    client = default_client(client)
    if run == "last":
        found = select_runs(client, notebook_experiment_ids(client), last=1)
        if not found:
            raise NotFound("no run to show yet in this experiment")
        run = found[0]
    return RunDetailPanel(run, client=client)
