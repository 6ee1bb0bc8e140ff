"""The control plane unpacks shipped blocks: before a REST read, and in its background task."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from control_plane.server import ControlPlaneServer
from modelyard.enums import Role
from modelyard.prediction_blocks import block_values
from modelyard.prediction_log import prediction_log
from modelyard.storage import Database
from tests.conftest import POSTGRES_URL, PostgresSchema
from tests.control_plane.conftest import admin_token, control_plane_settings
from tests.control_plane.predictions.blocks import blocks_left, make_block, ship, ship_rows
from tests.waiting import until

HOUR = 3600.0


@asynccontextmanager
async def control_planes(
    backend: str, tmp_path: Path, unpack_interval_s: float, count: int = 1
) -> AsyncIterator[list[ControlPlaneServer]]:
    """``count`` started control planes on one database, unpacking every ``unpack_interval_s``."""
    schema: PostgresSchema | None = None
    url = f"sqlite:///{tmp_path / 'modelyard.db'}"
    if backend == "postgresql":
        schema = PostgresSchema()
        await schema.create()
        url = POSTGRES_URL
    servers: list[ControlPlaneServer] = []
    try:
        for index in range(count):
            settings = control_plane_settings(tmp_path / f"cp{index}", url)
            settings = msgspec.structs.replace(
                settings,
                control_plane=msgspec.structs.replace(
                    settings.control_plane, unpack_interval_s=unpack_interval_s
                ),
            )
            server = ControlPlaneServer(settings, port=0, schema=schema.name if schema else None)
            await server.start()
            servers.append(server)
        yield servers
    finally:
        try:
            for server in servers:
                await server.stop()  # its database warns (an error here) if a task outlived it
        finally:
            if schema is not None:
                await schema.drop()


def _database(server: ControlPlaneServer) -> Database:
    assert server.services is not None
    return server.services.database


async def _records(database: Database) -> list[tuple[str, int]]:
    """Every record's (request_id, row_index), read past the control plane's services."""
    async with database.read() as conn:
        c = prediction_log.c
        statement = sa.select(c.request_id, c.row_index).order_by(c.id)
        return [(r[0], r[1]) for r in await conn.execute(statement)]


async def _metrics(server: ControlPlaneServer) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name.startswith("modelyard_prediction_")
    }


async def test_rest_reads_see_shipped_blocks_at_once(backend: str, tmp_path: Path) -> None:
    async with control_planes(backend, tmp_path, unpack_interval_s=HOUR) as (server,):
        database = _database(server)
        assert server.services is not None
        await server.services.unpacker.stop()  # only reads unpack now
        await ship(database, make_block("a", requests=2, rows=2))
        assert await blocks_left(database) == 1
        headers = {"Authorization": f"Bearer {admin_token(server)}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            page = await client.get("/v1/predictions", params={"model": "churn"})
            assert page.status_code == 200, page.text
            items = page.json()["items"]
            assert [(i["request_id"], i["row_index"]) for i in items] == [
                ("a-0", 0),
                ("a-0", 1),
                ("a-1", 0),
                ("a-1", 1),
            ]
            assert items[3]["inputs"]["f0"] == 101.0
            await ship(database, make_block("b", requests=1, rows=1))
            feedback = await client.post("/v1/feedback", json={"request_id": "b-0", "label": 1})
            assert feedback.json()["unmatched"] == 0, feedback.text
        assert await blocks_left(database) == 0
        assert server.services.prediction_service.unpacked_blocks == 2


async def test_the_task_unpacks_without_a_read_and_reports_it(backend: str, tmp_path: Path) -> None:
    async with control_planes(backend, tmp_path, unpack_interval_s=0.05) as (server,):
        database = _database(server)
        await ship(database, *(make_block(f"k{i}", requests=1, rows=3) for i in range(5)))

        async def reported() -> bool:
            metrics = await _metrics(server)
            return metrics.get("modelyard_prediction_blocks_unpacked_total") == 5

        await until(reported, "the task to unpack 5 blocks")
        assert len(await _records(database)) == 15
        metrics = await _metrics(server)
        assert metrics["modelyard_prediction_blocks_pending"] == 0
        assert metrics["modelyard_prediction_records_pending"] == 0
        assert metrics["modelyard_prediction_blocks_dropped_total"] == 0
        await ship_rows(database, block_values(make_block("damaged"), b"\xc1"))

        async def dropped() -> bool:
            metrics = await _metrics(server)
            return metrics.get("modelyard_prediction_blocks_dropped_total") == 1

        await until(dropped, "the task to drop the damaged block and count it")
        assert (await _metrics(server))["modelyard_prediction_blocks_unpacked_total"] == 5


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_a_failing_pass_is_logged_and_the_task_keeps_going(
    backend: str, tmp_path: Path
) -> None:
    # NOTE: on the logger itself: the control plane's logging set-up may stop propagation.
    caplog = _Collect()
    logger = logging.getLogger("control_plane.predictions.unpacker")
    logger.addHandler(caplog)
    try:
        await _failing_pass(backend, tmp_path, caplog)
    finally:
        logger.removeHandler(caplog)


async def _failing_pass(backend: str, tmp_path: Path, caplog: _Collect) -> None:
    async with control_planes(backend, tmp_path, unpack_interval_s=0.05) as (server,):
        database = _database(server)
        # NOTE: a real failure: the table is gone for a while (as during a botched migration).
        async with database.write() as conn:
            await conn.execute(sa.text("ALTER TABLE prediction_log_block RENAME TO away"))

        async def logged() -> bool:
            return any("unpacking blocks failed" in m for m in caplog.messages)

        await until(logged, "the failure to be logged")
        async with database.write() as conn:
            await conn.execute(sa.text("ALTER TABLE away RENAME TO prediction_log_block"))
        await ship(database, make_block("late", requests=1, rows=1))

        async def unpacked() -> bool:
            return await _records(database) == [("late-0", 0)]

        await until(unpacked, "the task to recover")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_control_planes_unpack_each_block_once(backend: str, tmp_path: Path) -> None:
    # PostgreSQL only: replicas share one database there
    async with control_planes(backend, tmp_path, unpack_interval_s=0.01, count=2) as servers:
        database = _database(servers[0])
        count = 300
        for start in range(0, count, 30):
            await ship(
                database, *(make_block(f"k{i:03d}", rows=1) for i in range(start, start + 30))
            )

        async def all_reported() -> bool:
            done = [
                (await _metrics(s)).get("modelyard_prediction_blocks_unpacked_total", 0)
                for s in servers
            ]
            return sum(done) == count

        await until(all_reported, "both control planes to unpack every block")
        records = await _records(database)
        assert sorted(records) == sorted((f"k{i:03d}-{r}", 0) for i in range(count) for r in (0, 1))
        assert await blocks_left(database) == 0


async def test_unpacking_on_demand_needs_an_admin(backend: str, tmp_path: Path) -> None:
    async with control_planes(backend, tmp_path, unpack_interval_s=HOUR) as (server,):
        assert server.services is not None
        await server.services.unpacker.stop()  # only reads and the route unpack now
        await ship(_database(server), make_block("a"), make_block("b", requests=1))
        developer = await server.services.token_service.issue("dev", Role.DEVELOPER, actor="admin")
        async with httpx.AsyncClient(base_url=server.url) as client:
            refused = await client.post("/v1/predictions/unpack", headers=_auth(developer.token))
            assert refused.status_code == 403, refused.text
            done = await client.post("/v1/predictions/unpack", headers=_auth(admin_token(server)))
            assert done.status_code == 200, done.text
            assert done.json() == {
                "unpacked_blocks": 2,
                "pending_blocks": 0,
                "pending_records": 0,
                "dropped_blocks": 0,
            }
        assert len(await _records(_database(server))) == 9


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
