"""The scheduler inside a real control plane (port 0): started with the app, listed and
triggered over REST, on both backends."""

from __future__ import annotations

import asyncio
import time

import httpx

from control_plane.scheduler import JobRun, Schedule
from control_plane.server import ControlPlaneServer
from tests.control_plane.conftest import admin_token


async def test_jobs_are_listed_and_triggered_over_rest(control_plane: ControlPlaneServer) -> None:
    assert control_plane.services is not None
    runs: list[JobRun] = []

    async def job(run: JobRun) -> None:
        runs.append(run)

    control_plane.services.scheduler.register("nightly", Schedule.parse("0 2 * * *"), job)
    async with httpx.AsyncClient(base_url=control_plane.url, timeout=30) as client:
        deadline = time.monotonic() + 20
        jobs: list[dict[str, object]] = []
        while not jobs:  # the app's scheduler stores the registration at its next tick
            assert time.monotonic() < deadline
            listed = (await client.get("/v1/scheduler/jobs")).json()
            jobs = [job for job in listed if job["name"] == "nightly"]
            await asyncio.sleep(0.05)
        assert jobs[0]["schedule"] == "0 2 * * *"
        assert jobs[0]["registered"] is True
        refused = await client.post("/v1/scheduler/jobs/nightly/run")
        assert refused.status_code == 401
        headers = {"Authorization": f"Bearer {admin_token(control_plane)}"}
        missing = await client.post("/v1/scheduler/jobs/nope/run", headers=headers)
        assert missing.status_code == 404
        assert "nope" in missing.json()["error"]
        triggered = await client.post("/v1/scheduler/jobs/nightly/run", headers=headers)
        assert triggered.status_code == 200, triggered.text
        while not runs:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert runs[0].name == "nightly"
