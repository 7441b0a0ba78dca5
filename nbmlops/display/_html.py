"""Escaping, formatting and the stylesheet shared by every inline panel.

Every user-supplied string (run names, params, tags, metric keys, code, file names, model
descriptions, store paths) reaches HTML only through :func:`esc` (or through pygments, which
escapes the same characters), so a run named ``<img src=x onerror=alert(1)>`` shows as
literal text. Panels build their markup from the helpers here and never format user text
into HTML any other way.

The stylesheet uses JupyterLab's CSS variables (``--jp-*``) with light-theme fallbacks, so
the panels follow the light and dark themes inside JupyterLab and still look sane in an
exported HTML file or a viewer without those variables. Meaning never depends on colour
alone: a differing row carries the text marker ``≠`` and a best value ``★``, which survive a
sanitizer that drops ``<style>`` (an untrusted notebook) or a plain-text rendering.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
from collections.abc import Iterable, Sequence

#: Marker shown before a key whose values differ between runs.
DIFF_MARK = "≠"
#: Marker shown after the best value of a metric row.
BEST_MARK = "★"
#: Shown for a value a run does not have.
MISSING = "—"


def esc(value: object) -> str:
    """``value`` as text, HTML-escaped (``& < > " '``): safe in element content and in
    double- or single-quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt_number(value: float | None) -> str:
    """A metric value in at most 6 significant digits; NaN and ±inf spelled out."""
    if value is None:
        return MISSING
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local ``YYYY-MM-DD HH:MM:SS`` (``—`` for None)."""
    if ms is None:
        return MISSING
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(start: int | None, end: int | None) -> str:
    """A run's duration (``0.42 s``, ``3 min 05 s``, ``2 h 01 min``); ``running`` without end."""
    if start is None or end is None:
        return "running"
    seconds = max(0.0, (end - start) / 1000)
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_bytes(size: int | None) -> str:
    """A file size in B, KiB, MiB or GiB."""
    if size is None:
        return MISSING
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def short_id(run_id: str | None) -> str:
    """The first 8 characters of a run id (what tables show)."""
    return (run_id or "")[:8]


def status_badge(status: str) -> str:
    """A small coloured label for a run status (the text is the status itself)."""
    return f'<span class="nbm-status nbm-status-{esc(status.lower())}">{esc(status)}</span>'


def png_img(data: bytes, alt: str, css_class: str = "nbm-img") -> str:
    """An ``<img>`` with the PNG inlined as a data URI (``alt`` is escaped)."""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img class="{css_class}" alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str | tuple[str, str]]],
    css_class: str = "nbm-table",
    row_classes: Sequence[str] | None = None,
    col_classes: Sequence[str] | None = None,
    header_html: bool = False,
) -> str:
    """A ``<table>``. ``headers`` are plain text (escaped here); ``rows`` hold cell HTML that
    the caller already built from escaped parts (or ``(html, css class)`` pairs). ``row_classes`` gives each row a class and
    ``col_classes`` each column (e.g. ``nbm-num`` to right-align numbers). With
    ``header_html`` the headers are HTML the caller already escaped."""

    def cls(i: int, extra: str = "") -> str:
        names = " ".join(
            n
            for n in ((col_classes[i] if col_classes and i < len(col_classes) else ""), extra)
            if n
        )
        return f' class="{names}"' if names else ""

    def td(i: int, cell: str | tuple[str, str]) -> str:
        if isinstance(cell, tuple):
            return f"<td{cls(i, cell[1])}>{cell[0]}</td>"
        return f"<td{cls(i)}>{cell}</td>"

    head = "".join(
        f"<th{cls(i)}>{t if header_html else esc(t)}</th>" for i, t in enumerate(headers)
    )
    body = []
    for r, cells in enumerate(rows):
        row_cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        tds = "".join(td(i, c) for i, c in enumerate(cells))
        body.append(f"<tr{row_cls}>{tds}</tr>")
    return (
        f'<table class="{css_class}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def section(title: str, body: str, note: str = "", css_class: str = "") -> str:
    """A titled block (``title`` and ``note`` are plain text, ``body`` is HTML)."""
    extra = f" {css_class}" if css_class else ""
    note_html = f' <span class="nbm-muted">{esc(note)}</span>' if note else ""
    return f'<div class="nbm-section{extra}"><h4>{esc(title)}{note_html}</h4>{body}</div>'


def details(summary: str, body: str, open_: bool = False, css_class: str = "") -> str:
    """A collapsible ``<details>`` block (``summary`` is plain text)."""
    attrs = (" open" if open_ else "") + (f' class="{css_class}"' if css_class else "")
    return f"<details{attrs}><summary>{esc(summary)}</summary>{body}</details>"


def message(text: str, kind: str = "info") -> str:
    """A one-paragraph notice: ``kind`` is ``info``, ``ok``, ``warn`` or ``error``."""
    return f'<div class="nbm-msg nbm-msg-{kind}">{esc(text)}</div>'


def header(title: str, location: str, extra: str = "") -> str:
    """The panel's title line with where the store is (``extra`` is plain text)."""
    extra_html = f' <span class="nbm-muted">· {esc(extra)}</span>' if extra else ""
    return (
        f'<div class="nbm-header"><span class="nbm-title">{esc(title)}</span>{extra_html}'
        f'<span class="nbm-store" title="{esc(location)}">store: <code>{esc(location)}'
        "</code></span></div>"
    )


def panel(kind: str, body: str, static_note: str = "") -> str:
    """A whole static panel: the stylesheet, then ``body`` in a themed container.

    ``static_note`` (plain text) tells the reader of an exported notebook how to get the
    interactive version.
    """
    note = f'<div class="nbm-foot nbm-muted">{esc(static_note)}</div>' if static_note else ""
    return f'{style_tag()}<div class="nbm-panel nbm-{kind}">{body}{note}</div>'


# --------------------------------------------------------------------------- code


def highlight_python(code: str) -> str:
    """Python source as escaped HTML with token classes (``nbm-t-*``), one line per line."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - pygments comes with IPython
        return esc(code)
    out = highlight(code, PythonLexer(), HtmlFormatter(nowrap=True, classprefix="nbm-t-"))
    return out[:-1] if out.endswith("\n") and not code.endswith("\n") else out


def code_block(code: str) -> str:
    """A highlighted, scrollable ``<pre>`` of Python code."""
    return f'<pre class="nbm-code">{highlight_python(code)}</pre>'


def diff_block(lines: Sequence[str]) -> str:
    """A unified diff as coloured lines: additions, deletions, hunk headers, context.

    The code on each line is syntax highlighted; the ``+``/``-`` prefix stays visible, so
    the diff reads the same without colours.
    """
    out = []
    for line in lines:
        if line.startswith(("+++", "---")):
            out.append(f'<div class="nbm-dl nbm-dl-file">{esc(line)}</div>')
        elif line.startswith("@@"):
            out.append(f'<div class="nbm-dl nbm-dl-hunk">{esc(line)}</div>')
        elif line[:1] in ("+", "-", " "):
            kind = {"+": "add", "-": "del", " ": "ctx"}[line[0]]
            body = highlight_python(line[1:]) if line[1:] else ""
            out.append(
                f'<div class="nbm-dl nbm-dl-{kind}"><span class="nbm-dl-sign">{esc(line[0])}'
                f"</span>{body}</div>"
            )
        else:
            out.append(f'<div class="nbm-dl">{esc(line)}</div>')
    return f'<div class="nbm-diff-code">{"".join(out)}</div>'


# --------------------------------------------------------------------------- stylesheet

#: The panels' stylesheet. Every rule is scoped under ``.nbm-panel`` (or an ``nbm-`` class)
#: so it cannot restyle the rest of the notebook.
CSS = """
.nbm-panel{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:var(--jp-ui-font-size1,13px);
 color:var(--jp-ui-font-color1,rgba(0,0,0,.87));background:var(--jp-layout-color0,#fff);
 border:1px solid var(--jp-border-color2,#e0e0e0);border-radius:4px;padding:6px 8px;max-width:100%;box-sizing:border-box}
.nbm-panel code,.nbm-panel pre{font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,12px)}
.nbm-header{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px;margin-bottom:4px}
.nbm-title{font-weight:600;font-size:var(--jp-ui-font-size2,15px)}
.nbm-store{margin-left:auto;color:var(--jp-ui-font-color2,rgba(0,0,0,.54));font-size:var(--jp-ui-font-size0,11px);
 max-width:60%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.nbm-store code{font-size:inherit;background:none}
.nbm-muted{color:var(--jp-ui-font-color2,rgba(0,0,0,.54));font-weight:normal}
.nbm-foot{margin-top:6px;font-size:var(--jp-ui-font-size0,11px)}
.nbm-section{margin:8px 0}
.nbm-section h4{margin:4px 0;font-size:var(--jp-ui-font-size1,13px);font-weight:600;color:var(--jp-ui-font-color1,rgba(0,0,0,.87))}
.nbm-scroll{overflow-x:auto;max-width:100%}
.nbm-table{border-collapse:collapse;font-size:var(--jp-ui-font-size1,13px);color:var(--jp-content-font-color1,rgba(0,0,0,.87));table-layout:auto}
.nbm-table th,.nbm-table td{padding:2px 8px;border-bottom:1px solid var(--jp-border-color2,#e0e0e0);text-align:left;
 vertical-align:top;max-width:28em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.nbm-table th{font-weight:600;background:var(--jp-layout-color2,#eee);position:sticky;top:0}
.nbm-table td.nbm-num,.nbm-table th.nbm-num{text-align:right;font-variant-numeric:tabular-nums}
.nbm-table td.nbm-wrap{white-space:pre-wrap;overflow-wrap:anywhere;min-width:12em}
.nbm-table td.nbm-key{font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,12px)}
.nbm-table tbody tr:hover{background:var(--jp-rendermime-table-row-hover-background,#e1f5fe)}
.nbm-table tr.nbm-diff td{background:rgba(245,124,0,.16);background:color-mix(in srgb,var(--jp-warn-color1,#f57c00) 16%,transparent)}
.nbm-table tr.nbm-diff td.nbm-key{font-weight:600}
.nbm-mark{color:var(--jp-warn-color0,#e65100);font-weight:700;margin-right:4px}
.nbm-best{font-weight:700;color:var(--jp-success-color0,#1b5e20)}
.nbm-best-mark{color:var(--jp-success-color1,#388e3c);margin-left:3px}
.nbm-table td.nbm-bestcell{background:rgba(56,142,60,.16);background:color-mix(in srgb,var(--jp-success-color1,#388e3c) 18%,transparent)}
.nbm-run-head{font-weight:600}
.nbm-run-head .nbm-muted{font-weight:normal;font-size:var(--jp-ui-font-size0,11px)}
.nbm-status{display:inline-block;padding:0 5px;border-radius:3px;font-size:var(--jp-ui-font-size0,11px);
 border:1px solid var(--jp-border-color1,#bdbdbd)}
.nbm-status-finished{color:var(--jp-success-color0,#1b5e20);border-color:var(--jp-success-color2,#81c784)}
.nbm-status-failed{color:var(--jp-error-color0,#b71c1c);border-color:var(--jp-error-color2,#e57373)}
.nbm-status-killed{color:var(--jp-warn-color0,#e65100);border-color:var(--jp-warn-color2,#ffb74d)}
.nbm-status-running{color:var(--jp-brand-color0,#0d47a1);border-color:var(--jp-brand-color2,#64b5f6)}
.nbm-tree{white-space:pre;font-family:var(--jp-code-font-family,monospace);color:var(--jp-ui-font-color2,rgba(0,0,0,.54))}
.nbm-code,.nbm-diff-code{background:var(--jp-cell-editor-background,#f7f7f7);border:1px solid var(--jp-border-color2,#e0e0e0);
 border-radius:3px;padding:4px 6px;margin:2px 0;overflow:auto;max-height:28em;color:var(--jp-content-font-color1,rgba(0,0,0,.87));
 font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,12px);line-height:1.35}
.nbm-diff-code .nbm-dl{white-space:pre}
.nbm-dl-add{background:rgba(56,142,60,.18);background:color-mix(in srgb,var(--jp-success-color1,#388e3c) 20%,transparent)}
.nbm-dl-del{background:rgba(211,47,47,.16);background:color-mix(in srgb,var(--jp-error-color1,#d32f2f) 18%,transparent)}
.nbm-dl-hunk{color:var(--jp-info-color0,#006064)}
.nbm-dl-file{color:var(--jp-ui-font-color2,rgba(0,0,0,.54));font-weight:600}
.nbm-dl-sign{display:inline-block;width:1.2em;color:var(--jp-ui-font-color2,rgba(0,0,0,.54))}
.nbm-t-k,.nbm-t-kn,.nbm-t-kd,.nbm-t-kc,.nbm-t-kr,.nbm-t-ow{color:var(--jp-mirror-editor-keyword-color,#008000);font-weight:600}
.nbm-t-s,.nbm-t-s1,.nbm-t-s2,.nbm-t-sd,.nbm-t-sa,.nbm-t-si,.nbm-t-se,.nbm-t-sb,.nbm-t-dl{color:var(--jp-mirror-editor-string-color,#ba2121)}
.nbm-t-m,.nbm-t-mi,.nbm-t-mf,.nbm-t-mh,.nbm-t-mo,.nbm-t-mb{color:var(--jp-mirror-editor-number-color,#080)}
.nbm-t-c,.nbm-t-c1,.nbm-t-cm,.nbm-t-ch,.nbm-t-cp{color:var(--jp-mirror-editor-comment-color,#408080);font-style:italic}
.nbm-t-nf,.nbm-t-nc,.nbm-t-fm{color:var(--jp-mirror-editor-def-color,#00f)}
.nbm-t-nb,.nbm-t-bp{color:var(--jp-mirror-editor-builtin-color,#008000)}
.nbm-t-o{color:var(--jp-mirror-editor-operator-color,#7800c2)}
.nbm-t-nd{color:var(--jp-mirror-editor-meta-color,#a2f)}
.nbm-msg{padding:4px 8px;margin:4px 0;border-radius:3px;border-left:3px solid var(--jp-info-color1,#0097a7);
 background:rgba(0,151,167,.10);background:color-mix(in srgb,var(--jp-info-color1,#0097a7) 12%,transparent);white-space:pre-wrap}
.nbm-msg-ok{border-left-color:var(--jp-success-color1,#388e3c);background:rgba(56,142,60,.12);background:color-mix(in srgb,var(--jp-success-color1,#388e3c) 14%,transparent)}
.nbm-msg-warn{border-left-color:var(--jp-warn-color1,#f57c00);background:rgba(245,124,0,.12);background:color-mix(in srgb,var(--jp-warn-color1,#f57c00) 14%,transparent)}
.nbm-msg-error{border-left-color:var(--jp-error-color1,#d32f2f);background:rgba(211,47,47,.12);background:color-mix(in srgb,var(--jp-error-color1,#d32f2f) 14%,transparent)}
.nbm-panel details{margin:4px 0}
.nbm-panel summary{cursor:pointer;color:var(--jp-ui-font-color2,rgba(0,0,0,.54))}
.nbm-img{max-width:100%;height:auto;border:1px solid var(--jp-border-color2,#e0e0e0);border-radius:3px;background:#fff}
.nbm-charts{display:flex;flex-wrap:wrap;gap:8px}
.nbm-charts figure{margin:0}
.nbm-charts figcaption{font-size:var(--jp-ui-font-size0,11px);color:var(--jp-ui-font-color2,rgba(0,0,0,.54))}
.nbm-legend{display:flex;flex-wrap:wrap;gap:2px 12px;margin:2px 0 4px;font-size:var(--jp-ui-font-size0,11px)}
.nbm-legend-item{white-space:nowrap}
.nbm-swatch{display:inline-block;width:14px;height:3px;margin-right:4px;vertical-align:middle}
.nbm-table tr.nbm-archived td{color:var(--jp-ui-font-color2,rgba(0,0,0,.54))}
.nbm-alias{display:inline-block;padding:0 5px;margin-right:3px;border-radius:8px;font-size:var(--jp-ui-font-size0,11px);
 background:rgba(25,118,210,.14);background:color-mix(in srgb,var(--jp-brand-color1,#1976d2) 16%,transparent);color:var(--jp-ui-font-color1,rgba(0,0,0,.87))}
.nbm-kv{display:grid;grid-template-columns:max-content 1fr;gap:1px 12px}
.nbm-kv dt{color:var(--jp-ui-font-color2,rgba(0,0,0,.54))}
.nbm-kv dd{margin:0;overflow-wrap:anywhere}
.nbm-rowline{display:flex;align-items:center;white-space:nowrap;font-size:var(--jp-ui-font-size1,13px);
 color:var(--jp-content-font-color1,rgba(0,0,0,.87));line-height:24px;height:24px}
.nbm-rowline .nbm-c{display:inline-block;overflow:hidden;text-overflow:ellipsis;padding:0 6px;box-sizing:border-box;flex:none}
.nbm-rowline.nbm-rowhead{font-weight:600;background:var(--jp-layout-color2,#eee)}
.nbm-widget .widget-html-content{line-height:1.4}
.nbm-widget .widget-html-content .nbm-rowline{line-height:24px}
.nbm-widget .widget-checkbox{width:28px}
.nbm-cols{display:flex;flex-wrap:wrap;gap:4px 24px;align-items:flex-start}
.nbm-cols>.nbm-section{margin-top:0}
.nbm-widget .nbm-slot{border-bottom:1px solid var(--jp-border-color2,#e0e0e0);align-items:center}
.nbm-widget .nbm-slot:hover{background:var(--jp-rendermime-table-row-hover-background,#e1f5fe)}
.nbm-widget .nbm-tiny button,.nbm-widget button.nbm-tiny{padding:0 4px;min-width:0}
"""


def style_tag() -> str:
    """The stylesheet as a ``<style>`` element (idempotent: same text every time)."""
    return f'<style data-nbmlops="panels">{CSS}</style>'
