"""The four panels built against a populated store: what their static HTML and text show."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from panel_store import Populated, populate

import nbmlops
from nbmlops.display import _panel
from nbmlops.errors import InvalidArgument, NotFound


class _Rows(HTMLParser):
    """Collect table rows as (row classes, [cell texts]) and <td> classes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.cell_classes: list[str] = []
        self._cell: list[str] | None = None
        self._row: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag == "tr":
            self._row = (cls, [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            if tag == "td":
                self.cell_classes.append(cls)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def rows_of(html: str) -> list[tuple[str, list[str]]]:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


@pytest.fixture
def store() -> Populated:
    return populate()


def test_runs_view_is_a_tree_with_key_columns(store: Populated) -> None:
    view = nbmlops.runs_view(experiment="panels")
    ids = [t.row.run_id for t in view.table.tree]
    assert ids == [store.session, *store.cells[:3], *store.trials, store.failed][: len(ids)]
    assert [t.depth for t in view.table.tree] == [0, 1, 1, 1, 2, 2, 2, 1]
    assert view.table.metrics[:3] == ["f1", "accuracy", "loss"]
    assert "max_depth" in view.table.params  # it varies, so it is a key column
    html = view.to_html()
    body = [cells for cls, cells in rows_of(html)[1:]]
    assert body[0][0] == "analysis" and body[1][0].endswith("logreg")
    assert body[4][0].strip().startswith("└─ trial-0")
    header = rows_of(html)[0][1]
    assert header[:6] == ["run", "id", "status", "type", "cell", "duration"]
    assert body[1][header.index("f1")] == "0.7" and body[1][header.index("cell")] == "[3]"
    assert "FAILED" in body[-1] and view.store_location in html
    text = repr(view)
    assert "8 runs" in text and "logreg" in text


def test_runs_view_filters_sorts_pages_and_exports(store: Populated) -> None:
    view = nbmlops.runs_view(experiment="panels", filter_string="metrics.f1 > 0.72")
    assert {t.row.name for t in view.table.tree} == {"forest", "boosting"}
    assert all(t.missing_parent == store.session for t in view.table.tree)  # parent filtered out
    ordered = nbmlops.runs_view(experiment="panels", order_by="metrics.f1 DESC")
    top = [t.row.name for t in ordered.table.tree if t.depth == 1]
    assert top[:3] == ["boosting", "forest", "logreg"]  # siblings sorted by the key
    paged = nbmlops.runs_view(experiment="panels", page_size=3)
    assert paged.table.page_count == 3
    paged.go_to_page(2)
    assert [t.row.name for t in paged.table.page(paged.page)] == ["trial-2", "broken"]
    assert "rows 7–8 of 8" in paged.to_html()
    last = nbmlops.runs_view(experiment="panels", last=2)
    assert len(last.table) == 2
    frame = view.to_pandas()
    assert list(frame["run_id"]) == [t.row.run_id for t in view.table.tree]
    assert "metrics.f1" in frame.columns
    with pytest.raises(InvalidArgument):
        nbmlops.runs_view(experiment="panels", filter_string="metrics.f1 >>> 1")
    with pytest.raises(InvalidArgument, match="no experiment"):
        nbmlops.runs_view(experiment="nope")
    with pytest.raises(InvalidArgument):
        nbmlops.runs_view(last=0)


def test_compare_highlights_differences_and_marks_best(store: Populated) -> None:
    panel = nbmlops.compare(*store.cells)
    html = panel.to_html()
    params = re.search(r'<div class="nbm-section nbm-params">.*?</table></div>', html, re.S)
    assert params is not None
    rows = rows_of(params.group(0))
    highlighted = [cells[0] for cls, cells in rows if cls == "nbm-diff"]
    assert highlighted == ["≠max_depth", "≠model"]
    assert rows[1][1][1:] == ["2", "3", "4"]  # max_depth per run
    identical = re.search(
        r"<details><summary>2 identical params</summary>(.*?)</details>", html, re.S
    )
    assert identical is not None
    assert [c[0] for _, c in rows_of(identical.group(1))[1:]] == ["n_jobs", "random_state"]
    metrics = re.search(r'<div class="nbm-section nbm-metrics">.*?</table>', html, re.S)
    assert metrics is not None
    parser = _Rows()
    parser.feed(metrics.group(0))
    by_key = {cells[0].split()[0]: cells[1:] for _, cells in parser.rows[1:]}
    assert by_key["f1"] == ["0.7", "0.75", "0.8★"]  # higher is better
    assert by_key["loss"] == ["0.7", "0.6", "0.5★"]  # lower is better (inferred)
    assert by_key["accuracy"] == ["0.8", "0.8", "0.8"]  # all equal: no marker
    assert parser.cell_classes.count("nbm-num nbm-bestcell") == 2
    assert "Metric histories" in html and html.count('<img class="nbm-img"') == 1  # loss
    assert '<div class="nbm-dl nbm-dl-add">' in html and "depth" in html  # code diff
    data = re.search(r'<div class="nbm-section nbm-data">.*?</table>', html, re.S)
    assert data is not None and "content + shape differ" in data.group(0)
    env = re.search(r'<div class="nbm-section nbm-env">.*?</table>', html, re.S)
    assert env is not None
    assert [c[0] for cls, c in rows_of(env.group(0))[1:]] == ["≠package scikit-learn"]
    text = str(panel)
    assert "≠ max_depth: 2 | 3 | 4" in text and "f1 (max): 0.7 | 0.75 | 0.8*" in text


def test_compare_directions_and_selection(store: Populated) -> None:
    panel = nbmlops.compare(*store.cells, directions={"f1": "min"})
    f1 = next(r for r in panel.comparison.metrics if r.key == "f1")
    assert f1.best == (0,)
    panel.set_direction("f1", "max")
    assert next(r for r in panel.comparison.metrics if r.key == "f1").best == (2,)
    best = nbmlops.compare(best=2, metric="f1", experiment="panels")
    assert [r.name for r in best.comparison.runs] == ["boosting", "forest"]
    assert best.comparison.metrics[0].key == "f1"  # the ranking metric comes first
    lowest = nbmlops.compare(best=2, metric="f1", lower_is_better=True, experiment="panels")
    assert lowest.comparison.runs[0].name == "trial-0"
    last = nbmlops.compare(last=3, experiment="panels")
    assert [r.name for r in last.comparison.runs] == ["trial-1", "trial-2", "broken"]
    by_prefix = nbmlops.compare([store.cells[0][:8], "forest"])
    assert [r.name for r in by_prefix.comparison.runs] == ["logreg", "forest"]
    with pytest.raises(InvalidArgument, match="2 to 20"):
        nbmlops.compare(store.cells[0])
    with pytest.raises(InvalidArgument, match="not several"):
        nbmlops.compare(store.cells[0], last=2)
    with pytest.raises(InvalidArgument, match="nothing to compare"):
        nbmlops.compare()
    with pytest.raises(NotFound):
        nbmlops.compare("ffffffffff", store.cells[0])


def test_run_detail_shows_every_section(store: Populated) -> None:
    panel = nbmlops.show_run(store.cells[2])
    html = panel.to_html()
    for title in ("Params", "Metrics", "Tags", "Artifacts", "Inputs", "Model", "Source"):
        assert f"<h4>{title}" in html, title
    assert 'alt="figures/figure-1.png"' in html  # the PNG figure inline
    assert "model/estimator.joblib" in html or "estimator.pkl" in html
    assert "registered as: churn v3" in html
    assert "history of loss" in html  # a chart: loss has 5 points
    assert "trial-0" in html and "parent: analysis" in html
    assert 'class="nbm-t-' in html  # highlighted source
    assert str(panel).startswith("Run boosting")
    panel.open(store.trials[0])
    assert panel.detail.run.info.run_name == "trial-0" and panel.history == [store.cells[2]]
    panel.back()
    assert panel.detail.run.info.run_id == store.cells[2]
    failed = nbmlops.show_run(store.failed).to_html()
    assert "FAILED" in failed


def test_show_last_and_unknown_runs(store: Populated, ipshell: Any) -> None:
    ipshell.run_cell("%mlops autolog on --experiment panels")
    panel = ipshell.run_line_magic("mlops", "show last")
    assert panel.detail.run.info.run_name == "broken"
    with pytest.raises(Exception, match="no run with id"):
        ipshell.run_line_magic("mlops", "show nothing-like-this")


def test_registry_panel_versions_chart_and_actions(store: Populated) -> None:
    panel = nbmlops.registry_view("churn")
    html = panel.to_html()
    rows = rows_of(html)
    header = rows[0][1]
    assert header[:4] == ["version", "aliases", "stage", "source run"] and header[4] == "f1"
    versions = [cells for _, cells in rows[1:4]]
    assert [v[0] for v in versions] == ["v3", "v2", "v1"]
    assert [v[4] for v in versions] == ["0.8", "0.75", "0.7"]
    assert "f1 by version" in html and "Audit log" in html
    assert panel.set_challenger(2) == "churn @challenger -> v2"
    assert panel.model_view().model.aliases == {"challenger": 2}  # type: ignore[union-attr]
    first = panel.promote(2)
    assert first.promoted and first.champion_version is None
    worse = panel.promote(1)
    assert not worse.promoted
    assert (worse.candidate_value, worse.champion_value) == (0.7, 0.75)
    better = panel.promote(3, metric="f1", min_delta=0.01)
    assert better.promoted and better.champion_version == 2
    assert panel.archive(1) == "churn v1 archived"
    html = panel.to_html()
    assert "promotion_rejected" in html and "@champion" in html and "Archived" in html
    everything = nbmlops.registry_view()
    assert "<h4>Models" in everything.to_html() and "churn: 3 versions" in str(everything)
    with pytest.raises(NotFound):
        nbmlops.registry_view("missing")


def test_mimebundle_is_static_outside_a_kernel_and_a_widget_inside(
    store: Populated, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel = nbmlops.compare(*store.cells[:2])
    bundle = panel._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # no kernel here: static fallback
    assert bundle["text/html"] == panel._repr_html_()
    assert set(panel._repr_mimebundle_(include={"text/plain"})) == {"text/plain"}
    monkeypatch.setattr(_panel, "widgets_available", lambda: True)
    bundle = panel._repr_mimebundle_()
    view = bundle[_panel.WIDGET_VIEW_MIME]
    assert view["model_id"] == panel.widget().model_id and view["version_major"] == 2
    assert "text/html" in bundle  # nbconvert and viewers without widgets use it


def test_widgets_need_a_kernel_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython

    class KernelShell:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert not _panel.widgets_available()  # plain Python
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    assert not _panel.widgets_available()  # terminal IPython: no kernel, no comms
    monkeypatch.setattr(IPython, "get_ipython", KernelShell)
    assert _panel.widgets_available()
    monkeypatch.setenv("NBMLOPS_WIDGETS", "0")
    assert not _panel.widgets_available()


def test_magics_return_the_panels(store: Populated, ipshell: Any) -> None:
    ipshell.run_cell("%mlops autolog on --experiment panels")
    runs = ipshell.run_line_magic("mlops", 'runs --order-by "metrics.f1 DESC" --last 20')
    assert type(runs).__name__ == "RunsView" and runs.order_by == ["metrics.f1 DESC"]
    compared = ipshell.run_line_magic("mlops", "compare --best 2 --metric f1")
    assert [r.name for r in compared.comparison.runs] == ["boosting", "forest"]
    flipped = ipshell.run_line_magic("mlops", f"compare {store.cells[0]} forest --maximize loss")
    assert next(m for m in flipped.comparison.metrics if m.key == "loss").best == (0,)
    registry = ipshell.run_line_magic("mlops", "registry churn --metric loss")
    assert registry.metric == "loss"
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="compare"):
        ipshell.run_line_magic("mlops", "compare --last 30")
    with pytest.raises(UsageError, match="registry"):
        ipshell.run_line_magic("mlops", "registry nope")


def test_panels_work_without_matplotlib(store: Populated, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbmlops.display import _charts

    monkeypatch.setattr(_charts, "available", lambda: False)
    compare_html = nbmlops.compare(*store.cells).to_html()
    assert "Charts need matplotlib" in compare_html and "history of loss" not in compare_html
    assert "Charts need matplotlib" in nbmlops.show_run(store.cells[0]).to_html()
    registry_html = nbmlops.registry_view("churn").to_html()
    assert "Charts need matplotlib" in registry_html and "f1 by version" not in registry_html
