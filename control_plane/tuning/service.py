"""Tuning jobs: start a study in the background, follow its progress, read its best result.

The service owns every job it starts: an ``asyncio`` task per job, stored with the job's
stop event. The study runs on a worker thread (Optuna and the estimators are synchronous);
after every finished trial its progress is written to the ``tuning_jobs`` table, so
``GET`` answers from the table and progress survives a control-plane restart. A job that
was pending or running when its process ended cannot resume (its in-memory study died with
it): :meth:`TuningService.recover` marks it failed on start-up. :meth:`TuningService.stop`
(shutdown) asks every study to start no new trial, waits for the running trials, and marks
those jobs cancelled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from control_plane.background import write_until_done
from control_plane.tuning.datasets import load_dataset
from control_plane.tuning.estimators import HoldoutObjective
from control_plane.tuning.models import (
    BestConfiguration,
    JobStatus,
    Progress,
    TuningJob,
    TuningJobRequest,
)
from control_plane.tuning.tuner import HyperparameterTuner
from modelyard.errors import FailedPrecondition, InvalidArgument, ModelyardError
from modelyard.storage import storable_text

if TYPE_CHECKING:
    from control_plane.tracking.tracker import ExperimentTracker
    from control_plane.tuning.store import TuningJobStore
    from modelyard.settings import TuningSettings

logger = logging.getLogger(__name__)
MAX_TRIALS = 10_000
MAX_JOBS = 32


class TuningService:
    """Start, follow, cancel and read tuning jobs.

    Args:
        store: the tuning jobs table.
        tracker: where each study's trials are logged.
        settings: the ``tuning`` settings (Optuna storage).
    """

    def __init__(
        self, store: TuningJobStore, tracker: ExperimentTracker, settings: TuningSettings
    ) -> None:
        self._store = store
        self._tracker = tracker
        self._settings = settings
        self._running: dict[str, tuple[asyncio.Task[None], threading.Event]] = {}

    async def recover(self) -> None:
        """Fail the jobs a previous process left pending or running."""
        count = await self._store.fail_abandoned("the control plane stopped while the job ran")
        if count:
            logger.warning("marked %d abandoned tuning job(s) failed", count)

    async def start(self, request: TuningJobRequest) -> TuningJob:
        """Validate ``request``, store the job, and start it in the background.

        Raises:
            InvalidArgument: unknown model, empty or invalid space, bad counts, or a dataset
                that cannot be read.
        """
        if not 1 <= request.n_trials <= MAX_TRIALS or not 1 <= request.n_jobs <= MAX_JOBS:
            raise InvalidArgument(
                f"n_trials={request.n_trials}, n_jobs={request.n_jobs}: "
                f"expected 1..{MAX_TRIALS} trials and 1..{MAX_JOBS} jobs"
            )
        job_id = uuid.uuid4().hex
        study_name = request.study_name or f"job-{job_id}"
        # Off the loop: an RDB storage connects to PostgreSQL while it is built.
        tuner = await asyncio.to_thread(
            HyperparameterTuner,
            request.model,
            space=request.space,
            replace_space=request.replace_space,
            study_name=study_name,
            storage=self._settings.storage,
            seed=request.seed,
            tracker=self._tracker,
            experiment=request.experiment,
        )
        features, labels = await asyncio.to_thread(load_dataset, request.dataset, request.target)
        now = dt.datetime.now(dt.UTC)
        job = TuningJob(
            id=job_id,
            study_name=study_name,
            request=request,
            status=JobStatus.PENDING,
            n_trials=request.n_trials,
            created_at=now,
            updated_at=now,
        )
        await self._store.create(job)
        stop = threading.Event()
        task = asyncio.create_task(self._run(job, tuner, features, labels, stop))
        self._running[job_id] = (task, stop)
        task.add_done_callback(lambda _: self._running.pop(job_id, None))
        return job

    async def _run(
        self,
        job: TuningJob,
        tuner: HyperparameterTuner,
        features: Any,
        labels: Any,
        stop: threading.Event,
    ) -> None:
        on_progress = self._progress_writer(job.id, asyncio.get_running_loop())
        request = job.request
        try:
            await asyncio.to_thread(tuner.create_study)
            await self._store.update(
                job.id, status=JobStatus.RUNNING, mlflow_run_id=tuner.study_run_id
            )
            objective = await asyncio.to_thread(
                HoldoutObjective, request.model, features, labels, seed=request.seed or 0
            )
            await asyncio.to_thread(
                tuner.optimize,
                objective,
                n_trials=request.n_trials,
                n_jobs=request.n_jobs,
                on_progress=on_progress,
                stop=stop,
            )
        except ModelyardError as error:
            await self._finish(job.id, JobStatus.FAILED, str(error))
            return
        except Exception as error:
            # The edge of a background job: nobody awaits it, so record and log here once.
            logger.exception("tuning job %s failed", job.id)
            await self._finish(job.id, JobStatus.FAILED, f"{type(error).__name__}: {error}")
            return
        finally:
            try:
                await asyncio.to_thread(tuner.close)
            except Exception:  # NOTE: closing the MLflow run failed; the job's outcome stands
                logger.exception("tuning job %s: closing its study failed", job.id)
        await self._finish(job.id, JobStatus.CANCELLED if stop.is_set() else JobStatus.SUCCEEDED)

    async def _finish(self, job_id: str, status: JobStatus, error: str | None = None) -> None:
        """Record how the job ended, retried (a job left ``running`` is never settled)."""
        fields: dict[str, Any] = {"status": status}
        if error is not None:
            fields["error"] = storable_text(error)
        await write_until_done(
            lambda: self._store.update(job_id, **fields),
            what=f"tuning job {job_id}: its final status {status.value}",
            logger=logger,
        )

    def _progress_writer(
        self, job_id: str, loop: asyncio.AbstractEventLoop
    ) -> Callable[[Progress], None]:
        """A progress callback for the study's thread that writes through the event loop."""

        def write(progress: Progress) -> None:
            # Called on the study's thread, under its lock: writes land in trial order.
            update = self._store.update(
                job_id,
                trials_done=progress.finished,
                trials_pruned=progress.pruned,
                trials_failed=progress.failed,
                best_value=progress.best_value,
                best_params=progress.best_params,
                best_trial=progress.best_trial,
            )
            try:
                asyncio.run_coroutine_threadsafe(update, loop).result()
            except Exception as exc:  # NOTE: progress is best effort: the study goes on, and
                # the next write carries every count so far (it failed the study before)
                logger.warning("tuning job %s: progress not recorded (%r)", job_id, exc)

        return write

    async def get(self, job_id: str) -> TuningJob:
        """The job and its progress.

        Raises:
            NotFound: no job has this id.
        """
        return await self._store.get(job_id)

    async def list(self, limit: int = 100) -> list[TuningJob]:
        """The newest jobs first."""
        return await self._store.list(limit)

    async def best(self, job_id: str) -> BestConfiguration:
        """The best configuration the job found so far.

        Raises:
            NotFound: no job has this id.
            FailedPrecondition: no trial of the job has completed yet.
        """
        job = await self._store.get(job_id)
        if job.best_value is None or job.best_params is None or job.best_trial is None:
            raise FailedPrecondition(f"tuning job {job_id!r} has no completed trial yet")
        return BestConfiguration(
            params=job.best_params,
            value=job.best_value,
            trial_number=job.best_trial,
            completed_trials=job.trials_done - job.trials_pruned - job.trials_failed,
        )

    async def cancel(self, job_id: str) -> TuningJob:
        """Start no new trial of the job; it ends ``cancelled`` once running trials finish.

        Raises:
            NotFound: no job has this id.
            FailedPrecondition: the job is not running in this process.
        """
        job = await self._store.get(job_id)
        running = self._running.get(job_id)
        if running is None:
            raise FailedPrecondition(f"tuning job {job_id!r} is {job.status.value}, not running")
        running[1].set()
        return job

    async def wait(self, job_id: str) -> TuningJob:
        """The job once its background task has ended (returns at once if it has)."""
        running = self._running.get(job_id)
        if running is not None:
            await asyncio.shield(running[0])
        return await self._store.get(job_id)

    async def stop(self) -> None:
        """Stop every job of this process: no new trials; wait for the running ones."""
        for _, stop in self._running.values():
            stop.set()
        tasks = [task for task, _ in self._running.values()]
        await asyncio.gather(*tasks, return_exceptions=True)
