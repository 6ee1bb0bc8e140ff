"""The prediction log: one row per answered prediction row (``modelyard.prediction_log``).

Revision ID: modelyard_0002
Revises: modelyard_0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "modelyard_0002"
down_revision = "modelyard_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row_index", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("variant", sa.String(16), nullable=False),
        sa.Column("routing_key", sa.String(256), nullable=True),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("worker", sa.Integer, nullable=False),
        sa.UniqueConstraint(
            "request_id", "row_index", "model", "version", "shadow", name="uq_prediction_log_key"
        ),
    )
    op.create_index(
        "ix_prediction_log_model_time", "prediction_log", ["model", "version", "created_at"]
    )
    op.create_index("ix_prediction_log_created_at", "prediction_log", ["created_at"])


def downgrade() -> None:
    op.drop_table("prediction_log")
