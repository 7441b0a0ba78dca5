"""The model registry: registered models, versions, aliases, stages, promotion and lineage.

:class:`RegistryClientMixin` adds MLflow-named registry methods to
:class:`nbmlops.client.Client`; the module-level functions (:func:`register_model`,
:func:`promote`, ...) are the fluent twins used by ``import nbmlops`` and by the ``%mlops``
magics. Everything goes through the store's registry contract (see
:mod:`nbmlops.store.base`), which makes version numbering and alias changes atomic and
writes the audit log.

**Aliases** are the primary mechanism: ``champion``, ``challenger``, ``prod-2026``... each
points at one version of a model; ``latest`` is reserved (the newest version) and names like
``v3`` are refused. A stage label (None/Staging/Production/Archived) is kept for MLflow users.

**Promotion rule** (:func:`promote`): the candidate's source-run metric is compared with the
current champion's; the candidate takes the alias only when it is strictly better by more
than ``min_delta`` (``greater_is_better`` says which way), when there is no champion yet, or
with ``force=True``. The previous champion moves to ``previous-<alias>``. A missing (or NaN)
metric on either side is an error. The alias move is one compare-and-set in the store, so
two concurrent promotions cannot both win; every decision, including a rejection, is
recorded in the model's audit log.

``import nbmlops.registry`` is light: pandas is imported only for the table helpers.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbmlops.entities import ModelVersion, RegisteredModel, RegistryEvent, Run, to_dict
from nbmlops.errors import AlreadyExists, InvalidArgument, NbMlopsError, NotFound
from nbmlops.validation import (
    short,
    validate_alias,
    validate_key,
    validate_model_name,
    validate_run_id,
    validate_stage,
    validate_version,
)

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.models import ModelInfo
    from nbmlops.store.base import AbstractStore

__all__ = [
    "PROMOTION_REJECTED",
    "PromotionDecision",
    "RegistryClientMixin",
    "history_table",
    "models_table",
    "promote",
    "register_model",
    "register_run",
]

#: Audit-log actions written by this module (the store writes the others).
PROMOTE = "promote"
PROMOTION_REJECTED = "promotion_rejected"
_PROMOTE_ATTEMPTS = 5
_FILTER_TERM = re.compile(
    r"\s*(?P<key>[A-Za-z_.]+)\s*(?P<op>=|!=|ILIKE|LIKE)\s*(?P<q>['\"])(?P<value>.*?)(?P=q)\s*",
    re.IGNORECASE,
)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _user() -> str:
    from nbmlops.client import current_user

    return current_user()


def _parse_filter(
    filter_string: str | None, allowed: tuple[str, ...]
) -> list[tuple[str, str, str]]:
    """``key op 'value'`` terms joined by AND (a small subset of MLflow's registry filters)."""
    if filter_string is None or not filter_string.strip():
        return []
    if not isinstance(filter_string, str):
        raise InvalidArgument(f"filter_string must be a string, got {short(filter_string)}")
    terms = []
    for part in re.split(r"\s+AND\s+", filter_string.strip(), flags=re.IGNORECASE):
        match = _FILTER_TERM.fullmatch(part)
        key = match["key"].lower().removeprefix("attributes.") if match else ""
        if not match or key not in allowed:
            raise InvalidArgument(
                f"unsupported filter {short(part)}: use {' / '.join(allowed)} with =, !=, LIKE "
                "or ILIKE and a quoted value, joined by AND (e.g. \"name LIKE 'churn%'\")"
            )
        terms.append((key, match["op"].upper(), match["value"]))
    return terms


def _like(pattern: str, text: str, case: bool) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, text, 0 if case else re.IGNORECASE | re.DOTALL) is not None


def _matches(terms: list[tuple[str, str, str]], values: Mapping[str, str]) -> bool:
    for key, op, value in terms:
        actual = values[key]
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "LIKE" and not _like(value, actual, case=True):
            return False
        if op == "ILIKE" and not _like(value, actual, case=False):
            return False
    return True


# --------------------------------------------------------------------------- promotion


@dataclasses.dataclass(frozen=True)
class PromotionDecision:
    """The outcome of :func:`promote`, with both metric values and the rule applied.

    ``promoted`` says whether ``alias`` now points at ``version``; ``previous_version`` is
    the champion it replaced (now ``previous_alias``), None when there was none.
    """

    name: str
    version: int
    alias: str
    metric: str
    candidate_value: float | None
    champion_version: int | None
    champion_value: float | None
    greater_is_better: bool
    min_delta: float
    forced: bool
    promoted: bool
    reason: str
    previous_alias: str
    user: str
    timestamp: int

    @property
    def previous_version(self) -> int | None:
        """The version that lost the alias (None when nothing changed hands)."""
        return self.champion_version if self.promoted else None

    def __str__(self) -> str:
        verdict = "PROMOTED" if self.promoted else "NOT PROMOTED"
        return f"{verdict}: {self.reason}"

    def _repr_html_(self) -> str:
        import html

        color = "#1a7f37" if self.promoted else "#9a6700"
        verdict = "promoted" if self.promoted else "not promoted"
        return (
            f"<div><b style='color:{color}'>{verdict}</b> "
            f"{html.escape(self.name)} v{self.version} → @{html.escape(self.alias)}<br>"
            f"<span>{html.escape(self.reason)}</span></div>"
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _metric_of(run: Run, metric: str, who: str) -> float:
    metrics = run.data.metrics
    if metric not in metrics:
        have = ", ".join(sorted(metrics)) or "none"
        raise InvalidArgument(
            f"cannot compare: {who} (source run {run.info.run_id}) has no metric {metric!r} "
            f"(its metrics: {have}); log it, choose another --metric, or use force=True"
        )
    value = float(metrics[metric])
    if math.isnan(value):
        raise InvalidArgument(
            f"cannot compare: metric {metric!r} of {who} (source run {run.info.run_id}) is NaN"
        )
    return value


# --------------------------------------------------------------------------- client mixin


class RegistryClientMixin:
    """Registry methods of :class:`~nbmlops.client.Client` (MLflow ``MlflowClient`` names).

    Expects ``self.store`` (an :class:`~nbmlops.store.base.AbstractStore`) and the client's
    ``get_run``, ``read_artifact`` and ``get_experiment`` methods.
    """

    store: AbstractStore

    # ----------------------------------------------------------------- registered models
    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        """Create an empty registered model (AlreadyExists when the name is taken)."""
        return self.store.create_registered_model(
            validate_model_name(name), description or "", _str_tags(tags)
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its aliases and latest version (NotFound: "no registered model")."""
        return self.store.get_registered_model(validate_model_name(name))

    def search_registered_models(
        self, filter_string: str | None = None, max_results: int | None = None
    ) -> list[RegisteredModel]:
        """Registered models, by name. ``filter_string``: ``name = 'x'``, ``name LIKE 'ch%'``
        or ``name ILIKE '%churn%'`` (joined by AND)."""
        terms = _parse_filter(filter_string, ("name",))
        like = next((v for k, op, v in terms if op in ("LIKE", "ILIKE")), None)
        exact = next((v for k, op, v in terms if op == "="), None)
        found = self.store.search_registered_models(name_like=like if exact is None else None)
        result = [m for m in found if _matches(terms, {"name": m.name})]
        return result if max_results is None else result[:max_results]

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        """Replace a registered model's description."""
        return self.store.update_registered_model(validate_model_name(name), description or "")

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set one tag of a registered model."""
        self.store.set_registered_model_tag(
            validate_model_name(name), validate_key(key, "tag"), str(value)
        )

    # ----------------------------------------------------------------- versions
    def register_model(
        self,
        model_uri: str,
        name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register the model at ``runs:/<run_id>/<path>`` as the next version of ``name``.

        The model is created when new. The run must hold a logged model at that path
        (NotFound otherwise). Version numbers are assigned atomically by the store.
        """
        from nbmlops.models import parse_model_uri, read_model_metadata

        validate_model_name(name)
        parsed = parse_model_uri(model_uri)
        if parsed.kind == "models":
            assert parsed.name is not None
            source = (
                self.get_model_version(parsed.name, parsed.version)
                if parsed.version is not None
                else self.get_model_version_by_alias(parsed.name, parsed.alias or "latest")
            )
            run_id, path = source.source_run_id, source.model_path
        else:
            assert parsed.run_id is not None and parsed.path is not None
            run_id, path = parsed.run_id, parsed.path
        read_model_metadata(run_id, path, client=self)  # type: ignore[arg-type]
        return self.store.create_model_version(
            name, run_id, path, description or "", _str_tags(tags), user=_user()
        )

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        """MLflow's spelling of :meth:`register_model`: ``source`` is a ``runs:/`` URI, or an
        artifact path inside ``run_id``."""
        if run_id is not None and not source.startswith(("runs:/", "models:/")):
            source = f"runs:/{validate_run_id(run_id)}/{source}"
        return self.register_model(source, name, description=description, tags=tags)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version (NotFound names the missing model or version)."""
        return self.store.get_model_version(validate_model_name(name), validate_version(version))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = None,
        *,
        name: str | None = None,
        run_id: str | None = None,
    ) -> list[ModelVersion]:
        """Versions by model name then version. ``filter_string``: ``name = 'm'``,
        ``run_id = '<id>'``, ``name LIKE 'ch%'`` (joined by AND); or the keyword arguments."""
        terms = _parse_filter(filter_string, ("name", "run_id"))
        for key, op, value in terms:
            if op == "=" and key == "name" and name is None:
                name = value
            if op == "=" and key == "run_id" and run_id is None:
                run_id = value
        found = self.store.search_model_versions(
            name=None if name is None else validate_model_name(name),
            run_id=None if run_id is None else validate_run_id(run_id),
        )
        result = [v for v in found if _matches(terms, {"name": v.name, "run_id": v.source_run_id})]
        return result if max_results is None else result[:max_results]

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> ModelVersion:
        """Replace a version's description."""
        return self.store.update_model_version(
            validate_model_name(name), validate_version(version), description or ""
        )

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        """Set one tag of a version."""
        self.store.set_model_version_tag(
            validate_model_name(name),
            validate_version(version),
            validate_key(key, "tag"),
            str(value),
        )

    def delete_model_version(
        self, name: str, version: int | str, reason: str | None = None
    ) -> None:
        """Delete a version and the aliases pointing at it (recorded in the audit log)."""
        self.store.delete_model_version(
            validate_model_name(name), validate_version(version), user=_user(), reason=reason or ""
        )

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
        reason: str | None = None,
    ) -> ModelVersion:
        """Set the optional stage label (None/Staging/Production/Archived).

        With ``archive_existing_versions``, other versions in the target stage (Staging or
        Production) move to Archived. Every change is in the audit log. Aliases are the
        primary mechanism; stages are kept for MLflow users.
        """
        name = validate_model_name(name)
        number = validate_version(version)
        canonical = validate_stage(stage)
        user, why = _user(), reason or ""
        updated = self.store.set_model_version_stage(name, number, canonical, user=user, reason=why)
        if archive_existing_versions and canonical in ("Staging", "Production"):
            for other in self.store.search_model_versions(name=name):
                if other.version != number and other.stage == canonical:
                    self.store.set_model_version_stage(
                        name,
                        other.version,
                        "Archived",
                        user=user,
                        reason=f"archived: v{number} moved to {canonical}",
                    )
        return updated

    # ----------------------------------------------------------------- aliases
    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, reason: str | None = None
    ) -> None:
        """Point ``alias`` at ``version`` (it leaves any other version of the model).

        InvalidArgument ("invalid alias name ...") for a malformed or reserved alias
        (``latest``, ``v3``); NotFound for a missing model or version.
        """
        self.store.set_aliases(
            validate_model_name(name),
            {validate_alias(alias): validate_version(version)},
            user=_user(),
            reason=reason or "",
            action="set_alias",
        )

    def delete_registered_model_alias(
        self, name: str, alias: str, reason: str | None = None
    ) -> None:
        """Remove an alias (NotFound when the model does not have it)."""
        name = validate_model_name(name)
        alias = validate_alias(alias)
        model = self.store.get_registered_model(name)
        if alias not in model.aliases:
            raise NotFound(f"registered model {name!r} has no alias {alias!r}")
        self.store.set_aliases(
            name,
            {alias: None},
            expected={alias: model.aliases[alias]},
            user=_user(),
            reason=reason or "",
            action="delete_alias",
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at (``latest``: the newest version)."""
        return self.store.get_model_version_by_alias(validate_model_name(name), alias)

    # ----------------------------------------------------------------- audit log, lineage
    def get_model_history(self, name: str) -> list[RegistryEvent]:
        """The model's audit log, oldest first: version creations/deletions, alias and stage
        changes and promotion decisions, each with who, when, from → to and why."""
        return self.store.get_model_history(validate_model_name(name))

    def get_model_lineage(self, name: str, version: int | str) -> dict[str, Any]:
        """Where a version came from, as JSON-compatible data.

        Keys: ``model`` (name, version, uri, source, aliases, stage, created_at/by),
        ``run`` (id, name, experiment, status, times, params, metrics), ``notebook``,
        ``cell_id``, ``execution_count``, ``code_sha256``, ``code``, ``parents`` (the chain
        of parent runs up to the notebook session run), ``datasets`` (data fingerprints of
        the source run, and of the run the model was fitted in when that differs),
        ``artifact`` (format, sha256, library versions, signature; or ``error`` when the
        model files are gone) and ``environment`` (git commit, environment digest).
        """
        from nbmlops.models import TRAINED_IN_TAG, read_model_metadata

        mv = self.get_model_version(name, version)
        run = self.get_run(mv.source_run_id)  # type: ignore[attr-defined]
        info, tags = run.info, run.data.tags
        try:
            experiment_name = self.get_experiment(info.experiment_id).name  # type: ignore[attr-defined]
        except NbMlopsError:
            experiment_name = None
        parents = []
        parent_id, seen = info.parent_run_id, {info.run_id}
        while parent_id and parent_id not in seen and len(parents) < 50:
            seen.add(parent_id)
            try:
                parent = self.get_run(parent_id)  # type: ignore[attr-defined]
            except NotFound:
                parents.append({"run_id": parent_id, "missing": True})
                break
            parents.append(
                {
                    "run_id": parent.info.run_id,
                    "run_name": parent.info.run_name,
                    "run_type": parent.data.tags.get("nbmlops.run_type"),
                    "status": parent.info.status.value,
                }
            )
            parent_id = parent.info.parent_run_id
        datasets = [dict(to_dict(d), run_id=info.run_id) for d in run.inputs]
        trained_in = tags.get(TRAINED_IN_TAG)
        training: dict[str, Any] | None = None
        if trained_in and trained_in != info.run_id:
            try:
                fit_run = self.get_run(trained_in)  # type: ignore[attr-defined]
                training = _source_dict(fit_run)
                datasets += [dict(to_dict(d), run_id=trained_in) for d in fit_run.inputs]
            except NotFound:
                training = {"run_id": trained_in, "missing": True}
        try:
            meta = read_model_metadata(mv.source_run_id, mv.model_path, client=self)  # type: ignore[arg-type]
            artifact: dict[str, Any] = {
                k: meta.get(k)
                for k in (
                    "flavor",
                    "format",
                    "file",
                    "sha256",
                    "size",
                    "class",
                    "versions",
                    "signature",
                )
            }
        except NbMlopsError as exc:
            artifact = {"error": str(exc)}
        return {
            "model": {
                "name": mv.name,
                "version": mv.version,
                "uri": f"models:/{mv.name}/{mv.version}",
                "source": mv.source,
                "aliases": list(mv.aliases),
                "stage": mv.stage,
                "created_at": mv.created_at,
                "created_by": mv.created_by,
            },
            "run": {
                "run_id": info.run_id,
                "run_name": info.run_name,
                "experiment_id": info.experiment_id,
                "experiment_name": experiment_name,
                "status": info.status.value,
                "start_time": info.start_time,
                "end_time": info.end_time,
                "user": info.user,
                "params": dict(run.data.params),
                "metrics": dict(run.data.metrics),
            },
            **_source_dict(run),
            "parents": parents,
            "trained_in": training,
            "datasets": datasets,
            "artifact": artifact,
            "environment": {
                "git_commit": tags.get("mlflow.source.git.commit"),
                "env_digest": tags.get("nbmlops.env_digest"),
            },
        }

    # ----------------------------------------------------------------- promotion
    def promote(
        self,
        name: str,
        version: int | str,
        metric: str = "f1",
        greater_is_better: bool = True,
        min_delta: float = 0.0,
        alias: str = "champion",
        force: bool = False,
        reason: str | None = None,
    ) -> PromotionDecision:
        """Champion–challenger promotion; see :func:`nbmlops.registry.promote`."""
        name = validate_model_name(name)
        number = validate_version(version)
        alias = validate_alias(alias)
        previous_alias = validate_alias(f"previous-{alias}")
        metric = validate_key(metric, "metric")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)):
            raise InvalidArgument(f"min_delta must be a number, got {short(min_delta)}")
        min_delta = float(min_delta)
        if not math.isfinite(min_delta) or min_delta < 0:
            raise InvalidArgument(f"min_delta must be a finite number >= 0, got {min_delta}")
        user = _user()
        for _attempt in range(_PROMOTE_ATTEMPTS):
            decision = self._decide(
                name, number, metric, greater_is_better, min_delta, alias, previous_alias,
                force, user, reason,
            )  # fmt: skip
            if not decision.promoted:
                self.store.record_registry_event(
                    RegistryEvent(
                        name=name,
                        version=number,
                        action=PROMOTION_REJECTED,
                        from_value=_text(decision.champion_version),
                        to_value=str(number),
                        reason=decision.reason,
                        user=user,
                        timestamp=decision.timestamp,
                        alias=alias,
                    )
                )
                return decision
            old = decision.champion_version
            changes: dict[str, int | None] = {alias: number}
            if old is not None:
                changes[previous_alias] = old
            try:
                self.store.set_aliases(
                    name,
                    changes,
                    expected={alias: old},
                    user=user,
                    reason=decision.reason,
                    action=PROMOTE,
                )
            except AlreadyExists:
                continue  # the champion changed under us: decide again against the new one
            return decision
        raise AlreadyExists(
            f"alias {alias!r} of model {name!r} kept changing while promoting v{number} "
            f"({_PROMOTE_ATTEMPTS} attempts); try again"
        )

    def _decide(
        self,
        name: str,
        number: int,
        metric: str,
        greater_is_better: bool,
        min_delta: float,
        alias: str,
        previous_alias: str,
        force: bool,
        user: str,
        reason: str | None,
    ) -> PromotionDecision:
        model = self.get_registered_model(name)
        candidate = self.get_model_version(name, number)
        champion_version = model.aliases.get(alias)
        cand_run = self.get_run(candidate.source_run_id)  # type: ignore[attr-defined]
        label = f"candidate {name} v{number}"
        champion_value: float | None = None
        if force:
            candidate_value = _optional_metric(cand_run, metric)
        else:
            candidate_value = _metric_of(cand_run, metric, label)
        if champion_version is not None and champion_version != number:
            champ_label = f"current @{alias} {name} v{champion_version}"
            try:
                champ = self.get_model_version(name, champion_version)
                champ_run = self.get_run(champ.source_run_id)  # type: ignore[attr-defined]
            except NotFound as exc:
                if not force:
                    raise InvalidArgument(
                        f"cannot compare: the source run of {champ_label} is gone ({exc}); "
                        "use force=True to promote anyway"
                    ) from None
                champ_run = None
            if champ_run is not None:
                champion_value = (
                    _optional_metric(champ_run, metric)
                    if force
                    else _metric_of(champ_run, metric, champ_label)
                )
        direction = ">" if greater_is_better else "<"
        cand_text = f"{metric} {_fmt(candidate_value)}"
        note = f" ({reason})" if reason else ""
        if champion_version == number:
            promoted, why = False, (
                f"{name} v{number} already holds @{alias}; nothing to do"
            )  # fmt: skip
        elif force:
            promoted = True
            why = (
                f"forced: {name} v{number} ({cand_text}) replaces "
                + (
                    f"v{champion_version} ({metric} {_fmt(champion_value)})"
                    if champion_version
                    else "no champion"
                )
                + f" as @{alias}"
            )
        elif champion_version is None:
            promoted = True
            why = f"{name} v{number} ({cand_text}) becomes @{alias}: there was no @{alias} yet"
        else:
            assert candidate_value is not None and champion_value is not None
            gain = (candidate_value - champion_value) * (1 if greater_is_better else -1)
            promoted = gain > min_delta
            comparison = (
                f"{metric} {_fmt(candidate_value)} vs {_fmt(champion_value)} of "
                f"v{champion_version} ({'higher' if greater_is_better else 'lower'} is better, "
                f"min_delta {min_delta:g})"
            )
            if promoted:
                why = (
                    f"{name} v{number} becomes @{alias}: {comparison}; improvement {gain:.6g} "
                    f"> {min_delta:g}; v{champion_version} moves to @{previous_alias}"
                )
            else:
                why = (
                    f"{name} v{number} stays out of @{alias}: {comparison}; it must be "
                    f"{direction} the champion by more than {min_delta:g} (difference {gain:.6g})"
                )
        if force and champion_version is not None and champion_version != number:
            why += f"; v{champion_version} moves to @{previous_alias}"
        return PromotionDecision(
            name=name,
            version=number,
            alias=alias,
            metric=metric,
            candidate_value=candidate_value,
            champion_version=champion_version,
            champion_value=champion_value,
            greater_is_better=greater_is_better,
            min_delta=min_delta,
            forced=force,
            promoted=promoted,
            reason=why + note,
            previous_alias=previous_alias,
            user=user,
            timestamp=_now_ms(),
        )


def _optional_metric(run: Run, metric: str) -> float | None:
    value = run.data.metrics.get(metric)
    return None if value is None or math.isnan(value) else float(value)


def _text(version: int | None) -> str | None:
    return None if version is None else str(version)


def _str_tags(tags: Mapping[str, Any] | None) -> dict[str, str] | None:
    if tags is None:
        return None
    if not isinstance(tags, Mapping):
        raise InvalidArgument(f"tags must be a mapping of key to value, got {short(tags)}")
    return {validate_key(k, "tag"): str(v) for k, v in tags.items()}


def _source_dict(run: Run) -> dict[str, Any]:
    source, tags = run.info.source, run.data.tags
    return {
        "run_id": run.info.run_id,
        "notebook": source.path or tags.get("nbmlops.notebook") or tags.get("mlflow.source.name"),
        "cell_id": source.cell_id or tags.get("nbmlops.cell_id"),
        "execution_count": source.execution_count,
        "code_sha256": source.code_sha256 or None,
        "code": source.code or None,
    }


# --------------------------------------------------------------------------- fluent twins


def _client() -> Any:
    from nbmlops import tracking

    return tracking.get_client()


def register_model(
    model_uri: str | ModelInfo,
    name: str,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Register a logged model (``runs:/<run_id>/<path>``, or the :class:`ModelInfo` that
    ``log_model`` returned) as the next version of ``name``; returns the ModelVersion."""
    uri = getattr(model_uri, "model_uri", model_uri)
    return _client().register_model(uri, name, description=description, tags=tags)


def promote(
    name: str,
    version: int | str,
    metric: str = "f1",
    greater_is_better: bool = True,
    min_delta: float = 0.0,
    alias: str = "champion",
    force: bool = False,
    reason: str | None = None,
) -> PromotionDecision:
    """Champion–challenger promotion of ``name`` version ``version`` to ``alias``.

    Compares the ``metric`` of the candidate's source run with the current ``alias``
    holder's. Promotes when the candidate is strictly better by more than ``min_delta``
    (higher if ``greater_is_better``, else lower), when no version holds ``alias`` yet, or
    with ``force=True``. On promotion the old holder moves to ``previous-<alias>``. A missing
    or NaN metric on either side raises InvalidArgument (unless forced). The decision,
    promoted or not, is recorded in the audit log and returned, with both values.
    """
    return _client().promote(
        name,
        version,
        metric=metric,
        greater_is_better=greater_is_better,
        min_delta=min_delta,
        alias=alias,
        force=force,
        reason=reason,
    )


def find_last_model_run(
    client: Any, experiment_ids: list[str] | None, max_runs: int = 500
) -> tuple[str, str]:
    """``(run_id, model path)`` of the newest run holding a logged model.

    A run counts when it has the ``nbmlops.model`` tag (set by ``log_model``) or a
    ``model/meta.json`` written by sklearn autologging. Searches newest first.
    """
    from nbmlops.models import AUTOLOG_METADATA_FILE, MODEL_TAG

    token: str | None = None
    seen = 0
    while seen < max_runs:
        page = client.search_runs(
            experiment_ids, "", ["start_time DESC"], max_results=100, page_token=token
        )
        for run in page:
            path = run.data.tags.get(MODEL_TAG)
            if path:
                return run.info.run_id, path
            if any(
                a.path == f"model/{AUTOLOG_METADATA_FILE}"
                for a in client.list_artifacts(run.info.run_id, "model")
            ):
                return run.info.run_id, "model"
        seen += len(page)
        token = page.token
        if not token:
            break
    where = "this experiment" if experiment_ids else "the store"
    raise NotFound(f"no run in {where} has a logged model (log one with nbmlops.log_model)")


def register_run(
    run: str,
    name: str,
    alias: str | None = None,
    path: str | None = None,
    experiment: str | None = None,
    description: str | None = None,
) -> ModelVersion:
    """Register the model of run ``run`` (a run id, or ``last``: the newest run of
    ``experiment`` that logged a model — of every experiment when ``experiment`` is None or
    not in the store) and optionally set ``alias`` on the new version. Twin of
    ``%mlops register``."""
    from nbmlops.models import MODEL_TAG

    client = _client()
    validate_model_name(name)
    if alias is not None:
        validate_alias(alias)
    if run == "last":
        ids = None
        if experiment is not None:
            found = client.get_experiment_by_name(experiment)
            ids = None if found is None else [found.experiment_id]
        run_id, found_path = find_last_model_run(client, ids)
        path = path or found_path
    else:
        run_id = validate_run_id(run)
        if path is None:
            path = client.get_run(run_id).data.tags.get(MODEL_TAG) or "model"
    version = client.register_model(f"runs:/{run_id}/{path}", name, description=description)
    if alias is not None:
        client.set_registered_model_alias(name, alias, version.version)
        version = client.get_model_version(name, version.version)
    return version


def models_table(name: str | None = None) -> pd.DataFrame:
    """Registered models (``name=None``) or the versions of one model, as a DataFrame."""
    import pandas as pd

    client = _client()
    if name is None:
        rows = [
            {
                "name": m.name,
                "latest_version": m.latest_version,
                "aliases": ", ".join(f"@{a}=v{v}" for a, v in sorted(m.aliases.items())),
                "description": m.description,
                "updated": pd.to_datetime(m.updated_at, unit="ms", utc=True),
            }
            for m in client.search_registered_models()
        ]
        columns = ["name", "latest_version", "aliases", "description", "updated"]
        return pd.DataFrame(rows, columns=columns)
    client.get_registered_model(name)  # NotFound for an unknown model
    rows = [
        {
            "version": v.version,
            "aliases": ", ".join(f"@{a}" for a in v.aliases),
            "stage": v.stage,
            "source": v.source,
            "created": pd.to_datetime(v.created_at, unit="ms", utc=True),
            "created_by": v.created_by,
            "description": v.description,
        }
        for v in client.search_model_versions(name=name)
    ]
    columns = ["version", "aliases", "stage", "source", "created", "created_by", "description"]
    return pd.DataFrame(rows, columns=columns)


def history_table(name: str) -> pd.DataFrame:
    """The audit log of a model as a DataFrame (oldest first)."""
    import pandas as pd

    rows = [
        {
            "time": pd.to_datetime(e.timestamp, unit="ms", utc=True),
            "action": e.action,
            "alias": e.alias,
            "version": e.version,
            "from": e.from_value,
            "to": e.to_value,
            "user": e.user,
            "reason": e.reason,
        }
        for e in _client().get_model_history(name)
    ]
    columns = ["time", "action", "alias", "version", "from", "to", "user", "reason"]
    return pd.DataFrame(rows, columns=columns)
