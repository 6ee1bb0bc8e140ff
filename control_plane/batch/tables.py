"""The batch jobs table (SQLAlchemy Core), as the ``batch`` Alembic branch creates it.

One row per job: the request, the fingerprint and the latest progress. The output folder's
manifest is the truth about committed shards; the row is what listings and status read, kept
current by the service while the job process runs.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

batch_jobs = sa.Table(
    "batch_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("output", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("rows_total", sa.BigInteger, nullable=False),
    sa.Column("rows_done", sa.BigInteger, nullable=False),
    sa.Column("rows_failed", sa.BigInteger, nullable=False),
    sa.Column("shards_done", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)

__all__ = ["batch_jobs", "metadata"]
