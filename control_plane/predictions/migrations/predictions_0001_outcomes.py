"""Outcomes (ground truth / business results) of logged predictions, keyed by request and row.

Revision ID: predictions_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "predictions_0001"
down_revision = None
branch_labels = ("predictions",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row_index", sa.Integer, nullable=False),
        sa.Column("label", sa.JSON, nullable=True),
        sa.Column("conversion", sa.Boolean, nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("writes", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("request_id", "row_index", name="pk_outcomes"),
    )
    op.create_index("ix_outcomes_updated_at", "outcomes", ["updated_at"])


def downgrade() -> None:
    op.drop_table("outcomes")
