"""The A/B test store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from control_plane.abtesting.models import ABTest, TestStatus
from control_plane.abtesting.store import SqlABTestStore
from modelyard.errors import AlreadyExists
from modelyard.storage.database import Database
from tests.control_plane.abtesting.helpers import definition


def _test(test_id: str, model: str = "churn", **overrides: object) -> ABTest:
    now = dt.datetime(2026, 12, 4, 3, 0, tzinfo=dt.UTC)
    base = ABTest(
        id=test_id,
        definition=definition(model, 1, 2),
        status=TestStatus.RUNNING,
        created_at=now,
        created_by="dev",
        phase_started_at=now,
    )
    return msgspec.structs.replace(base, **overrides)


async def test_a_test_reads_back_exactly_and_updates_keep_identity(database: Database) -> None:
    store = SqlABTestStore()
    test = _test("t1")
    async with database.write() as conn:
        await store.insert(conn, test)
    async with database.read() as conn:
        assert await store.get(conn, "t1") == test
        assert await store.get(conn, "nope") is None
    later = test.created_at + dt.timedelta(hours=1)
    ended = msgspec.structs.replace(
        test, status=TestStatus.CONCLUDED, winner=2, ended_at=later, phase_started_at=later
    )
    async with database.write() as conn:
        await store.update(conn, ended)
    async with database.read() as conn:
        assert await store.get(conn, "t1") == ended


async def test_one_running_test_per_model(database: Database) -> None:
    store = SqlABTestStore()
    async with database.write() as conn:
        await store.insert(conn, _test("t1"))
    with pytest.raises(AlreadyExists, match="churn"):
        async with database.write() as conn:
            await store.insert(conn, _test("t2"))
    async with database.write() as conn:
        await store.insert(conn, _test("t3", model="fraud"))
        stopped = msgspec.structs.replace(_test("t1"), status=TestStatus.STOPPED)
        await store.update(conn, stopped)
    async with database.write() as conn:
        await store.insert(conn, _test("t4"))
    async with database.read() as conn:
        assert [t.id for t in await store.list(conn, model="churn")] == ["t1", "t4"]
        running = await store.list(conn, status=TestStatus.RUNNING)
        assert sorted(t.id for t in running) == ["t3", "t4"]
