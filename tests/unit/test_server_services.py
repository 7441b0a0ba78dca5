"""The REST API's pure helpers: JSON spelling, paging tokens, path confinement and scrubbing,
downsampling (no server needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nbmlops.entities import Metric
from nbmlops.errors import InvalidArgument
from nbmlops.server import services


def test_json_spells_non_finite_numbers_and_escapes_html() -> None:
    text = services.dumps({"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": "<b>&</b>"})
    assert json.loads(text) == {"a": "NaN", "b": ["Infinity", "-Infinity", 1.5], "c": "<b>&</b>"}
    assert "<" not in text and ">" not in text and "&" not in text


def test_offset_tokens_belong_to_their_query() -> None:
    items = list(range(7))
    page, token = services.page_of(items, None, 3, "q")
    assert page == [0, 1, 2] and token
    page, token = services.page_of(items, token, 3, "q")
    assert page == [3, 4, 5]
    page, last = services.page_of(items, token, 3, "q")
    assert page == [6] and last is None
    with pytest.raises(InvalidArgument):
        services.page_of(items, token, 3, "other query")
    with pytest.raises(InvalidArgument):
        services.decode_offset("%%%", "q")


@pytest.mark.parametrize(
    "bad", ["", "..", "../x.ipynb", "a/../../x", "/etc/passwd", "~/x", "C:/x", "a\\b", "a\x00b"]
)
def test_confined_refuses_paths_leaving_the_root(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        services.confined(tmp_path, bad, "path")


def test_confined_refuses_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(tmp_path)
    with pytest.raises(InvalidArgument, match="outside the server root"):
        services.confined(root, "out/x.ipynb", "notebook")
    assert services.confined(root, "./a/b.ipynb", "notebook") == root / "a" / "b.ipynb"


def test_scrubber_keeps_the_store_relativises_the_root_and_cuts_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = root / "proj" / ".nbmlops"
    scrub = services.PathScrubber(root, [store])
    message = (
        f"cannot read {store}/nbmlops.db; notebook {root}/proj/a.ipynb; "
        f"secret /home/alice/.ssh/id_rsa and '{tmp_path}/other/file.txt'."
    )
    out = scrub(message)
    assert f"{store}/nbmlops.db" in out
    assert "notebook proj/a.ipynb;" in out
    assert "/home/alice" not in out and "…/id_rsa" in out
    assert str(tmp_path) + "/other" not in out and "'…/file.txt'." in out


def test_downsample_keeps_ends_and_extremes() -> None:
    points = [Metric("m", float(i % 50), i, i) for i in range(10_000)]
    points[5_000] = Metric("m", 1e6, 5_000, 5_000)
    kept = services.downsample(points, 100)
    assert len(kept) <= 100
    assert kept[0] is points[0] and kept[-1] is points[-1]
    assert any(p.value == 1e6 for p in kept)
    assert [p.step for p in kept] == sorted(p.step for p in kept)
    assert services.downsample(points[:10], 100) == points[:10]
    nans = [Metric("m", math.nan, i, i) for i in range(1000)]
    assert 2 <= len(services.downsample(nans, 50)) <= 50


def test_artifact_types() -> None:
    assert services.inline_type("figures/a.PNG") == "image/png"
    assert services.inline_type("report.html") is None
    assert services.inline_type("plot.svg") is None
    assert services.inline_type("noext") is None
