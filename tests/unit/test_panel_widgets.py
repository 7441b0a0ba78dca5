"""The panels' widgets, driven through ipywidgets' test comm (clicks, selections, errors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ipywidgets.widgets.tests.utils import setup_test_comm, teardown_test_comm
from panel_store import Populated, populate

import nbmlops


@pytest.fixture(autouse=True)
def _test_comm() -> Iterator[None]:
    setup_test_comm()
    yield
    teardown_test_comm()


@pytest.fixture
def store() -> Populated:
    return populate()


def _find(widget: Any, kind: type, **match: Any) -> list[Any]:
    """Widgets of ``kind`` in the tree whose traits equal ``match``."""
    found = []
    if isinstance(widget, kind) and all(getattr(widget, k) == v for k, v in match.items()):
        found.append(widget)
    for child in getattr(widget, "children", ()):
        found.extend(_find(child, kind, **match))
    return found


def _button(widget: Any, description: str) -> Any:
    import ipywidgets as w

    (button,) = _find(widget, w.Button, description=description)
    return button


def test_runs_widget_pages_with_a_fixed_set_of_row_slots(store: Populated) -> None:
    view = nbmlops.runs_view(experiment="panels", page_size=3)
    root = view.widget()
    assert len(view._slots) == 3  # one page of row widgets, whatever the number of runs
    assert view._w["page_label"].value == "rows 1–3 of 8 · page 1 / 3"
    assert "analysis" in view._slots[0].children[3].value
    _button(root, "next ›").click()
    assert view.page == 1 and "trial-0" in view._slots[1].children[3].value
    _button(root, "»").click()
    assert view._slots[2].layout.display == "none"  # 2 rows on the last page
    _button(root, "«").click()
    assert view.page == 0
    view._w["size"].value = 10
    assert len(view._slots) == 10 and view._w["page_label"].value.endswith("page 1 / 1")


def test_runs_widget_collapse_filter_sort_and_errors(store: Populated) -> None:
    view = nbmlops.runs_view(experiment="panels")
    root = view.widget()
    toggle = view._slots[0].children[0]  # the session run has children
    assert toggle.description == "▾" and view._slots[4].children[0].layout.visibility == "hidden"
    toggle.click()
    assert len(view.table.visible()) == 1 and toggle.description == "▸"
    _button(root, "Expand all").click()
    assert len(view.table.visible()) == 8
    view._w["filter"].value = "metrics.f1 > 0.72"
    assert {t.row.name for t in view.table.tree} == {"forest", "boosting"}
    view._w["filter"].value = "metrics.f1 >>> oops"  # invalid: reported inline
    assert "InvalidArgument" in view._message.value
    assert view.filter_string == "metrics.f1 > 0.72"  # the previous query stays
    view._w["filter"].value = ""
    view._w["order"].value = "metrics.f1"
    view._w["direction"].value = "asc"
    assert view.order_by == ["metrics.f1 ASC"]
    cells = [t.row.name for t in view.table.tree if t.depth == 1]
    assert cells[:3] == ["logreg", "forest", "boosting"]
    view._w["pick_metrics"].value = ("loss",)
    assert view.table.metrics == ["loss"] and "loss" in view._w["header_line"].value
    view._w["experiment"].value = "(all experiments)"
    assert view.all_experiments and len(view.table) == 8


def test_select_and_compare_from_the_runs_widget(store: Populated) -> None:
    view = nbmlops.runs_view(experiment="panels")
    root = view.widget()
    compare = _button(root, "Compare selected")
    assert compare.disabled
    for slot in view._slots[1:4]:  # logreg, forest, boosting
        slot.children[1].value = True
    assert view._w["selection"].value == "3 selected" and not compare.disabled
    compare.click()
    (panel_box,) = view._w["below"].children[1:]
    assert "nbm-compare" in panel_box._dom_classes
    assert view.selected_runs() == store.cells
    _button(root, "Clear selection").click()
    assert not view.selected and compare.disabled
    view._slots[2].children[2].click()  # "open" on forest
    detail = view._w["below"].children[1]
    assert "nbm-detail" in detail._dom_classes
    view._w["page_all"].value = True  # select the whole page
    assert len(view.selected) == 8


def test_compare_widget_directions_and_code_pair(store: Populated) -> None:
    panel = nbmlops.compare(*store.cells)
    root = panel.widget()
    assert "nbm-diff" in panel._w["params"].value
    assert panel._w["lower"].value == ("loss",)
    panel._w["lower"].value = ("f1", "loss")
    f1 = next(m for m in panel.comparison.metrics if m.key == "f1")
    assert f1.best == (0,) and f1.direction == "min"
    panel._w["code_from"].value = 1
    panel._w["code_to"].value = 2
    assert "forest" in panel._w["code"].value and "boosting" in panel._w["code"].value
    panel._w["code_to"].value = 1
    assert "identical code" in panel._w["code"].value
    _button(root, "Refresh").click()
    assert panel._message.value == ""


def test_run_detail_widget_navigates_parent_and_children(store: Populated) -> None:
    import ipywidgets as w

    panel = nbmlops.show_run(store.cells[2])
    root = panel.widget()
    labels = [b.description for b in _find(panel._w["links"], w.Button)]
    assert labels == ["↑ analysis", "↓ trial-0", "↓ trial-1", "↓ trial-2"]
    _button(root, "↓ trial-1").click()
    assert panel.detail.run.info.run_name == "trial-1" and not panel._w["back"].disabled
    _button(root, "Back").click()
    assert panel.detail.run.info.run_name == "boosting"
    _button(root, "↑ analysis").click()
    assert len(_find(panel._w["links"], w.Button)) == 4  # the session: 4 cells, no parent


def test_registry_widget_asks_before_acting_and_reports_errors_inline(store: Populated) -> None:
    panel = nbmlops.registry_view("churn")
    root = panel.widget()
    assert panel._w["confirm_box"].layout.display == "none"
    panel._w["version"].value = 2
    _button(root, "Set challenger").click()
    assert panel._w["confirm_box"].layout.display == ""  # asks first
    assert "challenger at v2" in panel._w["question"].value
    assert panel.model_view().model.aliases == {}  # type: ignore[union-attr]
    _button(root, "Cancel").click()
    assert panel.model_view().model.aliases == {}  # type: ignore[union-attr]
    _button(root, "Set challenger").click()
    _button(root, "Confirm").click()
    assert panel.model_view().model.aliases == {"challenger": 2}  # type: ignore[union-attr]
    assert panel._w["version"].value == 2  # the challenger is preselected
    _button(root, "Promote to champion").click()
    assert "(higher is better)" in panel._w["question"].value
    _button(root, "Confirm").click()
    assert "PROMOTED" in panel._w["result"].value
    panel._w["version"].value = 1
    _button(root, "Promote to champion").click()
    _button(root, "Confirm").click()
    result = panel._w["result"].value
    assert "NOT PROMOTED" in result and "0.7" in result and "0.75" in result  # both values
    panel._w["promote_metric"].value = "loss"
    assert panel._w["lower"].value  # loss: lower is better
    panel._w["version"].value = 3
    panel.client.delete_model_version("churn", 2)  # the champion disappears under the panel
    _button(root, "Promote to champion").click()
    _button(root, "Confirm").click()  # the rule runs against the store, not the stale view
    assert "there was no @champion yet" in panel._w["result"].value
    assert panel.model_view().model.aliases["champion"] == 3  # type: ignore[union-attr]
    _button(root, "Archive").click()
    _button(root, "Confirm").click()
    assert "archived" in panel._w["result"].value
    assert "Archived" in panel._w["versions"].value
    panel._w["chart_metric"].value = "loss"
    assert "loss by version" in panel._w["chart"].value


def test_registry_widget_error_is_a_message_not_a_traceback(store: Populated) -> None:
    panel = nbmlops.registry_view("churn")
    root = panel.widget()
    panel._w["version"].value = 1
    panel._w["promote_metric"].options = ["f1", "no_such_metric"]
    panel._w["promote_metric"].value = "no_such_metric"
    _button(root, "Promote to champion").click()
    _button(root, "Confirm").click()  # no champion yet, so the candidate's metric is needed
    assert "InvalidArgument" in panel._w["result"].value
    assert "no_such_metric" in panel._w["result"].value
    assert panel.model_view().model.aliases == {}  # type: ignore[union-attr]
