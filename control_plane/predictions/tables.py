"""The ``outcomes`` table (SQLAlchemy Core), as the ``predictions`` Alembic branch creates it.

The records themselves live in :data:`modelyard.prediction_log.prediction_log` (the
``modelyard`` branch), because the inference servers write them and never import this package.
An outcome is keyed by ``(request_id, row_index)`` and joins every record of that row (the
answer and any shadow copies). ``writes`` counts how often the outcome was written (last write
wins; ``writes - 1`` duplicates).
"""

from __future__ import annotations

import sqlalchemy as sa

from modelyard.prediction_log import prediction_log

metadata = sa.MetaData()

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("row_index", sa.Integer, primary_key=True),
    sa.Column("label", sa.JSON, nullable=True),
    sa.Column("conversion", sa.Boolean, nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("writes", sa.Integer, nullable=False),
)


__all__ = ["metadata", "outcomes", "prediction_log"]
