"""The retraining tables.

``retraining_specs`` holds one spec per model. ``retraining_runs`` holds every run: the run as
JSON in ``body`` (steps, triggers, comparison) plus the columns queries filter on.
``active_model`` equals ``model`` while the run is pending or running and is NULL afterwards;
its unique constraint is what guarantees one running retraining per model, on SQLite and on
PostgreSQL alike, even with two control-plane replicas.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

retraining_specs = sa.Table(
    "retraining_specs",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

retraining_runs = sa.Table(
    "retraining_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("active_model", sa.String(200), nullable=True, unique=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_retraining_runs_model_created", "model", "created_at"),
)
