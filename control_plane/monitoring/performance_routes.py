"""REST access to performance tracking: a thin controller over :class:`PerformanceService`.

===========================================================  ====  ==============================
``PUT /v1/monitoring/models/{m}/performance-spec``           200   how answers become metrics
``GET /v1/monitoring/models/{m}/performance-spec``           200   the spec (or the defaults)
``POST /v1/monitoring/models/{m}/versions/{v}/performance``  201   track a window now
``GET /v1/monitoring/models/{m}/performance``                200   the metric time series
===========================================================  ====  ==============================
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter

from control_plane.monitoring.performance_models import (
    MetricPoint,
    PerformanceResult,
    PerformanceSpec,
    TrackRequest,
)
from control_plane.monitoring.performance_service import PerformanceService
from control_plane.params import NamePath, TextQuery, VersionPath, VersionQuery
from modelyard.timestamps import given_utc


class PerformanceController(Controller):
    """``/v1/monitoring``: performance specs, tracking and the metric series."""

    path = "/v1/monitoring"
    tags = ["monitoring"]

    @put("/models/{model:str}/performance-spec")
    async def set_spec(
        self,
        model: NamePath,
        performance_service: NamedDependency[PerformanceService],
        data: JSONBody[PerformanceSpec],
    ) -> PerformanceSpec:
        """Set how the model's answers and outcomes become metrics."""
        return await performance_service.set_spec(model, data)

    @get("/models/{model:str}/performance-spec")
    async def get_spec(
        self, model: NamePath, performance_service: NamedDependency[PerformanceService]
    ) -> PerformanceSpec:
        """The model's spec (the conventions' defaults when none is set)."""
        return await performance_service.spec(model)

    @post("/models/{model:str}/versions/{version:int}/performance", status_code=201)
    async def track(
        self,
        model: NamePath,
        version: VersionPath,
        performance_service: NamedDependency[PerformanceService],
        data: JSONBody[TrackRequest | None] = None,
    ) -> PerformanceResult:
        """Compute, store and judge one window's metrics now."""
        return await performance_service.track(model, version, data)

    @get("/models/{model:str}/performance")
    async def series(
        self,
        model: NamePath,
        performance_service: NamedDependency[PerformanceService],
        version: VersionQuery = None,
        metric: TextQuery = None,
        since: FromQuery[dt.datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=10000)] = 1000,
    ) -> list[MetricPoint]:
        """The stored metric points, oldest window first."""
        start = given_utc("since", since)
        return await performance_service.series(model, version, metric, start, limit)


__all__ = ["PerformanceController"]
