"""REST access to the scheduler: a thin controller over :class:`Scheduler`.

======================================  ======  ==============================================
``GET /v1/scheduler/jobs``              200     stored jobs: schedule, next run, lease, last run
``POST /v1/scheduler/jobs/{name}/run``  200     make a job due now (admin); 404 unknown job
======================================  ======  ==============================================
"""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency

from control_plane.params import KeyPath
from control_plane.scheduler.models import JobState
from control_plane.scheduler.scheduler import Scheduler
from control_plane.security.models import Permission


class SchedulerController(Controller):
    """``/v1/scheduler``: the control plane's periodic jobs."""

    path = "/v1/scheduler"
    tags = ["scheduler"]

    @get("/jobs")
    async def list_jobs(self, scheduler: NamedDependency[Scheduler]) -> list[JobState]:
        """Every stored job, by name (``registered``: known to the replica answering)."""
        return await scheduler.jobs()

    @post("/jobs/{name:str}/run", status_code=200, opt={"permission": Permission.ADMIN})
    async def run_job(self, name: KeyPath, scheduler: NamedDependency[Scheduler]) -> JobState:
        """Make ``name`` due now; the next tick of one replica runs it."""
        return await scheduler.run_now(name)


__all__ = ["SchedulerController"]
