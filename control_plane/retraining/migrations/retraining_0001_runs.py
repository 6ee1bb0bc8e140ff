"""Retraining specs and runs.

Revision ID: retraining_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "retraining_0001"
down_revision = None
branch_labels = ("retraining",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retraining_specs",
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "retraining_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("active_model", sa.String(200), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("active_model", name="uq_retraining_runs_active_model"),
    )
    op.create_index("ix_retraining_runs_model_created", "retraining_runs", ["model", "created_at"])


def downgrade() -> None:
    op.drop_table("retraining_runs")
    op.drop_table("retraining_specs")
