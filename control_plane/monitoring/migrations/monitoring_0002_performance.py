"""Monitoring: performance specs per model and the per-window metric time series.

Revision ID: monitoring_0002
Revises: monitoring_0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0002"
down_revision = "monitoring_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_performance_specs",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_monitoring_performance_specs"),
    )
    op.create_table(
        "monitoring_performance",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "model",
            "version",
            "window_start",
            "window_end",
            "metric",
            name="pk_monitoring_performance",
        ),
    )


def downgrade() -> None:
    op.drop_table("monitoring_performance")
    op.drop_table("monitoring_performance_specs")
