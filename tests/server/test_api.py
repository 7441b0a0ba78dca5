"""The REST API against a populated store: every route, paging, bad input, traversal."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Fetch, Populated, expect_error, png_bytes
from jupyter_server.utils import url_path_join

import nbmlops
from nbmlops.server import API_VERSION


async def test_status_reports_version_store_and_notebook_experiment(
    api: Fetch, populated: Populated
) -> None:
    status = await api("status")
    assert status["version"] == nbmlops.__version__
    assert status["api_version"] == API_VERSION
    store = status["store"]
    assert store["exists"] is True
    assert store["origin"] == "notebook"
    assert store["location"] == str(populated.store_dir / "nbmlops.db")
    assert store["label"] == "proj/.nbmlops"
    assert status["notebook"] == {
        "path": populated.notebook,
        "experiment_id": populated.experiment_id,
        "experiment_name": "analysis",
    }
    assert isinstance(status["features"]["export"], bool)


async def test_store_follows_the_walking_rule_and_is_never_created(
    api: Fetch, populated: Populated
) -> None:
    deeper = populated.root / "proj" / "sub" / "deep"
    deeper.mkdir(parents=True)
    status = await api("status", notebook="proj/sub/deep/x.ipynb")
    assert status["store"]["location"] == str(populated.store_dir / "nbmlops.db")
    elsewhere = await api("status", notebook="other/y.ipynb")
    assert elsewhere["store"]["exists"] is False
    assert elsewhere["store"]["location"] == str(
        populated.root / "other" / ".nbmlops" / "nbmlops.db"
    )
    assert (await api("runs", notebook="other/y.ipynb")) == {
        "runs": [],
        "next_page_token": None,
        "store_exists": False,
    }
    assert (await api("models", notebook="other/y.ipynb"))["store_exists"] is False
    body = await expect_error(api("runs", populated.cells[0], notebook="other/y.ipynb"), 404)
    assert "no nbmlops store yet" in body["message"]
    assert not (populated.root / "other" / ".nbmlops").exists()


async def test_env_override_wins_like_in_the_kernels(
    api: Fetch, populated: Populated, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NBMLOPS_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere' / 'x.db'}")
    status = await api("status")
    assert status["store"]["origin"] == "env"
    assert status["store"]["exists"] is False


async def test_stores_lists_found_stores_and_a_store_id_selects_one(
    api: Fetch, populated: Populated
) -> None:
    second = populated.root / "team" / ".nbmlops"
    client = nbmlops.Client(f"sqlite:///{second / 'nbmlops.db'}")
    client.create_experiment("team-exp")
    listing = (await api("stores"))["stores"]
    labels = {s["label"]: s for s in listing}
    assert {"proj/.nbmlops", "team/.nbmlops"} <= set(labels)
    assert listing[0]["label"] == "proj/.nbmlops"  # the notebook's store first
    team_id = labels["team/.nbmlops"]["id"]
    experiments = await api("experiments", store=team_id, notebook=None)
    assert [e["name"] for e in experiments["experiments"]] == ["team-exp"]
    body = await expect_error(api("experiments", store="0" * 16), 404)
    assert "unknown store" in body["message"]
    await expect_error(api("experiments", store="../../etc"), 400)


async def test_experiments_paged(api: Fetch, populated: Populated) -> None:
    first = await api("experiments", max_results=1)
    assert [e["name"] for e in first["experiments"]] == ["analysis"]
    second = await api("experiments", max_results=1, page_token=first["next_page_token"])
    assert [e["name"] for e in second["experiments"]] == ["bulk"]
    assert second["next_page_token"] is None
    await expect_error(api("experiments", page_token="garbage"), 400)
    await expect_error(api("experiments", max_results=0), 400)
    await expect_error(api("experiments", max_results=100_000), 400)


async def test_runs_of_an_experiment_as_rows(api: Fetch, populated: Populated) -> None:
    page = await api("runs", experiment=populated.experiment_id)
    rows = {r["run_id"]: r for r in page["runs"]}
    assert len(rows) == 1 + 3 + 2 + 1 + 1
    cell = rows[populated.cells[0]]
    assert cell["parent_run_id"] == populated.session
    assert cell["run_type"] == "cell"
    assert cell["cell"] == 1
    assert cell["cell_id"] == "cell-1"
    assert cell["params"] == {"C": "1.0", "model": "logreg"}
    assert cell["metrics"]["f1"] == 0.7
    assert cell["metrics"]["weird"] == "NaN"
    assert rows[populated.cells[1]]["metrics"]["weird"] == "Infinity"
    assert rows[populated.failed]["status"] == "FAILED"
    assert rows[populated.failed]["error"] == "ValueError: boom"
    assert page["runs"][0]["start_time"] >= page["runs"][-1]["start_time"]  # newest first


async def test_runs_filter_order_and_parent(api: Fetch, populated: Populated) -> None:
    good = await api("runs", experiment=populated.experiment_id, filter="metrics.f1 >= 0.75")
    assert {r["run_id"] for r in good["runs"]} == {populated.cells[1], populated.cells[2]}
    ordered = await api(
        "runs",
        experiment=populated.experiment_id,
        filter="metrics.f1 > 0",
        order_by="metrics.f1 DESC",
    )
    assert [r["name"] for r in ordered["runs"]][:2] == ["cell[2]", "cell[3]"]
    children = await api("runs", parent=populated.cells[1])
    assert {r["run_id"] for r in children["runs"]} == set(populated.trials)
    top = await api("runs", experiment=populated.experiment_id, parent="none")
    assert {r["run_id"] for r in top["runs"]} == {populated.session, populated.long_metric_run}
    both = await api("runs", parent=populated.session, filter="status = 'FAILED'")
    assert [r["run_id"] for r in both["runs"]] == [populated.failed]


async def test_runs_pagination_is_bounded_and_complete(api: Fetch, populated: Populated) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = await api(
            "runs", experiment=populated.bulk_experiment_id, max_results=100, page_token=token
        )
        seen.extend(r["run_id"] for r in page["runs"])
        pages += 1
        token = page["next_page_token"]
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    await expect_error(api("runs", max_results=1001), 400)
    await expect_error(api("runs", max_results="ten"), 400)
    body = await expect_error(
        api("runs", experiment=populated.bulk_experiment_id, page_token="bm90IGEgdG9rZW4="), 400
    )
    assert "page_token" in body["message"]


async def test_runs_bad_input(api: Fetch, populated: Populated) -> None:
    body = await expect_error(api("runs", filter="metrics.f1 >>> 3"), 400)
    assert "filter" in body["message"] or "expected" in body["message"]
    await expect_error(api("runs", parent="not-a-run"), 400)
    await expect_error(api("runs", experiment="424242"), 404)
    await expect_error(api("runs", order_by="nonsense DESC"), 400)
    await expect_error(api("runs", notebook="../outside.ipynb"), 400)
    await expect_error(api("runs", notebook="/etc/passwd"), 400)


async def test_html_in_error_messages_is_escaped(jp_fetch: Any, populated: Populated) -> None:
    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            "nbmlops", "api", "runs", params={"notebook": populated.notebook, "filter": "<script>x"}
        )
    raw = info.value.response.body.decode()
    assert info.value.code == 400
    assert "<script>" not in raw and "\\u003cscript\\u003e" in raw
    assert "<script>" in json.loads(raw)["message"]


async def test_run_detail(api: Fetch, populated: Populated) -> None:
    detail = await api("runs", populated.cells[0])
    run = detail["run"]
    assert run["info"]["run_id"] == populated.cells[0]
    assert run["info"]["source"]["code"].startswith("model = LogisticRegression")
    assert run["data"]["params"]["C"] == "1.0"
    assert detail["experiment_name"] == "analysis"
    assert detail["parent"]["run_id"] == populated.session
    assert detail["parents"] == [
        {
            "run_id": populated.session,
            "name": "analysis",
            "run_type": "session",
            "status": "FINISHED",
        }
    ]
    assert detail["notebook_path"] == populated.notebook
    assert detail["lineage"]["cells"][0]["cell_id"] == "cell-1"
    assert "notebook" not in detail["lineage"]
    assert [v["version"] for v in detail["versions"]] == [1]
    arts = {a["path"]: a for a in detail["artifacts"]}
    assert arts["figures/figure-1.png"]["inline"] is True
    assert arts["report.html"]["inline"] is False
    assert arts["report.html"]["content_type"] == "application/octet-stream"
    assert "images" not in detail
    assert detail["artifacts_total"] == len(detail["artifacts"]) == 9
    children = (await api("runs", populated.cells[1]))["children"]
    assert {c["run_id"] for c in children} == set(populated.trials)
    await expect_error(api("runs", "f" * 32), 404)
    await expect_error(api("runs", "xyz"), 400)


async def test_metric_history_and_downsampling(api: Fetch, populated: Populated) -> None:
    loss = await api("runs", populated.cells[0], "metrics", "loss")
    assert [p["step"] for p in loss["points"]] == [0, 1, 2]
    assert loss["total"] == 3 and loss["downsampled"] is False
    curve = await api("runs", populated.long_metric_run, "metrics", "curve", max_points=200)
    assert curve["total"] == 5000 and curve["downsampled"] is True
    assert len(curve["points"]) <= 200
    values = [p["value"] for p in curve["points"]]
    assert min(values) == 0.0 and max(values) == 96.0  # extremes survive
    steps = [p["step"] for p in curve["points"]]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 4999
    weird = await api("runs", populated.cells[0], "metrics", "weird")
    assert weird["points"][0]["value"] == "NaN"
    spaced = await api("runs", populated.cells[0], "metrics", "loss", max_points=10_000)
    assert spaced["total"] == 3
    await expect_error(api("runs", populated.cells[0], "metrics", "nope"), 404)
    await expect_error(api("runs", populated.cells[0], "metrics", "loss", max_points=1), 400)


async def test_artifact_list_paged(api: Fetch, populated: Populated) -> None:
    listing = await api("runs", populated.cells[0], "artifacts")
    paths = [a["path"] for a in listing["artifacts"]]
    assert "figures/figure-1.png" in paths and "nbmlops/lineage.json" in paths
    folder = await api("runs", populated.cells[0], "artifacts", path="figures")
    assert [a["path"] for a in folder["artifacts"]] == ["figures/figure-1.png"]
    first = await api("runs", populated.cells[0], "artifacts", max_results=2)
    assert len(first["artifacts"]) == 2 and first["next_page_token"]
    await expect_error(api("runs", populated.cells[0], "artifacts", path="../x"), 400)


@pytest.mark.parametrize(
    ("path", "content_type", "disposition"),
    [
        ("figures/figure-1.png", "image/png", "inline"),
        ("data.csv", "text/csv; charset=utf-8", "inline"),
        ("config.json", "application/json; charset=utf-8", "inline"),
        ("notes.txt", "text/plain; charset=utf-8", "inline"),
        ("report.html", "application/octet-stream", "attachment"),
        ("plot.svg", "application/octet-stream", "attachment"),
        ("blob.bin", "application/octet-stream", "attachment"),
    ],
)
async def test_artifact_files_are_typed_or_attachments(
    jp_fetch: Any, populated: Populated, path: str, content_type: str, disposition: str
) -> None:
    response = await jp_fetch(
        "nbmlops", "api", "runs", populated.cells[0], "artifacts", *path.split("/"),
        params={"notebook": populated.notebook},
    )  # fmt: skip
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith(disposition)
    assert "sandbox" in response.headers["Content-Security-Policy"]
    if path.endswith(".png"):
        assert response.body == png_bytes()
    if path == "report.html":
        assert response.body == b"<script>alert(1)</script>"


async def test_artifact_download_flag_makes_an_attachment(
    jp_fetch: Any, populated: Populated
) -> None:
    response = await jp_fetch(
        "nbmlops", "api", "runs", populated.cells[0], "artifacts", "data.csv",
        params={"notebook": populated.notebook, "download": "1"},
    )  # fmt: skip
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Content-Type"] == "application/octet-stream"


async def _raw_get(client: Any, url: str, headers: dict[str, str]) -> Any:
    return await client.fetch(url, headers=headers, raise_error=False)


@pytest.mark.parametrize(
    ("tail", "status"),
    [
        ("..%2F..%2Fnbmlops.db", 400),
        ("%2E%2E/%2E%2E/nbmlops.db", 400),
        ("%2Fetc%2Fpasswd", 400),
        ("figures/..%2F..%2F..%2Fnbmlops.db", 400),
        ("..%5C..%5Cnbmlops.db", 400),
        ("missing.txt", 404),
    ],
)
async def test_artifact_traversal_is_refused(
    http_server_client: Any,
    jp_auth_header: dict[str, str],
    jp_base_url: str,
    populated: Populated,
    tail: str,
    status: int,
) -> None:
    base = url_path_join(jp_base_url, "nbmlops/api/runs", populated.cells[0], "artifacts")
    url = f"{base}/{tail}?notebook={populated.notebook}"
    response = await _raw_get(http_server_client, url, jp_auth_header)
    assert response.code == status, (response.code, response.body)
    assert b"root:" not in response.body and b"SQLite" not in response.body
    body = json.loads(response.body)
    assert str(populated.root.parent) not in body["message"]


async def test_artifact_symlink_out_of_the_store_is_refused(
    jp_fetch: Any, populated: Populated, tmp_path: Path
) -> None:
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("top secret")
    target = populated.store_dir / "artifacts" / populated.cells[0] / "evil.txt"
    target.unlink()
    os.symlink(outside, target)
    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            "nbmlops", "api", "runs", populated.cells[0], "artifacts", "evil.txt",
            params={"notebook": populated.notebook},
        )  # fmt: skip
    assert info.value.code == 400
    assert b"top secret" not in info.value.response.body
    assert str(tmp_path) not in info.value.response.body.decode()


async def test_compare(api: Fetch, populated: Populated) -> None:
    a, b, c = populated.cells
    result = await api("compare", ids=f"{a},{b},{c}")
    assert [r["run_id"] for r in result["runs"]] == [a, b, c]
    params = result["params"]
    assert params[0]["differs"] is True  # differences first
    assert {p["key"] for p in params if p["differs"]} == {"C", "model"}
    f1 = next(m for m in result["metrics"] if m["key"] == "f1")
    assert f1["best"] == [1] and f1["direction"] == "max"
    loss = next(m for m in result["metrics"] if m["key"] == "loss")
    assert loss["direction"] == "min"
    assert len(result["histories"]["loss"]) == 3
    assert len(result["code_diffs"]) == 2
    assert any("C=10.0" in line for line in result["code_diffs"][0]["lines"])
    assert result["notebook_paths"] == [populated.notebook] * 3
    ranked = await api("compare", ids=f"{a},{b}", metric="loss")
    assert ranked["metrics"][0]["key"] == "loss"
    await expect_error(api("compare", ids=a), 400)
    await expect_error(api("compare", ids=",".join([a] * 21)), 400)
    await expect_error(api("compare", ids=f"{a},{a}"), 400)
    await expect_error(api("compare", ids=f"{a},nothex"), 400)
    await expect_error(api("compare", ids=f"{a},{'e' * 32}"), 404)


async def test_models_and_model_view(api: Fetch, populated: Populated) -> None:
    models = await api("models")
    assert [m["name"] for m in models["models"]] == ["churn"]
    assert models["models"][0]["aliases"] == {"champion": 1}
    assert (await api("models", filter="name LIKE 'x%'"))["models"] == []
    view = await api("models", "churn")
    assert [v["version"]["version"] for v in view["versions"]] == [2, 1]
    assert view["versions"][0]["metrics"]["f1"] == 0.8
    assert view["default_metric"] == "f1"
    assert [e["action"] for e in view["history"]][:2] == ["create_version", "create_version"]
    assert view["history_total"] == len(view["history"])
    await expect_error(api("models", "nope"), 404)
    await expect_error(api("models", filter="bogus"), 400)


async def test_set_and_delete_alias(api: Fetch, populated: Populated) -> None:
    view = await api("models", "churn", "aliases", body={"alias": "challenger", "version": 2})
    assert view["model"]["aliases"] == {"champion": 1, "challenger": 2}
    assert view["history"][-1]["action"] == "set_alias"
    view = await api(
        "models", "churn", "aliases", body={"alias": "challenger", "delete": True, "reason": "done"}
    )
    assert view["model"]["aliases"] == {"champion": 1}
    assert view["history"][-1]["reason"] == "done"
    body = await expect_error(
        api("models", "churn", "aliases", body={"alias": "latest", "version": 1}), 400
    )
    assert "alias" in body["message"]
    await expect_error(api("models", "churn", "aliases", body={"alias": "x", "version": 99}), 404)
    await expect_error(
        api("models", "churn", "aliases", body={"alias": "gone", "delete": True}), 404
    )
    await expect_error(api("models", "churn", "aliases", body={"version": 1}), 400)
    await expect_error(
        api("models", "churn", "aliases", body={"alias": "a", "version": "two"}), 400
    )
    await expect_error(api("models", "churn", "aliases", body="[1, 2]"), 400)
    await expect_error(api("models", "churn", "aliases", body="{not json"), 400)
    await expect_error(api("models", "nope", "aliases", body={"alias": "a", "version": 1}), 404)


async def test_promote(api: Fetch, populated: Populated) -> None:
    result = await api("models", "churn", "promote", body={"version": 2, "metric": "f1"})
    decision = result["decision"]
    assert decision["promoted"] is True
    assert decision["text"].startswith("PROMOTED")
    assert result["model"]["model"]["aliases"] == {"champion": 2, "previous-champion": 1}
    again = await api("models", "churn", "promote", body={"version": 1, "metric": "f1"})
    assert again["decision"]["promoted"] is False
    assert again["model"]["history"][-1]["action"] == "promotion_rejected"
    body = await expect_error(
        api("models", "churn", "promote", body={"version": 1, "metric": "auc"}), 400
    )
    assert "auc" in body["message"]
    await expect_error(
        api("models", "churn", "promote", body={"version": 1, "min_delta": "x"}), 400
    )
    await expect_error(api("models", "churn", "promote", body={"version": 1, "force": "yes"}), 400)


async def test_export_refuses_paths_outside_the_root(api: Fetch, populated: Populated) -> None:
    for bad in ("../x.ipynb", "/etc/passwd", "proj/../../x.ipynb", "~/x.ipynb"):
        body = await expect_error(api("export", body={"path": bad}), 400)
        assert str(populated.root.parent) not in body["message"]
    await expect_error(api("export", body={"path": "proj/notes.txt"}), 400)
    await expect_error(api("export", body={"path": "proj/missing.ipynb"}), 404)
    await expect_error(api("export", body={"verify": True}), 400)
    await expect_error(
        api("export", body={"path": populated.notebook, "out_dir": "../elsewhere"}), 400
    )


async def test_export_runs_the_exporter_or_says_it_is_missing(
    api: Fetch, populated: Populated, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbmlops.server import services

    calls: list[tuple[str, str, Any, bool]] = []

    class Report:
        ok = True

        def to_dict(self) -> dict[str, Any]:
            return {"files": [str(populated.root / "proj" / "analysis-package" / "train.py")]}

        def __str__(self) -> str:
            return f"exported to {populated.root / 'proj' / 'analysis-package'}"

    def fake_export(
        path: str,
        out_dir: str,
        package: Any = None,
        verify: bool = False,
        *,
        force: bool = False,
        tracking_uri: str | None = None,
    ) -> Report:
        calls.append((path, out_dir, package, verify))
        assert tracking_uri == f"sqlite:///{populated.store_dir / 'nbmlops.db'}"
        assert force is False
        return Report()

    monkeypatch.setattr(services, "_export_function", lambda: fake_export)
    result = await api("export", body={"path": populated.notebook, "verify": True})
    assert calls == [
        (
            str(populated.root / populated.notebook),
            str(populated.root / "proj" / "analysis-package"),
            None,
            True,
        )
    ]
    assert result["ok"] is True
    assert result["out_dir"] == "proj/analysis-package"
    assert result["report"]["files"] == ["proj/analysis-package/train.py"]  # no absolute paths
    assert result["text"] == "exported to proj/analysis-package"
    monkeypatch.setattr(services, "_export_function", lambda: None)
    body = await expect_error(api("export", body={"path": populated.notebook}), 501)
    assert "export" in body["message"]
    status = await api("status")
    assert status["features"]["export"] is False


async def test_unknown_api_route_is_a_json_404(api: Fetch) -> None:
    body = await expect_error(api("nothing-here"), 404)
    assert body["status"] == 404


async def test_unexpected_errors_are_a_generic_500(
    api: Fetch, populated: Populated, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbmlops.server import services

    def broken(self: Any, ref: Any, notebook: Any = None) -> Any:
        raise RuntimeError(f"secret detail at {populated.root.parent}/x")

    monkeypatch.setattr(services.ApiService, "status", broken)
    body = await expect_error(api("status"), 500)
    assert "secret" not in body["message"] and "Traceback" not in json.dumps(body)
