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
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from pathlib import Path

from nbmlops.entities import (
    Artifact,
    DatasetInput,
    Experiment,
    Heartbeat,
    Metric,
    Param,
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
