"""The committed fixture notebooks are exactly what ``fixtures/build_fixtures.py`` builds."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from export_helpers import FIXTURES


def test_fixture_notebooks_match_their_builder(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_fixtures", FIXTURES / "build_fixtures.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    built = builder.build(tmp_path)
    assert {p.name for p in built} == {p.name for p in FIXTURES.glob("*.ipynb")}
    for path in built:
        assert json.loads(path.read_text()) == json.loads((FIXTURES / path.name).read_text()), (
            path.name
        )
