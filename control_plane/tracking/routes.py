"""REST access to experiments and runs (read-only; runs are written by training code)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from control_plane.params import KeyPath
from control_plane.tracking.models import Experiment, Run, RunComparison, RunSearch
from control_plane.tracking.service import TrackingService
from control_plane.tracking.tracker import MAX_RESULTS_LIMIT


class TrackingController(Controller):
    """``/v1/experiments`` and ``/v1/runs``: list, search, get and compare runs."""

    path = "/v1"
    tags = ["tracking"]

    @get("/experiments")
    async def list_experiments(
        self, tracking_service: NamedDependency[TrackingService]
    ) -> list[Experiment]:
        """Every active experiment."""
        return await tracking_service.list_experiments()

    @get("/runs")
    async def search_runs(
        self,
        tracking_service: NamedDependency[TrackingService],
        experiment: FromQuery[list[str] | None] = None,
        filter: FromQuery[str] = "",
        order_by: FromQuery[list[str] | None] = None,
        max_results: Annotated[int, QueryParameter(ge=1, le=MAX_RESULTS_LIMIT)] = 100,
    ) -> list[Run]:
        """Runs matching an MLflow filter, ordered by metrics, params or attributes."""
        search = RunSearch(
            experiments=experiment or [],
            filter=filter,
            order_by=order_by or [],
            max_results=max_results,
        )
        return await tracking_service.search_runs(search)

    @get("/runs/compare")
    async def compare_runs(
        self,
        tracking_service: NamedDependency[TrackingService],
        run_id: FromQuery[list[str]],
    ) -> RunComparison:
        """Every param and metric of the given runs side by side (``null`` where missing)."""
        return await tracking_service.compare_runs(run_id)

    @get("/runs/{run_id:str}")
    async def get_run(
        self, tracking_service: NamedDependency[TrackingService], run_id: KeyPath
    ) -> Run:
        """One run with its params, latest metrics and tags."""
        return await tracking_service.get_run(run_id)
