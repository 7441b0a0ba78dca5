"""Every user-supplied string is escaped in every HTML rendering of every panel.

The store is filled with hostile run names, param keys and values, tags, code, artifact
file names, model names and descriptions (see ``panel_store``). Each rendering is parsed as
a browser would: it may only contain the panels' own elements, no event-handler attribute,
no script, and images only as inline PNG data; and the hostile strings must appear as
literal text.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from ipywidgets.widgets.tests.utils import setup_test_comm, teardown_test_comm
from panel_store import (
    XSS_CODE,
    XSS_FILE,
    XSS_KEY,
    XSS_MODEL,
    XSS_NAME,
    XSS_VALUE,
    Populated,
    populate,
)

import nbmlops
from nbmlops.display import _html as h
from nbmlops.display import _panel
from nbmlops.display.registry_view import decision_html

#: The only elements the panels emit.
ALLOWED_TAGS = {
    "style", "div", "span", "table", "thead", "tbody", "tr", "th", "td", "h4", "details",
    "summary", "code", "pre", "img", "figure", "figcaption", "dl", "dt", "dd", "ul", "li", "br",
    "b",
}  # fmt: skip


class _Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"element <{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name}= on <{tag}>")
            if (
                tag == "img"
                and name == "src"
                and not (value or "").startswith("data:image/png;base64,")
            ):
                self.problems.append(f"image source {value!r}")
            if name in ("href", "srcdoc", "formaction"):
                self.problems.append(f"attribute {name} on <{tag}>")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.text.append(data)


def audit(html: str) -> str:
    """Fail on anything a hostile string could have injected; return the visible text."""
    parser = _Audit()
    parser.feed(html)
    parser.close()
    assert parser.problems == [], parser.problems
    assert html.count("<style") <= 1 or all(
        chunk.startswith(' data-nbmlops="panels">') for chunk in html.split("<style")[1:]
    )
    return "".join(parser.text)


@pytest.fixture
def hostile() -> Populated:
    return populate(hostile=True)


def _renderings(panel: Any) -> Iterator[tuple[str, str]]:
    yield "to_html", panel.to_html()
    yield "_repr_html_", panel._repr_html_()
    yield "mimebundle text/html", panel._repr_mimebundle_()["text/html"]


def _widget_html(widget: Any) -> Iterator[str]:
    """Every HTML string inside a widget tree (HTML widgets' values)."""
    import ipywidgets as w

    if isinstance(widget, (w.HTML, w.HTMLMath)):
        yield widget.value
    for child in getattr(widget, "children", ()):
        yield from _widget_html(child)


@pytest.fixture
def test_comm() -> Iterator[None]:
    setup_test_comm()
    yield
    teardown_test_comm()


def test_runs_view_escapes_everything(hostile: Populated) -> None:
    panel = nbmlops.runs_view(experiment="panels", params=[XSS_KEY, "model"])
    for where, html in _renderings(panel):
        text = audit(html)
        for payload in (XSS_NAME, XSS_KEY, XSS_VALUE):
            assert payload in text, (where, payload)
    assert XSS_NAME in str(panel)  # text/plain shows it as is


def test_compare_escapes_everything(hostile: Populated) -> None:
    panel = nbmlops.compare(*hostile.cells)
    for where, html in _renderings(panel):
        text = audit(html)
        for payload in (XSS_NAME, XSS_KEY, XSS_VALUE, XSS_CODE.strip()[7:-2]):
            assert payload in text, (where, payload)


def test_run_detail_escapes_everything(hostile: Populated) -> None:
    panel = nbmlops.show_run(hostile.cells[0])
    for where, html in _renderings(panel):
        text = audit(html)
        for payload in (XSS_NAME, XSS_KEY, XSS_VALUE, XSS_FILE, XSS_MODEL, "</pre><script>"):
            assert payload in text, (where, payload)
    child = nbmlops.show_run(hostile.session)
    assert XSS_NAME in audit(child.to_html())  # children links


def test_registry_view_escapes_everything(hostile: Populated) -> None:
    panel = nbmlops.registry_view()
    for where, html in _renderings(panel):
        text = audit(html)
        for payload in (XSS_MODEL, XSS_VALUE, XSS_NAME):
            assert payload in text, (where, payload)
    decision = panel.promote(hostile.versions[0], metric="f1")
    assert XSS_MODEL in audit(decision_html(decision))
    assert XSS_MODEL in audit(decision._repr_html_())


def test_messages_headers_and_diffs_escape() -> None:
    assert audit(h.message(XSS_VALUE, "error")) == XSS_VALUE
    assert XSS_VALUE in audit(h.header(XSS_NAME, XSS_VALUE, XSS_KEY))
    assert XSS_CODE in audit(h.code_block(XSS_CODE))
    diff = ["--- " + XSS_NAME, "+++ b", "@@ -1 +1 @@", "-" + XSS_CODE, "+" + XSS_VALUE]
    text = audit(h.diff_block(diff))
    assert XSS_NAME in text and XSS_VALUE in text
    assert h.esc("'\"<>&") == "&#x27;&quot;&lt;&gt;&amp;"
    for raw in (XSS_NAME, XSS_VALUE, XSS_KEY, XSS_MODEL):  # the audit catches each raw payload
        with pytest.raises(AssertionError):
            audit(raw)


def test_widget_html_is_escaped(hostile: Populated, test_comm: None) -> None:
    panels = [
        nbmlops.runs_view(experiment="panels", params=[XSS_KEY]),
        nbmlops.compare(*hostile.cells),
        nbmlops.show_run(hostile.cells[0]),
        nbmlops.registry_view(),
    ]
    for panel in panels:
        values = list(_widget_html(panel.widget()))
        assert values, panel.kind
        text = "".join(audit(v) for v in values)
        assert XSS_NAME in text or XSS_MODEL in text, panel.kind


def test_widget_mimebundle_keeps_the_escaped_static_fallback(
    hostile: Populated, test_comm: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_panel, "widgets_available", lambda: True)
    panel = nbmlops.compare(*hostile.cells[:2])
    bundle = panel._repr_mimebundle_()
    assert _panel.WIDGET_VIEW_MIME in bundle
    assert XSS_NAME in audit(bundle["text/html"])
