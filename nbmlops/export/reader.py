"""Reading what gets exported: a notebook file (validated) or the code lineage of a run.

Every problem with the input is a :class:`NotebookError` that names the file and the
problem (corrupt JSON, not a notebook, nbformat 3, missing cells, duplicate cell ids,
text that is not UTF-8, a non-Python kernel...). Nothing is written before the input has
been read and checked, so a bad notebook never leaves a half-written package behind.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from nbmlops.errors import InvalidArgument, NotFound

__all__ = [
    "NotebookError",
    "NotebookSource",
    "SourceCell",
    "read_notebook",
    "read_run_lineage",
]

LINEAGE_ARTIFACT = "nbmlops/lineage.json"


class NotebookError(InvalidArgument):
    """A notebook that cannot be exported; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class SourceCell:
    """One code cell to export.

    ``number`` is the cell's 1-based position in the notebook (all cell types counted, as
    Jupyter shows them), or None when the code comes from a run's lineage and the cell is
    no longer in the notebook.
    """

    number: int | None
    cell_id: str
    source: str
    tags: tuple[str, ...] = ()
    execution_count: int | None = None

    @property
    def label(self) -> str:
        """How the report names the cell: ``cell 3`` or ``cell [7]`` (execution count)."""
        if self.number is not None:
            return f"cell {self.number}"
        if self.execution_count is not None:
            return f"cell [{self.execution_count}]"
        return f"cell {self.cell_id or '?'}"

    @property
    def code_sha256(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class NotebookSource:
    """The code cells to export, in the order they are exported."""

    path: Path | None
    name: str
    cells: tuple[SourceCell, ...]
    #: ``notebook`` (top-to-bottom order of the file) or ``run`` (a run's execution history).
    origin: str = "notebook"
    run_id: str | None = None

    @property
    def described(self) -> str:
        if self.origin == "run":
            return f"the execution history of run {self.run_id}"
        return str(self.path)


def _fail(path: Path | str, problem: str) -> NotebookError:
    return NotebookError(f"cannot export {path}: {problem}")


def _text(value: Any, path: Path, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    raise _fail(path, f"{where} has a 'source' that is neither text nor a list of lines")


def read_notebook(path: str | Path) -> NotebookSource:
    """Read and validate a notebook file (nbformat 4) and return its code cells.

    Raises:
        NotebookError: the file is missing, unreadable, not UTF-8, not JSON, not a Jupyter
            notebook, nbformat 3 or older (or newer than 4), lacks its cells, has duplicate
            cell ids, or is not a Python notebook.
    """
    path = Path(path)
    if not path.exists():
        raise _fail(path, "no such file")
    if not path.is_file():
        raise _fail(path, "not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"unreadable ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(
            path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    if not text.strip():
        raise _fail(path, "the file is empty")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _fail(path, f"not a valid notebook: corrupt JSON ({exc})") from None
    if not isinstance(document, dict) or "nbformat" not in document:
        raise _fail(path, "not a Jupyter notebook (no 'nbformat' field)")
    major = document.get("nbformat")
    if not isinstance(major, int):
        raise _fail(path, f"invalid 'nbformat' value {major!r}")
    if major < 4:
        raise _fail(
            path,
            f"nbformat {major} notebooks are not supported; convert it first with "
            "`jupyter nbconvert --to notebook --nbformat 4`",
        )
    if major > 4:
        raise _fail(path, f"nbformat {major} is newer than this nbmlops understands (4)")
    cells = document.get("cells")
    if cells is None:
        raise _fail(path, "the notebook has no 'cells' list (missing cells)")
    if not isinstance(cells, list):
        raise _fail(path, "'cells' is not a list")
    seen: dict[str, int] = {}
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or "cell_type" not in cell:
            raise _fail(path, f"cell {number} is not a notebook cell (no 'cell_type')")
        if cell["cell_type"] not in ("code", "markdown", "raw"):
            raise _fail(path, f"cell {number} has an unknown cell_type {cell['cell_type']!r}")
        if "source" not in cell:
            raise _fail(path, f"cell {number} has no 'source'")
        cell_id = cell.get("id")
        if isinstance(cell_id, str):
            if cell_id in seen:
                raise _fail(
                    path, f"duplicate cell id {cell_id!r} (cells {seen[cell_id]} and {number})"
                )
            seen[cell_id] = number
    _validate_schema(document, path)
    language = _language(document)
    if language not in ("python", ""):
        raise _fail(path, f"not a Python notebook (kernel language {language!r})")
    code_cells = []
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = _text(cell.get("source", ""), path, f"cell {number}")
        metadata = cell.get("metadata") or {}
        tags = metadata.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _fail(path, f"cell {number} has malformed tags {tags!r}")
        count = cell.get("execution_count")
        code_cells.append(
            SourceCell(
                number=number,
                cell_id=str(cell.get("id") or f"cell-{number}"),
                source=source,
                tags=tuple(tags),
                execution_count=count if isinstance(count, int) else None,
            )
        )
    return NotebookSource(path=path.absolute(), name=path.stem, cells=tuple(code_cells))


@functools.lru_cache(maxsize=8)
def _schema_validator(minor: int) -> Any:
    """nbformat's own JSON schema for nbformat 4.<minor>, compiled with fastjsonschema.

    ``import nbformat`` pulls in jsonschema's format checkers, which take 1-2 s to import in
    some environments; the schema files plus fastjsonschema (an nbformat dependency) give
    the same validation in ~50 ms. None when either is missing.
    """
    try:
        import fastjsonschema
    except ImportError:
        return None
    spec = importlib.util.find_spec("nbformat")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "v4"
    schema_file = folder / f"nbformat.v4.{minor}.schema.json"
    if not schema_file.is_file():
        schema_file = folder / "nbformat.v4.schema.json"
    return fastjsonschema.compile(json.loads(schema_file.read_text(encoding="utf-8")))


def _validate_schema(document: dict[str, Any], path: Path) -> None:
    """nbformat's JSON-schema check (after our own checks, which give clearer messages)."""
    minor = document.get("nbformat_minor")
    if not isinstance(minor, int) or minor < 0:
        raise _fail(path, f"invalid 'nbformat_minor' value {minor!r}")
    validator = _schema_validator(min(minor, 5))
    if validator is None:  # no fastjsonschema: nbformat's own (slower to import) validator
        import nbformat
        from nbformat.validator import ValidationError

        try:
            nbformat.validate(document, version=4, version_minor=min(minor, 5))
        except ValidationError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise _fail(path, f"not a valid nbformat 4 notebook ({message})") from None
        return
    import fastjsonschema

    try:
        validator(document)
    except fastjsonschema.JsonSchemaException as exc:
        where = exc.message.replace("data.", "", 1) if exc.message else str(exc)
        raise _fail(path, f"not a valid nbformat 4.{minor} notebook ({where})") from None


def _language(document: dict[str, Any]) -> str:
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict):
        return ""
    spec = metadata.get("kernelspec") or {}
    info = metadata.get("language_info") or {}
    language = ""
    if isinstance(spec, dict):
        language = str(spec.get("language") or "")
    if not language and isinstance(info, dict):
        language = str(info.get("name") or "")
    return language.lower()


def read_run_lineage(client: Any, run_id: str) -> tuple[NotebookSource, Any]:
    """The code a run was produced by: its ``nbmlops/lineage.json`` (cells in execution
    order, with their code), with cell tags taken from the notebook when it still exists.

    Returns ``(source, run)``. Raises NotFound when the run has no lineage (it was not a
    notebook cell run) and NotebookError when the lineage is unreadable.
    """
    run = client.get_run(run_id)
    try:
        raw = client.read_artifact(run_id, LINEAGE_ARTIFACT)
    except NotFound:
        raise NotFound(
            f"run {run_id} has no {LINEAGE_ARTIFACT}: only notebook cell runs recorded by "
            "autolog carry their execution history"
        ) from None
    try:
        lineage = json.loads(raw.decode("utf-8"))
        entries = list(lineage["cells"])
        code = dict(lineage["code"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise _fail(f"run {run_id} ({LINEAGE_ARTIFACT})", f"unreadable lineage ({exc!r})") from None
    notebook = str(lineage.get("notebook") or run.data.tags.get("nbmlops.notebook") or "")
    notebook_path = Path(notebook) if notebook else None
    by_id: dict[str, tuple[int, tuple[str, ...]]] = {}
    if notebook_path is not None and notebook_path.is_file():
        try:
            current = read_notebook(notebook_path)
        except NotebookError:
            current = None
        if current is not None:
            by_id = {c.cell_id: (c.number or 0, c.tags) for c in current.cells}
    cells = []
    for entry in entries:
        try:
            sha = str(entry["code_sha256"])
            source = str(code[sha])
        except (KeyError, TypeError):
            raise _fail(f"run {run_id}", "lineage entry without its code") from None
        cell_id = str(entry.get("cell_id") or "")
        number, tags = by_id.get(cell_id, (None, ()))
        count = entry.get("execution_count")
        cells.append(
            SourceCell(
                number=number,
                cell_id=cell_id,
                source=source,
                tags=tags,
                execution_count=count if isinstance(count, int) else None,
            )
        )
    name = notebook_path.stem if notebook_path is not None and notebook_path.suffix else "notebook"
    return (
        NotebookSource(
            path=notebook_path, name=name, cells=tuple(cells), origin="run", run_id=run_id
        ),
        run,
    )
