"""The migrations create exactly the tables the prediction log is written against."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from control_plane.predictions.tables import metadata as outcome_metadata
from modelyard.prediction_log import metadata as log_metadata
from modelyard.storage import Database


def _shape(sync_conn: Any, names: list[str]) -> dict[str, Any]:
    inspector = sa.inspect(sync_conn)
    return {
        name: (
            {(c["name"], c["nullable"]) for c in inspector.get_columns(name)},
            inspector.get_pk_constraint(name)["constrained_columns"],
            sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)),
        )
        for name in names
    }


async def test_migrations_match_the_table_definitions(database: Database) -> None:
    tables = {**log_metadata.tables, **outcome_metadata.tables}
    async with database.read() as conn:
        migrated = await conn.run_sync(_shape, list(tables))
    declared = {
        name: (
            {(c.name, c.nullable) for c in table.columns},
            [c.name for c in table.primary_key],
            sorted(
                tuple(c.name for c in u.columns)
                for u in table.constraints
                if isinstance(u, sa.UniqueConstraint)
            ),
        )
        for name, table in tables.items()
    }
    assert migrated == declared
