"""REST access to drift monitoring: a thin controller over :class:`DriftService`.

=============================================================  ====  =============================
``PUT /v1/monitoring/models/{m}/versions/{v}/reference``       200   build + store the reference
``GET /v1/monitoring/models/{m}/versions/{v}/reference``       200   the reference profile
``PUT /v1/monitoring/models/{m}/drift-policy``                 200   methods/thresholds per model
``GET /v1/monitoring/models/{m}/drift-policy``                 200   the policy (or defaults)
``POST /v1/monitoring/models/{m}/versions/{v}/drift-checks``   201   check a window, store report
``GET /v1/monitoring/drift-reports``                           200   reports, newest first
``GET /v1/monitoring/drift-reports/{id}``                      200   one report (JSON)
``GET /v1/monitoring/drift-reports/{id}/html``                 200   the report page with charts
=============================================================  ====  =============================

Errors: 404 unknown version, reference or report; 409 no served rows in the window;
422 an invalid sample, policy or window; 503 an inference server could not be read.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, MediaType, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from control_plane.drift import DriftPolicy
from control_plane.monitoring.drift_models import DriftCheckRequest, DriftReport, ReferenceSample
from control_plane.monitoring.drift_service import DriftService
from control_plane.monitoring.report_page import render_report
from control_plane.params import IdPath, NamePath, TextQuery, VersionPath, VersionQuery
from modelyard.sketches import ReferenceProfile


class DriftController(Controller):
    """``/v1/monitoring``: reference profiles, drift checks and reports."""

    path = "/v1/monitoring"
    tags = ["monitoring"]

    @put("/models/{model:str}/versions/{version:int}/reference")
    async def set_reference(
        self,
        model: NamePath,
        version: VersionPath,
        drift_service: NamedDependency[DriftService],
        data: JSONBody[ReferenceSample],
    ) -> ReferenceProfile:
        """Build the version's reference profile from its training sample and store it."""
        return await drift_service.set_reference(model, version, data)

    @get("/models/{model:str}/versions/{version:int}/reference")
    async def get_reference(
        self,
        model: NamePath,
        version: VersionPath,
        drift_service: NamedDependency[DriftService],
    ) -> ReferenceProfile:
        """The stored reference profile."""
        return await drift_service.reference(model, version)

    @put("/models/{model:str}/drift-policy")
    async def set_policy(
        self,
        model: NamePath,
        drift_service: NamedDependency[DriftService],
        data: JSONBody[DriftPolicy],
    ) -> DriftPolicy:
        """Set the model's drift policy (per-feature methods and thresholds, drift share)."""
        return await drift_service.set_policy(model, data)

    @get("/models/{model:str}/drift-policy")
    async def get_policy(
        self, model: NamePath, drift_service: NamedDependency[DriftService]
    ) -> DriftPolicy:
        """The model's drift policy (Evidently 0.7's defaults when none is set)."""
        return await drift_service.policy(model)

    @post("/models/{model:str}/versions/{version:int}/drift-checks", status_code=201)
    async def check_drift(
        self,
        model: NamePath,
        version: VersionPath,
        drift_service: NamedDependency[DriftService],
        data: JSONBody[DriftCheckRequest | None] = None,
    ) -> DriftReport:
        """Check a window now (default: the last ``monitoring.drift_window_s`` seconds)."""
        return await drift_service.check_drift(model, version, data)

    @get("/drift-reports")
    async def list_reports(
        self,
        drift_service: NamedDependency[DriftService],
        model: TextQuery = None,
        version: VersionQuery = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[DriftReport]:
        """Stored reports, newest first."""
        return await drift_service.list_reports(model=model, version=version, limit=limit)

    @get("/drift-reports/{report_id:int}")
    async def get_report(
        self, report_id: IdPath, drift_service: NamedDependency[DriftService]
    ) -> DriftReport:
        """One report."""
        return await drift_service.get_report(report_id)

    @get("/drift-reports/{report_id:int}/html", media_type=MediaType.HTML)
    async def report_page(
        self, report_id: IdPath, drift_service: NamedDependency[DriftService]
    ) -> str:
        """The report as an HTML page with a chart per feature (reference vs window)."""
        return render_report(*await drift_service.report_data(report_id))


__all__ = ["DriftController"]
