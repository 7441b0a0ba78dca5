"""The live tuning panel: progress, best so far, a chart, recent trials, importances.

:class:`TuningPanel` renders a :class:`nbmlops.tuning.TuningProgress` in one of three modes:

* ``"widgets"`` (a Jupyter kernel with ipywidgets): a progress bar with done/total, elapsed
  and ETA, a Stop button, the best value and its params, a chart of the objective per trial
  with the running best, a table of the recent trials and, once 10 trials completed (and the
  study ran 10 s, or at the end), param importances with slice and parallel-coordinate views.
  When the study ends the live widgets are replaced by the same content as static HTML, so
  the saved notebook shows it anywhere (GitHub, nbviewer, nbval).
* ``"html"`` (a kernel without ipywidgets): the static HTML, re-rendered in place.
* ``"text"`` (terminal, scripts): a progress line every few seconds and a final summary.

Redraws never slow the study down: text parts redraw at most 4 times a second, the chart at
most once a second and never taking more than ~5 % of the time (its interval grows with its
rendering cost), the importance views at most every 5 s. Matplotlib is used through its
object API (no pyplot), so the panel's figures are never captured as a cell's figures.
Every user-supplied string is escaped with :func:`html.escape`.

**Stop while the cell runs.** A widget click normally reaches Python only when the kernel is
idle, i.e. after the tuning cell. ipykernel ≥ 7 routes each comm message through the comm's
``_reply_subshell_for`` on its shell-channel thread before queueing it for the busy main
thread; the panel observes Stop clicks there, so Stop takes effect after the running trial.
With an older kernel, interrupt the kernel (Ctrl-C / ■: same graceful stop) or tune with
``background=True``.
"""

from __future__ import annotations

import base64
import contextlib
import html
import importlib.util
import io
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbmlops.tuning import InteractiveTuner, TrialRow, TuningProgress

MODES = ("widgets", "html", "text")
_STATE_COLORS = {"COMPLETE": "#2a7d2e", "PRUNED": "#8a6d00", "FAIL": "#b00020"}


def esc(value: Any) -> str:
    """``html.escape`` of ``str(value)`` (quotes included)."""
    return html.escape(str(value), quote=True)


def fmt_value(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.6g}"


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_param(value: Any) -> str:
    """A param value for display: floats to 6 significant digits, others as ``repr``."""
    return fmt_value(value) if isinstance(value, float) else repr(value)


def fmt_params(params: Mapping[str, Any], limit: int = 6) -> str:
    items = list(params.items())
    text = ", ".join(f"{k}={fmt_param(v)}" for k, v in items[:limit])
    return text + (f", … (+{len(items) - limit})" if len(items) > limit else "")


def status_text(progress: TuningProgress) -> str:
    """``12/50 trials · 3.2 s elapsed · ETA 9.8 s · 2 pruned · 1 failed``."""
    total = f"/{progress.n_trials}" if progress.n_trials is not None else ""
    parts = [f"{progress.n_done}{total} trials"]
    if progress.running:
        parts.append(f"{progress.running} running")
    parts.append(f"{fmt_seconds(progress.elapsed())} elapsed")
    if progress.state == "running":
        eta = progress.eta()
        if eta is not None:
            parts.append(f"ETA {fmt_seconds(eta)}")
    if progress.n_pruned:
        parts.append(f"{progress.n_pruned} pruned")
    if progress.n_failed:
        parts.append(f"{progress.n_failed} failed")
    if progress.state != "running":
        reason = f" ({progress.stop_reason})" if progress.stop_reason else ""
        parts.append(f"{progress.state}{reason}")
    return " · ".join(parts)


def best_text(progress: TuningProgress) -> str:
    best = progress.best
    metric = progress.metric_names[0]
    if best is None or best.value is None:
        return f"best {metric}: no complete trial yet"
    return f"best {metric} = {fmt_value(best.value)} (trial {best.number}): {fmt_params(best.params, 10)}"


def best_html(progress: TuningProgress) -> str:
    best = progress.best
    metric = esc(progress.metric_names[0])
    arrow = "↑" if progress.maximize else "↓"
    if best is None or best.value is None:
        return f"<div><b>best {metric}</b> {arrow}: no complete trial yet</div>"
    params = "".join(
        f"<code style='margin-right:.8em'>{esc(k)}={esc(fmt_param(v))}</code>"
        for k, v in best.params.items()
    )
    return (
        f"<div><b>best {metric}</b> {arrow} = <b>{esc(fmt_value(best.value))}</b> "
        f"(trial {best.number})<br>{params}</div>"
    )


def progress_bar_html(progress: TuningProgress) -> str:
    if progress.n_trials:
        fraction = min(1.0, progress.n_done / progress.n_trials)
    elif progress.timeout:
        fraction = min(1.0, progress.elapsed() / progress.timeout)
    else:
        fraction = 1.0 if progress.state != "running" else 0.0
    color = "#2a7d2e" if progress.state in ("completed", "running") else "#8a6d00"
    return (
        "<div style='background:#e6e6e6;border-radius:3px;height:10px;width:100%;max-width:480px'>"
        f"<div style='background:{color};height:10px;border-radius:3px;width:{fraction * 100:.1f}%'>"
        "</div></div>"
    )


def table_html(rows: Sequence[TrialRow], progress: TuningProgress, limit: int = 10) -> str:
    """The most recent ``limit`` finished trials, newest first."""
    if not rows:
        return ""
    recent = list(rows)[-limit:][::-1]
    names: list[str] = []
    for row in recent:
        for name in row.params:
            if name not in names:
                names.append(name)
    names = names[:8]
    metric = progress.metric_names[0]
    head = "".join(
        f"<th style='text-align:left;padding:2px 8px'>{esc(h)}</th>"
        for h in ["trial", "state", metric, *names, "duration", "run"]
    )
    body = []
    for row in recent:
        color = _STATE_COLORS.get(row.state, "#333")
        value = row.value if row.value is not None else row.last_intermediate
        value_text = fmt_value(value) if value is not None else "—"
        if row.state == "PRUNED" and value is not None:
            value_text += " (last report)"
        cells = [
            str(row.number),
            f"<span style='color:{color}' title='{esc(row.error or '')}'>{esc(row.state)}</span>",
            esc(value_text),
            *(
                esc(
                    fmt_value(row.params[n])
                    if isinstance(row.params.get(n), float)
                    else row.params.get(n, "")
                )
                for n in names
            ),
            esc(fmt_seconds(row.duration_s)),
            f"<code>{esc((row.run_id or '')[:8])}</code>",
        ]
        body.append(
            "<tr>" + "".join(f"<td style='padding:2px 8px'>{c}</td>" for c in cells) + "</tr>"
        )
    return (
        "<table style='border-collapse:collapse;font-size:12px'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _import_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is not None:
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def chart_png(rows: Sequence[TrialRow], progress: TuningProgress) -> bytes | None:
    """Objective per trial (pruned: last report, grey; failed: red marks) and the running best."""
    if not rows or importlib.util.find_spec("matplotlib") is None:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 2.6), dpi=72)
    figure.subplots_adjust(left=0.1, right=0.98, bottom=0.18, top=0.95)
    axes = figure.add_subplot()
    complete = sorted((r.number, r.value) for r in rows if r.value is not None)
    pruned = [(r.number, r.last_intermediate) for r in rows if r.state == "PRUNED"]
    pruned = [(n, v) for n, v in pruned if v is not None]
    failed = [r.number for r in rows if r.state == "FAIL"]
    if complete:
        xs, ys = zip(*complete, strict=True)
        axes.plot(xs, ys, "o", markersize=3.5, color="#4c72b0", label="complete", zorder=3)
        best: list[float] = []
        for value in ys:
            if math.isnan(value):
                best.append(best[-1] if best else value)
            elif not best or math.isnan(best[-1]) or progress.better(value, best[-1]):
                best.append(value)
            else:
                best.append(best[-1])
        axes.step(xs, best, where="post", color="#dd8452", label="best so far", zorder=2)
    if pruned:
        xs_p, ys_p = zip(*pruned, strict=True)
        axes.plot(xs_p, ys_p, "x", markersize=4, color="#999999", label="pruned", zorder=3)
    if failed:
        axes.scatter(
            failed,
            [0.02] * len(failed),
            transform=axes.get_xaxis_transform(),
            s=18,
            marker="x",
            color="#b00020",
            label="failed",
            zorder=3,
        )
    axes.set_xlabel("trial")
    axes.set_ylabel(progress.metric_names[0])
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return _png(figure)


def _numeric(values: Sequence[Any], kind: str) -> tuple[list[float], list[str] | None]:
    """Plot positions for param values (categorical: the index of the choice)."""
    if kind == "categorical" or any(
        isinstance(v, str | bool) or v is None or not isinstance(v, int | float) for v in values
    ):
        labels = sorted({repr(v) for v in values})
        index = {label: i for i, label in enumerate(labels)}
        return [float(index[repr(v)]) for v in values], labels
    return [float(v) for v in values], None


def insights_png(
    rows: Sequence[TrialRow], progress: TuningProgress, importances: Mapping[str, float]
) -> bytes | None:
    """Param importances, a parallel-coordinate view and slices of the top params."""
    complete = [r for r in rows if r.value is not None and not math.isnan(r.value)]
    if not complete or not importances or importlib.util.find_spec("matplotlib") is None:
        return None
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    top = [name for name in importances if any(name in r.params for r in complete)][:6]
    if not top:
        return None
    figure = Figure(figsize=(10.0, 5.6), dpi=72)
    grid = figure.add_gridspec(
        2,
        3,
        height_ratios=[1.1, 1.0],
        left=0.12,
        right=0.98,
        bottom=0.08,
        top=0.94,
        hspace=0.45,
        wspace=0.3,
    )
    # Importances
    axes = figure.add_subplot(grid[0, 0])
    items = list(importances.items())[:8][::-1]
    axes.barh([k for k, _ in items], [v for _, v in items], color="#4c72b0")
    axes.set_title("param importance", fontsize=9)
    axes.tick_params(labelsize=8)
    # Parallel coordinates (top params + objective), colored by objective
    axes = figure.add_subplot(grid[0, 1:])
    values = [r.value for r in complete]
    assert all(v is not None for v in values)
    low, high = min(values), max(values)  # type: ignore[type-var]
    colormap = colormaps["viridis" if progress.maximize else "viridis_r"]
    columns: list[list[float]] = []
    for name in top:
        raw = [r.params.get(name) for r in complete]
        present = [v for v in raw if v is not None]
        kind = progress.param_kinds.get(name, "float")
        positions, _ = _numeric(present, kind)
        if kind == "log":
            positions = [math.log10(p) if p > 0 else 0.0 for p in positions]
        mapping = iter(positions)
        full = [next(mapping) if v is not None else math.nan for v in raw]
        finite = [p for p in full if not math.isnan(p)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        columns.append([(p - lo) / (hi - lo) if hi > lo else 0.5 for p in full])
    columns.append([(v - low) / (high - low) if high > low else 0.5 for v in values])  # type: ignore[operator]
    labels = [*top, progress.metric_names[0]]
    segments = [
        [(x, column[i]) for x, column in enumerate(columns) if not math.isnan(column[i])]
        for i in range(len(values))
    ]
    shades = [(v - low) / (high - low) if high > low else 0.5 for v in values]  # type: ignore[operator]
    axes.add_collection(
        LineCollection(segments, colors=[colormap(s) for s in shades], alpha=0.6, linewidths=1)
    )
    axes.set_xlim(-0.1, len(labels) - 0.9)
    axes.set_ylim(-0.05, 1.05)
    axes.set_xticks(range(len(labels)))
    axes.set_xticklabels(labels, fontsize=8, rotation=15)
    axes.set_yticks([])
    axes.set_title("parallel coordinates (normalized; color = objective)", fontsize=9)
    # Slices of the three most important params
    for slot, name in enumerate(top[:3]):
        axes = figure.add_subplot(grid[1, slot])
        pairs = [(r.params[name], r.value) for r in complete if name in r.params]
        kind = progress.param_kinds.get(name, "float")
        positions, tick_labels = _numeric([p for p, _ in pairs], kind)
        axes.plot(positions, [v for _, v in pairs], "o", markersize=3, color="#4c72b0", alpha=0.7)
        if tick_labels is not None:
            axes.set_xticks(range(len(tick_labels)))
            axes.set_xticklabels(tick_labels, fontsize=7, rotation=20)
        elif kind == "log":
            axes.set_xscale("log")
        axes.set_title(f"slice: {name}", fontsize=9)
        axes.tick_params(labelsize=7)
        if slot == 0:
            axes.set_ylabel(progress.metric_names[0], fontsize=8)
    return _png(figure)


class TuningSummary:
    """The panel's content as static HTML (with embedded PNGs) plus a plain-text form."""

    def __init__(self, html_text: str, text: str) -> None:
        self.html = html_text
        self.text = text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{data}' style='max-width:100%'>"


def _is_click(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.get("method") == "custom"
        and isinstance(data.get("content"), dict)
        and data["content"].get("event") == "click"
    )


def observe_clicks_early(button: Any, callback: Callable[[], None]) -> bool:
    """Call ``callback`` as soon as a click on ``button`` reaches the kernel (ipykernel ≥ 7).

    The click message still takes its normal way (``on_click`` runs once the cell ended).
    Returns whether the early path is available.
    """
    comm = getattr(button, "comm", None)
    route = getattr(comm, "_reply_subshell_for", None)
    if comm is None or route is None or not callable(route):
        return False

    def observe(data: Any, default: Any) -> Any:
        with contextlib.suppress(Exception):
            if _is_click(data):
                callback()
        return route(data, default)

    try:
        comm._reply_subshell_for = observe
    except Exception:
        return False
    return True


class TuningPanel:
    """The live view of one study (see the module docstring)."""

    def __init__(
        self,
        progress: TuningProgress,
        mode: str = "widgets",
        on_stop: Callable[[str], None] | None = None,
        title: str = "Tuning",
        clock: Callable[[], float] = time.monotonic,
        text_interval: float = 0.25,
        chart_interval: float = 1.0,
        insights_interval: float = 5.0,
        insights_after: float = 10.0,
        recent: int = 10,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"panel mode must be one of {MODES}, got {mode!r}")
        self.progress = progress
        self.mode = mode
        self.title = title
        self.on_stop = on_stop
        self.clock = clock
        self.text_interval = text_interval if mode != "text" else max(text_interval, 5.0)
        if mode == "html":
            self.text_interval = max(text_interval, 1.0)
        self.chart_min_interval = chart_interval
        self.chart_interval = chart_interval
        self.insights_min_interval = insights_interval
        self.insights_interval = insights_interval
        self.insights_after = insights_after
        self.recent = recent
        #: Redraws so far (text parts), for tests and the benchmark.
        self.draws = 0
        self.chart_draws = 0
        self.insight_draws = 0
        self.early_stop_clicks = False
        self._last_text = -math.inf
        self._last_chart = clock()  # the first chart after chart_interval (or at the end)
        self._last_insights = -math.inf
        self._chart_rows = -1
        self._insight_rows = -1
        self._chart: bytes | None = None
        self._insights: bytes | None = None
        self._notice = ""
        self._printed_notice = ""
        self._stopping = False
        self._handle: Any = None
        self._lock = threading.Lock()
        self.widget: Any = None
        if mode == "widgets":
            self._build_widgets()

    # ----------------------------------------------------------------- mode
    @staticmethod
    def resolve_mode(show: bool | str) -> str:
        """``True`` -> widgets in a Jupyter kernel with ipywidgets, html without, else text."""
        if show is False or show is None or show == "none":
            return "none"
        widgets = importlib.util.find_spec("ipywidgets") is not None
        if isinstance(show, str):
            if show not in MODES:
                raise ValueError(f"show must be True, False or one of {MODES}, got {show!r}")
            return "html" if show == "widgets" and not widgets else show
        shell = None
        if "IPython" in sys.modules:
            from IPython import get_ipython

            shell = get_ipython()
        if getattr(shell, "kernel", None) is None:
            return "text"
        return "widgets" if widgets else "html"

    # ----------------------------------------------------------------- widgets
    def _build_widgets(self) -> None:
        import ipywidgets as w

        progress = self.progress
        self._w = w
        maximum = progress.n_trials or 1
        self._bar = w.IntProgress(
            min=0, max=maximum, value=0, bar_style="info", layout=w.Layout(width="260px")
        )
        self._title = w.HTML(f"<b>{esc(self.title)}</b>")
        self._status = w.HTML()
        self._stop = w.Button(
            description="Stop",
            icon="stop",
            button_style="warning",
            tooltip="Stop after the running trial (finished trials are kept)",
            layout=w.Layout(width="90px"),
        )
        self._stop.on_click(lambda _button: self._request_stop("Stop button"))
        if self.on_stop is None:
            self._stop.layout.display = "none"
        else:
            self.early_stop_clicks = observe_clicks_early(
                self._stop, lambda: self._request_stop("Stop button")
            )
        self._best = w.HTML()
        self._notice_w = w.HTML()
        self._chart_w = w.Image(format="png", layout=w.Layout(display="none"))
        self._table = w.HTML()
        self._insights_w = w.Image(format="png", layout=w.Layout(display="none"))
        self.widget = w.VBox(
            [
                self._title,
                w.HBox([self._bar, self._status, self._stop]),
                self._best,
                self._notice_w,
                self._chart_w,
                self._table,
                self._insights_w,
            ]
        )
        self._render_text()

    def _request_stop(self, reason: str) -> None:
        """Stop button (also from the kernel's shell-channel thread): flags only, no drawing."""
        if self.on_stop is None or self.progress.state != "running":
            return
        self.on_stop(reason)
        self._stopping = True
        self.notice("Stopping after the running trial…")

    def _render_text(self) -> None:
        progress = self.progress
        if self.mode != "widgets":
            return
        if progress.n_trials:
            self._bar.max = progress.n_trials
            self._bar.value = min(progress.n_done, progress.n_trials)
        elif progress.timeout:
            self._bar.max = 1000
            self._bar.value = int(min(1.0, progress.elapsed() / progress.timeout) * 1000)
        if progress.state != "running":
            self._bar.bar_style = "success" if progress.state == "completed" else "warning"
        if (self._stopping or progress.state != "running") and not self._stop.disabled:
            self._stop.disabled = True
            self._stop.description = (
                "Stopping"
                if progress.state == "running"
                else "Stopped"
                if progress.state == "stopped"
                else "Done"
            )
        self._status.value = f"&nbsp;{esc(status_text(progress))}"
        self._best.value = best_html(progress)
        self._notice_w.value = (
            f"<div style='color:#8a6d00'>{esc(self._notice)}</div>" if self._notice else ""
        )

    # ----------------------------------------------------------------- public API
    def show(self) -> None:
        """Display the panel (text mode prints nothing until there is progress)."""
        if self.mode == "text":
            return
        from IPython.display import display

        content = self.widget if self.mode == "widgets" else self.summary()
        self._handle = display(content, display_id=True)

    def notice(self, message: str) -> None:
        """A one-line message under the best value, shown at the next redraw.

        Safe from a signal handler or another thread: it only stores the text.
        """
        self._notice = message

    def update(self, force: bool = False) -> bool:
        """Redraw if the throttle allows (always with ``force``); returns whether it drew."""
        now = self.clock()
        if not force and now - self._last_text < self.text_interval:
            return False
        if not self._lock.acquire(blocking=force):
            return False  # another thread is drawing: skip, the next update catches up
        try:
            self._last_text = now
            self.draws += 1
            if self.mode == "text":
                if self._notice and self._notice != self._printed_notice:
                    self._printed_notice = self._notice
                    print(f"[nbmlops tune] {self._notice}", file=sys.stderr, flush=True)
                print(
                    f"[nbmlops tune] {status_text(self.progress)} · {best_text(self.progress)}",
                    file=sys.stderr,
                    flush=True,
                )
                return True
            rows = self.progress.snapshot()
            self._maybe_chart(rows, now, force)
            self._maybe_insights(rows, now, force)
            if self.mode == "widgets":
                self._render_text()
                self._table.value = table_html(rows, self.progress, self.recent)
            elif self._handle is not None:
                self._handle.update(self.summary(rows, fresh=False))
            return True
        finally:
            self._lock.release()

    def _maybe_chart(self, rows: Sequence[TrialRow], now: float, force: bool) -> None:
        if len(rows) == self._chart_rows:
            return
        if not force and now - self._last_chart < self.chart_interval:
            return
        _import_matplotlib()  # a first import is not rendering cost
        started = time.perf_counter()
        self._chart = chart_png(rows, self.progress)
        cost = time.perf_counter() - started
        self._last_chart = now
        self._chart_rows = len(rows)
        self.chart_interval = max(self.chart_min_interval, 20 * cost)
        self.chart_draws += 1
        if self.mode == "widgets" and self._chart is not None:
            self._chart_w.value = self._chart
            self._chart_w.layout.display = ""

    def _maybe_insights(self, rows: Sequence[TrialRow], now: float, force: bool) -> None:
        progress = self.progress
        from nbmlops.tuning import IMPORTANCE_MIN_TRIALS

        if progress.n_complete < IMPORTANCE_MIN_TRIALS or len(rows) == self._insight_rows:
            return
        final = progress.state != "running"
        if not final and (
            progress.elapsed() < self.insights_after
            or (not force and now - self._last_insights < self.insights_interval)
        ):
            return
        started = time.perf_counter()
        importances = progress.importances if final else None
        if importances is None and progress.importance_fn is not None:
            try:
                importances = progress.importance_fn()
            except Exception:
                importances = None
        if not importances:
            return
        self._insights = insights_png(rows, progress, importances)
        cost = time.perf_counter() - started
        self._last_insights = now
        self._insight_rows = len(rows)
        self.insights_interval = max(self.insights_min_interval, 20 * cost)
        self.insight_draws += 1
        if self.mode == "widgets" and self._insights is not None:
            self._insights_w.value = self._insights
            self._insights_w.layout.display = ""

    def finish(self) -> None:
        """Final redraw; live widgets are replaced by the static summary (kept in the notebook)."""
        self.update(force=True)
        if self.mode == "text":
            print(repr(self.summary()), flush=True)
            return
        if self.mode == "widgets":
            with contextlib.suppress(Exception):
                self._stop.disabled = True
        if self._handle is not None:
            with contextlib.suppress(Exception):
                self._handle.update(self.summary())
            if self.mode == "widgets":
                with contextlib.suppress(Exception):
                    self._close_widgets()

    def _close_widgets(self) -> None:
        for child in list(getattr(self.widget, "children", ())):
            for grandchild in list(getattr(child, "children", ())):
                grandchild.close()
            child.close()
        self.widget.close()

    def summary(self, rows: Sequence[TrialRow] | None = None, fresh: bool = True) -> TuningSummary:
        """The panel as static HTML + text (what the notebook keeps once the study ended).

        ``fresh=False`` (live redraws) reuses the last chart instead of rendering one.
        """
        progress = self.progress
        rows = progress.snapshot() if rows is None else rows
        if fresh and (self._chart is None or self._chart_rows != len(rows)):
            self._chart = chart_png(rows, progress)
            self._chart_rows = len(rows)
        notice = (
            f"<div style='color:#8a6d00'>{esc(self._notice)}</div>"
            if self._notice and progress.state == "running"
            else ""
        )
        stop_hint = (
            "<div style='color:#666;font-size:11px'>interrupt the kernel (■) to stop after the "
            "running trial</div>"
            if progress.state == "running" and self.mode == "html"
            else ""
        )
        body = (
            f"<div class='nbmlops-tuning'><div><b>{esc(self.title)}</b></div>"
            f"{progress_bar_html(progress)}<div>{esc(status_text(progress))}</div>{stop_hint}"
            f"{best_html(progress)}{notice}{_img(self._chart, 'objective per trial')}"
            f"{table_html(rows, progress, self.recent)}"
            f"{_img(self._insights, 'param importances, parallel coordinates and slices')}</div>"
        )
        text = f"{self.title}: {status_text(progress)}\n{best_text(progress)}"
        importances = progress.importances
        if importances and progress.state != "running":
            top = ", ".join(f"{k} {v:.2f}" for k, v in list(importances.items())[:5])
            text += f"\nparam importances: {top}"
        return TuningSummary(body, text)


def _describe(distribution: Any) -> str:
    kind = type(distribution).__name__
    if kind == "CategoricalDistribution":
        return "one of " + ", ".join(repr(c) for c in distribution.choices)
    scale = " (log)" if getattr(distribution, "log", False) else ""
    return f"{distribution.low} … {distribution.high}{scale}"


class InteractivePanel:
    """Sliders and dropdowns for a search space, a Run button (one trial per click) and the
    live view of the study's manual trials."""

    def __init__(self, tuner: InteractiveTuner, show: bool | str = True) -> None:
        self.tuner = tuner
        mode = TuningPanel.resolve_mode(show)
        self.mode = mode
        self.controls: dict[str, Any] = {}
        self.view = TuningPanel(
            tuner.progress,
            mode=mode if mode != "none" else "text",
            on_stop=None,
            title=f"Manual trials · {tuner.study.study_name}",
        )
        self.widget: Any = None
        self.last_error: str | None = None
        if mode == "widgets":
            self._build()
        self.show()

    def _build(self) -> None:
        import ipywidgets as w

        defaults = self.tuner.defaults()
        for name, distribution in self.tuner.distributions.items():
            kind = type(distribution).__name__
            value = defaults.get(name)
            style = {"description_width": "120px"}
            if kind == "CategoricalDistribution":
                options = list(distribution.choices)
                control = w.Dropdown(
                    options=[(repr(c) if not isinstance(c, str) else c, c) for c in options],
                    value=value if value in options else options[0],
                    description=name,
                    style=style,
                )
            elif kind == "IntDistribution":
                control = w.IntSlider(
                    min=distribution.low,
                    max=distribution.high,
                    step=distribution.step,
                    value=int(value),
                    description=name,
                    style=style,
                )
            elif distribution.log:
                control = w.FloatLogSlider(
                    min=math.log10(distribution.low),
                    max=math.log10(distribution.high),
                    value=float(value),
                    base=10,
                    description=name,
                    style=style,
                    readout_format=".3g",
                )
            else:
                step = distribution.step or (distribution.high - distribution.low) / 100
                control = w.FloatSlider(
                    min=distribution.low,
                    max=distribution.high,
                    step=step,
                    value=float(value),
                    description=name,
                    style=style,
                    readout_format=".4g",
                )
            self.controls[name] = control
        self.run_button = w.Button(description="Run trial", icon="play", button_style="primary")
        self.finish_button = w.Button(description="Finish", icon="check")
        self.status = w.HTML()
        self.run_button.on_click(lambda _b: self.run())
        self.finish_button.on_click(lambda _b: self.finish())
        self.widget = w.VBox(
            [
                *self.controls.values(),
                w.HBox([self.run_button, self.finish_button, self.status]),
                self.view.widget,
            ]
        )

    def show(self) -> None:
        if self.mode == "widgets":
            from IPython.display import display

            bundle = dict(self.widget._repr_mimebundle_() or {})
            bundle["text/html"] = self.static_html()  # where widgets cannot be shown
            bundle["text/plain"] = self.static_text()
            display(bundle, raw=True)
        elif self.mode in ("html", "text"):
            message = (
                "interactive tuning needs ipywidgets in a Jupyter kernel; run trials with "
                "tuner.run_trial({...})"
            )
            print(message, file=sys.stderr)

    def static_html(self) -> str:
        """The search space as HTML (the fallback of the live controls)."""
        items = "".join(
            f"<li><code>{esc(name)}</code>: {esc(_describe(distribution))}</li>"
            for name, distribution in self.tuner.distributions.items()
        )
        return (
            f"<div><b>Manual trials · {esc(self.tuner.study.study_name)}</b> — sliders for "
            f"<ul>{items}</ul><i>live controls need a running kernel with ipywidgets</i></div>"
        )

    def static_text(self) -> str:
        space = ", ".join(f"{name}: {_describe(d)}" for name, d in self.tuner.distributions.items())
        return f"Manual trials · {self.tuner.study.study_name} — {space}"

    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def run(self) -> TrialRow | None:
        """One trial with the current values (the Run button)."""
        if self.mode == "widgets":
            self.run_button.disabled = True
            self.status.value = "&nbsp;running…"
        try:
            row = self.tuner.run_trial(self.values())
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self.mode == "widgets":
                self.status.value = (
                    f"&nbsp;<span style='color:#b00020'>{esc(self.last_error)}</span>"
                )
            return None
        finally:
            if self.mode == "widgets":
                self.run_button.disabled = False
        if self.mode == "widgets":
            metric = self.tuner.progress.metric_names[0]
            shown = fmt_value(row.value) if row.value is not None else row.state
            detail = f" ({row.error})" if row.error else ""
            self.status.value = (
                f"&nbsp;trial {row.number}: {esc(metric)} = {esc(shown)}{esc(detail)}"
            )
        self.view.update(force=True)
        return row

    def finish(self) -> None:
        """End the interactive tuning run (the Finish button)."""
        run_id = self.tuner.finish()
        if self.mode == "widgets":
            self.run_button.disabled = True
            self.finish_button.disabled = True
            self.status.value = f"&nbsp;finished (run {esc(run_id or '—')})"
