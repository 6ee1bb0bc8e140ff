"""The tracking service: the :class:`ExperimentTracker` made awaitable for the control plane.

MLflow's client is synchronous; every call runs on a worker thread so the event loop keeps
serving while MLflow talks to its store. The rules (validation, error translation) stay in
the tracker, so the CLI's local mode and the REST API behave identically.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from control_plane.tracking.models import Experiment, Run, RunComparison, RunSearch
    from control_plane.tracking.tracker import ExperimentTracker


class TrackingService:
    """Read access to experiments and runs for the REST API.

    Args:
        tracker: the tracker bound to the configured MLflow store.
    """

    def __init__(self, tracker: ExperimentTracker) -> None:
        self.tracker = tracker

    async def list_experiments(self) -> list[Experiment]:
        """Every active experiment."""
        return await asyncio.to_thread(self.tracker.list_experiments)

    async def search_runs(self, search: RunSearch) -> list[Run]:
        """Runs matching ``search`` (see :meth:`ExperimentTracker.search_runs`).

        Raises:
            InvalidArgument: the filter, an order clause or ``max_results`` is invalid.
            NotFound: an experiment does not exist.
        """
        return await asyncio.to_thread(
            self.tracker.search_runs,
            search.experiments,
            filter=search.filter,
            order_by=search.order_by,
            max_results=search.max_results,
        )

    async def get_run(self, run_id: str) -> Run:
        """One run.

        Raises:
            NotFound: no run has this id.
        """
        return await asyncio.to_thread(self.tracker.get_run, run_id)

    async def compare_runs(self, run_ids: list[str]) -> RunComparison:
        """Runs side by side.

        Raises:
            InvalidArgument: no run ids.
            NotFound: a run does not exist.
        """
        return await asyncio.to_thread(self.tracker.compare_runs, run_ids)
