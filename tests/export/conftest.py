"""Export tests: the fixture notebooks are inputs, not living documentation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: nbval (``pytest --nbval-lax tests notebooks``) must not execute the fixture notebooks.
collect_ignore_glob = ["fixtures/*.ipynb"]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """A not-yet-existing output folder."""
    return tmp_path / "exported"


@pytest.fixture
def notebook_shell(ipshell: Any) -> Iterator[Any]:
    """The shared IPython shell of ``ipshell``; the variables a test's cells define are
    removed afterwards so that they never leak into later tests using the same shell."""
    before = set(ipshell.user_ns)
    yield ipshell
    for name in set(ipshell.user_ns) - before:
        ipshell.user_ns.pop(name, None)
