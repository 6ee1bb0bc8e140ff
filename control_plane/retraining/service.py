"""Retraining: triggers, de-duplication, worker processes, schedules, recovery.

``trigger(model, trigger_type, reason)`` — drift, performance, schedule or manual — creates a
pending run unless the model already has an active one, in which case the trigger is attached
to that run (one running retraining per model; the store's unique ``active_model`` column holds
this across replicas). A run executes in a worker process of its own
(``python -m control_plane.retraining.worker``, see :mod:`control_plane.retraining.pipeline`
for the steps), so a long training never blocks the API. The service owns each worker: a task
awaits it, and :meth:`stop` terminates the workers of this process and marks their runs failed
and resumable.

A run whose worker stopped beating (a killed worker, a control-plane replica that died with its
child) is failed and resumable too: :meth:`reap` runs at start-up and every minute on the
scheduler. Nothing is left "running" forever. :meth:`resume` starts such a run again from its
first step (attempt n+1).

Schedules: every spec's cron expression (weekly by default) is a job of the shared scheduler,
whose lease row makes a due run fire once across replicas; a due time that was already turned
into a run is not turned into a second one (a scheduler re-run after a crash).

Alerts: :meth:`on_alert` turns drift and performance-degradation alerts into triggers
(``retraining.on_alerts``), de-duplicated like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sys
import uuid
from typing import TYPE_CHECKING

import msgspec

from control_plane.retraining.evaluation import check_metric
from control_plane.retraining.models import (
    ACTIVE,
    RetrainingRun,
    RetrainingSpec,
    RunStatus,
    TriggerRecord,
)
from control_plane.retraining.pipeline import BUILT_IN_TRAINERS, entry_point
from control_plane.retraining.store import attach_trigger
from control_plane.retraining.worker import WorkerOrder
from control_plane.scheduler.models import JobRun, Schedule
from modelyard.enums import TriggerType
from modelyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

if TYPE_CHECKING:
    from control_plane.registry.service import RegistryService
    from control_plane.retraining.store import RetrainingStore
    from control_plane.scheduler import Scheduler
    from control_plane.security.models import Principal
    from modelyard.settings import Settings

log = logging.getLogger(__name__)

REAPER_JOB = "retraining:reap"
MAX_PAGE = 500


def schedule_job(model: str) -> str:
    """The scheduler job name of ``model``'s retraining schedule."""
    return f"retraining:{model}"


class RetrainingService:
    """Specs, triggers and runs of retraining.

    Args:
        store: specs and runs.
        registry: the model registry (a spec needs a registered model).
        scheduler: the shared scheduler (schedules and the reaper).
        settings: the process settings (handed to worker processes as they are).
        schema: the PostgreSQL schema the database is confined to (tests), for the workers.
    """

    def __init__(
        self,
        store: RetrainingStore,
        registry: RegistryService,
        scheduler: Scheduler,
        settings: Settings,
        *,
        schema: str | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._scheduler = scheduler
        self._settings = settings
        self._schema = schema
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self) -> None:
        """Reap abandoned runs and register every stored schedule (and the reaper) as jobs."""
        await self.reap()
        self._scheduler.register(REAPER_JOB, Schedule.parse("every 1m"), self._reap_job)
        for model, spec in (await self._store.list_specs()).items():
            try:
                self._schedule(model, spec)
            except InvalidArgument as exc:  # NOTE: stored before its schedule was refused
                log.error(
                    "retraining schedule of %s does not run until its spec is fixed: %s", model, exc
                )

    async def put_spec(
        self, model: str, spec: RetrainingSpec, principal: Principal
    ) -> RetrainingSpec:
        """Create or replace ``model``'s spec (and its schedule).

        Raises:
            NotFound: the model has no registered version.
            InvalidArgument: an unknown metric or direction, schedule, or trainer.
        """
        await self._registry.latest(model)
        check_metric(spec.primary_metric, spec.direction)
        for metric in spec.guardrails:
            check_metric(
                metric, "minimize" if metric in ("log_loss", "rmse", "mae") else "maximize"
            )
        Schedule.parse(spec.schedule)
        if spec.trainer not in BUILT_IN_TRAINERS:
            await asyncio.to_thread(entry_point, spec.trainer)
        await self._store.put_spec(model, spec, principal.name)
        self._schedule(model, spec)
        return spec

    async def get_spec(self, model: str) -> RetrainingSpec:
        """``model``'s spec. Raises NotFound."""
        return await self._store.get_spec(model)

    def _schedule(self, model: str, spec: RetrainingSpec) -> None:
        self._scheduler.unregister(schedule_job(model))
        if spec.scheduled:

            async def fire(run: JobRun) -> None:
                await self._scheduled(model, run)

            self._scheduler.register(schedule_job(model), Schedule.parse(spec.schedule), fire)

    async def _scheduled(self, model: str, job: JobRun) -> None:
        recent = await self._store.list_runs(model, limit=20, offset=0)
        if any(r.trigger.due_at == job.due_at for r in recent):
            return  # a re-run of a due time that already became a run
        await self.trigger(
            model, TriggerType.SCHEDULE, f"scheduled run due {job.due_at.isoformat()}", job.due_at
        )

    async def trigger(
        self,
        model: str,
        trigger_type: TriggerType,
        reason: str = "",
        due_at: dt.datetime | None = None,
    ) -> RetrainingRun:
        """Start a run of ``model`` — or attach this trigger to its active run.

        Raises:
            NotFound: the model has no retraining spec.
        """
        await self._store.get_spec(model)
        now = dt.datetime.now(dt.UTC)
        record = TriggerRecord(trigger_type=trigger_type, reason=reason, at=now, due_at=due_at)
        run = RetrainingRun(
            id=uuid.uuid4().hex,
            model=model,
            status=RunStatus.PENDING,
            trigger=record,
            created_at=now,
            updated_at=now,
        )
        try:
            created = await self._store.create_run(run)
        except AlreadyExists:
            active = await self._store.active_run(model)
            if active is None:  # it ended between our insert and this read: try once more
                return await self.trigger(model, trigger_type, reason, due_at)
            return await self._store.change_run(active.id, lambda r: attach_trigger(r, record))
        self._launch(created)
        return created

    async def on_alert(self, alert_type: str, model: str, reason: str) -> RetrainingRun | None:
        """Trigger retraining for a drift or performance alert (when enabled and specified)."""
        kinds = {"drift": TriggerType.DRIFT, "performance": TriggerType.PERFORMANCE}
        kind = kinds.get(alert_type.split("_")[0])
        if kind is None or not self._settings.retraining.on_alerts:
            return None
        try:
            return await self.trigger(model, kind, reason)
        except NotFound:
            log.info("alert on %s: no retraining spec, nothing triggered", model)
            return None

    async def get(self, run_id: str) -> RetrainingRun:
        """One run. Raises NotFound."""
        return await self._store.get_run(run_id)

    async def list(
        self, model: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[RetrainingRun]:
        """Runs, newest first.

        Raises:
            InvalidArgument: ``limit`` outside 1..500 or a negative ``offset``.
        """
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidArgument(f"limit must be 1..{MAX_PAGE} and offset >= 0")
        return await self._store.list_runs(model, limit, offset)

    async def resume(self, run_id: str) -> RetrainingRun:
        """Start a failed, resumable run again from its first step.

        Raises:
            NotFound: no such run.
            FailedPrecondition: the run is not failed-and-resumable, or its model has another
                active run.
        """
        run = await self._store.get_run(run_id)
        if run.status is not RunStatus.FAILED or not run.resumable:
            raise FailedPrecondition(
                f"retraining run {run_id} is {run.status.value}"
                f"{'' if run.status is not RunStatus.FAILED else ' and not resumable'}"
            )

        def again(stored: RetrainingRun) -> RetrainingRun:
            if stored.status is not RunStatus.FAILED or not stored.resumable:
                raise FailedPrecondition(f"retraining run {run_id} changed meanwhile")
            return msgspec.structs.replace(
                stored,
                status=RunStatus.PENDING,
                resumable=False,
                attempt=stored.attempt + 1,
                error=None,
                steps=(),
                heartbeat_at=None,
            )

        try:
            resumed = await self._store.change_run(run_id, again)
        except AlreadyExists:
            raise FailedPrecondition(f"model {run.model!r} has another active run") from None
        self._launch(resumed)
        return resumed

    def _launch(self, run: RetrainingRun) -> None:
        task = asyncio.create_task(self._execute(run))
        self._workers[run.id] = task
        task.add_done_callback(lambda _: self._workers.pop(run.id, None))

    async def _execute(self, run: RetrainingRun) -> None:
        order = WorkerOrder(
            settings=self._settings,
            schema=self._schema,
            run_id=run.id,
            heartbeat_s=self._settings.retraining.heartbeat_s,
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "control_plane.retraining.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._processes[run.id] = process
        try:
            _, stderr = await process.communicate(msgspec.json.encode(order))
        finally:
            self._processes.pop(run.id, None)
        if process.returncode != 0:
            tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
            await self._abandon(run.id, f"worker exited {process.returncode}: {' | '.join(tail)}")

    async def _abandon(self, run_id: str, reason: str) -> None:
        """Fail an active run whose worker is gone; resumable."""

        def fail(run: RetrainingRun) -> RetrainingRun:
            if run.status not in ACTIVE:
                return run
            return msgspec.structs.replace(
                run, status=RunStatus.FAILED, error=reason, resumable=True
            )

        await self._store.change_run(run_id, fail)

    async def reap(self) -> int:
        """Fail (resumable) every active run whose worker stopped beating; how many."""
        stale_after = dt.timedelta(seconds=self._settings.retraining.stale_after_s)
        stale = await self._store.stale_runs(dt.datetime.now(dt.UTC) - stale_after)
        for run in stale:
            if run.id in self._workers:
                continue  # our own worker, still starting
            await self._abandon(run.id, "the worker stopped (no heartbeat); resume to retry")
        return len(stale)

    async def _reap_job(self, _: JobRun) -> None:
        await self.reap()

    async def wait(self, run_id: str) -> RetrainingRun:
        """The run once this process's worker for it has ended (at once if there is none)."""
        task = self._workers.get(run_id)
        if task is not None:
            await asyncio.shield(task)
        return await self._store.get_run(run_id)

    async def stop(self) -> None:
        """Terminate this process's workers; their runs end failed and resumable.

        A worker orphaned by a control plane that was killed outright keeps running and records
        its run's end itself; if it dies too, the next :meth:`reap` fails the run.
        """
        for process in list(self._processes.values()):
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        # Each task sees its worker exit non-zero and marks the run failed and resumable.
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
