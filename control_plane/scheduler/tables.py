"""The scheduler's table (SQLAlchemy Core), as the ``scheduler`` Alembic branch creates it.

One row per registered job: its schedule, when it is next due, and the *lease* -- which
control-plane replica runs it now and until when. :mod:`control_plane.scheduler.store`
explains how the lease makes a due run fire exactly once across replicas.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

scheduler_jobs = sa.Table(
    "scheduler_jobs",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("schedule", sa.String(200), nullable=False),
    sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("running_due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_status", sa.String(16), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("run_count", sa.Integer, nullable=False),
)


__all__ = ["metadata", "scheduler_jobs"]
