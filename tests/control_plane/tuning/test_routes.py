"""Tuning jobs over a real control plane: start, follow, best result, errors."""

from __future__ import annotations

import httpx

from control_plane.server import ControlPlaneServer
from tests.control_plane.conftest import admin_token


def _client(control_plane: ControlPlaneServer) -> httpx.AsyncClient:
    """A client holding the admin token: starting and cancelling jobs are changes."""
    token = admin_token(control_plane)
    return httpx.AsyncClient(
        base_url=control_plane.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    )


JOB = {"model": "logistic_regression", "dataset": "sklearn:iris", "n_trials": 3, "seed": 1}


async def test_a_job_runs_in_the_background_and_reports_its_best(
    control_plane: ControlPlaneServer,
) -> None:
    services = control_plane.services
    assert services is not None
    async with _client(control_plane) as client:
        started = await client.post("/v1/tuning/jobs", json=JOB)
        assert started.status_code == 201, started.text
        job_id = started.json()["id"]
        assert started.json()["status"] == "pending"
        await services.tuning_service.wait(job_id)  # the owned task, not a sleep
        job = (await client.get(f"/v1/tuning/jobs/{job_id}")).json()
        assert (job["status"], job["trials_done"], job["n_trials"]) == ("succeeded", 3, 3)
        best = (await client.get(f"/v1/tuning/jobs/{job_id}/best")).json()
        assert best["value"] == job["best_value"]
        assert set(best["params"]) == {"C", "class_weight"}
        trials = await client.get(
            "/v1/runs",
            params={"filter": f"tags.`mlflow.parentRunId` = '{job['mlflow_run_id']}'"},
        )
        assert sorted(run["run_name"] for run in trials.json()) == [
            "trial-0",
            "trial-1",
            "trial-2",
        ]
        listed = (await client.get("/v1/tuning/jobs")).json()
        assert [item["id"] for item in listed] == [job_id]
        cancel = await client.post(f"/v1/tuning/jobs/{job_id}/cancel")
        assert cancel.status_code == 409
        assert "succeeded, not running" in cancel.json()["error"]


async def test_bad_tuning_requests_are_4xx_json(control_plane: ControlPlaneServer) -> None:
    async with _client(control_plane) as client:
        empty = await client.post(
            "/v1/tuning/jobs", json=JOB | {"space": {}, "replace_space": True}
        )
        assert empty.status_code == 422
        assert empty.json() == {
            "error": "search space is empty: give at least one hyperparameter to tune",
            "code": "invalid_argument",
        }
        unknown_model = await client.post("/v1/tuning/jobs", json=JOB | {"model": "svm"})
        assert unknown_model.status_code == 422
        assert "unknown model 'svm'" in unknown_model.json()["error"]
        bad_range = await client.post(
            "/v1/tuning/jobs", json=JOB | {"space": {"C": {"type": "float", "low": 1}}}
        )
        assert bad_range.status_code == 422
        assert "high" in bad_range.json()["error"]
        unknown_field = await client.post("/v1/tuning/jobs", json=JOB | {"trials": 3})
        assert unknown_field.status_code == 422
        missing_data = await client.post("/v1/tuning/jobs", json=JOB | {"dataset": "/nope.csv"})
        assert missing_data.status_code == 422
        assert "/nope.csv" in missing_data.json()["error"]
        unknown_job = await client.get("/v1/tuning/jobs/feedface")
        assert unknown_job.status_code == 404
        assert unknown_job.json()["error"] == "tuning job 'feedface' not found"
        assert (await client.get("/health")).status_code == 200


async def test_a_running_job_can_be_cancelled(control_plane: ControlPlaneServer) -> None:
    services = control_plane.services
    assert services is not None
    async with _client(control_plane) as client:
        started = await client.post("/v1/tuning/jobs", json=JOB | {"n_trials": 1000})
        job_id = started.json()["id"]
        cancelled = await client.post(f"/v1/tuning/jobs/{job_id}/cancel")
        assert cancelled.status_code == 202
        await services.tuning_service.wait(job_id)
        job = (await client.get(f"/v1/tuning/jobs/{job_id}")).json()
        assert job["status"] == "cancelled"
        assert 1 <= job["trials_done"] < 1000
