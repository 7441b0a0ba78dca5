"""The model registry part of the store contract (nbmlops/store/base.py), on every store.

The ``store`` fixture (tests/conftest.py) is parametrized over MemoryStore, SqliteStore and
MlflowStore (a real MLflow server on PostgreSQL), so each expectation below is checked on all
of them and the implementations cannot drift.
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections.abc import Iterator

import pytest

from nbmlops.entities import STAGES, ModelVersion, RegisteredModel, RegistryEvent
from nbmlops.errors import AlreadyExists, InvalidArgument, NotFound
from nbmlops.store import heartbeat as hb
from nbmlops.store.base import AbstractStore

T0 = 1_700_000_000_000


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A fake store clock: every ``hb.now_ms()`` call returns the next millisecond.

    Yields a one-element list holding the last time handed out.
    """
    ticks = itertools.count(T0)
    last = [T0]

    def now_ms() -> int:
        last[0] = next(ticks)
        return last[0]

    monkeypatch.setattr(hb, "now_ms", now_ms)
    yield last


def _run(store: AbstractStore) -> str:
    """A run in experiment 'e' (created on first use); returns its id."""
    experiment = store.get_experiment_by_name("e") or store.create_experiment("e")
    return store.create_run(experiment.experiment_id, "r", T0, "alice").run_id


def _versions(store: AbstractStore, name: str, count: int, run_id: str | None = None) -> str:
    """Register ``count`` versions of ``name`` from one run; returns the run id."""
    run_id = run_id or _run(store)
    for _ in range(count):
        store.create_model_version(name, run_id, "model")
    return run_id


def _actions(store: AbstractStore, name: str) -> list[str]:
    """The actions of a model's history, oldest first."""
    return [e.action for e in store.get_model_history(name)]


def _alias_trail(
    store: AbstractStore, name: str
) -> list[tuple[str | None, str | None, str | None]]:
    """(alias, from, to) of every alias event of a model, oldest first."""
    return [
        (e.alias, e.from_value, e.to_value)
        for e in store.get_model_history(name)
        if e.alias is not None
    ]


# --------------------------------------------------------------------------- registered models


def test_create_and_get_registered_model(store: AbstractStore, clock: list[int]) -> None:
    """A created model has its description and tags, no aliases and no versions."""
    model = store.create_registered_model("churn", "predicts churn", {"team": "growth"})
    assert model == RegisteredModel(
        name="churn",
        description="predicts churn",
        tags={"team": "growth"},
        created_at=model.created_at,
        updated_at=model.created_at,
        aliases={},
        latest_version=None,
    )
    assert model.created_at >= T0
    assert store.get_registered_model("churn") == model


def test_create_registered_model_defaults(store: AbstractStore) -> None:
    """Description and tags are optional."""
    model = store.create_registered_model("m")
    assert (model.description, dict(model.tags)) == ("", {})


def test_duplicate_registered_model_raises_already_exists(store: AbstractStore) -> None:
    """A taken name is AlreadyExists naming it; the first model is unchanged."""
    store.create_registered_model("churn", "first")
    with pytest.raises(AlreadyExists, match="'churn' already exists"):
        store.create_registered_model("churn", "second")
    assert store.get_registered_model("churn").description == "first"


def test_model_names_are_case_sensitive(store: AbstractStore) -> None:
    """Names that differ only in case are different models."""
    store.create_registered_model("Churn")
    store.create_registered_model("churn")
    assert [m.name for m in store.search_registered_models()] == ["Churn", "churn"]


@pytest.mark.parametrize(
    "bad", ["", " lead", "trail ", "a/b", "a\\b", "a@b", "a:b", "tab\t", "x" * 251, None, 7]
)
def test_invalid_model_names_are_refused(store: AbstractStore, bad: object) -> None:
    """Malformed names are InvalidArgument everywhere, never NotFound; nothing is created."""
    with pytest.raises(InvalidArgument, match="model name"):
        store.create_registered_model(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="model name"):
        store.get_registered_model(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="model name"):
        store.create_model_version(bad, _run(store), "model")  # type: ignore[arg-type]
    assert store.search_registered_models() == []


def test_longest_model_name_is_accepted(store: AbstractStore) -> None:
    """250 characters (and inner spaces, dots, dashes) are fine."""
    name = "my model.v-2 " + "x" * 237
    assert len(name) == 250
    assert store.create_registered_model(name).name == name


def test_get_unknown_registered_model_raises_not_found(store: AbstractStore) -> None:
    """NotFound names the missing model."""
    with pytest.raises(NotFound, match="no registered model 'ghost'"):
        store.get_registered_model("ghost")


def test_invalid_tags_are_refused_and_nothing_created(store: AbstractStore) -> None:
    """Tag keys follow the run tag rule; a bad one refuses the whole call."""
    with pytest.raises(InvalidArgument, match="tag key"):
        store.create_registered_model("m", tags={"a/b": "x"})
    with pytest.raises(InvalidArgument, match="tags must be a mapping"):
        store.create_registered_model("m", tags=[("a", "b")])  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        store.get_registered_model("m")


def test_non_text_description_is_refused(store: AbstractStore) -> None:
    """A description must be text."""
    with pytest.raises(InvalidArgument, match="description must be a string"):
        store.create_registered_model("m", description=3)  # type: ignore[arg-type]


def test_search_registered_models_sorted_by_name(store: AbstractStore) -> None:
    """Every model, sorted by name, with its aliases and latest version."""
    for name in ["zeta", "alpha", "Mid"]:
        store.create_registered_model(name)
    _versions(store, "alpha", 2)
    store.set_aliases("alpha", {"champion": 1})
    found = store.search_registered_models()
    assert [m.name for m in found] == ["Mid", "alpha", "zeta"]
    assert found[1].latest_version == 2
    assert found[1].aliases == {"champion": 1}
    assert found[0].latest_version is None


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("churn%", ["churn", "Churn-v2", "churn_xgb"]),
        ("CHURN", ["churn"]),
        ("%xgb", ["churn_xgb", "fraud-xgb"]),
        ("churn\\_%", ["churn_xgb"]),
        ("_raud%", ["fraud-xgb"]),
        ("nothing%", []),
        ("%", ["churn", "Churn-v2", "churn_xgb", "fraud-xgb"]),
    ],
)
def test_search_registered_models_name_like(
    store: AbstractStore, pattern: str, expected: list[str]
) -> None:
    """``name_like`` is SQL LIKE (``%``, ``_``, ``\\`` escapes), case-insensitive."""
    for name in ["fraud-xgb", "churn_xgb", "Churn-v2", "churn"]:
        store.create_registered_model(name)
    assert sorted(m.name for m in store.search_registered_models(pattern)) == sorted(expected)


def test_search_registered_models_bad_pattern(store: AbstractStore) -> None:
    """A non-string pattern is InvalidArgument."""
    with pytest.raises(InvalidArgument, match="name_like"):
        store.search_registered_models(3)  # type: ignore[arg-type]


def test_update_registered_model(store: AbstractStore, clock: list[int]) -> None:
    """The description is replaced and updated_at moves; created_at does not."""
    created = store.create_registered_model("m", "old")
    updated = store.update_registered_model("m", "new")
    assert updated.description == "new"
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    assert store.get_registered_model("m") == updated
    with pytest.raises(NotFound, match="no registered model 'ghost'"):
        store.update_registered_model("ghost", "x")


def test_set_registered_model_tag(store: AbstractStore) -> None:
    """Tags are set, overwritten, and non-string values stored as text."""
    store.create_registered_model("m", tags={"a": "1"})
    store.set_registered_model_tag("m", "a", "2")
    store.set_registered_model_tag("m", "b", 3)  # type: ignore[arg-type]
    assert store.get_registered_model("m").tags == {"a": "2", "b": "3"}
    with pytest.raises(InvalidArgument, match="tag key"):
        store.set_registered_model_tag("m", "", "x")
    with pytest.raises(NotFound, match="no registered model 'ghost'"):
        store.set_registered_model_tag("ghost", "a", "b")


def test_returned_models_are_snapshots(store: AbstractStore) -> None:
    """Mutating a returned mapping never changes the stored model."""
    store.create_registered_model("m", tags={"a": "1"})
    model = store.get_registered_model("m")
    model.tags["a"] = "changed"  # type: ignore[index]
    assert store.get_registered_model("m").tags == {"a": "1"}


# --------------------------------------------------------------------------- versions


def test_create_model_version(store: AbstractStore, clock: list[int]) -> None:
    """A version records its source, tags and creator; the model is created on the fly."""
    run_id = _run(store)
    version = store.create_model_version(
        "churn", run_id, "model", description="first", tags={"data": "v1"}, user="bob"
    )
    assert version == ModelVersion(
        name="churn",
        version=1,
        source_run_id=run_id,
        model_path="model",
        description="first",
        tags={"data": "v1"},
        created_at=version.created_at,
        created_by="bob",
        stage="None",
        aliases=(),
    )
    assert version.source == f"runs:/{run_id}/model"
    assert version.created_at >= T0
    assert store.get_model_version("churn", 1) == version
    model = store.get_registered_model("churn")
    assert (model.latest_version, model.description, model.aliases) == (1, "", {})


def test_create_model_version_normalises_the_model_path(store: AbstractStore) -> None:
    """The model path is an artifact path: normalised, and unsafe paths refused."""
    run_id = _run(store)
    assert store.create_model_version("m", run_id, "./models//clf").model_path == "models/clf"
    for bad in ["", "/abs", "../up", "a\\b"]:
        with pytest.raises(InvalidArgument, match="artifact path"):
            store.create_model_version("m", run_id, bad)
    assert [v.version for v in store.search_model_versions("m")] == [1]


def test_versions_are_numbered_per_model(store: AbstractStore) -> None:
    """1, 2, 3 ... separately for each model."""
    run_id = _run(store)
    numbers = [store.create_model_version(n, run_id, "model").version for n in "aabab"]
    assert numbers == [1, 2, 1, 3, 2]
    assert store.get_registered_model("a").latest_version == 3


def test_version_of_existing_model_keeps_its_description(store: AbstractStore) -> None:
    """Registering into an existing model does not touch its description or tags."""
    store.create_registered_model("m", "described", {"t": "1"})
    _versions(store, "m", 1)
    model = store.get_registered_model("m")
    assert (model.description, model.tags, model.latest_version) == ("described", {"t": "1"}, 1)


def test_create_model_version_unknown_run_creates_nothing(store: AbstractStore) -> None:
    """NotFound for a run that does not exist; the model is not created either."""
    _run(store)
    missing = uuid.uuid4().hex
    with pytest.raises(NotFound, match=f"no run with id '{missing}'"):
        store.create_model_version("m", missing, "model")
    with pytest.raises(NotFound):
        store.get_registered_model("m")
    with pytest.raises(InvalidArgument, match="run id"):
        store.create_model_version("m", "not-a-run", "model")
    assert store.search_registered_models() == []


def test_create_model_version_unknown_run_leaves_counter(store: AbstractStore) -> None:
    """A refused registration consumes no version number."""
    run_id = _versions(store, "m", 1)
    with pytest.raises(NotFound):
        store.create_model_version("m", uuid.uuid4().hex, "model")
    with pytest.raises(InvalidArgument):
        store.create_model_version("m", run_id, "model", tags={"": "x"})
    assert store.create_model_version("m", run_id, "model").version == 2
    assert _actions(store, "m") == ["create_version", "create_version"]


def test_get_model_version_accepts_int_like_text(store: AbstractStore) -> None:
    """``"2"`` means version 2."""
    _versions(store, "m", 2)
    assert store.get_model_version("m", "2").version == 2


@pytest.mark.parametrize("bad", [0, -1, "abc", "1.5", 1.0, True, None, "", " 1"])
def test_invalid_version_numbers_are_refused(store: AbstractStore, bad: object) -> None:
    """A malformed version is InvalidArgument, not NotFound."""
    _versions(store, "m", 1)
    with pytest.raises(InvalidArgument, match="invalid model version"):
        store.get_model_version("m", bad)  # type: ignore[arg-type]
    if bad is not None:  # None in set_aliases means "delete the alias"
        with pytest.raises(InvalidArgument, match="invalid model version"):
            store.set_aliases("m", {"champion": bad})  # type: ignore[dict-item]


def test_get_model_version_not_found_says_what_is_missing(store: AbstractStore) -> None:
    """A missing model and a missing version of an existing model read differently."""
    _versions(store, "m", 2)
    with pytest.raises(NotFound, match=r"^no registered model 'ghost'$"):
        store.get_model_version("ghost", 1)
    with pytest.raises(NotFound, match=r"^registered model 'm' has no version 9$"):
        store.get_model_version("m", 9)


def test_version_numbers_are_never_reused_after_delete(store: AbstractStore) -> None:
    """Deleting the newest versions does not give their numbers out again."""
    run_id = _versions(store, "m", 3)
    store.delete_model_version("m", 3)
    assert store.get_registered_model("m").latest_version == 2
    assert store.create_model_version("m", run_id, "model").version == 4
    for number in (1, 2, 4):
        store.delete_model_version("m", number)
    model = store.get_registered_model("m")
    assert model.latest_version is None
    assert store.search_model_versions("m") == []
    assert store.create_model_version("m", run_id, "model").version == 5
    with pytest.raises(NotFound, match="has no version 3 \\(it was deleted\\)"):
        store.get_model_version("m", 3)


def test_search_model_versions(store: AbstractStore) -> None:
    """By model and/or run; sorted by model name then version number (numerically)."""
    run_a, run_b = _run(store), _run(store)
    for name, run_id in [("b", run_a)] * 10 + [("a", run_b), ("b", run_b), ("a", run_a)]:
        store.create_model_version(name, run_id, "model")

    def keys(versions: list[ModelVersion]) -> list[tuple[str, int]]:
        return [(v.name, v.version) for v in versions]

    assert keys(store.search_model_versions()) == [("a", 1), ("a", 2)] + [
        ("b", n) for n in range(1, 12)
    ]
    assert keys(store.search_model_versions("a")) == [("a", 1), ("a", 2)]
    assert keys(store.search_model_versions(run_id=run_b)) == [("a", 1), ("b", 11)]
    assert keys(store.search_model_versions("b", run_b)) == [("b", 11)]
    assert store.search_model_versions("ghost") == []
    assert store.search_model_versions(run_id=uuid.uuid4().hex) == []
    with pytest.raises(InvalidArgument, match="run id"):
        store.search_model_versions(run_id="nope")


def test_search_model_versions_returns_full_versions(store: AbstractStore) -> None:
    """Searched versions carry their tags, stage and aliases, like get_model_version."""
    run_id = _run(store)
    store.create_model_version("m", run_id, "model", tags={"k": "v"})
    store.create_model_version("m", run_id, "model")
    store.set_aliases("m", {"champion": 1, "backup": 1})
    store.set_model_version_stage("m", 2, "staging")
    assert store.search_model_versions("m") == [
        store.get_model_version("m", 1),
        store.get_model_version("m", 2),
    ]
    assert store.search_model_versions("m")[0].aliases == ("backup", "champion")


def test_update_model_version(store: AbstractStore, clock: list[int]) -> None:
    """The description changes, nothing else; the model's updated_at moves."""
    _versions(store, "m", 1)
    before = store.get_model_version("m", 1)
    stamp = store.get_registered_model("m").updated_at
    after = store.update_model_version("m", "1", "better")
    assert after.description == "better"
    assert after == ModelVersion(**{**before.__dict__, "description": "better"})
    assert store.get_model_version("m", 1) == after
    assert store.get_registered_model("m").updated_at > stamp
    with pytest.raises(NotFound, match="has no version 2"):
        store.update_model_version("m", 2, "x")


def test_set_model_version_tag(store: AbstractStore) -> None:
    """Tags of a version are set and overwritten; keys validated like run tags."""
    run_id = _run(store)
    store.create_model_version("m", run_id, "model", tags={"a": "1"})
    store.set_model_version_tag("m", 1, "a", "2")
    store.set_model_version_tag("m", 1, "b", 0.5)  # type: ignore[arg-type]
    assert store.get_model_version("m", 1).tags == {"a": "2", "b": "0.5"}
    for bad in ["", "a/b", " x", "..", "x" * 251]:
        with pytest.raises(InvalidArgument, match="invalid tag key"):
            store.set_model_version_tag("m", 1, bad, "v")
    with pytest.raises(NotFound, match="no registered model 'ghost'"):
        store.set_model_version_tag("ghost", 1, "a", "b")
    with pytest.raises(NotFound, match="has no version 2"):
        store.set_model_version_tag("m", 2, "a", "b")


def test_returned_versions_are_snapshots(store: AbstractStore) -> None:
    """Mutating a returned version's tags never changes the stored version."""
    run_id = _run(store)
    version = store.create_model_version("m", run_id, "model", tags={"a": "1"})
    version.tags["a"] = "changed"  # type: ignore[index]
    assert store.get_model_version("m", 1).tags == {"a": "1"}


# --------------------------------------------------------------------------- stages


def test_stage_transitions_record_events(store: AbstractStore, clock: list[int]) -> None:
    """Each stage change returns the version and records who/why/from/to."""
    _versions(store, "m", 1)
    assert store.get_model_version("m", 1).stage == "None"
    staged = store.set_model_version_stage("m", 1, "staging", user="ann", reason="looks good")
    assert staged.stage == "Staging"
    assert store.set_model_version_stage("m", "1", "PRODUCTION").stage == "Production"
    assert store.set_model_version_stage("m", 1, "archived").stage == "Archived"
    assert store.set_model_version_stage("m", 1, "None").stage == "None"
    stages = [e for e in store.get_model_history("m") if e.action == "stage"]
    assert [(e.version, e.from_value, e.to_value) for e in stages] == [
        (1, "None", "Staging"),
        (1, "Staging", "Production"),
        (1, "Production", "Archived"),
        (1, "Archived", "None"),
    ]
    assert (stages[0].user, stages[0].reason, stages[0].alias) == ("ann", "looks good", None)
    assert stages[0].timestamp >= T0
    assert [e.timestamp for e in stages] == sorted(e.timestamp for e in stages)


def test_same_stage_again_records_nothing(store: AbstractStore) -> None:
    """Setting the stage a version already has changes nothing and logs nothing."""
    _versions(store, "m", 1)
    store.set_model_version_stage("m", 1, "Staging")
    store.set_model_version_stage("m", 1, "staging")
    assert _actions(store, "m") == ["create_version", "stage"]


def test_invalid_stage_and_missing_version(store: AbstractStore) -> None:
    """An unknown stage is InvalidArgument listing the stages; a missing version NotFound."""
    _versions(store, "m", 1)
    with pytest.raises(InvalidArgument, match="None, Staging, Production, Archived"):
        store.set_model_version_stage("m", 1, "prod")
    with pytest.raises(NotFound, match="has no version 2"):
        store.set_model_version_stage("m", 2, "Staging")
    with pytest.raises(NotFound, match="no registered model 'ghost'"):
        store.set_model_version_stage("ghost", 1, "Staging")
    assert store.get_model_version("m", 1).stage == "None"
    assert tuple(STAGES) == ("None", "Staging", "Production", "Archived")


# --------------------------------------------------------------------------- aliases


def test_set_and_read_aliases(store: AbstractStore) -> None:
    """Aliases show on the model, on the version and resolve with get_model_version_by_alias."""
    _versions(store, "m", 3)
    store.set_aliases("m", {"champion": 2, "challenger": 3, "backup": 2})
    assert store.get_registered_model("m").aliases == {
        "backup": 2,
        "challenger": 3,
        "champion": 2,
    }
    assert store.get_model_version("m", 2).aliases == ("backup", "champion")
    assert store.get_model_version("m", 1).aliases == ()
    assert store.get_model_version_by_alias("m", "champion").version == 2
    assert store.get_model_version_by_alias("m", "challenger") == store.get_model_version("m", 3)


def test_one_version_per_alias(store: AbstractStore) -> None:
    """Re-pointing an alias moves it: it never points at two versions."""
    _versions(store, "m", 2)
    store.set_aliases("m", {"champion": 1})
    store.set_aliases("m", {"champion": 2})
    assert store.get_model_version("m", 1).aliases == ()
    assert store.get_model_version("m", 2).aliases == ("champion",)
    assert store.get_registered_model("m").aliases == {"champion": 2}


def test_aliases_are_per_model(store: AbstractStore) -> None:
    """The same alias on two models points at each model's own version."""
    run_id = _versions(store, "a", 2)
    _versions(store, "b", 1, run_id)
    store.set_aliases("a", {"champion": 2})
    store.set_aliases("b", {"champion": 1})
    assert store.get_model_version_by_alias("a", "champion").version == 2
    assert store.get_model_version_by_alias("b", "champion").version == 1


def test_alias_events_record_from_and_to(store: AbstractStore, clock: list[int]) -> None:
    """One event per changed alias: versions as text, None when unset; given action/user/why."""
    _versions(store, "m", 2)
    store.set_aliases("m", {"champion": 1}, user="ann", reason="first")
    store.set_aliases(
        "m", {"champion": 2, "challenger": 1}, user="bob", reason="swap", action="promote"
    )
    store.set_aliases("m", {"challenger": None}, user="cy", reason="done")
    events = [e for e in store.get_model_history("m") if e.alias is not None]
    assert [
        (e.action, e.alias, e.version, e.from_value, e.to_value, e.user, e.reason) for e in events
    ] == [
        ("set_alias", "champion", 1, None, "1", "ann", "first"),
        ("promote", "champion", 2, "1", "2", "bob", "swap"),
        ("promote", "challenger", 1, None, "1", "bob", "swap"),
        ("set_alias", "challenger", 1, "1", None, "cy", "done"),
    ]
    assert all(e.name == "m" and e.timestamp >= T0 for e in events)


def test_unchanged_aliases_record_nothing(store: AbstractStore) -> None:
    """Setting an alias to where it points, or deleting an unset one, logs nothing."""
    _versions(store, "m", 2)
    store.set_aliases("m", {"champion": 1})
    store.set_aliases("m", {"champion": 1, "ghost": None})
    store.set_aliases("m", {})
    assert _alias_trail(store, "m") == [("champion", None, "1")]


def test_none_deletes_an_alias(store: AbstractStore) -> None:
    """``None`` removes the alias; reading it is then NotFound."""
    _versions(store, "m", 1)
    store.set_aliases("m", {"champion": 1})
    store.set_aliases("m", {"champion": None})
    assert store.get_registered_model("m").aliases == {}
    with pytest.raises(NotFound, match="has no alias 'champion'"):
        store.get_model_version_by_alias("m", "champion")


def test_set_aliases_missing_target_changes_nothing(store: AbstractStore) -> None:
    """One missing target version refuses the whole change set."""
    _versions(store, "m", 2)
    store.set_aliases("m", {"champion": 1})
    with pytest.raises(NotFound, match=r"^registered model 'm' has no version 7$"):
        store.set_aliases("m", {"champion": 2, "challenger": 7})
    assert store.get_registered_model("m").aliases == {"champion": 1}
    assert _alias_trail(store, "m") == [("champion", None, "1")]


def test_set_aliases_on_missing_model(store: AbstractStore) -> None:
    """NotFound names the model, not an alias or version."""
    with pytest.raises(NotFound, match=r"^no registered model 'ghost'$"):
        store.set_aliases("ghost", {"champion": 1})
    with pytest.raises(NotFound, match=r"^no registered model 'ghost'$"):
        store.set_aliases("ghost", {})


@pytest.mark.parametrize("bad", ["latest", "LATEST", "v1", "V12", "", "a b", "a.b", "x" * 256, 3])
def test_set_aliases_invalid_name_changes_nothing(store: AbstractStore, bad: object) -> None:
    """Reserved or malformed alias names are InvalidArgument "invalid alias name"."""
    _versions(store, "m", 1)
    with pytest.raises(InvalidArgument, match=r"^invalid alias name"):
        store.set_aliases("m", {"champion": 1, bad: 1})  # type: ignore[dict-item]
    assert store.get_registered_model("m").aliases == {}
    assert _alias_trail(store, "m") == []


def test_alias_names_that_are_allowed(store: AbstractStore) -> None:
    """Letters, digits, '_' and '-', up to 255; 'v1a' and 'latest2' are not reserved."""
    _versions(store, "m", 1)
    names = ["champion", "A-b_9", "v1a", "latest2", "vv1", "x" * 255]
    store.set_aliases("m", dict.fromkeys(names, 1))
    assert set(store.get_registered_model("m").aliases) == set(names)


def test_expected_mismatch_changes_nothing(store: AbstractStore) -> None:
    """If any expected alias moved, AlreadyExists with both versions; nothing changes."""
    _versions(store, "m", 3)
    store.set_aliases("m", {"champion": 1, "challenger": 2})
    with pytest.raises(
        AlreadyExists,
        match=re.escape("alias champion of model m changed concurrently: expected v3, found v1"),
    ):
        store.set_aliases(
            "m",
            {"champion": 2, "challenger": None},
            expected={"champion": 3, "challenger": 2},
        )
    assert store.get_registered_model("m").aliases == {"champion": 1, "challenger": 2}
    assert len(_alias_trail(store, "m")) == 2


def test_expected_unset_alias(store: AbstractStore) -> None:
    """``None`` in ``expected`` means "must be unset"; the message says so both ways."""
    _versions(store, "m", 2)
    store.set_aliases("m", {"champion": 1}, expected={"champion": None})
    with pytest.raises(AlreadyExists, match="expected unset, found v1"):
        store.set_aliases("m", {"champion": 2}, expected={"champion": None})
    with pytest.raises(AlreadyExists, match="expected v1, found unset"):
        store.set_aliases("m", {"challenger": 2}, expected={"challenger": 1})
    assert store.get_registered_model("m").aliases == {"champion": 1}


def test_expected_match_applies_all_changes(store: AbstractStore) -> None:
    """A promotion: champion moves to the challenger's version, challenger is removed."""
    _versions(store, "m", 2)
    store.set_aliases("m", {"champion": 1, "challenger": 2})
    store.set_aliases(
        "m",
        {"champion": 2, "challenger": None},
        expected={"champion": 1, "challenger": 2},
        user="ann",
        reason="auc +0.02",
        action="promote",
    )
    assert store.get_registered_model("m").aliases == {"champion": 2}
    assert _alias_trail(store, "m")[-2:] == [("champion", "1", "2"), ("challenger", "2", None)]


def test_expected_may_name_aliases_not_changed(store: AbstractStore) -> None:
    """``expected`` can guard an alias the change set does not touch."""
    _versions(store, "m", 2)
    store.set_aliases("m", {"challenger": 2})
    store.set_aliases("m", {"champion": 2}, expected={"challenger": 2})
    with pytest.raises(AlreadyExists, match="alias challenger"):
        store.set_aliases("m", {"champion": 1}, expected={"challenger": 1})
    assert store.get_registered_model("m").aliases == {"challenger": 2, "champion": 2}


def test_invalid_expected_is_refused(store: AbstractStore) -> None:
    """``expected`` is validated like ``changes``."""
    _versions(store, "m", 1)
    with pytest.raises(InvalidArgument, match="invalid alias name"):
        store.set_aliases("m", {"champion": 1}, expected={"latest": 1})
    with pytest.raises(InvalidArgument, match="expected must be a mapping"):
        store.set_aliases("m", {"champion": 1}, expected=[1])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="changes must be a mapping"):
        store.set_aliases("m", [("champion", 1)])  # type: ignore[arg-type]


def test_latest_alias_is_the_newest_existing_version(store: AbstractStore) -> None:
    """'latest' (any case) reads the highest existing version and follows deletions."""
    run_id = _versions(store, "m", 3)
    assert store.get_model_version_by_alias("m", "latest").version == 3
    assert store.get_model_version_by_alias("m", "Latest").version == 3
    store.delete_model_version("m", 3)
    assert store.get_model_version_by_alias("m", "latest").version == 2
    store.create_model_version("m", run_id, "model")
    assert store.get_model_version_by_alias("m", "latest").version == 4


def test_latest_of_model_without_versions(store: AbstractStore) -> None:
    """A model without versions has no 'latest': NotFound saying so."""
    store.create_registered_model("m")
    with pytest.raises(NotFound, match="'m' has no versions"):
        store.get_model_version_by_alias("m", "latest")


def test_get_by_alias_errors_are_distinguishable(store: AbstractStore) -> None:
    """Invalid alias name (InvalidArgument) vs missing model vs missing alias (NotFound)."""
    _versions(store, "m", 1)
    with pytest.raises(InvalidArgument, match=r"^invalid alias name 'no such'"):
        store.get_model_version_by_alias("m", "no such")
    with pytest.raises(InvalidArgument, match=r"^invalid alias name 'v1'"):
        store.get_model_version_by_alias("m", "v1")
    with pytest.raises(NotFound, match=r"^no registered model 'ghost'$"):
        store.get_model_version_by_alias("ghost", "champion")
    with pytest.raises(NotFound, match=r"^registered model 'm' has no alias 'champion'$"):
        store.get_model_version_by_alias("m", "champion")


# --------------------------------------------------------------------------- delete


def test_delete_version_removes_its_aliases_with_events(
    store: AbstractStore, clock: list[int]
) -> None:
    """Aliases pointing at a deleted version go with it, each with an event; others stay."""
    _versions(store, "m", 2)
    store.set_model_version_tag("m", 1, "k", "v")
    store.set_aliases("m", {"champion": 1, "backup": 1, "challenger": 2})
    store.delete_model_version("m", 1, user="ann", reason="leaky feature")
    assert store.get_registered_model("m").aliases == {"challenger": 2}
    with pytest.raises(NotFound, match="has no version 1"):
        store.get_model_version("m", 1)
    with pytest.raises(NotFound, match="has no alias 'champion'"):
        store.get_model_version_by_alias("m", "champion")
    tail = store.get_model_history("m")[-3:]
    assert [(e.action, e.alias, e.version, e.from_value, e.to_value) for e in tail] == [
        ("delete_alias", "backup", 1, "1", None),
        ("delete_alias", "champion", 1, "1", None),
        ("delete_version", None, 1, tail[2].from_value, None),
    ]
    assert all((e.user, e.reason) == ("ann", "leaky feature") for e in tail)
    assert tail[2].from_value is not None and tail[2].from_value.startswith("runs:/")


def test_delete_missing_version(store: AbstractStore) -> None:
    """Deleting twice, or a version of a missing model, is NotFound."""
    _versions(store, "m", 1)
    store.delete_model_version("m", 1)
    with pytest.raises(NotFound, match="has no version 1"):
        store.delete_model_version("m", 1)
    with pytest.raises(NotFound, match="no registered model 'ghost'"):
        store.delete_model_version("ghost", 1)


def test_deleted_version_tags_do_not_come_back(store: AbstractStore) -> None:
    """Deleting a version drops its tags; the next version starts clean."""
    run_id = _run(store)
    store.create_model_version("m", run_id, "model", tags={"k": "v"})
    store.delete_model_version("m", 1)
    assert store.create_model_version("m", run_id, "model").tags == {}


def test_set_alias_to_deleted_version_is_not_found(store: AbstractStore) -> None:
    """A deleted version cannot be an alias target."""
    _versions(store, "m", 2)
    store.delete_model_version("m", 1)
    with pytest.raises(NotFound, match="has no version 1 \\(it was deleted\\)"):
        store.set_aliases("m", {"champion": 1})


# --------------------------------------------------------------------------- history


def test_history_is_oldest_first(store: AbstractStore, clock: list[int]) -> None:
    """Every change appears once, in the order it happened, with the given user."""
    run_id = _run(store)
    store.create_model_version("m", run_id, "model", user="ann")
    store.create_model_version("m", run_id, "model", user="bob")
    store.set_model_version_stage("m", 2, "Staging", user="bob")
    store.set_aliases("m", {"champion": 2}, user="cy")
    store.delete_model_version("m", 1, user="dee")
    history = store.get_model_history("m")
    assert [(e.action, e.version, e.user) for e in history] == [
        ("create_version", 1, "ann"),
        ("create_version", 2, "bob"),
        ("stage", 2, "bob"),
        ("set_alias", 2, "cy"),
        ("delete_version", 1, "dee"),
    ]
    assert history[0].to_value == f"runs:/{run_id}/model"
    assert history[0].from_value is None
    stamps = [e.timestamp for e in history]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_history_is_per_model(store: AbstractStore) -> None:
    """Each model has its own log."""
    run_id = _versions(store, "a", 1)
    _versions(store, "b", 2, run_id)
    assert [e.version for e in store.get_model_history("a")] == [1]
    assert [e.version for e in store.get_model_history("b")] == [1, 2]


def test_history_of_missing_model(store: AbstractStore) -> None:
    """NotFound naming the model; a model without changes has an empty history."""
    with pytest.raises(NotFound, match="no registered model 'ghost'"):
        store.get_model_history("ghost")
    store.create_registered_model("m")
    assert store.get_model_history("m") == []


def test_record_registry_event(store: AbstractStore) -> None:
    """A caller's decision that changed nothing is appended as given."""
    _versions(store, "m", 1)
    event = RegistryEvent(
        name="m",
        version=1,
        action="promotion_rejected",
        from_value="0.81",
        to_value="0.79",
        reason="auc dropped",
        user="ann",
        timestamp=T0 + 5,
    )
    store.record_registry_event(event)
    store.record_registry_event(
        RegistryEvent("m", None, "note", None, None, "", "", T0, alias="champion")
    )
    history = store.get_model_history("m")
    assert history[1] == event
    assert history[2].alias == "champion"
    assert history[2].version is None
    assert store.get_registered_model("m").aliases == {}


def test_record_registry_event_validation(store: AbstractStore) -> None:
    """Unknown model: NotFound; malformed fields: InvalidArgument; nothing stored."""
    _versions(store, "m", 1)
    with pytest.raises(NotFound, match="no registered model 'ghost'"):
        store.record_registry_event(RegistryEvent("ghost", 1, "x", None, None, "", "", T0))
    bad_events = [
        RegistryEvent("m", 0, "x", None, None, "", "", T0),
        RegistryEvent("m", 1, "", None, None, "", "", T0),
        RegistryEvent("m", 1, "x", None, None, "", "", -1),
        RegistryEvent("m", 1, "x", None, None, 5, "", T0),  # type: ignore[arg-type]
        RegistryEvent("m", 1, "x", None, None, "", "", T0, alias="latest"),
    ]
    for bad in bad_events:
        with pytest.raises(InvalidArgument):
            store.record_registry_event(bad)
    with pytest.raises(InvalidArgument, match="RegistryEvent"):
        store.record_registry_event({"name": "m"})  # type: ignore[arg-type]
    assert _actions(store, "m") == ["create_version"]


# --------------------------------------------------------------------------- updated_at


def test_updated_at_follows_every_change(store: AbstractStore, clock: list[int]) -> None:
    """Versions, stages, aliases, tags and deletions all move the model's updated_at."""
    run_id = _versions(store, "m", 2)
    stamps = [store.get_registered_model("m").updated_at]
    changes = [
        lambda: store.create_model_version("m", run_id, "model"),
        lambda: store.set_model_version_stage("m", 1, "Staging"),
        lambda: store.set_aliases("m", {"champion": 1}),
        lambda: store.set_model_version_tag("m", 1, "k", "v"),
        lambda: store.set_registered_model_tag("m", "k", "v"),
        lambda: store.update_model_version("m", 1, "d"),
        lambda: store.delete_model_version("m", 2),
    ]
    for change in changes:
        change()
        stamps.append(store.get_registered_model("m").updated_at)
    assert all(b > a for a, b in itertools.pairwise(stamps)), stamps
    assert store.get_registered_model("m").created_at < stamps[0]


# --------------------------------------------------------------------------- threads


def test_concurrent_registration_from_threads(store: AbstractStore) -> None:
    """Eight threads registering at once get 1..80: no duplicates, no gaps."""
    run_id = _run(store)
    barrier = threading.Barrier(8)
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def register() -> None:
        try:
            barrier.wait()
            for _ in range(10):
                number = store.create_model_version("m", run_id, "model").version
                with lock:
                    got.append(number)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(got) == list(range(1, 81))
    assert [v.version for v in store.search_model_versions("m")] == list(range(1, 81))
    assert _actions(store, "m") == ["create_version"] * 80


def test_concurrent_compare_and_set_from_threads(store: AbstractStore) -> None:
    """Threads racing compare-and-set on one alias: each success is exactly one event."""
    _versions(store, "m", 4)
    store.set_aliases("m", {"champion": 1})
    successes: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def race(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(20):
                current = store.get_registered_model("m").aliases["champion"]
                target = (current + worker + i) % 4 + 1
                if target == current:
                    continue
                try:
                    store.set_aliases("m", {"champion": target}, expected={"champion": current})
                except AlreadyExists:
                    continue
                with lock:
                    successes.append(target)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    trail = _alias_trail(store, "m")
    assert len(trail) == len(successes) + 1
    for (_, _, before), (_, after_from, _) in itertools.pairwise(trail):
        assert after_from == before  # every change starts where the previous one ended
    final = store.get_registered_model("m").aliases["champion"]
    assert trail[-1][2] == str(final)
