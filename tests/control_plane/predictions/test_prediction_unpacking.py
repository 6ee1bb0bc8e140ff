"""Shipped blocks become records before every read (read-your-writes), on both backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import msgspec
import pytest
import sqlalchemy as sa

from control_plane.predictions.models import Outcome
from control_plane.predictions.service import BLOCKS_PER_TRANSACTION, PredictionService
from control_plane.predictions.store import SqlPredictionStore
from modelyard.prediction_blocks import (
    PLAIN,
    PredictionBlock,
    TensorColumn,
    Unpacked,
    block_values,
    encode_block,
)
from modelyard.prediction_log import prediction_log
from modelyard.storage import Database
from tests.conftest import POSTGRES_URL
from tests.control_plane.predictions.blocks import (
    FEATURES,
    blocks_left,
    make_block,
    ship,
    ship_rows,
)


@pytest.fixture
def service(database: Database) -> PredictionService:
    return PredictionService(database, SqlPredictionStore())


async def _all_records(database: Database) -> list[tuple[str, int, int, int]]:
    """(request_id, row_index, worker, id) of every record, by id, read past the service."""
    async with database.read() as conn:
        c = prediction_log.c
        statement = sa.select(c.request_id, c.row_index, c.worker, c.id).order_by(c.id)
        return [(r[0], r[1], r[2], r[3]) for r in await conn.execute(statement)]


async def test_a_read_sees_every_shipped_block_in_order(
    database: Database, service: PredictionService
) -> None:
    await ship(database, make_block("a"), make_block("b"))
    await ship(database, make_block("c", requests=1, rows=2))
    page = await service.list_predictions(model="churn")
    got = [(r.request_id, r.row_index) for r in page.items]
    assert got == [
        *((f"{k}-{r}", j) for k in "ab" for r in range(2) for j in range(3)),
        ("c-0", 0),
        ("c-0", 1),
    ]
    ids = [r.id or 0 for r in page.items]
    assert ids == sorted(ids)
    first = page.items[10]  # b-1, row 1
    assert first.inputs == {**dict.fromkeys(FEATURES, 0.0), "f0": 101.0}
    assert first.outputs == {"label": 0}  # labels alternate: row 4 of the block
    assert first.created_at == dt.datetime(2026, 12, 4, 12, 0, 1, tzinfo=dt.UTC)
    assert await blocks_left(database) == 0
    assert await service.pending() == (0, 0)


async def test_feedback_and_labelled_reads_see_shipped_blocks(
    database: Database, service: PredictionService
) -> None:
    await ship(database, make_block("a", requests=1, rows=2))
    result = await service.record_feedback(
        [Outcome(request_id="a-0", row_index=1, label=1), Outcome(request_id="zz", label=0)]
    )
    assert (result.accepted, result.unmatched) == (2, 1)
    await ship(database, make_block("b", requests=1, rows=1))
    labelled = await service.labelled("churn")
    assert [(i.record.request_id, i.record.row_index) for i in labelled] == [
        ("a-0", 0),
        ("a-0", 1),
        ("b-0", 0),
    ]
    assert [i.outcome is not None and i.outcome.label for i in labelled] == [False, 1, False]


async def test_a_replayed_block_adds_no_record(
    database: Database, service: PredictionService
) -> None:
    block = make_block("a")
    await ship(database, block)
    assert len((await service.list_predictions()).items) == 6
    await ship(database, block)  # the server's spool replayed after the block was unpacked
    assert len((await service.list_predictions()).items) == 6
    assert await blocks_left(database) == 0


async def test_a_json_payload_of_the_previous_release_still_unpacks(
    database: Database, service: PredictionService
) -> None:
    # The previous release shipped blocks as JSON (tensor bytes in base64); the current one
    # ships MessagePack. Rows of both, in one table, unpack to the same records, in order.
    old, new = make_block("old", requests=1, rows=2), make_block("new", requests=1, rows=2)
    json_payload = msgspec.json.encode(old)  # the previous release's encode_block
    assert json_payload.startswith(b'{"key":"old"')
    assert encode_block(new)[:1] != b"{"
    await ship_rows(database, block_values(old, json_payload), block_values(new, encode_block(new)))
    page = await service.list_predictions()
    assert [(r.request_id, r.row_index, r.inputs["f0"]) for r in page.items] == [
        ("old-0", 0, 0.0),
        ("old-0", 1, 1.0),
        ("new-0", 0, 0.0),
        ("new-0", 1, 1.0),
    ]
    assert page.items[0].inputs == page.items[2].inputs
    assert await blocks_left(database) == 0


async def test_an_undecodable_block_is_dropped_and_logged_without_holding_up_the_rest(
    database: Database, service: PredictionService, caplog: pytest.LogCaptureFixture
) -> None:
    good = make_block("good", requests=1, rows=1)
    damaged = block_values(make_block("bad"), b"{not a block")
    caplog.set_level(logging.ERROR, logger="modelyard.prediction_blocks")
    await ship_rows(database, damaged, block_values(good, encode_block(good)))
    page = await service.list_predictions()
    assert [r.request_id for r in page.items] == ["good-0"]
    assert await blocks_left(database) == 0
    assert any("bad" in m and "cannot be decoded" in m for m in caplog.messages), caplog.text


async def test_a_block_whose_columns_do_not_add_up_does_not_hold_up_the_rest(
    database: Database, service: PredictionService, caplog: pytest.LogCaptureFixture
) -> None:
    """It decodes, but turning it into records raised (an IndexError) out of every unpacking
    pass before: every read of the predictions and every feedback failed after it; or it
    unpacked without a word when it had fewer request ids than rows."""
    good = make_block("good", requests=1, rows=1)
    skewed = msgspec.structs.replace(make_block("skew", requests=2, rows=1), times=[0.0])
    short = msgspec.structs.replace(make_block("short", requests=2, rows=1), request_ids=["x"])
    caplog.set_level(logging.ERROR, logger="modelyard.prediction_blocks")
    await ship_rows(
        database, *(block_values(b, encode_block(b)) for b in (skewed, short, good))
    )  # NOTE: "short" unpacked silently before, its rows under the wrong ids
    page = await service.list_predictions()
    assert [r.request_id for r in page.items] == ["good-0"]
    assert await blocks_left(database) == 0
    for key in ("skew", "short"):
        assert any(key in m and "cannot be unpacked (ValueError" in m for m in caplog.messages), (
            caplog.text
        )


def _hostile_blocks() -> list[tuple[str, bytes, str]]:
    """Blocks a fuzz of damaged and forged rows found (2026-12-06): (key, payload, what the log
    says). The first three held up every block after them and failed every read (the decoder
    raised what was not a DecodeError; SQLite's driver an OverflowError); the map values made
    every read of their records a 500; the rest unpacked into wrong records (a tensor of
    another length given whole to every row; 300,000 records out of a few hundred bytes), or
    into what one backend stored and the other refused."""

    def block(key: str, **fields: object) -> PredictionBlock:
        return msgspec.structs.replace(make_block(key, requests=2, rows=1), **fields)

    deep = msgspec.json.encode(block("deep", outputs=[TensorColumn(PLAIN, [2], values=["X"])]))
    deep = deep.replace(b'"X"', b"[" * 100_000 + b"1" + b"]" * 100_000)
    maps = TensorColumn(PLAIN, [2], values=[{"a": 1}, {"a": 1}])
    one_row = make_block("dos", requests=1, rows=1)
    return [
        ("utf8", encode_block(make_block("utf8")).replace(b"churn", b"ch\xffrn"), "decoded"),
        ("deep", deep, "decoded"),
        ("big", encode_block(block("big", version=2**63)), "out of range"),
        ("maps", encode_block(block("maps", outputs=[maps])), "text tensor"),
        (
            "rows",
            encode_block(msgspec.structs.replace(make_block("rows", rows=3), rows=[1, 1])),
            "shapes",
        ),
        ("dos", encode_block(msgspec.structs.replace(one_row, rows=[300_000])), "shapes"),
        ("nan", encode_block(block("nan", latencies_ms=[1.0, float("nan")])), "not finite"),
        ("nul", encode_block(block("nul", request_ids=["a\x00", "b"])), "NUL"),
        ("negative", encode_block(block("negative", rows=[2, -1])), "without rows"),
    ]


async def test_hostile_blocks_are_dropped_counted_and_hold_up_nothing(
    database: Database, service: PredictionService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="modelyard.prediction_blocks")
    hostile = _hostile_blocks()
    now = dt.datetime.now(dt.UTC)
    good = make_block("good", requests=1, rows=1)
    await ship_rows(
        database,
        block_values(good, encode_block(good)),
        *((f"{key}-block", "churn", 1, 0, 2, now, payload) for key, payload, _ in hostile),
    )
    later = make_block("later", requests=1, rows=1)
    await ship(database, later)
    result = await service.unpack_now()
    assert (result.unpacked_blocks, result.dropped_blocks) == (2, len(hostile))
    assert (result.pending_blocks, service.dropped_blocks) == (0, len(hostile))
    page = await service.list_predictions()
    assert [r.request_id for r in page.items] == ["good-0", "later-0"]
    for key, _, said in hostile:
        assert any(f"{key}-block" in m and said in m for m in caplog.messages), (key, caplog.text)


async def _refuse_poison(database: Database) -> None:
    """A trigger that makes the database refuse records whose request id starts ``poison``
    (SQLite: a constraint error; PostgreSQL: a data exception, SQLSTATE 22000)."""
    async with database.write() as conn:
        if database.is_sqlite:
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON prediction_log "
                "WHEN NEW.request_id LIKE 'poison%' "
                "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
            )
            return
        await conn.exec_driver_sql(
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
            "IF NEW.request_id LIKE 'poison%' THEN "
            "RAISE EXCEPTION 'refused by a trigger' USING ERRCODE = '22000'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        await conn.exec_driver_sql(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON prediction_log "
            "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        )


async def test_a_block_the_database_refuses_does_not_hold_up_the_rest(
    database: Database, service: PredictionService, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, the batch's one insert failed at every pass, and with it every read of the
    predictions and every feedback."""
    await _refuse_poison(database)
    caplog.set_level(logging.ERROR, logger="modelyard.prediction_blocks")
    await ship(database, make_block("good", requests=1, rows=1), make_block("poison", rows=1))
    await ship(database, make_block("later", requests=1, rows=1))
    page = await service.list_predictions()
    assert [r.request_id for r in page.items] == ["good-0", "later-0"]
    assert await blocks_left(database) == 0
    assert any("poison" in m and "refused by the database" in m for m in caplog.messages)
    assert not any("INSERT" in m for m in caplog.messages)  # the reason, not the statement


async def test_more_blocks_than_one_transaction_and_worker_order(
    database: Database, service: PredictionService
) -> None:
    count = BLOCKS_PER_TRANSACTION * 2 + 7
    blocks = [make_block(f"k{i:04d}", requests=1, rows=2, worker=i % 2) for i in range(count)]
    for start in range(0, count, 50):
        await ship(database, *blocks[start : start + 50])
    assert await service.pending() == (count, 2 * count)
    assert await service.unpack() == count
    assert service.unpacked_blocks == count
    records = await _all_records(database)
    assert len(records) == 2 * count
    for worker in (0, 1):
        mine = [(rid, row) for rid, row, w, _ in records if w == worker]
        expected = [(f"k{i:04d}-0", j) for i in range(worker, count, 2) for j in range(2)]
        assert mine == expected  # ids increase in block order, then row order


async def test_concurrent_unpackers_take_each_block_once(database: Database) -> None:
    # NOTE: a second handle on the same database is another replica's connection pool.
    other = (
        Database(database.url, schema=database.schema)
        if not database.is_sqlite
        else Database(database.url)
    )
    try:
        services = [PredictionService(db, SqlPredictionStore()) for db in (database, other)]
        count = 400
        blocks = [make_block(f"k{i:04d}", requests=2, rows=1) for i in range(count)]

        async def shipper() -> None:
            for start in range(0, count, 40):
                await ship(database, *blocks[start : start + 40])

        async def reader(service: PredictionService) -> None:
            for _ in range(5):
                await service.unpack(wait=False)
                await service.unpack()

        await asyncio.gather(shipper(), *(reader(s) for s in services))
        await services[0].unpack()
        records = await _all_records(database)
        assert sorted((rid, row) for rid, row, _, _ in records) == sorted(
            (f"k{i:04d}-{r}", 0) for i in range(count) for r in range(2)
        )
        assert await blocks_left(database) == 0
        assert sum(s.unpacked_blocks for s in services) == count
    finally:
        await other.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_read_waits_for_blocks_another_replica_is_unpacking(
    database: Database, service: PredictionService
) -> None:
    # PostgreSQL only: SQLite has one writer, so no transaction holds blocks while another reads
    await ship(database, make_block("a"), make_block("b"))
    other = Database(POSTGRES_URL, schema=database.schema)
    store = SqlPredictionStore()
    try:
        async with other.write() as conn:
            # NOTE: another replica's unpacking transaction, open, holding both blocks.
            assert await store.unpack(conn, max_blocks=10) == Unpacked(2, 0)
            holder = (await conn.execute(sa.text("SELECT pg_current_xact_id()::text"))).scalar()
            read = asyncio.create_task(service.list_predictions())
            await _wait_for_a_waiter(other, str(holder))
            assert not read.done()
        page = await read
        assert len(page.items) == 12
    finally:
        await other.dispose()


async def _wait_for_a_waiter(database: Database, holder: str) -> None:
    """Until a transaction waits for transaction ``holder`` to end (deadline 30 s)."""
    statement = sa.text(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid' "
        "AND transactionid::text = :holder"
    )
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        async with database.read() as conn:
            if (await conn.execute(statement, {"holder": holder})).scalar_one():
                return
        assert asyncio.get_running_loop().time() < deadline, "the read never waited"
        await asyncio.sleep(0.01)
