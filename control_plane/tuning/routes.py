"""REST access to tuning jobs: start one, follow its progress, read its best result."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from control_plane.params import KeyPath
from control_plane.tuning.models import BestConfiguration, TuningJob, TuningJobRequest
from control_plane.tuning.service import TuningService


class TuningController(Controller):
    """``/v1/tuning/jobs``: tuning jobs run in the background of the control plane."""

    path = "/v1/tuning/jobs"
    tags = ["tuning"]

    @post("/")
    async def start_job(
        self, tuning_service: NamedDependency[TuningService], data: JSONBody[TuningJobRequest]
    ) -> TuningJob:
        """Start a tuning job (201); it runs in the background."""
        return await tuning_service.start(data)

    @get("/")
    async def list_jobs(
        self,
        tuning_service: NamedDependency[TuningService],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[TuningJob]:
        """The newest tuning jobs first."""
        return await tuning_service.list(limit)

    @get("/{job_id:str}")
    async def get_job(
        self, tuning_service: NamedDependency[TuningService], job_id: KeyPath
    ) -> TuningJob:
        """A job's status and progress (trials done of total, best so far)."""
        return await tuning_service.get(job_id)

    @get("/{job_id:str}/best")
    async def best_configuration(
        self, tuning_service: NamedDependency[TuningService], job_id: KeyPath
    ) -> BestConfiguration:
        """The best configuration found so far (409 before any trial completed)."""
        return await tuning_service.best(job_id)

    @post("/{job_id:str}/cancel", status_code=202)
    async def cancel_job(
        self, tuning_service: NamedDependency[TuningService], job_id: KeyPath
    ) -> TuningJob:
        """Start no new trial; the job ends ``cancelled`` once running trials finish."""
        return await tuning_service.cancel(job_id)
