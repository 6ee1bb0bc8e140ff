"""The storage layer on both backends: migrations, transactions, the audit log."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelyard.errors import ConfigurationError
from modelyard.storage import Database, migration_locations, to_async_url, upgrade
from modelyard.storage.audit import AuditEvent, AuditLog
from modelyard.storage.database import SQLITE_PAGE_SIZE
from modelyard.storage.migrations import known_heads


async def test_migrations_reach_every_head(database: Database) -> None:
    assert await upgrade(database) == known_heads()


async def test_upgrade_is_idempotent(database: Database) -> None:
    first = await upgrade(database)
    assert await upgrade(database) == first


def test_migration_locations_include_the_foundation() -> None:
    assert any(
        path.name == "versions" and path.parent.name == "storage" for path in migration_locations()
    )


@pytest.mark.parametrize("url", ["nonsense://x", "mysql://root@localhost/db", "::"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="database URL"):
        to_async_url(url)


async def test_write_rolls_back_on_error(database: Database) -> None:
    log = AuditLog(database)

    async def record_then_fail() -> None:
        async with database.write() as conn:
            await log.record(conn, AuditEvent(actor="a", action="x", entity_kind="k", entity="e"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await record_then_fail()
    assert await log.list() == []


async def test_audit_log_round_trip_and_filters(database: Database) -> None:
    log = AuditLog(database)
    async with database.write() as conn:
        first = await log.record(
            conn,
            AuditEvent(
                actor="alice",
                action="transition",
                entity_kind="model_version",
                entity="churn/1",
                from_state="Staging",
                to_state="Production",
                reason="ok",
            ),
        )
        await log.record(
            conn,
            AuditEvent(
                actor="bob", action="register", entity_kind="model_version", entity="churn/2"
            ),
        )
    events = await log.list()
    assert [e.actor for e in events] == ["alice", "bob"]
    assert events[0] == first
    assert first.occurred_at is not None
    assert first.occurred_at.tzinfo is not None
    assert [e.entity for e in await log.list(actor="bob")] == ["churn/2"]
    assert await log.list(entity="churn/1", entity_kind="model_version") == [first]


async def test_concurrent_writers_serialize(database: Database) -> None:
    """Read-then-write transactions never lose an update (BEGIN IMMEDIATE / row locks)."""
    counters = sa.Table(
        "counters",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer),
    )
    async with database.write() as conn:
        await conn.run_sync(counters.create)
        await conn.execute(counters.insert().values(id=1, n=0))

    async def increment() -> None:
        async with database.write() as conn:
            query = sa.select(counters.c.n).where(counters.c.id == 1).with_for_update()
            n = (await conn.execute(query)).scalar_one()
            await conn.execute(counters.update().where(counters.c.id == 1).values(n=n + 1))

    await asyncio.gather(*(increment() for _ in range(20)))
    async with database.read() as conn:
        assert (await conn.execute(sa.select(counters.c.n))).scalar_one() == 20


async def test_new_sqlite_databases_get_large_pages_and_old_ones_keep_theirs(
    tmp_path: Path,
) -> None:
    """A SQLite file the process creates gets SQLITE_PAGE_SIZE; one created before keeps its
    page size (SQLite cannot change it in WAL mode) and still works."""
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    for path, expected in ((tmp_path / "new.db", SQLITE_PAGE_SIZE), (old, 4096)):
        database = Database(f"sqlite:///{path}")
        try:
            await upgrade(database)
            async with database.engine.connect() as conn:
                size = (await conn.execute(sa.text("PRAGMA page_size"))).scalar_one()
                mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar_one()
        finally:
            await database.dispose()
        assert (size, mode) == (expected, "wal")
