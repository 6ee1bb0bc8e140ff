"""Tuning jobs outlive their process in the table; shutdown cancels the running ones."""

from __future__ import annotations

import datetime as dt

from control_plane.tracking.tracker import ExperimentTracker
from control_plane.tuning.models import JobStatus, TuningJob, TuningJobRequest
from control_plane.tuning.service import TuningService
from control_plane.tuning.store import TuningJobStore
from modelyard.settings import TuningSettings
from modelyard.storage import Database


async def test_shutdown_cancels_running_jobs_and_progress_survives(
    database: Database, tracker: ExperimentTracker
) -> None:
    service = TuningService(TuningJobStore(database), tracker, TuningSettings())
    request = TuningJobRequest(model="logistic_regression", dataset="sklearn:iris", n_trials=500)
    job = await service.start(request)
    await service.stop()
    # A fresh store (as after a restart) reads what the stopped job wrote.
    stored = await TuningJobStore(database).get(job.id)
    assert stored.status is JobStatus.CANCELLED
    assert 1 <= stored.trials_done < 500
    assert stored.best_value is not None
    assert stored.mlflow_run_id is not None
    assert tracker.get_run(stored.mlflow_run_id).status.value == "FINISHED"


async def test_jobs_left_running_by_a_dead_process_are_failed_on_start(
    database: Database, tracker: ExperimentTracker
) -> None:
    store = TuningJobStore(database)
    now = dt.datetime.now(dt.UTC)
    orphan = TuningJob(
        id="orphan",
        study_name="orphan",
        request=TuningJobRequest(model="xgboost"),
        status=JobStatus.RUNNING,
        n_trials=10,
        created_at=now,
        updated_at=now,
    )
    await store.create(orphan)
    await TuningService(store, tracker, TuningSettings()).recover()
    recovered = await store.get("orphan")
    assert recovered.status is JobStatus.FAILED
    assert recovered.error == "the control plane stopped while the job ran"
    assert recovered.request == orphan.request
