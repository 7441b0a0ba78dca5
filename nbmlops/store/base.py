"""The store contract every backend implements (design doc §4).

A store persists experiments, runs, their params/metrics/tags/inputs and artifact files.
It knows nothing of IPython, widgets or the active-run stack; those live in the layers
above, which talk to a store only through :class:`nbmlops.client.Client`.

Contract, for every implementation:

* **Errors.** Not-found raises :class:`~nbmlops.errors.NotFound`; a unique name or key that
  is taken (experiment name, a param re-logged with a different value) raises
  :class:`~nbmlops.errors.AlreadyExists`; malformed input, or writing params/metrics into a
  run that is not RUNNING, raises :class:`~nbmlops.errors.InvalidArgument`. A damaged or
  unknown store raises :class:`~nbmlops.errors.StoreError` naming its location.
* **Atomicity.** Each write method is one transaction: on any error nothing it was given is
  stored and nothing already stored changes.
* **Thread safety.** Every method may be called from any thread.
* **Process safety.** Stores backed by a file or server (SQLite, MLflow) may be written by
  several processes at once; no record is lost or duplicated and lock contention is retried
  inside the store, never surfaced to the caller. The in-memory store is process-local.
* **Time** is integer milliseconds since the epoch. Metric values are floats; NaN and ±inf
  round-trip exactly.
* **Dead runs.** A RUNNING run whose heartbeat is dead (see :mod:`.heartbeat`) is returned as
  KILLED by every read, and persisted so.

Model registry (design doc §3), same rules plus:

* **Names.** Model names follow :func:`~nbmlops.validation.validate_model_name`, aliases
  :func:`~nbmlops.validation.validate_alias`, versions
  :func:`~nbmlops.validation.validate_version` (``"3"`` is accepted for 3), stages
  :func:`~nbmlops.validation.validate_stage`; a malformed one is InvalidArgument ("invalid
  alias name ..."), never NotFound.
* **Not found** messages say what is missing: the model ("no registered model 'm'"), one of
  its versions ("registered model 'm' has no version 3") or an alias ("... has no alias 'x'").
* **Versions** are 1, 2, 3, ... per model, assigned inside the write transaction from a
  counter kept on the model, so several processes registering at once get distinct numbers
  with no gaps, and a number is never handed out again after its version was deleted.
* **Aliases.** One version per (model, alias). ``latest`` is reserved: it cannot be set and,
  when read, means the newest existing version.
* **Audit log.** Every version creation/deletion, stage change and alias change appends a
  :class:`~nbmlops.entities.RegistryEvent` in the same transaction as the change; callers add
  decisions that change nothing (``promotion_rejected``) with :meth:`record_registry_event`.
  Writes that change nothing (same stage, alias already there) record nothing.
* ``updated_at`` of a registered model moves on every change to it, its versions or aliases.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from nbmlops.entities import (
    Artifact,
    DatasetInput,
    Experiment,
    Heartbeat,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    RegistryEvent,
    Run,
    RunInfo,
    RunSource,
    RunStatus,
    RunTag,
)

#: Largest page a search may return at once.
MAX_RESULTS_LIMIT = 50_000
DEFAULT_MAX_RESULTS = 1_000


class AbstractStore(abc.ABC):
    """Persistence contract for tracking data. See the module docstring for the rules."""

    #: The URI this store was opened from (``sqlite:////abs/nbmlops.db``, ``memory:``).
    uri: str

    # ----------------------------------------------------------------- lifecycle
    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Human-readable place of the data (a file path, ``memory``, a server URL)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and file handles. Safe to call twice."""

    def describe(self) -> dict[str, object]:
        """Facts for ``nbmlops doctor``: location, schema version, counts, integrity."""
        return {"location": self.location, "uri": self.uri}

    # ----------------------------------------------------------------- experiments
    @abc.abstractmethod
    def create_experiment(self, name: str) -> Experiment:
        """Create an experiment. Raises AlreadyExists when the name is taken."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return the experiment or raise NotFound."""

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""

    @abc.abstractmethod
    def search_experiments(self) -> list[Experiment]:
        """All experiments, oldest first."""

    # ----------------------------------------------------------------- runs
    @abc.abstractmethod
    def create_run(
        self,
        experiment_id: str,
        run_name: str,
        start_time: int,
        user: str,
        parent_run_id: str | None = None,
        tags: Sequence[RunTag] = (),
        source: RunSource | None = None,
        heartbeat: Heartbeat | None = None,
        run_id: str | None = None,
    ) -> RunInfo:
        """Create a RUNNING run.

        Raises NotFound for an unknown experiment or parent run, AlreadyExists for a
        ``run_id`` already in use.
        """

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """Return the run with its params, latest metrics, tags and inputs, or raise NotFound."""

    @abc.abstractmethod
    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> RunInfo:
        """Move a RUNNING run to a terminal status.

        Ending with the status it already has is a no-op; ending a run that already ended
        with another status raises InvalidArgument naming both statuses.
        """

    @abc.abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Store metrics (appended to history), params and tags in one transaction.

        Params and metrics need a RUNNING run (InvalidArgument otherwise); tags may be set on
        any run. A param already stored with another value raises AlreadyExists naming the
        key and both values; the same value again is a no-op.
        """

    @abc.abstractmethod
    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """Record dataset fingerprints; the same (name, digest, context) twice is stored once."""

    @abc.abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """All points of a metric ordered by step, then timestamp, then insertion."""

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> tuple[list[Run], str | None]:
        """Runs matching the filter (see :mod:`.search`), one page at a time.

        Returns the page and the token of the next page (None after the last page).
        ``experiment_ids=None`` means every experiment.
        """

    @abc.abstractmethod
    def set_run_lifecycle(self, run_id: str, deleted: bool) -> None:
        """Soft-delete (``deleted=True``) or restore a run; raises NotFound."""

    @abc.abstractmethod
    def beat(self, run_ids: Iterable[str], heartbeat: Heartbeat) -> None:
        """Refresh the heartbeat of RUNNING runs owned by this process."""

    # ----------------------------------------------------------------- artifacts
    @abc.abstractmethod
    def log_artifact(self, run_id: str, path: str, source: bytes | Path) -> Artifact:
        """Store bytes or a local file as artifact ``path`` of the run, atomically.

        ``path`` must be relative and stay inside the run's artifact directory
        (InvalidArgument otherwise). Writing the same path again replaces the file.
        """

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        """Artifacts of a run whose path starts with ``prefix``, sorted by path."""

    @abc.abstractmethod
    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of one artifact; NotFound when missing."""

    def artifact_file(self, run_id: str, path: str) -> Path | None:
        """A local file holding the artifact, for stores that keep files (else None)."""
        return None

    # ----------------------------------------------------------------- model registry
    @abc.abstractmethod
    def create_registered_model(
        self, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        """Create an empty registered model. AlreadyExists when the name is taken."""

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its tags, aliases and latest version, or NotFound."""

    @abc.abstractmethod
    def search_registered_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        """Models whose name matches ``name_like`` (SQL LIKE, case-insensitive), by name.

        ``None`` means every model.
        """

    @abc.abstractmethod
    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        """Replace the model's description; NotFound for an unknown model."""

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set (or overwrite) one tag of a model; keys follow the run tag key rule."""

    @abc.abstractmethod
    def create_model_version(
        self,
        name: str,
        source_run_id: str,
        model_path: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        user: str = "",
    ) -> ModelVersion:
        """Register artifact ``model_path`` of run ``source_run_id`` as the next version.

        Creates the registered model when it does not exist yet. NotFound when the run does
        not exist (nothing is created then). The version number is the model's counter,
        taken and advanced in the same transaction (see the module docstring). Records a
        ``create_version`` event (``to_value`` = the ``runs:/`` source). The new version's
        stage is ``"None"``.
        """

    @abc.abstractmethod
    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version; NotFound names the missing model or the missing version."""

    @abc.abstractmethod
    def search_model_versions(
        self, name: str | None = None, run_id: str | None = None
    ) -> list[ModelVersion]:
        """Versions of model ``name`` and/or registered from run ``run_id``.

        Sorted by model name, then version. An unknown model or run matches nothing (an
        empty list, not NotFound).
        """

    @abc.abstractmethod
    def update_model_version(self, name: str, version: int | str, description: str) -> ModelVersion:
        """Replace a version's description and return the version."""

    @abc.abstractmethod
    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        """Set (or overwrite) one tag of a version; keys follow the run tag key rule."""

    @abc.abstractmethod
    def set_model_version_stage(
        self, name: str, version: int | str, stage: str, user: str = "", reason: str = ""
    ) -> ModelVersion:
        """Move a version to ``stage`` (any case; stored canonically, see ``STAGES``).

        Records a ``stage`` event from the old to the new stage; the same stage again is a
        no-op that records nothing.
        """

    @abc.abstractmethod
    def delete_model_version(
        self, name: str, version: int | str, user: str = "", reason: str = ""
    ) -> None:
        """Delete a version, its tags and every alias pointing to it.

        Records one ``delete_alias`` event per removed alias, then a ``delete_version``
        event. The version number is not reused.
        """

    @abc.abstractmethod
    def set_aliases(
        self,
        name: str,
        changes: Mapping[str, int | None],
        expected: Mapping[str, int | None] | None = None,
        user: str = "",
        reason: str = "",
        action: str = "set_alias",
    ) -> None:
        """Point several aliases of a model at versions (None deletes), all or nothing.

        Every target version must exist (NotFound otherwise). With ``expected``, each alias
        it names must currently point at the given version (None: unset); otherwise
        AlreadyExists("alias X of model M changed concurrently: expected v1, found v2") and
        nothing changes. Each alias that really changes records one event with ``action``,
        ``alias``, ``from_value``/``to_value`` = old/new version as text (None when unset),
        ``reason`` and ``user``; ``version`` is the new target (the old one on deletion).
        """

    @abc.abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points to; ``latest`` means the newest existing version.

        InvalidArgument for a malformed alias name, NotFound naming the model or the alias
        that does not exist (or "has no versions" for ``latest`` on an empty model).
        """

    @abc.abstractmethod
    def record_registry_event(self, event: RegistryEvent) -> None:
        """Append a caller-made event (a promotion decision that changed nothing).

        The model must exist (NotFound); the event is stored as given.
        """

    @abc.abstractmethod
    def get_model_history(self, name: str) -> list[RegistryEvent]:
        """The model's audit log in the order it was written (oldest first); NotFound."""
