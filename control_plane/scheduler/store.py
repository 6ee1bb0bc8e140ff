"""Persistence of scheduled jobs and their lease: the :class:`SchedulerStore` port and adapter.

Exactly-once firing across replicas rests on one conditional ``UPDATE``: a replica *claims* a
due run by moving ``next_run_at`` forward and taking the lease in a statement whose ``WHERE``
repeats what it read (the same ``next_run_at``, no live lease). On PostgreSQL a concurrent
claimer blocks on the row lock and then re-evaluates the ``WHERE`` against the committed row,
which no longer matches; on SQLite the write transaction (``BEGIN IMMEDIATE``) serializes the
claimers. Exactly one sees ``rowcount == 1``.

A claimed run keeps its due time in ``running_due_at`` until it finishes. A replica that stops
gracefully mid-run releases the lease but keeps ``running_due_at`` (status ``interrupted``);
one that crashes leaves the lease to expire. Either way the next claimer sees a pending run and
runs it again (``JobRun.rerun``), so a restart neither misses a due run nor fires a finished
one twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.scheduler.models import JobState, Schedule
from control_plane.scheduler.tables import scheduler_jobs
from modelyard.storage import storable_text
from modelyard.timestamps import as_utc

MAX_ERROR = 2000


class SchedulerStore(Protocol):
    """Where job schedules and leases live. Contract (every implementation, both backends):

    - :meth:`ensure` creates a job row, or updates its schedule (and re-plans ``next_run_at``)
      when the stored schedule text differs; an unchanged schedule keeps the stored plan.
    - :meth:`claim` succeeds for at most one caller per due run, however many race, and only
      when the run is due (``next_run_at <= now``) or pending from an interrupted attempt, and
      no live lease (``lease_until > now``) is held by anyone.
    - :meth:`renew` and :meth:`finish` act only while ``owner`` holds the lease.
    - Times are UTC; reads return aware datetimes.
    """

    async def ensure(
        self, conn: AsyncConnection, name: str, schedule: Schedule, now: dt.datetime
    ) -> None:
        """Create or re-plan the job ``name``."""
        ...

    async def get(self, conn: AsyncConnection, name: str) -> JobState | None:
        """The stored job, or ``None``."""
        ...

    async def list(self, conn: AsyncConnection) -> list[JobState]:
        """Every stored job, by name."""
        ...

    async def claim(
        self, conn: AsyncConnection, job: JobState, *, owner: str, now: dt.datetime, lease_s: float
    ) -> bool:
        """Take the lease on ``job``'s due run as read; ``False`` when another replica did."""
        ...

    async def renew(
        self, conn: AsyncConnection, name: str, *, owner: str, until: dt.datetime
    ) -> bool:
        """Extend ``owner``'s lease; ``False`` when it no longer holds it."""
        ...

    async def finish(
        self,
        conn: AsyncConnection,
        name: str,
        *,
        owner: str,
        now: dt.datetime,
        status: str,
        error: str | None = None,
    ) -> bool:
        """Record the end of ``owner``'s run; ``interrupted`` keeps the run pending."""
        ...

    async def trigger(self, conn: AsyncConnection, name: str, now: dt.datetime) -> bool:
        """Make ``name`` due now; ``False`` for an unknown job."""
        ...


class SqlSchedulerStore:
    """:class:`SchedulerStore` on SQLAlchemy Core, for SQLite and PostgreSQL alike."""

    async def ensure(
        self, conn: AsyncConnection, name: str, schedule: Schedule, now: dt.datetime
    ) -> None:
        insert: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert
        row = {
            "name": name,
            "schedule": schedule.text,
            "next_run_at": schedule.first_due(now),
            "run_count": 0,
        }
        await conn.execute(insert(scheduler_jobs).values(**row).on_conflict_do_nothing())
        await conn.execute(
            scheduler_jobs.update()
            .where(scheduler_jobs.c.name == name, scheduler_jobs.c.schedule != schedule.text)
            .values(schedule=schedule.text, next_run_at=schedule.first_due(now))
        )

    async def get(self, conn: AsyncConnection, name: str) -> JobState | None:
        query = sa.select(scheduler_jobs).where(scheduler_jobs.c.name == name)
        row = (await conn.execute(query)).first()
        return None if row is None else _job(row._asdict())

    async def list(self, conn: AsyncConnection) -> list[JobState]:
        query = sa.select(scheduler_jobs).order_by(scheduler_jobs.c.name)
        return [_job(row._asdict()) for row in await conn.execute(query)]

    async def claim(
        self, conn: AsyncConnection, job: JobState, *, owner: str, now: dt.datetime, lease_s: float
    ) -> bool:
        pending = job.running_due_at is not None
        if not pending and job.next_run_at > now:
            return False
        if job.lease_until is not None and job.lease_until > now:
            return False
        c = scheduler_jobs.c
        values: dict[str, Any] = {
            "lease_owner": owner,
            "lease_until": now + dt.timedelta(seconds=lease_s),
            "last_started_at": now,
            "last_status": "running",
            "last_error": None,
        }
        if not pending:
            schedule = Schedule.parse(job.schedule)
            values["running_due_at"] = job.next_run_at
            values["next_run_at"] = schedule.next_due(job.next_run_at, now=now)
        lease_free = sa.or_(c.lease_until.is_(None), c.lease_until <= now)
        same_plan = [c.next_run_at == job.next_run_at, c.schedule == job.schedule]
        same_plan.append(
            c.running_due_at.is_(None) if not pending else c.running_due_at == job.running_due_at
        )
        result = await conn.execute(
            scheduler_jobs.update()
            .where(c.name == job.name, lease_free, *same_plan)
            .values(**values)
        )
        return bool(result.rowcount == 1)

    async def renew(
        self, conn: AsyncConnection, name: str, *, owner: str, until: dt.datetime
    ) -> bool:
        c = scheduler_jobs.c
        result = await conn.execute(
            scheduler_jobs.update()
            .where(c.name == name, c.lease_owner == owner)
            .values(lease_until=until)
        )
        return bool(result.rowcount == 1)

    async def finish(
        self,
        conn: AsyncConnection,
        name: str,
        *,
        owner: str,
        now: dt.datetime,
        status: str,
        error: str | None = None,
    ) -> bool:
        c = scheduler_jobs.c
        values: dict[str, Any] = {
            "lease_owner": None,
            "lease_until": None,
            "last_finished_at": now,
            "last_status": status,
            "last_error": None if error is None else storable_text(error, MAX_ERROR),
        }
        if status != "interrupted":
            values["running_due_at"] = None
            values["run_count"] = c.run_count + 1
        result = await conn.execute(
            scheduler_jobs.update().where(c.name == name, c.lease_owner == owner).values(**values)
        )
        return bool(result.rowcount == 1)

    async def trigger(self, conn: AsyncConnection, name: str, now: dt.datetime) -> bool:
        result = await conn.execute(
            scheduler_jobs.update().where(scheduler_jobs.c.name == name).values(next_run_at=now)
        )
        return bool(result.rowcount == 1)


def _job(mapping: dict[str, Any]) -> JobState:
    row = {str(key): value for key, value in mapping.items()}
    for key in ("next_run_at", "running_due_at", "lease_until", "last_started_at"):
        row[key] = as_utc(row[key])
    row["last_finished_at"] = as_utc(row["last_finished_at"])
    return JobState(**row)


__all__ = ["SchedulerStore", "SqlSchedulerStore"]
