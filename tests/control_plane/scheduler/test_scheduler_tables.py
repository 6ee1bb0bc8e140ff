"""The ``scheduler`` migration creates exactly the tables the store is written against."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from control_plane.scheduler.tables import metadata
from modelyard.storage import Database


def _shape(sync_conn: Any) -> dict[str, Any]:
    inspector = sa.inspect(sync_conn)
    return {
        name: (
            {(c["name"], c["nullable"]) for c in inspector.get_columns(name)},
            inspector.get_pk_constraint(name)["constrained_columns"],
        )
        for name in metadata.tables
    }


async def test_migration_matches_the_table_definitions(database: Database) -> None:
    async with database.read() as conn:
        migrated = await conn.run_sync(_shape)
    declared = {
        name: ({(c.name, c.nullable) for c in table.columns}, [c.name for c in table.primary_key])
        for name, table in metadata.tables.items()
    }
    assert migrated == declared
