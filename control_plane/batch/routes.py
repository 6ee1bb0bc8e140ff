"""``/v1/batch/jobs``: batch prediction jobs over REST (thin: decode, delegate, encode).

Submitting, cancelling and resuming need the ``write`` permission (the app-wide guard);
reading a job's progress needs none.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from control_plane.batch.models import BatchJob, BatchRequest
from control_plane.batch.service import MAX_LIST, BatchService
from control_plane.params import KeyPath
from control_plane.security.models import Principal


class BatchController(Controller):
    """Batch jobs run in their own processes; these handlers only start and read them."""

    path = "/v1/batch/jobs"
    tags = ["batch"]

    @post("/")
    async def submit(
        self,
        data: JSONBody[BatchRequest],
        batch_service: NamedDependency[BatchService],
        principal: NamedDependency[Principal],
    ) -> BatchJob:
        """Submit a job (201); it runs in the background. 422 names bad paths or columns."""
        return await batch_service.submit(data, principal)

    @get("/")
    async def list_jobs(
        self,
        batch_service: NamedDependency[BatchService],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIST)] = 100,
    ) -> list[BatchJob]:
        """The newest jobs first."""
        return await batch_service.jobs(limit)

    @get("/{job_id:str}")
    async def get_job(
        self, batch_service: NamedDependency[BatchService], job_id: KeyPath
    ) -> BatchJob:
        """A job with its progress: rows done of total, rows/s, ETA, state."""
        return await batch_service.get(job_id)

    @post("/{job_id:str}/cancel", status_code=202)
    async def cancel(
        self, batch_service: NamedDependency[BatchService], job_id: KeyPath
    ) -> BatchJob:
        """Stop the job at its next shard boundary (409 when it is not running)."""
        return await batch_service.cancel(job_id)

    @post("/{job_id:str}/resume", status_code=202)
    async def resume(
        self, batch_service: NamedDependency[BatchService], job_id: KeyPath
    ) -> BatchJob:
        """Continue from the committed shards (409 with the reason if the fingerprint moved)."""
        return await batch_service.resume(job_id)
