"""The tuning jobs table: a job's request, status and progress survive a restart.

Progress is written after every finished trial (absolute counters, so the last write wins
and a reader never sees counts go backwards within one job).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import sqlalchemy as sa

from control_plane.tuning.models import JobStatus, TuningJob, TuningJobRequest
from modelyard.errors import NotFound
from modelyard.storage import Database
from modelyard.timestamps import as_utc

metadata = sa.MetaData()

tuning_jobs = sa.Table(
    "tuning_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("study_name", sa.String(300), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("n_trials", sa.Integer, nullable=False),
    sa.Column("trials_done", sa.Integer, nullable=False),
    sa.Column("trials_pruned", sa.Integer, nullable=False),
    sa.Column("trials_failed", sa.Integer, nullable=False),
    sa.Column("best_value", sa.Float, nullable=True),
    sa.Column("best_params", sa.Text, nullable=True),
    sa.Column("best_trial", sa.Integer, nullable=True),
    sa.Column("mlflow_run_id", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

_ACTIVE = (JobStatus.PENDING.value, JobStatus.RUNNING.value)


def _to_job(mapping: Any) -> TuningJob:
    row = {str(key): value for key, value in mapping.items()}
    best_params = row.pop("best_params")
    return TuningJob(
        **row
        | {
            "request": msgspec.json.decode(row["request"], type=TuningJobRequest),
            "status": JobStatus(row["status"]),
            "best_params": None if best_params is None else msgspec.json.decode(best_params),
            "created_at": as_utc(row["created_at"]),
            "updated_at": as_utc(row["updated_at"]),
        }
    )


class TuningJobStore:
    """Tuning jobs on SQLite or PostgreSQL.

    Args:
        database: the platform database (migrated with the ``tuning`` branch).
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, job: TuningJob) -> TuningJob:
        """Insert ``job``."""
        values = msgspec.structs.asdict(job) | {
            "request": msgspec.json.encode(job.request).decode(),
            "status": job.status.value,
            "best_params": None,
        }
        async with self._database.write() as conn:
            await conn.execute(tuning_jobs.insert().values(**values))
        return job

    async def get(self, job_id: str) -> TuningJob:
        """The job.

        Raises:
            NotFound: no job has this id.
        """
        async with self._database.read() as conn:
            row = (
                await conn.execute(sa.select(tuning_jobs).where(tuning_jobs.c.id == job_id))
            ).first()
        if row is None:
            raise NotFound("tuning job", job_id)
        return _to_job(row._mapping)

    async def list(self, limit: int = 100) -> list[TuningJob]:
        """The newest jobs first."""
        query = sa.select(tuning_jobs).order_by(tuning_jobs.c.created_at.desc()).limit(limit)
        async with self._database.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_to_job(row._mapping) for row in rows]

    async def update(self, job_id: str, **changes: Any) -> None:
        """Set columns of one job (``status`` as :class:`JobStatus`, ``best_params`` a dict)."""
        if isinstance(changes.get("status"), JobStatus):
            changes["status"] = changes["status"].value
        if changes.get("best_params") is not None:
            changes["best_params"] = msgspec.json.encode(changes["best_params"]).decode()
        changes["updated_at"] = dt.datetime.now(dt.UTC)
        async with self._database.write() as conn:
            await conn.execute(
                tuning_jobs.update().where(tuning_jobs.c.id == job_id).values(**changes)
            )

    async def fail_abandoned(self, reason: str) -> int:
        """Mark every pending or running job failed (no process runs them any more)."""
        async with self._database.write() as conn:
            result = await conn.execute(
                tuning_jobs.update()
                .where(tuning_jobs.c.status.in_(_ACTIVE))
                .values(
                    status=JobStatus.FAILED.value, error=reason, updated_at=dt.datetime.now(dt.UTC)
                )
            )
        return int(result.rowcount)
