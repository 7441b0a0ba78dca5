"""Matplotlib charts rendered to PNG bytes for the panels (no pyplot, no global state).

Charts are drawn on a standalone :class:`matplotlib.figure.Figure` with the Agg canvas, so
they never appear a second time through the inline backend and never touch the user's
current figure. Run names never go into a chart (legends are HTML next to it, escaped like
every other string); titles are metric keys with ``$`` escaped, so matplotlib does not read
them as mathtext.
"""

from __future__ import annotations

import importlib.util
import io
import math
from collections.abc import Sequence

#: Shown instead of charts when matplotlib is missing.
NO_MATPLOTLIB = "Charts need matplotlib: pip install 'nbmlops[widgets]'."


def available() -> bool:
    """Whether matplotlib can be imported (checked without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


#: Points per line at most; longer histories are thinned evenly (the last point is kept).
MAX_POINTS = 2000


def _plain(text: str) -> str:
    """Text that matplotlib shows literally (no mathtext)."""
    return text.replace("$", r"\$")


def _thin(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    if len(xs) <= MAX_POINTS:
        return list(xs), list(ys)
    step = math.ceil(len(xs) / MAX_POINTS)
    idx = list(range(0, len(xs), step))
    if idx[-1] != len(xs) - 1:
        idx.append(len(xs) - 1)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def series_colors(n: int) -> list[str]:
    """``n`` distinct line colours as ``#rrggbb`` (tab10, or tab20 beyond 10 series)."""
    import matplotlib as mpl
    from matplotlib.colors import to_hex

    cmap = mpl.colormaps["tab20" if n > 10 else "tab10"]
    return [to_hex(cmap(i % cmap.N)) for i in range(n)]


def _figure(width: float = 4.6, height: float = 2.7) -> object:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=96, facecolor="white")
    # fixed margins: a layout engine costs more than the drawing itself
    fig.subplots_adjust(left=0.14, right=0.97, top=0.88, bottom=0.17)
    return fig


def _png(fig: object) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)  # type: ignore[arg-type]
    return buffer.getvalue()


def history_chart(
    title: str,
    series: Sequence[tuple[Sequence[int], Sequence[float]]],
    colors: Sequence[str] | None = None,
) -> bytes | None:
    """One metric's histories overlaid: ``series`` holds ``(steps, values)`` per run, drawn
    in ``colors`` (default :func:`series_colors`); the legend is left to the HTML around it
    (cheaper to draw, and it can be read and searched).

    Returns None when no run has more than one point (the table already shows the value).
    """
    if not any(len(steps) > 1 for steps, _ in series):
        return None
    colors = list(colors) if colors is not None else series_colors(len(series))
    fig = _figure()
    ax = fig.add_subplot()  # type: ignore[attr-defined]
    for i, (steps, values) in enumerate(series):
        if not steps:
            continue
        xs, ys = _thin(list(steps), list(values))
        style = "-" if len(xs) > 1 else "o"
        ax.plot(xs, ys, style, color=colors[i], lw=1.4, ms=4)
    ax.set_title(_plain(title), fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    return _png(fig)


def versions_chart(
    metric: str, versions: Sequence[int], values: Sequence[float | None], marks: dict[int, str]
) -> bytes | None:
    """A metric across a model's versions (line + points), aliases written at the points."""
    points = [(v, y) for v, y in zip(versions, values, strict=True) if y is not None]
    if not points:
        return None
    fig = _figure(5.2, 2.7)
    ax = fig.add_subplot()  # type: ignore[attr-defined]
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    ax.plot(xs, ys, "-o", color="#1976d2", lw=1.4, ms=5)
    for x, y in points:
        if x in marks:
            ax.annotate(
                _plain(marks[x]),
                (x, y),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=7,
                color="#0d47a1",
            )
    ax.set_xticks(xs, [f"v{x}" for x in xs])
    ax.set_title(_plain(f"{metric} by version (source run)"), fontsize=10)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.2, y=0.25)
    return _png(fig)
