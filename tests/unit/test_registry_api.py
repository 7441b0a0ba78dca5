"""Registry API: versions, aliases, stages, promotion, audit log, lineage and the magics."""

from __future__ import annotations

import hashlib
import itertools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from sklearn.linear_model import LogisticRegression

import nbmlops
from nbmlops import Client
from nbmlops.errors import AlreadyExists, InvalidArgument, NotFound
from nbmlops.registry import PROMOTION_REJECTED, register_run

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1, 0, 1, 0, 1, 0]})
Y = np.array([0, 0, 0, 1, 1, 1])


def _model_run(f1: float | None = None, **metrics: float) -> str:
    """A finished run with a logged model and the given metrics; returns its model URI."""
    with nbmlops.start_run():
        if f1 is not None:
            nbmlops.log_metric("f1", f1)
        for key, value in metrics.items():
            nbmlops.log_metric(key, value)
        info = nbmlops.log_model(LogisticRegression().fit(X, Y), input_example=X)
    return info.model_uri


def _version(name: str, f1: float | None = None, **metrics: float) -> int:
    return nbmlops.register_model(_model_run(f1, **metrics), name).version


@pytest.fixture
def client() -> Client:
    return nbmlops.get_client()


# --------------------------------------------------------------------------- versions


def test_register_numbers_versions_and_links_the_source_run(client: Client) -> None:
    uri = _model_run(0.5)
    first = nbmlops.register_model(uri, "churn", description="baseline", tags={"team": "ds"})
    second = nbmlops.register_model(uri, "churn")
    assert (first.version, second.version) == (1, 2)
    assert first.source == uri and first.description == "baseline"
    assert first.tags == {"team": "ds"} and first.stage == "None" and first.created_by
    model = client.get_registered_model("churn")
    assert model.latest_version == 2 and model.aliases == {}
    assert [v.version for v in client.search_model_versions("name = 'churn'")] == [1, 2]
    run_id = uri.split("/")[1]
    assert [v.version for v in client.search_model_versions(run_id=run_id)] == [1, 2]


def test_register_refuses_runs_without_a_model(client: Client) -> None:
    with nbmlops.start_run() as run:
        nbmlops.log_metric("f1", 0.5)
    with pytest.raises(NotFound, match="no model at"):
        nbmlops.register_model(f"runs:/{run.info.run_id}/model", "churn")
    with pytest.raises(NotFound):
        client.get_registered_model("churn")  # nothing was created
    with pytest.raises(InvalidArgument, match="invalid model name"):
        nbmlops.register_model(_model_run(), "a/b")


def test_model_crud_and_search(client: Client) -> None:
    client.create_registered_model("churn-a", tags={"k": "v"}, description="first")
    with pytest.raises(AlreadyExists):
        client.create_registered_model("churn-a")
    _version("churn-b")
    _version("fraud")
    assert [m.name for m in client.search_registered_models()] == ["churn-a", "churn-b", "fraud"]
    assert [m.name for m in client.search_registered_models("name LIKE 'churn%'")] == [
        "churn-a",
        "churn-b",
    ]
    assert [m.name for m in client.search_registered_models("name = 'fraud'")] == ["fraud"]
    with pytest.raises(InvalidArgument, match="unsupported filter"):
        client.search_registered_models("tags.k = 'v'")
    assert client.update_registered_model("churn-a", "new").description == "new"
    client.set_registered_model_tag("churn-a", "owner", "me")
    assert client.get_registered_model("churn-a").tags == {"k": "v", "owner": "me"}
    assert client.update_model_version("churn-b", 1, "described").description == "described"
    client.set_model_version_tag("churn-b", "1", "validated", True)
    assert client.get_model_version("churn-b", 1).tags == {"validated": "True"}


def test_delete_version_removes_its_aliases_and_latest_moves(client: Client) -> None:
    _version("churn")
    _version("churn")
    client.set_registered_model_alias("churn", "champion", 2)
    assert client.get_model_version_by_alias("churn", "latest").version == 2
    client.delete_model_version("churn", 2)
    with pytest.raises(NotFound, match="has no version 2"):
        client.get_model_version("churn", 2)
    assert client.get_registered_model("churn").aliases == {}
    assert client.get_model_version_by_alias("churn", "latest").version == 1
    assert _version("churn") == 3  # numbers are never reused


# --------------------------------------------------------------------------- aliases


def test_alias_points_at_one_version_and_moves(client: Client) -> None:
    for _ in range(3):
        _version("churn")
    for alias in ("champion", "challenger", "prod-2026"):
        client.set_registered_model_alias("churn", alias, 1)
    client.set_registered_model_alias("churn", "champion", 3)
    assert client.get_model_version_by_alias("churn", "champion").version == 3
    assert client.get_model_version("churn", 1).aliases == ("challenger", "prod-2026")
    assert client.get_registered_model("churn").aliases == {
        "champion": 3,
        "challenger": 1,
        "prod-2026": 1,
    }
    client.delete_registered_model_alias("churn", "challenger")
    with pytest.raises(NotFound, match="no alias 'challenger'"):
        client.get_model_version_by_alias("churn", "challenger")
    with pytest.raises(NotFound, match="no alias 'challenger'"):
        client.delete_registered_model_alias("churn", "challenger")


def test_alias_errors_distinguish_missing_model_version_and_invalid_names(
    client: Client,
) -> None:
    _version("churn")
    with pytest.raises(NotFound, match="has no version 7"):
        client.set_registered_model_alias("churn", "champion", 7)
    with pytest.raises(NotFound, match="no registered model 'ghost'"):
        client.set_registered_model_alias("ghost", "champion", 1)
    with pytest.raises(InvalidArgument, match="'latest' is reserved"):
        client.set_registered_model_alias("churn", "latest", 1)
    for bad in ("", "../x", "v3", "V12", "has space", "a/b"):
        with pytest.raises(InvalidArgument, match="invalid alias name"):
            client.set_registered_model_alias("churn", bad, 1)
    with pytest.raises(InvalidArgument, match="invalid model version"):
        client.set_registered_model_alias("churn", "champion", 0)
    assert client.get_registered_model("churn").aliases == {}  # nothing changed
    assert [e.action for e in client.get_model_history("churn")] == ["create_version"]


def test_concurrent_alias_changes_leave_exactly_one_target(tmp_path: Path) -> None:
    for _ in range(4):
        _version("churn")
    uri = nbmlops.get_tracking_uri()
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        own = Client(uri)  # separate clients over one SQLite file
        try:
            for round_ in range(15):
                own.set_registered_model_alias("churn", "champion", (index + round_) % 4 + 1)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    client = nbmlops.get_client()
    holders = [v.version for v in client.search_model_versions(name="churn") if v.aliases]
    assert len(holders) == 1
    assert client.get_registered_model("churn").aliases == {"champion": holders[0]}
    events = [e for e in client.get_model_history("churn") if e.alias == "champion"]
    assert events[-1].to_value == str(holders[0])
    for before, after in itertools.pairwise(events):  # an unbroken chain
        assert after.from_value == before.to_value


# --------------------------------------------------------------------------- stages


def test_stage_transitions_are_labels_with_audit(client: Client) -> None:
    _version("churn")
    _version("churn")
    client.transition_model_version_stage("churn", 1, "production")
    assert client.get_model_version("churn", 1).stage == "Production"
    client.transition_model_version_stage(
        "churn", 2, "Production", archive_existing_versions=True, reason="better"
    )
    assert [v.stage for v in client.search_model_versions(name="churn")] == [
        "Archived",
        "Production",
    ]
    with pytest.raises(InvalidArgument, match="stage"):
        client.transition_model_version_stage("churn", 1, "Live")
    stages = [(e.version, e.from_value, e.to_value, e.reason) for e in client.get_model_history("churn") if e.action == "stage"]  # fmt: skip
    assert stages == [
        (1, "None", "Production", ""),
        (2, "None", "Production", "better"),
        (1, "Production", "Archived", "archived: v2 moved to Production"),
    ]


# --------------------------------------------------------------------------- promotion


def test_first_promotion_needs_no_champion_and_better_candidates_win(client: Client) -> None:
    v1 = _version("churn", 0.80)
    v2 = _version("churn", 0.85)
    first = nbmlops.promote("churn", v1)
    assert first.promoted and first.champion_version is None and first.candidate_value == 0.80
    second = nbmlops.promote("churn", v2, metric="f1")
    assert second.promoted
    assert (second.candidate_value, second.champion_value, second.champion_version) == (
        0.85,
        0.80,
        v1,
    )
    assert second.previous_version == v1
    assert "0.85" in str(second) and "0.8" in str(second)
    assert client.get_registered_model("churn").aliases == {
        "champion": v2,
        "previous-champion": v1,
    }


def test_equal_or_within_min_delta_is_not_promoted(client: Client) -> None:
    v1 = _version("churn", 0.80)
    v2 = _version("churn", 0.80)
    v3 = _version("churn", 0.805)
    nbmlops.promote("churn", v1)
    same = nbmlops.promote("churn", v2)
    assert not same.promoted and "0.8" in same.reason
    small = nbmlops.promote("churn", v3, min_delta=0.01)
    assert not small.promoted
    assert client.get_registered_model("churn").aliases == {"champion": v1}
    assert nbmlops.promote("churn", v3, min_delta=0.001).promoted


def test_lower_is_better_and_custom_alias(client: Client) -> None:
    v1 = _version("churn", rmse=2.0)
    v2 = _version("churn", rmse=1.5)
    v3 = _version("churn", rmse=1.9)
    nbmlops.promote("churn", v1, metric="rmse", greater_is_better=False, alias="prod")
    assert nbmlops.promote(
        "churn", v2, metric="rmse", greater_is_better=False, alias="prod"
    ).promoted
    worse = nbmlops.promote("churn", v3, metric="rmse", greater_is_better=False, alias="prod")
    assert not worse.promoted
    assert client.get_registered_model("churn").aliases == {"prod": v2, "previous-prod": v1}


def test_missing_metric_on_either_side_is_an_error_not_a_promotion(client: Client) -> None:
    no_metric = _version("churn", None, accuracy=0.9)
    with pytest.raises(InvalidArgument, match=r"has no metric 'f1' \(its metrics: accuracy\)"):
        nbmlops.promote("churn", no_metric)
    assert client.get_registered_model("churn").aliases == {}
    nbmlops.promote("churn", no_metric, force=True)  # force: no comparison needed
    candidate = _version("churn", 0.99)
    with pytest.raises(InvalidArgument, match=rf"current @champion churn v{no_metric}"):
        nbmlops.promote("churn", candidate)
    assert client.get_registered_model("churn").aliases == {"champion": no_metric}
    forced = nbmlops.promote("churn", candidate, force=True)
    assert forced.promoted and forced.forced and forced.champion_value is None
    with pytest.raises(InvalidArgument, match="min_delta"):
        nbmlops.promote("churn", candidate, min_delta=-1)


def test_promotion_decisions_are_in_the_audit_log(client: Client) -> None:
    v1 = _version("churn", 0.7)
    v2 = _version("churn", 0.6)
    v3 = _version("churn", 0.9)
    nbmlops.promote("churn", v1, reason="first model")
    nbmlops.promote("churn", v2)
    nbmlops.promote("churn", v3)
    client.set_registered_model_alias("churn", "challenger", v2, reason="try again")
    history = client.get_model_history("churn")
    rows = [(e.action, e.alias, e.from_value, e.to_value) for e in history]
    assert rows == [
        ("create_version", None, None, f"runs:/{client.get_model_version('churn', 1).source_run_id}/model"),
        ("create_version", None, None, client.get_model_version("churn", 2).source),
        ("create_version", None, None, client.get_model_version("churn", 3).source),
        ("promote", "champion", None, str(v1)),
        (PROMOTION_REJECTED, "champion", str(v1), str(v2)),
        ("promote", "champion", str(v1), str(v3)),
        ("promote", "previous-champion", None, str(v1)),
        ("set_alias", "challenger", None, str(v2)),
    ]  # fmt: skip
    assert all(e.user and e.timestamp > 0 for e in history)
    assert "first model" in history[3].reason
    assert "0.6" in history[4].reason and "0.7" in history[4].reason
    assert history[-1].reason == "try again"


def test_concurrent_promotions_end_with_the_best_candidate(tmp_path: Path) -> None:
    scores = [0.70, 0.75, 0.90, 0.80, 0.85]
    versions = [_version("churn", s) for s in scores]
    uri = nbmlops.get_tracking_uri()
    errors: list[BaseException] = []

    def worker(order: list[int]) -> None:
        own = Client(uri)
        try:
            for version in order:
                own.promote("churn", version)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    orders = [versions, list(reversed(versions)), versions[2:] + versions[:2]]
    threads = [threading.Thread(target=worker, args=(o,)) for o in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    client = nbmlops.get_client()
    aliases = client.get_registered_model("churn").aliases
    assert aliases["champion"] == versions[scores.index(max(scores))]
    champions = [e for e in client.get_model_history("churn") if e.alias == "champion" and e.action == "promote"]  # fmt: skip
    values = [scores[int(e.to_value) - 1] for e in champions]  # type: ignore[arg-type]
    assert values == sorted(values) and len(set(values)) == len(values)  # only ever improved


# --------------------------------------------------------------------------- lineage and magics


def _cell(shell: Any, code: str, cell_id: str | None = None) -> Any:
    result = shell.run_cell(code, store_history=True, cell_id=cell_id)
    assert result.success, result.error_in_exec
    return result


TRAIN_CELL = """\
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
import nbmlops
X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1, 0, 1, 0, 1, 0]})
y = [0, 0, 0, 1, 1, 1]
clf = LogisticRegression(C=C).fit(X, y)
nbmlops.log_metric("f1", F1)
info = nbmlops.log_model(clf, input_example=X)
"""


def test_lineage_links_version_to_notebook_cell_code_and_data(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    _cell(ipshell, "C = 1.0\nF1 = 0.5")
    _cell(ipshell, TRAIN_CELL, cell_id="train-cell")
    info = ipshell.user_ns["info"]
    version = nbmlops.register_model(info, "churn")
    lineage = nbmlops.get_client().get_model_lineage("churn", version.version)
    assert lineage["model"]["source"] == info.model_uri
    assert lineage["run"]["run_id"] == info.run_id and lineage["run"]["metrics"]["f1"] == 0.5
    assert lineage["notebook"].endswith("analysis.ipynb")
    assert lineage["cell_id"] == "train-cell"
    assert lineage["code_sha256"] == hashlib.sha256(TRAIN_CELL.encode()).hexdigest()
    assert [p["run_type"] for p in lineage["parents"]] == ["session"]
    training = [d for d in lineage["datasets"] if d["context"] == "training"]
    assert training and training[0]["schema"] == {"a": "float64", "b": "int64"}
    assert lineage["artifact"]["sha256"] == info.sha256
    assert lineage["run"]["params"]["C"] == "1.0"  # autologged estimator params


def test_register_promote_alias_models_and_history_magics(
    ipshell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _cell(ipshell, "%mlops autolog on")
    _cell(ipshell, "C = 1.0\nF1 = 0.7")
    _cell(ipshell, TRAIN_CELL)
    first_run = ipshell.user_ns["info"].run_id
    _cell(ipshell, "C = 0.5\nF1 = 0.8")
    _cell(ipshell, TRAIN_CELL)
    last_run = ipshell.user_ns["info"].run_id
    capsys.readouterr()
    ipshell.run_line_magic("mlops", "register last churn --alias challenger")
    assert "registered churn v1 @challenger" in capsys.readouterr().out
    client = nbmlops.get_client()
    assert client.get_model_version_by_alias("churn", "challenger").source_run_id == last_run
    ipshell.run_line_magic("mlops", f"register {first_run} churn")
    ipshell.run_line_magic("mlops", "promote churn 2 --metric f1")
    assert "PROMOTED" in capsys.readouterr().out
    ipshell.run_line_magic("mlops", "promote churn 1 --min-delta 0.05")
    out = capsys.readouterr().out
    assert "PROMOTED" in out and "0.8" in out and "0.7" in out
    ipshell.run_line_magic("mlops", "promote churn 2")
    assert "NOT PROMOTED" in capsys.readouterr().out
    ipshell.run_line_magic("mlops", "alias churn staging 2")
    assert "churn @staging -> v2" in capsys.readouterr().out
    ipshell.run_line_magic("mlops", "alias churn staging --delete")
    models = ipshell.run_line_magic("mlops", "models")
    assert list(models["name"]) == ["churn"] and models["latest_version"].iloc[0] == 2
    versions = ipshell.run_line_magic("mlops", "models churn")
    assert list(versions["version"]) == [1, 2]
    assert versions["aliases"].tolist() == ["@challenger, @champion", "@previous-champion"]
    history = ipshell.run_line_magic("mlops", "history churn")
    assert "promotion_rejected" in set(history["action"]) and "delete_alias" in set(
        history["action"]
    )
    champion = nbmlops.load_model("models:/churn@champion")
    assert champion.run_id == last_run


def test_register_last_finds_an_autologged_model(ipshell: Any) -> None:
    _cell(ipshell, "%mlops autolog on")
    _cell(
        ipshell,
        "from sklearn.linear_model import LogisticRegression\n"
        "clf = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])",
    )
    version = register_run("last", "auto", experiment="analysis")
    loaded = nbmlops.load_model(f"models:/auto/{version.version}")
    assert loaded.predict([[0.0], [3.0]]).tolist() == [0, 1]
    assert loaded.metadata["format"] == "joblib" and loaded.signature is None


def test_registry_magic_errors_are_one_line_usage_errors(ipshell: Any) -> None:
    _version("churn", 0.5)
    for line, expected in (
        ("register last", "arguments"),
        ("promote churn", "arguments"),
        ("promote churn 9", "has no version 9"),
        ("promote churn 1 --min-delta x", "invalid float"),
        ("alias churn latest 1", "'latest' is reserved"),
        ("alias churn ../x 1", "invalid alias name"),
        ("alias churn champion", "expected NAME ALIAS VERSION"),
        ("alias ghost champion 1", "no registered model 'ghost'"),
        ("models ghost", "no registered model 'ghost'"),
        ("register 0123456789abcdef0123456789abcdef churn", "0123456789abcdef"),
    ):
        with pytest.raises(UsageError, match=expected) as info:
            ipshell.run_line_magic("mlops", line)
        assert "\n" not in str(info.value).strip(), line


def test_manual_documents_the_registry_magics(
    ipshell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ipshell.run_line_magic("mlops", "help")
    out = capsys.readouterr().out
    for word in ("%mlops register RUN_ID|last NAME", "%mlops promote NAME VERSION", "%mlops alias", "%mlops models"):  # fmt: skip
        assert word in out
