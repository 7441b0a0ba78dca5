"""Copy runs and registry entries between two stores, idempotently (``nbmlops sync``).

The use case: a notebook used offline logs into its embedded SQLite store; later
``nbmlops sync sqlite:///.nbmlops/nbmlops.db mlflow+http://mlflow:5000`` publishes its runs
and models to the team's MLflow server, and the reverse direction brings a team member's runs
into a local store. Any pair of stores works (SQLite, memory, MLflow).

What is copied, per experiment (created by name when missing):

* runs with their nesting (parents before children), name, user, start/end time, status,
  source (notebook, cell, code), params, every metric point (full histories), tags, dataset
  fingerprints, artifacts (byte for byte; sha256 checked) and soft-deletion;
* registered models (description, tags), their versions (same numbers: a version deleted in
  the source is created and deleted again in the destination so numbers stay aligned, as the
  registry never reuses a number), version descriptions, tags and stages, and aliases.

**Identity.** A run keeps its id where the destination accepts explicit ids (SQLite, memory).
An MLflow server assigns ids itself, so there the copy carries the tag
``nbmlops.sync.origin=<original run id>``; syncing back uses that original id again, so a
round trip SQLite -> MLflow -> SQLite gives the same ids. A model version is matched by its
number.

**Idempotent.** Everything is compared before it is written: a second sync writes nothing
(metric points are matched as a multiset of (step, timestamp, value), artifacts by sha256).
A run that was still RUNNING at the last sync is completed by the next one; params and metrics
of ended runs cannot change (store contract), so ended runs are only checked for tags,
artifacts, inputs and deletion.

Not copied: heartbeats (a copy is nobody's live run) and the registry audit log (the
destination's log records the sync's own changes, with reason ``sync from <source>``).
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from nbmlops.entities import (
    LifecycleStage,
    Metric,
    ModelVersion,
    Param,
    Run,
    RunStatus,
    RunTag,
)
from nbmlops.errors import InvalidArgument, NotFound
from nbmlops.store.base import MAX_RESULTS_LIMIT, AbstractStore

#: Tag that names the original run of a copy in a store that assigns its own run ids.
ORIGIN_TAG = "nbmlops.sync.origin"
#: The user recorded on registry changes made by a sync.
SYNC_USER = "nbmlops sync"
_METRIC_CHUNK = 5000


@dataclasses.dataclass
class SyncReport:
    """What one sync did (all zero on a repeated sync with nothing new)."""

    experiments_created: int = 0
    runs_created: int = 0
    runs_updated: int = 0
    runs_unchanged: int = 0
    params: int = 0
    metric_points: int = 0
    tags: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    inputs: int = 0
    models_created: int = 0
    versions_created: int = 0
    registry_changes: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def copied_anything(self) -> bool:
        """Whether anything was written to the destination."""
        return any(
            (
                self.experiments_created,
                self.runs_created,
                self.runs_updated,
                self.params,
                self.metric_points,
                self.tags,
                self.artifacts,
                self.inputs,
                self.models_created,
                self.versions_created,
                self.registry_changes,
            )
        )

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        return [
            f"experiments created: {self.experiments_created}",
            f"runs: {self.runs_created} created, {self.runs_updated} updated, "
            f"{self.runs_unchanged} unchanged",
            f"params: {self.params}, metric points: {self.metric_points}, tags: {self.tags}, "
            f"inputs: {self.inputs}",
            f"artifacts: {self.artifacts} ({self.artifact_bytes} bytes)",
            f"registry: {self.models_created} models created, {self.versions_created} versions "
            f"created, {self.registry_changes} other changes",
            *(f"warning: {w}" for w in self.warnings),
        ]


def _assigns_run_ids(store: AbstractStore) -> bool:
    return bool(getattr(store, "assigns_run_ids", False))


def _origin(run: Run) -> str:
    return run.data.tags.get(ORIGIN_TAG) or run.info.run_id


def _all_runs(store: AbstractStore, experiment_ids: list[str]) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page, token = store.search_runs(
            experiment_ids,
            order_by=["start_time ASC"],
            max_results=MAX_RESULTS_LIMIT,
            page_token=token,
            include_deleted=True,
        )
        runs.extend(page)
        if token is None:
            return runs


def _depth_order(runs: Sequence[Run]) -> list[Run]:
    """Runs with every parent before its children (then by start time)."""
    by_id = {r.info.run_id: r for r in runs}

    def depth(run: Run) -> int:
        seen = 0
        parent = run.info.parent_run_id
        while parent in by_id and seen < 1000:
            parent = by_id[parent].info.parent_run_id
            seen += 1
        return seen

    return sorted(runs, key=lambda r: (depth(r), r.info.start_time))


def _point_key(metric: Metric) -> tuple[int, int, bytes]:
    value = metric.value
    bits = struct.pack(">d", math.nan if math.isnan(value) else value)
    return (metric.step, metric.timestamp, bits)


class _Syncer:
    def __init__(
        self,
        src: AbstractStore,
        dst: AbstractStore,
        report: SyncReport,
        progress: Callable[[str], None] | None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.report = report
        self.progress = progress or (lambda _message: None)
        #: origin run id -> destination run id
        self.run_map: dict[str, str] = {}
        #: source run id -> origin run id
        self.origins: dict[str, str] = {}

    # ----------------------------------------------------------------- runs
    def experiments(self, names: Iterable[str] | None) -> list[tuple[str, str]]:
        """(source id, destination id) of the experiments to copy, creating missing ones."""
        wanted = None if names is None else list(names)
        pairs = []
        source = self.src.search_experiments()
        if wanted is not None:
            known = {e.name for e in source}
            missing = [n for n in wanted if n not in known]
            if missing:
                raise NotFound(f"no experiment named {', '.join(map(repr, missing))} in the source")
            source = [e for e in source if e.name in wanted]
        for experiment in source:
            target = self.dst.get_experiment_by_name(experiment.name)
            if target is None:
                target = self.dst.create_experiment(experiment.name)
                self.report.experiments_created += 1
            pairs.append((experiment.experiment_id, target.experiment_id))
        return pairs

    def sync_runs(self, pairs: list[tuple[str, str]]) -> None:
        if not pairs:
            return
        src_runs = _all_runs(self.src, [s for s, _ in pairs])
        dst_runs = _all_runs(self.dst, [d for _, d in pairs])
        existing = {_origin(r): r for r in dst_runs}
        exp_map = dict(pairs)
        for run in src_runs:
            self.origins[run.info.run_id] = _origin(run)
        ordered = _depth_order(src_runs)
        for index, run in enumerate(ordered, 1):
            origin = self.origins[run.info.run_id]
            target = existing.get(origin)
            if target is None and not _assigns_run_ids(self.dst):
                try:  # the same id elsewhere in the destination (another experiment)
                    target = self.dst.get_run(origin)
                except NotFound:
                    target = None
            if target is None:
                target = self.create_run(run, origin, exp_map[run.info.experiment_id])
                self.report.runs_created += 1
                self.fill_run(run, target, new=True)
            elif self.fill_run(run, target, new=False):
                self.report.runs_updated += 1
            else:
                self.report.runs_unchanged += 1
            self.run_map[origin] = target.info.run_id
            if index % 50 == 0:
                self.progress(f"runs: {index}/{len(ordered)}")

    def create_run(self, run: Run, origin: str, experiment_id: str) -> Run:
        parent = run.info.parent_run_id
        parent_id = None
        if parent is not None:
            parent_origin = self.origins.get(parent, parent)
            parent_id = self.run_map.get(parent_origin)
            if parent_id is None:
                self.report.warnings.append(
                    f"run {run.info.run_id}: parent {parent} was not copied (another experiment "
                    "not selected?); the copy is a top-level run"
                )
        tags: list[RunTag] = []
        run_id: str | None = origin
        if _assigns_run_ids(self.dst):
            tags.append(RunTag(ORIGIN_TAG, origin))
            run_id = None
        info = self.dst.create_run(
            experiment_id,
            run.info.run_name,
            run.info.start_time,
            run.info.user,
            parent_run_id=parent_id,
            tags=tags,
            source=run.info.source,
            run_id=run_id,
        )
        return self.dst.get_run(info.run_id)

    def fill_run(self, run: Run, target: Run, new: bool) -> bool:
        """Bring ``target`` up to ``run``; returns whether anything was written."""
        changed = False
        src_id, dst_id = run.info.run_id, target.info.run_id
        open_target = target.info.status is RunStatus.RUNNING
        if open_target:
            params = [
                Param(k, v) for k, v in run.data.params.items() if k not in target.data.params
            ]
            conflicts = [
                k
                for k, v in run.data.params.items()
                if k in target.data.params and target.data.params[k] != v
            ]
            for key in conflicts:
                self.report.warnings.append(f"run {src_id}: param {key!r} differs; kept the copy's")
            points = self.missing_points(src_id, dst_id, run.data.metrics.keys(), new)
            for start in range(0, max(len(points), 1), _METRIC_CHUNK):
                chunk = points[start : start + _METRIC_CHUNK]
                batch_params = params if start == 0 else []
                if chunk or batch_params:
                    self.dst.log_batch(dst_id, metrics=chunk, params=batch_params)
            self.report.params += len(params)
            self.report.metric_points += len(points)
            changed = changed or bool(params or points)
        wanted_tags = {k: v for k, v in run.data.tags.items() if k != ORIGIN_TAG}
        tags = [RunTag(k, v) for k, v in wanted_tags.items() if target.data.tags.get(k) != v]
        if tags:
            self.dst.log_batch(dst_id, tags=tags)
            self.report.tags += len(tags)
            changed = True
        have = {(i.name, i.digest, i.context) for i in target.inputs}
        inputs = [i for i in run.inputs if (i.name, i.digest, i.context) not in have]
        if inputs:
            self.dst.log_inputs(dst_id, inputs)
            self.report.inputs += len(inputs)
            changed = True
        changed = self.copy_artifacts(src_id, dst_id, new) or changed
        if open_target and run.info.status is not RunStatus.RUNNING:
            assert run.info.end_time is not None
            self.dst.end_run(dst_id, run.info.status, run.info.end_time)
            changed = True
        elif (
            not open_target
            and run.info.status is not RunStatus.RUNNING
            and run.info.status is not target.info.status
        ):
            self.report.warnings.append(
                f"run {src_id}: ended {run.info.status.value} in the source but "
                f"{target.info.status.value} in the destination; left as it is"
            )
        deleted = run.info.lifecycle_stage is LifecycleStage.DELETED
        if deleted != (target.info.lifecycle_stage is LifecycleStage.DELETED):
            self.dst.set_run_lifecycle(dst_id, deleted=deleted)
            changed = True
        return changed

    def missing_points(
        self, src_id: str, dst_id: str, keys: Iterable[str], new: bool
    ) -> list[Metric]:
        points: list[Metric] = []
        for key in sorted(keys):
            history = self.src.get_metric_history(src_id, key)
            have: Counter[tuple[int, int, bytes]] = Counter()
            if not new:
                have.update(_point_key(m) for m in self.dst.get_metric_history(dst_id, key))
            for metric in history:
                point = _point_key(metric)
                if have[point]:
                    have[point] -= 1
                else:
                    points.append(metric)
        return points

    def copy_artifacts(self, src_id: str, dst_id: str, new: bool) -> bool:
        have = {} if new else {a.path: a.sha256 for a in self.dst.list_artifacts(dst_id)}
        copied = False
        for artifact in self.src.list_artifacts(src_id):
            if have.get(artifact.path) == artifact.sha256:
                continue
            data = self.src.read_artifact(src_id, artifact.path)
            stored = self.dst.log_artifact(dst_id, artifact.path, data)
            if stored.sha256 != artifact.sha256:
                raise InvalidArgument(
                    f"artifact {artifact.path!r} of run {src_id} changed while copying "
                    f"(sha256 {artifact.sha256} in the index, {stored.sha256} read)"
                )
            self.report.artifacts += 1
            self.report.artifact_bytes += stored.size
            copied = True
        return copied

    # ----------------------------------------------------------------- registry
    def sync_registry(self, source_label: str, only_runs: set[str] | None) -> None:
        reason = f"sync from {source_label}"
        for model in self.src.search_registered_models():
            versions = self.src.search_model_versions(model.name)
            if only_runs is not None and not any(v.source_run_id in only_runs for v in versions):
                continue
            try:
                target = self.dst.get_registered_model(model.name)
            except NotFound:
                target = self.dst.create_registered_model(
                    model.name, model.description, dict(model.tags)
                )
                self.report.models_created += 1
            if target.description != model.description:
                self.dst.update_registered_model(model.name, model.description)
                self.report.registry_changes += 1
            for key, value in model.tags.items():
                if target.tags.get(key) != value:
                    self.dst.set_registered_model_tag(model.name, key, value)
                    self.report.registry_changes += 1
            self.sync_versions(model.name, versions, reason)
            self.sync_aliases(model.name, dict(model.aliases), reason)

    def _dst_run_for(self, source_run_id: str) -> str | None:
        origin = self.origins.get(source_run_id, source_run_id)
        return self.run_map.get(origin)

    def sync_versions(self, name: str, versions: list[ModelVersion], reason: str) -> None:
        existing = {v.version: v for v in self.dst.search_model_versions(name)}
        for version in versions:
            run_id = self._dst_run_for(version.source_run_id)
            if run_id is None:
                self.report.warnings.append(
                    f"model {name!r} v{version.version}: its run {version.source_run_id} was not "
                    "copied; version skipped"
                )
                continue
            target = existing.get(version.version)
            if target is None:
                target = self.create_version_numbered(name, version, run_id, reason)
                if target is None:
                    continue
                existing[target.version] = target
            if target.description != version.description:
                self.dst.update_model_version(name, target.version, version.description)
                self.report.registry_changes += 1
            for key, value in version.tags.items():
                if target.tags.get(key) != value:
                    self.dst.set_model_version_tag(name, target.version, key, value)
                    self.report.registry_changes += 1
            if target.stage != version.stage:
                self.dst.set_model_version_stage(
                    name, target.version, version.stage, user=SYNC_USER, reason=reason
                )
                self.report.registry_changes += 1

    def create_version_numbered(
        self, name: str, version: ModelVersion, run_id: str, reason: str
    ) -> ModelVersion | None:
        """Create ``version`` in the destination under the same number (placeholders fill gaps)."""
        while True:
            created = self.dst.create_model_version(
                name,
                run_id,
                version.model_path,
                description=version.description,
                tags=dict(version.tags),
                user=version.created_by,
            )
            if created.version == version.version:
                self.report.versions_created += 1
                return created
            if created.version > version.version:
                self.dst.delete_model_version(name, created.version, SYNC_USER, reason)
                self.report.warnings.append(
                    f"model {name!r}: version {version.version} cannot be recreated in the "
                    f"destination (its counter is at {created.version}); skipped"
                )
                return None
            # A number deleted in the source: use it up so the numbers stay aligned.
            self.dst.delete_model_version(
                name, created.version, SYNC_USER, reason + " (keeps version numbers aligned)"
            )

    def sync_aliases(self, name: str, aliases: dict[str, int], reason: str) -> None:
        current = dict(self.dst.get_registered_model(name).aliases)
        existing = {v.version for v in self.dst.search_model_versions(name)}
        changes: dict[str, int | None] = {
            alias: number
            for alias, number in aliases.items()
            if current.get(alias) != number and number in existing
        }
        if changes:
            self.dst.set_aliases(name, changes, user=SYNC_USER, reason=reason, action="sync")
            self.report.registry_changes += len(changes)


def sync(
    src: AbstractStore,
    dst: AbstractStore,
    experiments: Sequence[str] | None = None,
    registry: bool = True,
    progress: Callable[[str], None] | None = None,
) -> SyncReport:
    """Copy runs (and registry entries) from ``src`` to ``dst``; safe to run again.

    Args:
        src: the store to read.
        dst: the store to write.
        experiments: names of the experiments to copy (all when None); with names, only the
            models that have a version from one of their runs are copied.
        registry: also copy registered models, versions, stages and aliases.
        progress: called with short progress messages.

    Returns:
        What was copied (see :class:`SyncReport`).
    """
    if src is dst or src.uri == dst.uri:
        raise InvalidArgument(f"source and destination are the same store ({src.uri})")
    report = SyncReport()
    syncer = _Syncer(src, dst, report, progress)
    pairs = syncer.experiments(experiments)
    syncer.sync_runs(pairs)
    if registry:
        only = None if experiments is None else set(syncer.origins)
        syncer.sync_registry(src.uri, only)
    return report


def sync_uris(
    src_uri: str,
    dst_uri: str,
    experiments: Sequence[str] | None = None,
    registry: bool = True,
    progress: Callable[[str], None] | None = None,
) -> SyncReport:
    """:func:`sync` between the stores two URIs name (both opened here and closed after)."""
    from nbmlops.store import open_store

    src = open_store(src_uri)
    try:
        dst = open_store(dst_uri)
        try:
            return sync(src, dst, experiments, registry, progress)
        finally:
            dst.close()
    finally:
        src.close()


# --------------------------------------------------------------------------- command line


def configure_cli(parser: Any) -> None:
    """Options of ``nbmlops sync SRC_URI DST_URI``."""
    parser.add_argument("src_uri", metavar="SRC_URI", help="store to copy from")
    parser.add_argument("dst_uri", metavar="DST_URI", help="store to copy to")
    parser.add_argument(
        "--experiment",
        action="append",
        default=None,
        metavar="NAME",
        help="copy only this experiment (repeatable; default: every experiment)",
    )
    parser.add_argument(
        "--no-registry", action="store_true", help="copy runs only, not registered models"
    )


def run_cli(args: Any) -> int:
    """``nbmlops sync``: copy, print what was copied; exit status 0."""
    import sys

    from nbmlops.store import normalize_uri

    src_uri = normalize_uri(args.src_uri)
    dst_uri = normalize_uri(args.dst_uri)
    report = sync_uris(
        src_uri,
        dst_uri,
        experiments=args.experiment,
        registry=not args.no_registry,
        progress=lambda message: print(message, file=sys.stderr),
    )
    print(f"synced {src_uri} -> {dst_uri}")
    for line in report.lines():
        print(line)
    if not report.copied_anything:
        print("nothing to copy: the destination was already up to date")
    return 0
