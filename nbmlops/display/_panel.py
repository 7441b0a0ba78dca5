"""The base of every inline panel: a widget where a kernel can show one, static HTML elsewhere.

A panel object is what ``nbmlops.runs_view()``, ``nbmlops.compare()``, ``nbmlops.show_run()``
and ``nbmlops.registry_view()`` (and their ``%mlops`` magics) return. Displaying it offers:

* ``application/vnd.jupyter.widget-view+json`` — an ipywidgets container built from
  standard widgets (no custom JavaScript model) — when ipywidgets is importable and the
  shell is a kernel (it has comms): JupyterLab, Notebook 7, VS Code;
* ``text/html`` — the full static panel (escaped HTML + a stylesheet using JupyterLab's CSS
  variables): what nbconvert/HTML export, GitHub and viewers without a widget manager show
  (nbconvert skips widget views whose state is not saved);
* ``text/plain`` — a compact text rendering for the terminal and for nbval.

``NBMLOPS_WIDGETS=0`` turns widgets off (static HTML only).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from typing import Any

from nbmlops.display import _html as h

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def widgets_available() -> bool:
    """True when a widget view can be shown: a kernel shell with comms and ipywidgets."""
    if os.environ.get("NBMLOPS_WIDGETS", "").strip().lower() in ("0", "false", "off", "no"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipython is a dependency
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    return importlib.util.find_spec("ipywidgets") is not None


def default_client(client: Any = None) -> Any:
    """``client``, else the notebook session's client, else the fluent API's client."""
    if client is not None:
        return client
    from nbmlops import tracking
    from nbmlops.autolog import session as session_module

    session = session_module.current()
    return session.client if session is not None else tracking.get_client()


def notebook_experiment_ids(
    client: Any, experiment: str | None = None, all_experiments: bool = False
) -> list[str] | None:
    """The experiments a panel looks at: ``experiment`` by name, else the notebook's own
    experiment (when the extension is loaded), else every experiment (None)."""
    from nbmlops.autolog import session as session_module
    from nbmlops.errors import InvalidArgument

    if all_experiments:
        return None
    name = experiment
    if name is None:
        session = session_module.current()
        if session is not None:
            name = session.config.experiment or session.identity.name
            found = client.get_experiment_by_name(name)
            return [found.experiment_id] if found else None
        return None
    found = client.get_experiment_by_name(name)
    if found is None:
        raise InvalidArgument(f"no experiment named {name!r}")
    return [found.experiment_id]


def iter_widgets(root: Any) -> Iterator[Any]:
    """Every widget of a tree: containers' children, and each widget's layout and style."""
    from ipywidgets import Widget

    seen: set[int] = set()
    stack = [root]
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        yield widget
        stack.extend(getattr(widget, "children", ()))
        for attr in ("layout", "style"):
            part = getattr(widget, attr, None)
            if isinstance(part, Widget):
                stack.append(part)


def close_widgets(*roots: Any) -> None:
    """Close widget trees that are being replaced, so the kernel does not keep them alive."""
    for root in roots:
        for widget in list(iter_widgets(root)):
            widget.close()


class Panel:
    """Common behaviour: display, refresh, error reporting and the store location.

    Subclasses implement :meth:`_load` (read from the store), :meth:`to_html` (static
    panel), :meth:`_text` (plain text) and :meth:`_build_widget` / :meth:`_update_widget`.
    """

    kind = "panel"
    title = "nbmlops"

    def __init__(self, client: Any = None) -> None:
        self.client = default_client(client)
        self._widget: Any = None
        self._message: Any = None

    # ------------------------------------------------------------------ data
    @property
    def store_location(self) -> str:
        """Where the store is (a file path, ``memory``, a server URL)."""
        return str(self.client.store.location)

    def _load(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def refresh(self) -> None:
        """Read the store again and redraw the widget (when one was built)."""
        self._load()
        if self._widget is not None:
            self._update_widget()

    # ------------------------------------------------------------------ renderings
    def to_html(self) -> str:  # pragma: no cover - abstract
        """The whole panel as static HTML (escaped, styled with JupyterLab variables)."""
        raise NotImplementedError

    def _text(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return self._text()

    def __str__(self) -> str:
        return self._text()

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"text/plain": self._text()}
        wants_html = include is None or "text/html" in include
        if wants_html and not (exclude and "text/html" in exclude):
            data["text/html"] = self.to_html()
        if widgets_available() and (include is None or WIDGET_VIEW_MIME in include):
            widget = self.widget()
            data[WIDGET_VIEW_MIME] = {
                "version_major": 2,
                "version_minor": 0,
                "model_id": widget.model_id,
            }
        return data

    # ------------------------------------------------------------------ widget
    def widget(self) -> Any:
        """The interactive panel (an ipywidgets ``VBox``), built once and kept up to date."""
        if self._widget is None:
            self._widget = self._build_widget()
            for css in ("nbm-widget", "nbm-panel", f"nbm-{self.kind}"):
                self._widget.add_class(css)
        return self._widget

    def _build_widget(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update_widget(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # helpers for subclasses ---------------------------------------------------
    def _message_widget(self) -> Any:
        import ipywidgets as w

        if self._message is None:
            self._message = w.HTML("")
        return self._message

    def _say(self, text: str, kind: str = "info") -> None:
        """Show a one-line notice in the panel (escaped); empty text clears it."""
        if self._message is not None:
            self._message.value = h.message(text, kind) if text else ""

    def _guarded(self, action: Callable[..., None]) -> Callable[..., None]:
        """Wrap a widget callback: an error becomes an inline message, never a traceback."""

        def run(*args: Any) -> None:
            try:
                action(*args)
            except Exception as exc:  # every error is reported in the panel
                self._say(f"{type(exc).__name__}: {exc}", "error")

        return run

    def _header_widgets(self, extra: str = "") -> tuple[Any, Any]:
        """The title/store line and a Refresh button (wired to :meth:`refresh`)."""
        import ipywidgets as w

        head = w.HTML(h.style_tag() + h.header(self.title, self.store_location, extra))
        head.layout.flex = "1 1 auto"
        button = w.Button(description="Refresh", icon="refresh", tooltip="read the store again")
        button.layout.width = "auto"
        button.on_click(self._guarded(lambda _b: self._refresh_clicked()))
        return head, button

    def _refresh_clicked(self) -> None:
        self.refresh()
        self._say("")
