"""The migrations create exactly the tables and columns the code declares (both backends)."""

from __future__ import annotations

import sqlalchemy as sa

from control_plane.registry.tables import metadata as registry_metadata
from control_plane.security.tokens import metadata as security_metadata
from modelyard.storage.database import Database


def _columns(sync_conn: sa.Connection, tables: list[str]) -> dict[str, set[str]]:
    inspector = sa.inspect(sync_conn)
    return {t: {c["name"] for c in inspector.get_columns(t)} for t in tables}


def _indexes(sync_conn: sa.Connection, table: str) -> dict[str, bool]:
    return {i["name"] or "": bool(i["unique"]) for i in sa.inspect(sync_conn).get_indexes(table)}


async def test_migrations_match_the_declared_tables(database: Database) -> None:
    declared = {
        name: {c.name for c in table.columns}
        for metadata in (registry_metadata, security_metadata)
        for name, table in metadata.tables.items()
    }
    async with database.read() as conn:
        created = await conn.run_sync(_columns, sorted(declared))
        indexes = await conn.run_sync(_indexes, "model_versions")
    assert created == declared
    assert indexes["ux_model_versions_one_production"] is True
