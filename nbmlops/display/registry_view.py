"""The registry panel: ``%mlops registry [NAME]`` / :func:`nbmlops.registry_view`.

Registered models → versions with their aliases, stage, source run and its metrics,
creation time and description; a chart of one metric across the versions; actions on a
version — set ``@challenger``, **Promote to champion** (the champion–challenger rule of
:func:`nbmlops.promote`, the decision shown with both metric values) and archive — each
asking for confirmation first and reporting errors inline; and the model's audit log.
"""

from __future__ import annotations

from typing import Any

from nbmlops.display import _html as h
from nbmlops.display._panel import Panel
from nbmlops.display.model import ModelView, infer_direction, load_registry
from nbmlops.errors import InvalidArgument
from nbmlops.registry import PromotionDecision

#: Metric columns shown in the versions table (the chosen metric first).
VERSION_METRIC_COLUMNS = 3
#: Audit-log rows shown (newest first).
HISTORY_ROWS = 50


def decision_html(decision: PromotionDecision) -> str:
    """A promotion decision: the verdict, both metric values and the rule's reason."""
    verdict = "PROMOTED" if decision.promoted else "NOT PROMOTED"
    kind = "ok" if decision.promoted else "warn"
    rows = [
        [
            h.esc(f"candidate v{decision.version}"),
            h.esc(h.fmt_number(decision.candidate_value)),
        ],
        [
            h.esc(
                f"@{decision.alias} v{decision.champion_version}"
                if decision.champion_version is not None
                else f"@{decision.alias} (none)"
            ),
            h.esc(h.fmt_number(decision.champion_value)),
        ],
    ]
    direction = "higher" if decision.greater_is_better else "lower"
    table = h.table(
        ["", f"{decision.metric} ({direction} is better)"], rows, col_classes=["", "nbm-num"]
    )
    return h.message(f"{verdict}: {decision.reason}", kind) + table


class RegistryPanel(Panel):
    """Registered models, their versions and promotion actions (see the module docstring).

    Args:
        name: a registered model (default: every model; the widget picks one at a time).
        metric: the metric charted across versions and used to promote (default ``f1``
            when the versions have it, else their first metric).
        client: a :class:`~nbmlops.client.Client` (default: the notebook's).
    """

    kind = "registry"
    title = "Model registry"

    def __init__(self, name: str | None = None, metric: str | None = None, client: Any = None):
        super().__init__(client)
        self.name = name
        self.metric = metric
        self.models: list[ModelView] = []
        self.current: str | None = name
        self._pending: tuple[str, int] | None = None
        self._w: dict[str, Any] = {}
        self._filling = False
        self._load()

    # ------------------------------------------------------------------ data
    def _load(self) -> None:
        self.models = load_registry(self.client, self.name)
        names = [m.model.name for m in self.models]
        if self.current not in names:
            self.current = names[0] if names else None

    def model_view(self, name: str | None = None) -> ModelView | None:
        """The loaded view of model ``name`` (default: the current one)."""
        wanted = name or self.current
        return next((m for m in self.models if m.model.name == wanted), None)

    def _metric_for(self, view: ModelView) -> str | None:
        return view.default_metric(self.metric)

    # ------------------------------------------------------------------ actions (API)
    def _require_model(self) -> str:
        if self.current is None:
            raise InvalidArgument("no registered model to act on")
        return self.current

    def set_challenger(self, version: int) -> str:
        """Point ``@challenger`` of the current model at ``version``; returns a message."""
        name = self._require_model()
        self.client.set_registered_model_alias(name, "challenger", version)
        self.refresh()
        return f"{name} @challenger -> v{version}"

    def promote(
        self,
        version: int,
        metric: str | None = None,
        greater_is_better: bool | None = None,
        min_delta: float = 0.0,
    ) -> PromotionDecision:
        """Run the promotion rule for ``version`` of the current model (see
        :func:`nbmlops.promote`); the decision is recorded in the audit log either way."""
        name = self._require_model()
        view = self.model_view()
        metric = metric or (self._metric_for(view) if view else None) or "f1"
        if greater_is_better is None:
            greater_is_better = infer_direction(metric) == "max"
        decision = self.client.promote(
            name, version, metric=metric, greater_is_better=greater_is_better, min_delta=min_delta
        )
        self.refresh()
        return decision

    def archive(self, version: int) -> str:
        """Move ``version`` of the current model to the ``Archived`` stage."""
        name = self._require_model()
        self.client.transition_model_version_stage(name, version, "Archived")
        self.refresh()
        return f"{name} v{version} archived"

    # ------------------------------------------------------------------ fragments
    def models_html(self) -> str:
        """Every loaded model: latest version, aliases, description, last update."""
        if not self.models:
            return h.message(
                "No registered models yet: register one with %mlops register or "
                "nbmlops.register_model.",
                "info",
            )
        rows = []
        for view in self.models:
            m = view.model
            aliases = "".join(
                f'<span class="nbm-alias">@{h.esc(a)} v{v}</span>'
                for a, v in sorted(m.aliases.items())
            )
            rows.append(
                [
                    h.esc(m.name),
                    h.esc(len(view.versions)),
                    h.esc(m.latest_version if m.latest_version is not None else h.MISSING),
                    aliases,
                    h.esc(m.description),
                    h.esc(h.fmt_time(m.updated_at)),
                ]
            )
        headers = ["model", "versions", "latest", "aliases", "description", "updated"]
        return h.table(
            headers, rows, col_classes=["nbm-key", "nbm-num", "nbm-num", "", "nbm-wrap", ""]
        )

    def versions_html(self, view: ModelView) -> str:
        """The versions of one model, newest first, with their source run's metrics."""
        if not view.versions:
            return h.message(f"{view.model.name} has no versions.", "info")
        metric = self._metric_for(view)
        keys = list(view.metric_keys)
        if metric in keys:
            keys.remove(metric)
            keys.insert(0, metric)
        keys = keys[:VERSION_METRIC_COLUMNS]
        rows, classes = [], []
        for row in view.versions:
            v = row.version
            aliases = "".join(f'<span class="nbm-alias">@{h.esc(a)}</span>' for a in v.aliases)
            run = (
                f"{h.esc(row.run_name)} <code>{h.esc(h.short_id(v.source_run_id))}</code>"
                if row.run_name is not None
                else f'<code>{h.esc(h.short_id(v.source_run_id))}</code> <span class="nbm-muted">(run deleted)</span>'
            )
            rows.append(
                [
                    h.esc(f"v{v.version}"),
                    aliases,
                    h.esc(v.stage),
                    run,
                    *(h.esc(h.fmt_number(row.metrics.get(k))) for k in keys),
                    h.esc(h.fmt_time(v.created_at)),
                    h.esc(v.created_by),
                    h.esc(v.description),
                ]
            )
            classes.append("nbm-archived" if v.stage == "Archived" else "")
        headers = [
            "version",
            "aliases",
            "stage",
            "source run",
            *keys,
            "created",
            "by",
            "description",
        ]
        cols = ["nbm-num", "", "", "", *["nbm-num"] * len(keys), "", "", "nbm-wrap"]
        table = h.table(headers, rows, row_classes=classes, col_classes=cols)
        return f'<div class="nbm-scroll">{table}</div>'

    def chart_html(self, view: ModelView, metric: str | None = None) -> str:
        """``metric`` (of each version's source run) across the versions."""
        metric = metric or self._metric_for(view)
        if metric is None:
            return ""
        from nbmlops.display import _charts

        if not _charts.available():
            return h.message(_charts.NO_MATPLOTLIB, "info")
        from nbmlops.display._charts import versions_chart

        versions, values = view.series(metric)
        marks = {
            row.version.version: " ".join(f"@{a}" for a in row.version.aliases)
            for row in view.versions
            if row.version.aliases
        }
        png = versions_chart(metric, versions, values, marks)
        if png is None:
            return h.message(f"No version's source run has the metric {metric!r}.", "info")
        return f'<div class="nbm-charts"><figure>{h.png_img(png, f"{metric} by version")}</figure></div>'

    def history_html(self, view: ModelView) -> str:
        """The audit log, newest first (alias and stage changes, promotion decisions)."""
        if not view.history:
            return h.message("No events yet.", "info")
        rows = []
        for e in reversed(view.history[-HISTORY_ROWS:]):
            change = ""
            if e.from_value is not None or e.to_value is not None:
                change = f"{e.from_value or h.MISSING} → {e.to_value or h.MISSING}"
            rows.append(
                [
                    h.esc(h.fmt_time(e.timestamp)),
                    h.esc(e.action),
                    h.esc(f"@{e.alias}" if e.alias else ""),
                    h.esc("" if e.version is None else f"v{e.version}"),
                    h.esc(change),
                    h.esc(e.user),
                    h.esc(e.reason),
                ]
            )
        headers = ["time", "action", "alias", "version", "change", "user", "reason"]
        table = h.table(headers, rows, col_classes=["", "", "", "nbm-num", "", "", "nbm-wrap"])
        more = len(view.history) - HISTORY_ROWS
        note = f"newest first; {more} older events not shown" if more > 0 else "newest first"
        return h.section("Audit log", f'<div class="nbm-scroll">{table}</div>', note)

    def model_html(self, view: ModelView, metric: str | None = None) -> str:
        """One model: versions, metric chart, audit log."""
        m = view.model
        desc = f'<div class="nbm-muted">{h.esc(m.description)}</div>' if m.description else ""
        return h.section(
            f"{m.name}",
            desc
            + self.versions_html(view)
            + self.chart_html(view, metric)
            + self.history_html(view),
            f"{len(view.versions)} versions",
            "nbm-model",
        )

    def _extra(self) -> str:
        if self.name:
            return self.name
        return f"{len(self.models)} models"

    # ------------------------------------------------------------------ static
    def to_html(self) -> str:
        """Every loaded model (or the named one) as static HTML."""
        body = h.header(self.title, self.store_location, self._extra())
        if self.name is None:
            body += h.section("Models", self.models_html())
        body += "".join(self.model_html(view) for view in self.models)
        return h.panel(
            "registry",
            body,
            "Static view. In Jupyter with ipywidgets the panel sets challenger, promotes "
            "and archives; otherwise use %mlops alias / %mlops promote.",
        )

    def _text(self) -> str:
        lines = [f"Model registry · {self._extra()} · store {self.store_location}"]
        for view in self.models:
            m = view.model
            aliases = ", ".join(f"@{a}=v{v}" for a, v in sorted(m.aliases.items()))
            lines.append(f"{m.name}: {len(view.versions)} versions {aliases}")
            metric = self._metric_for(view)
            for row in view.versions:
                v = row.version
                value = h.fmt_number(row.metrics.get(metric)) if metric else ""
                tag = " ".join(f"@{a}" for a in v.aliases)
                lines.append(f"  v{v.version} {v.stage} {metric or ''} {value} {tag}".rstrip())
        return "\n".join(lines)

    # ------------------------------------------------------------------ widget
    def _build_widget(self) -> Any:
        import ipywidgets as w

        head, refresh = self._header_widgets(self._extra())
        pick_model = w.Dropdown(description="model")
        pick_model.observe(self._guarded(self._on_model), names="value")
        overview = w.HTML()
        versions = w.HTML()
        chart_metric = w.Dropdown(description="chart")
        chart_metric.observe(self._guarded(self._on_chart_metric), names="value")
        chart = w.HTML()
        version = w.Dropdown(description="version")
        version.layout.width = "180px"
        challenger = w.Button(description="Set challenger", icon="flag")
        promote = w.Button(description="Promote to champion", icon="trophy", button_style="primary")
        archive = w.Button(description="Archive", icon="archive", button_style="warning")
        for b in (challenger, promote, archive):
            b.layout.width = "auto"
        challenger.on_click(self._guarded(lambda _b: self._ask("challenger")))
        promote.on_click(self._guarded(lambda _b: self._ask("promote")))
        archive.on_click(self._guarded(lambda _b: self._ask("archive")))
        promote_metric = w.Dropdown(description="by metric")
        lower = w.Checkbox(description="lower is better", indent=False)
        lower.layout.width = "auto"
        min_delta = w.BoundedFloatText(
            value=0.0, min=0.0, max=1e12, step=0.001, description="min Δ"
        )
        min_delta.layout.width = "160px"
        promote_metric.observe(self._guarded(self._on_promote_metric), names="value")
        question = w.HTML()
        confirm = w.Button(description="Confirm", button_style="danger")
        cancel = w.Button(description="Cancel")
        confirm.on_click(self._guarded(lambda _b: self._confirm()))
        cancel.on_click(self._guarded(lambda _b: self._cancel()))
        confirm_box = w.HBox([question, confirm, cancel])
        confirm_box.layout.display = "none"
        result = w.HTML()
        history = w.HTML()
        self._w.update(
            head=head,
            pick_model=pick_model,
            overview=overview,
            versions=versions,
            chart_metric=chart_metric,
            chart=chart,
            version=version,
            actions=(challenger, promote, archive),
            promote_metric=promote_metric,
            lower=lower,
            min_delta=min_delta,
            question=question,
            confirm_box=confirm_box,
            result=result,
            history=history,
        )
        self._update_widget()
        box = w.VBox(
            [
                w.HBox([head, refresh]),
                self._message_widget(),
                overview,
                pick_model,
                versions,
                chart_metric,
                chart,
                w.HBox([version, challenger, promote, archive]),
                w.HBox([promote_metric, lower, min_delta]),
                confirm_box,
                result,
                history,
            ]
        )
        return box

    def _update_widget(self) -> None:
        self._filling = True
        try:
            wd = self._w
            wd["head"].value = h.style_tag() + h.header(
                self.title, self.store_location, self._extra()
            )
            names = [m.model.name for m in self.models]
            wd["pick_model"].options = names
            wd["pick_model"].value = self.current
            wd["pick_model"].layout.display = "" if len(names) > 1 else "none"
            wd["overview"].value = self.models_html() if self.name is None else ""
            view = self.model_view()
            has_versions = bool(view and view.versions)
            for b in wd["actions"]:
                b.disabled = not has_versions
            if view is None:
                wd["versions"].value = ""
                wd["chart"].value = ""
                wd["history"].value = ""
                wd["chart_metric"].layout.display = "none"
                return
            metric = self._metric_for(view)
            keys = list(view.metric_keys)
            wd["chart_metric"].options = keys
            wd["chart_metric"].value = metric
            wd["chart_metric"].layout.display = "" if keys else "none"
            wd["promote_metric"].options = keys or ["f1"]
            wd["promote_metric"].value = metric or (keys[0] if keys else "f1")
            wd["lower"].value = infer_direction(wd["promote_metric"].value) == "min"
            versions = [(f"v{r.version.version}", r.version.version) for r in view.versions]
            wd["version"].options = versions
            challenger = view.model.aliases.get("challenger")
            default = (
                challenger if challenger is not None else (versions[0][1] if versions else None)
            )
            wd["version"].value = default
            wd["versions"].value = h.section(
                view.model.name, self.versions_html(view), f"{len(view.versions)} versions"
            )
            wd["chart"].value = self.chart_html(view, metric)
            wd["history"].value = self.history_html(view)
        finally:
            self._filling = False

    def _on_model(self, change: dict[str, Any]) -> None:
        if self._filling or change["new"] is None:
            return
        self.current = change["new"]
        self._cancel()
        self._update_widget()

    def _on_chart_metric(self, change: dict[str, Any]) -> None:
        if self._filling or change["new"] is None:
            return
        view = self.model_view()
        if view is not None:
            self._w["chart"].value = self.chart_html(view, change["new"])

    def _on_promote_metric(self, change: dict[str, Any]) -> None:
        if self._filling or change["new"] is None:
            return
        self._w["lower"].value = infer_direction(change["new"]) == "min"

    def _ask(self, action: str) -> None:
        """Show the confirmation row for ``action`` on the chosen version."""
        version = self._w["version"].value
        if version is None:
            raise InvalidArgument("choose a version first")
        name = self.current
        if action == "promote":
            metric = self._w["promote_metric"].value
            way = "lower" if self._w["lower"].value else "higher"
            text = (
                f"Promote {name} v{version} to @champion if its {metric} beats the champion's "
                f"({way} is better) by more than {self._w['min_delta'].value:g}?"
            )
        elif action == "challenger":
            text = f"Point {name} @challenger at v{version}?"
        else:
            text = f"Archive {name} v{version} (stage → Archived)?"
        self._pending = (action, int(version))
        self._w["question"].value = h.message(text, "warn")
        self._w["confirm_box"].layout.display = ""
        self._w["result"].value = ""

    def _cancel(self) -> None:
        self._pending = None
        if self._w:
            self._w["confirm_box"].layout.display = "none"

    def _confirm(self) -> None:
        """Run the pending action; the outcome (or the error) is shown in the panel."""
        if self._pending is None:
            return
        action, version = self._pending
        self._cancel()
        try:
            if action == "promote":
                decision = self.promote(
                    version,
                    metric=self._w["promote_metric"].value,
                    greater_is_better=not self._w["lower"].value,
                    min_delta=float(self._w["min_delta"].value),
                )
                self._w["result"].value = decision_html(decision)
            elif action == "challenger":
                self._w["result"].value = h.message(self.set_challenger(version), "ok")
            else:
                self._w["result"].value = h.message(self.archive(version), "ok")
        except Exception as exc:  # reported inline, never as a traceback
            self._w["result"].value = h.message(f"{type(exc).__name__}: {exc}", "error")


def registry_view(
    name: str | None = None, metric: str | None = None, client: Any = None
) -> RegistryPanel:
    """The registry panel (twin of ``%mlops registry [NAME]``); see :class:`RegistryPanel`."""
    return RegistryPanel(name, metric=metric, client=client)
