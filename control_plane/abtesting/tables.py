"""The A/B testing tables (SQLAlchemy Core), as the ``abtesting`` Alembic branch creates them.

One row per test. The definition (variants with their current weights, metrics, alpha,
mode) is one JSON document: it is read and written whole, never queried inside. A partial
unique index allows one running test per model.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

ab_tests = sa.Table(
    "ab_tests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(128), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("phase_started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("winner", sa.Integer, nullable=True),
    sa.Index(
        "uq_ab_tests_running_model",
        "model",
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    ),
)

__all__ = ["ab_tests", "metadata"]
