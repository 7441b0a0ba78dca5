"""Bad input is refused with a message naming the file and the problem, and nothing is written:
corrupt and non-notebook files, nbformat 3, missing cells, duplicate cell ids, non-UTF-8
text, bad package names, an existing output folder without --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_helpers import fixture, write_notebook

from nbmlops import InvalidArgument
from nbmlops.cli import main as cli_main
from nbmlops.export import ExportError, NotebookError, export_notebook
from nbmlops.export.exporter import default_package_name, validate_package_name

MINIMAL_MODEL = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.tree import DecisionTreeClassifier\n"
    "X, y = load_iris(return_X_y=True, as_frame=True)\n"
    "tree = DecisionTreeClassifier(random_state=0)\n"
    "tree.fit(X, y)"
)


def _notebook_json(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "cells": [
            {
                "cell_type": "code",
                "id": "a1",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": MINIMAL_MODEL,
            }
        ],
    }
    document.update(changes)
    return document


def _write(path: Path, content: bytes | str | dict[str, object]) -> Path:
    if isinstance(content, dict):
        path.write_text(json.dumps(content))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


BAD_NOTEBOOKS = {
    "corrupt JSON": (b'{"nbformat": 4, "cells": [', "corrupt JSON"),
    "not a notebook": ({"hello": "world"}, "not a Jupyter notebook"),
    "nbformat 3": (
        _notebook_json(nbformat=3, nbformat_minor=0),
        "nbformat 3 notebooks are not supported",
    ),
    "missing cells": ({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}, "missing cells"),
    "non-UTF-8": (b'{"nbformat": 4, "cells": [], "x": "caf\xe9"}', "not UTF-8 text (byte 0xe9"),
    "empty file": (b"", "the file is empty"),
    "schema violation": (
        _notebook_json(cells=[{"cell_type": "code", "source": "x = 1", "metadata": {}}]),
        "not a valid nbformat 4.5 notebook",
    ),
    "unknown cell type": (
        _notebook_json(cells=[{"cell_type": "picture", "source": "", "metadata": {}}]),
        "unknown cell_type 'picture'",
    ),
    "R notebook": (
        _notebook_json(
            metadata={"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}}
        ),
        "not a Python notebook",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_NOTEBOOKS))
def test_bad_notebook_is_refused_and_nothing_is_written(
    case: str, tmp_path: Path, out_dir: Path
) -> None:
    content, expected = BAD_NOTEBOOKS[case]
    path = _write(tmp_path / "bad.ipynb", content)
    with pytest.raises(NotebookError) as error:
        export_notebook(path, out_dir)
    assert str(path) in str(error.value)
    assert expected in str(error.value)
    assert not out_dir.exists()


def test_duplicate_cell_ids_are_named(tmp_path: Path, out_dir: Path) -> None:
    document = _notebook_json()
    cell = dict(document["cells"][0])  # type: ignore[index]
    document["cells"] = [cell, dict(cell), dict(cell, id="b2")]
    path = _write(tmp_path / "dupes.ipynb", document)
    with pytest.raises(NotebookError, match=r"duplicate cell id 'a1' \(cells 1 and 2\)"):
        export_notebook(path, out_dir)
    assert not out_dir.exists()


def test_missing_file_is_named(tmp_path: Path, out_dir: Path) -> None:
    with pytest.raises(NotebookError, match=r"nope\.ipynb: no such file"):
        export_notebook(tmp_path / "nope.ipynb", out_dir)


def test_cli_reports_bad_input_on_one_line_with_status_2(
    tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "old.ipynb", _notebook_json(nbformat=3, nbformat_minor=0))
    assert cli_main(["export", str(path), "--out", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nbmlops: error: cannot export ") and str(path) in err
    assert "nbformat 3" in err and len(err.strip().splitlines()) == 1
    assert not out_dir.exists()


def test_notebook_without_a_model_is_an_export_error(tmp_path: Path, out_dir: Path) -> None:
    path = write_notebook(
        tmp_path / "eda.ipynb", ["import pandas as pd", "pd.DataFrame({'a': [1]}).head()"]
    )
    with pytest.raises(ExportError, match=r"no model found .*--model VAR"):
        export_notebook(path, out_dir)
    assert not out_dir.exists()


def test_unknown_model_variable_is_an_export_error(out_dir: Path) -> None:
    with pytest.raises(ExportError, match="--model nothing: no cell binds or fits"):
        export_notebook(fixture("unseeded"), out_dir, model="nothing")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil", "no path parts"),
        ("a/b", "no path parts"),
        ("pkg.sub", "no path parts"),
        ("1abc", "Python identifier"),
        ("class", "Python identifier"),
        ("", "give a Python identifier"),
        ("json", "would shadow the module 'json'"),
        ("sklearn", "would shadow the module 'sklearn'"),
    ],
)
def test_package_names_are_validated(name: str, problem: str, out_dir: Path) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        export_notebook(fixture("unseeded"), out_dir, package=name)
    assert not out_dir.exists()
    with pytest.raises(InvalidArgument):
        validate_package_name(name)


def test_default_package_names_are_valid() -> None:
    assert default_package_name("01-quickstart") == "nb_01_quickstart"
    assert default_package_name("Churn Model (v2)") == "churn_model_v2"
    assert default_package_name("json") == "json_pipeline"
    assert default_package_name("???") == "notebook"


def test_existing_output_folder_needs_force(out_dir: Path) -> None:
    out_dir.mkdir()
    keep = out_dir / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(InvalidArgument, match="already exists and is not empty; pass --force"):
        export_notebook(fixture("unseeded"), out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == ["notes.txt"]
    first = export_notebook(fixture("unseeded"), out_dir, force=True)
    stale = out_dir / first.package / "stale.py"
    stale.write_text("x = 1\n")
    export_notebook(fixture("unseeded"), out_dir, force=True)
    assert not stale.exists()  # the package folder is replaced, not merged
    assert keep.read_text() == "mine"  # files the export does not own are left alone


def test_nothing_is_written_outside_out(tmp_path: Path, out_dir: Path) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    report = export_notebook(fixture("unseeded"), out_dir)
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == sorted([*before, out_dir.name])
    written = {str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file()}
    assert written == set(report.files)


def test_symlinked_package_folder_is_refused(tmp_path: Path, out_dir: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out_dir.mkdir()
    (out_dir / "unseeded").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InvalidArgument, match="symbolic link"):
        export_notebook(fixture("unseeded"), out_dir, force=True)
    assert list(elsewhere.iterdir()) == []
