"""The control plane's one background scheduler: named periodic jobs, fired once across replicas.

Features register async functions by name with a :class:`~control_plane.scheduler.models.
Schedule` (``every 5m`` or a cron expression, UTC); the composition root starts the scheduler
with the app and stops it on shutdown. Every ``tick_s`` each replica reads the job rows and
tries to claim the due ones (:mod:`control_plane.scheduler.store`): the claim is a lease row,
so with several replicas on one PostgreSQL database a due run fires on exactly one of them.
While a run is in progress its replica renews the lease every tick; a replica that dies stops
renewing and, once ``lease_s`` has passed, another replica runs the interrupted due run again.

Only jobs registered in *this* replica are claimed here, so replicas of different versions
never run a job they do not know. Job functions must be idempotent per ``JobRun.due_at``: an
interrupted run is run again (``JobRun.rerun``).

>>> import asyncio, tempfile
>>> async def demo() -> list[str]:
...     from modelyard.storage import Database, upgrade
...     folder = tempfile.mkdtemp()
...     database = Database(f"sqlite:///{folder}/demo.db")
...     await upgrade(database)
...     clock = ManualClock(dt.datetime(2026, 12, 4, tzinfo=dt.UTC))
...     scheduler = Scheduler(database, owner="a", clock=clock)
...     seen: list[str] = []
...     async def job(run: JobRun) -> None:
...         seen.append(run.due_at.isoformat())
...     scheduler.register("demo", Schedule.parse("every 1h"), job)
...     await scheduler.tick()          # registers the job; first due in one hour
...     clock.advance(hours=3)          # three hours pass: one coalesced run
...     await scheduler.tick()
...     await scheduler.drain()
...     await database.dispose()
...     return seen
>>> asyncio.run(demo())
['2026-12-04T01:00:00+00:00']
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from control_plane.background import run_every, write_until_done
from control_plane.scheduler.models import JobRun, JobState, Schedule
from control_plane.scheduler.store import SchedulerStore, SqlSchedulerStore
from modelyard.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from modelyard.storage import Database

log = logging.getLogger(__name__)

JobFunction = Callable[[JobRun], Awaitable[None]]
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The wall clock in UTC (shared by replicas, unlike ``time.monotonic``)."""
    return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that moves only when told to (for reproducible schedules in tests and docs)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move forward by ``datetime.timedelta(**delta)``."""
        self.now += dt.timedelta(**delta)


@dataclass
class _Job:
    schedule: Schedule
    function: JobFunction
    stored: bool = False


class Scheduler:
    """Periodic jobs with a database lease.

    Args:
        database: the platform database (table ``scheduler_jobs``).
        store: the lease store (SQL by default).
        owner: this replica's id (host, pid and a random part by default).
        tick_s: how often due jobs are looked for and running leases renewed.
        lease_s: how long a lease lasts without renewal; must exceed ``2 * tick_s``.
        clock: the wall clock (UTC).

    Raises:
        InvalidArgument: ``lease_s`` is not more than twice ``tick_s``.
    """

    def __init__(
        self,
        database: Database,
        store: SchedulerStore | None = None,
        *,
        owner: str | None = None,
        tick_s: float = 1.0,
        lease_s: float = 60.0,
        clock: Clock = utc_now,
    ) -> None:
        if tick_s <= 0 or lease_s <= 2 * tick_s:
            raise InvalidArgument(
                f"scheduler lease_s={lease_s} must exceed twice tick_s={tick_s} (> 0)"
            )
        self._stopping = False
        self._database = database
        self._store = store or SqlSchedulerStore()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tick_s = tick_s
        self._lease_s = lease_s
        self._clock = clock
        self._jobs: dict[str, _Job] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def register(self, name: str, schedule: Schedule, function: JobFunction) -> None:
        """Run ``function`` on ``schedule`` under ``name`` (replacing an earlier registration).

        Raises:
            InvalidArgument: the name is empty or longer than 200 characters.
        """
        if not name.strip() or len(name) > 200:
            raise InvalidArgument(f"job name {name!r} must have 1-200 characters")
        self._jobs[name] = _Job(schedule, function)
        self._wake.set()

    def unregister(self, name: str) -> None:
        """Stop claiming ``name`` here (its row and a run in progress stay)."""
        self._jobs.pop(name, None)

    @property
    def names(self) -> list[str]:
        """The jobs registered in this replica."""
        return sorted(self._jobs)

    async def start(self) -> None:
        """Start the background loop (idempotent)."""
        if self._loop_task is None:
            self._stopping = False
            self._loop_task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        """Stop the loop and cancel runs in progress; their due runs stay pending for a rerun.

        Returns once no task of this scheduler uses the database any more, so the caller may
        dispose of it. The loop finishes the pass it is in; only a pass still running after
        ``5 * tick_s`` (at least 5 s) is cancelled. A cancelled run records how it ended
        before its task ends. If ``stop()`` itself is cancelled, the loop still ends after
        its pass and stays owned: the next ``stop()`` waits for it.
        """
        task = self._loop_task
        if task is not None:
            self._stopping = True
            self._wake.set()
            # NOTE: shielded, so a cancelled stop() leaves the loop to end after its pass.
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=max(5.0, 5 * self._tick_s))
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._loop_task = None
        for run in list(self._running.values()):
            run.cancel()
        await self.drain()

    async def drain(self) -> None:
        """Wait until every run this replica started has finished."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _loop(self) -> None:
        await run_every(
            self.tick,
            interval_s=self._tick_s,
            wake=self._wake,
            stopping=lambda: self._stopping,
            failure="scheduler tick failed",
            logger=log,
        )

    async def tick(self) -> list[str]:
        """One pass: store new registrations, renew running leases, start due runs.

        Returns:
            The names of the jobs started by this pass.
        """
        now = self._clock()
        async with self._database.write() as conn:
            for name, job in list(self._jobs.items()):
                if not job.stored:
                    await self._store.ensure(conn, name, job.schedule, now)
                    job.stored = True
            until = now + dt.timedelta(seconds=self._lease_s)
            for name in list(self._running):
                if not await self._store.renew(conn, name, owner=self.owner, until=until):
                    log.warning("scheduler lost the lease of running job %s", name)
        started = []
        for state in await self.jobs():
            if state.name in self._running or state.name not in self._jobs:
                continue
            try:
                claimed = await self._claim(state, now)
            except Exception:  # NOTE: one job's failure (a stored schedule that no longer
                # parses, a failed write) must not keep the jobs after it from running
                log.exception("scheduler could not start job %s; the others go on", state.name)
                continue
            if claimed:
                started.append(state.name)
        return started

    async def _claim(self, state: JobState, now: dt.datetime) -> bool:
        async with self._database.write() as conn:
            claimed = await self._store.claim(
                conn, state, owner=self.owner, now=now, lease_s=self._lease_s
            )
        if not claimed:
            return False
        due = state.running_due_at or state.next_run_at
        run = JobRun(
            name=state.name,
            due_at=due,
            started_at=now,
            owner=self.owner,
            rerun=state.running_due_at is not None,
        )
        function = self._jobs[state.name].function
        task = asyncio.create_task(self._run(run, function), name=f"job:{state.name}")
        self._running[state.name] = task
        task.add_done_callback(lambda _: self._running.pop(state.name, None))
        return True

    async def _run(self, run: JobRun, function: JobFunction) -> None:
        status, error = "succeeded", None
        try:
            await function(run)
        except asyncio.CancelledError:
            status = "interrupted"
        except Exception as exc:  # NOTE: a job's failure is recorded, never kills the loop.
            log.exception("scheduled job %s failed", run.name)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        # NOTE: a cancelled run still records how it ended, and its task ends only after that
        # write: stop() and drain() wait on the task, and a write still running after them
        # would hold its connection while the caller disposes of the database.
        await _to_completion(self._finish(run.name, status, error))

    async def _finish(self, name: str, status: str, error: str | None) -> None:
        """Record how a run ended and release its lease, retrying a failed write while the
        lease lasts (after it, another replica runs the due run again anyway)."""

        async def write() -> None:
            async with self._database.write() as conn:
                await self._store.finish(
                    conn, name, owner=self.owner, now=self._clock(), status=status, error=error
                )

        await write_until_done(
            write,
            what=f"scheduler: how job {name} ended ({status})",
            logger=log,
            give_up=lambda: self._stopping,
            within_s=self._lease_s,
        )

    async def jobs(self) -> list[JobState]:
        """Every stored job (``registered`` marks the ones known to this replica)."""
        async with self._database.read() as conn:
            states = await self._store.list(conn)
        return [msgspec.structs.replace(s, registered=s.name in self._jobs) for s in states]

    async def run_now(self, name: str) -> JobState:
        """Make ``name`` due now (it runs at the next tick of whichever replica claims it).

        Raises:
            NotFound: no job of that name is stored.
        """
        async with self._database.write() as conn:
            if not await self._store.trigger(conn, name, self._clock()):
                raise NotFound("scheduled job", name)
            state = await self._store.get(conn, name)
        self._wake.set()
        if state is None:
            raise NotFound("scheduled job", name)
        return state


async def _to_completion(work: Coroutine[Any, Any, None]) -> None:
    """Await ``work`` to its end even when the caller is cancelled meanwhile, then re-raise
    the cancellation (a bare ``asyncio.shield`` would return at once and leave ``work``
    running unowned).
    """
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as error:
            if task.done():
                raise
            cancelled = error
    if cancelled is not None:
        raise cancelled
    task.result()


__all__ = ["Clock", "JobFunction", "ManualClock", "Scheduler", "utc_now"]
