"""Monitoring: row counts of drift reports and performance points as 64-bit integers.

A drift report's ``rows`` (served rows in the window) and a metric point's ``n`` (labelled rows)
were ``INTEGER``: 32 bits on PostgreSQL, so a window of more than 2**31-1 rows (a 90-day window
at ~300 rows/s) could not be stored there (SQLite's INTEGER is 64 bits already, so this
revision changes nothing there).

Revision ID: monitoring_0003
Revises: monitoring_0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0003"
down_revision = "monitoring_0002"
branch_labels = None
depends_on = None

_COLUMNS = (("monitoring_drift_reports", "rows"), ("monitoring_performance", "n"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger, existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.alter_column(table, column, type_=sa.Integer, existing_nullable=False)
