"""The bootstrap marker: one row per database once its first admin token is issued.

Revision ID: security_0002
Revises: security_0001
Create Date: 2026-12-04

A database that already issued its first admin token (before the marker existed) is marked
here, from its earliest admin token, so no start issues a second one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "security_0002"
down_revision = "security_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bootstrap = op.create_table(
        "security_bootstrap",
        sa.Column("step", sa.String(32), primary_key=True),
        sa.Column("token_id", sa.String(36), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
    )
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.String),
        sa.column("role", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("created_by", sa.String),
    )
    # The bootstrap token first, else the earliest admin token (the one any admin descends from).
    first = (
        sa.select(tokens.c.id, tokens.c.created_at)
        .where(tokens.c.role == "admin")
        .order_by((tokens.c.created_by != "bootstrap"), tokens.c.created_at, tokens.c.id)
        .limit(1)
    )
    row = op.get_bind().execute(first).first()
    if row is not None:
        op.bulk_insert(
            bootstrap, [{"step": "admin_token", "token_id": row.id, "done_at": row.created_at}]
        )


def downgrade() -> None:
    op.drop_table("security_bootstrap")
