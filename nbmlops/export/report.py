"""What an export did: files, cell -> module mapping, dropped cells, warnings, verification.

:class:`ExportReport` is what :func:`nbmlops.export_notebook` returns; ``str(report)`` is a
readable summary, ``report.to_dict()`` the JSON written as ``export-report.json``.
:class:`VerificationResult` holds the comparison table of ``--verify``.
"""

from __future__ import annotations

import dataclasses
import html
import math
from pathlib import Path
from typing import Any

__all__ = ["CellReport", "ExportReport", "VerificationResult", "VerificationRow"]


@dataclasses.dataclass(frozen=True)
class CellReport:
    """One code cell: its role, where its code went, and what was dropped (and why)."""

    label: str
    cell_id: str
    role: str
    role_source: str
    modules: tuple[str, ...]
    kept: bool
    reason: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class VerificationRow:
    """One compared quantity: a metric, a data fingerprint or the prediction hash.

    ``ok`` is True/False, or None when the comparison could not be made (shown, not
    counted).
    """

    kind: str  # metric, data, predictions
    name: str
    notebook: Any
    exported: Any
    ok: bool | None
    note: str = ""

    @property
    def delta(self) -> float | None:
        if self.kind != "metric":
            return None
        try:
            a, b = float(self.notebook), float(self.exported)
        except (TypeError, ValueError):
            return None
        if math.isnan(a) or math.isnan(b):
            return None
        return b - a


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 16 else text[:16] + "…"


@dataclasses.dataclass
class VerificationResult:
    """The outcome of ``--verify``: ``ok`` and the rows of the comparison table."""

    ok: bool
    rows: list[VerificationRow]
    source_run_id: str | None
    source_store: str | None
    exported_run_id: str | None = None
    notebook_executed: bool = False
    rtol: float = 0.0
    atol: float = 0.0
    messages: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    recorded: bool = False
    seconds: float = 0.0

    def __repr__(self) -> str:
        return f"<VerificationResult {self.verdict}>"

    def table(self) -> str:
        """The table ``metric | notebook | exported | Δ | ok`` as aligned text."""
        header = ["metric", "notebook", "exported", "Δ", "ok"]
        body = []
        for row in self.rows:
            delta = row.delta
            body.append(
                [
                    row.name if row.kind == "metric" else f"{row.kind}: {row.name}",
                    _fmt(row.notebook),
                    _fmt(row.exported),
                    "—" if delta is None else f"{delta:+.3g}",
                    {True: "ok", False: "MISMATCH", None: "n/a"}[row.ok]
                    + (f" ({row.note})" if row.note else ""),
                ]
            )
        widths = [
            max(len(h), *(len(r[i]) for r in body)) if body else len(h)
            for i, h in enumerate(header)
        ]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body
        ]
        return "\n".join(lines)

    @property
    def verdict(self) -> str:
        if self.error:
            return f"NOT VERIFIED: {self.error}"
        if self.ok:
            compared = sum(1 for r in self.rows if r.ok is not None)
            return f"VERIFIED: the exported package reproduces the notebook ({compared} checks)"
        failed = [r.name for r in self.rows if r.ok is False]
        return f"MISMATCH: {', '.join(failed)} differ from the notebook's run"

    def __str__(self) -> str:
        lines = [self.verdict]
        if self.source_run_id:
            how = " (notebook executed into a temporary store)" if self.notebook_executed else ""
            lines.append(
                f"notebook run {self.source_run_id}{how}; exported run {self.exported_run_id}"
            )
        if self.rows:
            lines.append(self.table())
        lines += [f"note: {m}" for m in self.messages]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(c)}</td>"
                for c in (
                    r.name if r.kind == "metric" else f"{r.kind}: {r.name}",
                    _fmt(r.notebook),
                    _fmt(r.exported),
                    "—" if r.delta is None else f"{r.delta:+.3g}",
                    {True: "✔", False: "✘ mismatch", None: "n/a"}[r.ok],
                )
            )
            + "</tr>"
            for r in self.rows
        )
        return (
            f"<p><b>{html.escape(self.verdict)}</b></p><table><tr><th>metric</th>"
            f"<th>notebook</th><th>exported</th><th>Δ</th><th>ok</th></tr>{rows}</table>"
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["rows"] = [dict(dataclasses.asdict(r), delta=r.delta) for r in self.rows]
        data["verdict"] = self.verdict
        return data


@dataclasses.dataclass
class ExportReport:
    """What :func:`nbmlops.export_notebook` produced."""

    source: str
    out_dir: Path
    package: str
    model_name: str
    model_variable: str
    files: list[str]
    cells: list[CellReport]
    params: list[dict[str, Any]]
    warnings: list[str]
    notes: list[str]
    origin: str = "notebook"
    run_id: str | None = None
    model_candidates: list[str] = dataclasses.field(default_factory=list)
    train_x: str | None = None
    train_y: str | None = None
    holdout_x: str | None = None
    train_cell_sha256: str | None = None
    seconds: float = 0.0
    verification: VerificationResult | None = None

    @property
    def dropped(self) -> list[CellReport]:
        """Cells that contributed nothing, with the reason."""
        return [c for c in self.cells if not c.kept]

    @property
    def mapping(self) -> dict[str, list[str]]:
        """Cell label -> the modules its code went to."""
        return {c.label: list(c.modules) for c in self.cells if c.kept}

    def to_dict(self) -> dict[str, Any]:
        data = {
            "source": self.source,
            "origin": self.origin,
            "run_id": self.run_id,
            "out_dir": str(self.out_dir),
            "package": self.package,
            "model_name": self.model_name,
            "model_variable": self.model_variable,
            "model_candidates": self.model_candidates,
            "train_x": self.train_x,
            "train_y": self.train_y,
            "holdout_x": self.holdout_x,
            "files": self.files,
            "cells": [c.to_dict() for c in self.cells],
            "params": self.params,
            "warnings": self.warnings,
            "notes": self.notes,
            "seconds": self.seconds,
            "verification": self.verification.to_dict() if self.verification else None,
        }
        return data

    def summary(self) -> str:
        """A readable account: files, cells and their modules, dropped cells, warnings."""
        lines = [
            f"exported {self.source} -> {self.out_dir}/{self.package} (model {self.model_variable!r}, "
            f"registered name {self.model_name!r}) in {self.seconds:.2f} s",
        ]
        if len(self.model_candidates) > 1:
            others = [c for c in self.model_candidates if c != self.model_variable]
            lines.append(f"  other fitted models (choose with --model): {', '.join(others)}")
        if self.params:
            lines.append(
                "  parameters: "
                + ", ".join(f"{p['name']}: {p['type']} = {p['default']!r}" for p in self.params)
            )
        lines.append("  cells:")
        for cell in self.cells:
            where = ", ".join(cell.modules) if cell.kept else "dropped"
            role = f"{cell.role} ({cell.role_source})" if cell.role_source == "tag" else cell.role
            line = f"    {cell.label:<10} {role:<22} -> {where}"
            if cell.reason and not cell.kept:
                line += f": {cell.reason}"
            lines.append(line)
        if self.warnings:
            lines.append("  warnings:")
            lines += [f"    - {w}" for w in self.warnings]
        lines.append("  files: " + ", ".join(self.files))
        if self.verification is not None:
            lines.append(str(self.verification))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<ExportReport {self.source} -> {self.out_dir / self.package}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(c.label)}</td><td>{html.escape(c.role)}</td>"
            f"<td>{html.escape(', '.join(c.modules) if c.kept else 'dropped')}</td>"
            f"<td>{html.escape(c.reason if not c.kept else '')}</td></tr>"
            for c in self.cells
        )
        warnings = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
        verification = self.verification._repr_html_() if self.verification else ""
        return (
            f"<p>exported <code>{html.escape(self.source)}</code> to <code>"
            f"{html.escape(str(self.out_dir))}/{html.escape(self.package)}</code> (model "
            f"<code>{html.escape(self.model_variable)}</code>)</p><table><tr><th>cell</th>"
            f"<th>role</th><th>module</th><th>why dropped</th></tr>{rows}</table>"
            + (f"<p>warnings:</p><ul>{warnings}</ul>" if warnings else "")
            + verification
        )
