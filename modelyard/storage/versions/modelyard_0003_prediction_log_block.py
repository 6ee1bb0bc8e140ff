"""Prediction blocks: shipped by the inference servers, unpacked by the control plane
(``modelyard.prediction_blocks``).

Revision ID: modelyard_0003
Revises: modelyard_0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "modelyard_0003"
down_revision = "modelyard_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_log_block",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("worker", sa.Integer, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("key", name="uq_prediction_log_block_key"),
    )


def downgrade() -> None:
    op.drop_table("prediction_log_block")
