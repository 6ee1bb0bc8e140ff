"""A started run, bound to its tracker; as a context manager it ends the run.

Nesting is explicit (:meth:`ActiveRun.start_child` or ``parent_run_id``), never inferred from
a process-global "active run", so runs started on different threads never adopt each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from control_plane.tracking.models import RunStatus

if TYPE_CHECKING:
    from control_plane.tracking.tracker import ExperimentTracker


class ActiveRun:
    """A started run; as a context manager it ends the run (FAILED if the block raised).

    Args:
        tracker: the tracker that started it.
        run_id: the run's identifier.
    """

    def __init__(self, tracker: ExperimentTracker, run_id: str, experiment: str) -> None:
        self.tracker = tracker
        self.run_id = run_id
        self.experiment = experiment

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        status = RunStatus.FINISHED if exc_type is None else RunStatus.FAILED
        if exc_type is KeyboardInterrupt:
            status = RunStatus.KILLED
        self.tracker.end_run(self.run_id, status)

    def start_child(self, run_name: str | None = None, **tags: str) -> ActiveRun:
        """A nested run of this one, in the same experiment."""
        return self.tracker.start_run(
            self.experiment, run_name=run_name, parent_run_id=self.run_id, tags=tags
        )

    def log_params(self, params: Mapping[str, object]) -> None:
        """See :meth:`ExperimentTracker.log_params`."""
        self.tracker.log_params(self.run_id, params)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int = 0) -> None:
        """See :meth:`ExperimentTracker.log_metrics`."""
        self.tracker.log_metrics(self.run_id, metrics, step=step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """See :meth:`ExperimentTracker.log_artifact`."""
        self.tracker.log_artifact(self.run_id, path, artifact_path)
