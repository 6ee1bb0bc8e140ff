"""Persistence of batch jobs: the :class:`BatchJobStore` port and its SQL adapter.

Every method takes the caller's connection, so the service owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.batch.models import BatchJob, BatchOptions, JobState, Progress
from control_plane.batch.tables import batch_jobs
from modelyard.storage import storable_text
from modelyard.timestamps import as_utc

_ACTIVE = (JobState.PENDING.value, JobState.RUNNING.value)


class BatchJobStore(Protocol):
    """Where batch jobs live. Contract (every implementation, both backends):

    - :meth:`add` stores a new job; ids are unique (a second add of an id fails).
    - :meth:`set_progress` replaces the job's progress and state; progress counters come
      from the output's manifest, so the last write wins.
    - Reads return ``None`` / empty for unknown ids; the service raises ``NotFound``.
    - :meth:`newest` answers the newest jobs first; :meth:`active` the pending and running ones.
    """

    async def add(self, conn: AsyncConnection, job: BatchJob) -> None:
        """Store a new job."""
        ...

    async def get(self, conn: AsyncConnection, job_id: str) -> BatchJob | None:
        """The job with this id."""
        ...

    async def newest(self, conn: AsyncConnection, limit: int) -> list[BatchJob]:
        """The newest ``limit`` jobs."""
        ...

    async def active(self, conn: AsyncConnection) -> list[BatchJob]:
        """Jobs whose state is pending or running."""
        ...

    async def set_progress(
        self, conn: AsyncConnection, job_id: str, progress: Progress, at: dt.datetime
    ) -> None:
        """Record the job's latest progress (and state) at ``at``."""
        ...


_options = msgspec.json.Decoder(BatchOptions)


class SqlBatchJobStore:
    """:class:`BatchJobStore` on SQLAlchemy Core, for SQLite and PostgreSQL alike."""

    async def add(self, conn: AsyncConnection, job: BatchJob) -> None:
        values = _progress_values(job.progress) | {
            "id": job.id,
            "model": job.model,
            "version": job.version,
            "input": job.input,
            "output": job.output,
            "options": msgspec.json.encode(job.options).decode(),
            "fingerprint": job.fingerprint,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "created_by": job.created_by,
        }
        await conn.execute(batch_jobs.insert().values(**values))

    async def get(self, conn: AsyncConnection, job_id: str) -> BatchJob | None:
        row = (await conn.execute(batch_jobs.select().where(batch_jobs.c.id == job_id))).first()
        return None if row is None else _job(row._asdict())

    async def newest(self, conn: AsyncConnection, limit: int) -> list[BatchJob]:
        query = (
            batch_jobs.select()
            .order_by(batch_jobs.c.created_at.desc(), batch_jobs.c.id)
            .limit(limit)
        )
        return [_job(row._asdict()) for row in await conn.execute(query)]

    async def active(self, conn: AsyncConnection) -> list[BatchJob]:
        query = batch_jobs.select().where(batch_jobs.c.state.in_(_ACTIVE))
        return [_job(row._asdict()) for row in await conn.execute(query)]

    async def set_progress(
        self, conn: AsyncConnection, job_id: str, progress: Progress, at: dt.datetime
    ) -> None:
        values = _progress_values(progress) | {"updated_at": at}
        await conn.execute(batch_jobs.update().where(batch_jobs.c.id == job_id).values(**values))


def _progress_values(progress: Progress) -> dict[str, Any]:
    return {
        "state": progress.state.value,
        "rows_total": progress.rows_total,
        "rows_done": progress.rows_done,
        "rows_failed": progress.rows_failed,
        "shards_done": progress.shards_done,
        "error": None if progress.error is None else storable_text(progress.error),
    }


def _job(mapping: dict[str, Any]) -> BatchJob:
    row = {str(key): value for key, value in mapping.items()}
    progress = Progress(
        state=JobState(row["state"]),
        rows_total=row["rows_total"],
        rows_done=row["rows_done"],
        rows_failed=row["rows_failed"],
        shards_done=row["shards_done"],
        error=row["error"],
    )
    return BatchJob(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        input=row["input"],
        output=row["output"],
        options=_options.decode(row["options"]),
        fingerprint=row["fingerprint"],
        progress=progress,
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
        created_by=row["created_by"],
    )


__all__ = ["BatchJobStore", "SqlBatchJobStore"]
