"""Tuning jobs: what was asked, how far it got, the best result so far.

Revision ID: tuning_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "tuning_0001"
down_revision = None
branch_labels = ("tuning",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tuning_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("study_name", sa.String(300), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("n_trials", sa.Integer, nullable=False),
        sa.Column("trials_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("trials_pruned", sa.Integer, nullable=False, server_default="0"),
        sa.Column("trials_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("best_value", sa.Float, nullable=True),
        sa.Column("best_params", sa.Text, nullable=True),
        sa.Column("best_trial", sa.Integer, nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tuning_jobs_created_at", "tuning_jobs", ["created_at"])


def downgrade() -> None:
    op.drop_table("tuning_jobs")
