"""The fan-out registry and the single-process fan-out (the API every worker shares)."""

from __future__ import annotations

import msgspec
import pytest

from inference_server.admin.fanout import (
    FanoutResult,
    LocalFanout,
    Operation,
    OperationRegistry,
    Prepared,
    WorkerFailed,
    WorkerOutcome,
    encode,
)
from inference_server.admin.wire import Answer, Entry, Snapshot, decode_message, frame_of
from modelyard.errors import ErrorCode, FailedPrecondition, NotFound


class Flush(msgspec.Struct, kw_only=True, frozen=True):
    limit: int


class Flushed(msgspec.Struct, kw_only=True, frozen=True):
    records: int


async def test_an_operation_round_trips_its_payload_and_aggregates() -> None:
    seen: list[Flush] = []

    async def flush(request: Flush) -> Flushed:
        seen.append(request)
        return Flushed(records=request.limit * 2)

    fanout = LocalFanout()
    fanout.register(
        Operation("predlog.flush", Flush, Flushed, flush, lambda rs: sum(r.records for r in rs))
    )
    assert await fanout.call("predlog.flush", Flush(limit=5)) == FanoutResult(10, 1)
    assert seen == [Flush(limit=5)]
    with pytest.raises(FailedPrecondition, match="registered already"):
        fanout.register(Operation("predlog.flush", Flush, Flushed, flush, list))
    with pytest.raises(FailedPrecondition, match="no admin operation 'nope'"):
        await fanout.call("nope", None)


async def test_prepare_runs_first_and_its_errors_fail_the_call_with_their_code() -> None:
    order: list[str] = []

    async def prepare(value: int) -> Prepared[int]:
        order.append("prepare")
        if value < 0:
            raise NotFound("model", "m")
        return Prepared(value + 1, "key")

    async def apply(value: int) -> int:
        order.append(f"apply {value}")
        return value

    fanout = LocalFanout()
    fanout.register(Operation("op", int, int, apply, list, prepare))
    assert (await fanout.call("op", 1)).value == [2]
    assert order == ["prepare", "apply 2"]
    with pytest.raises(WorkerFailed) as caught:
        await fanout.call("op", -1)
    assert caught.value.code is ErrorCode.NOT_FOUND
    assert "model 'm' not found" in str(caught.value)


async def test_a_failing_worker_fails_the_call_naming_it_and_the_count() -> None:
    async def boom(_: None) -> int:
        raise RuntimeError("disk on fire")

    registry = OperationRegistry()
    registry.register(Operation("op", None, int, boom, list))
    failed = await registry.apply("op", encode(None), worker=3)
    assert (failed.ok, failed.code, failed.message) == (
        False,
        "internal",
        "RuntimeError: disk on fire",
    )
    good = WorkerOutcome(worker=0, ok=True, result=encode(7))
    with pytest.raises(WorkerFailed) as caught:
        registry.aggregate("op", [good, failed])
    assert caught.value.code is ErrorCode.INTERNAL
    assert str(caught.value) == "RuntimeError: disk on fire (worker 3; 1 of 2 workers applied op)"
    assert registry.aggregate("op", [good, good]) == FanoutResult([7, 7], 2)


def test_channel_messages_round_trip() -> None:
    for message in (
        Snapshot(entries=[Entry(op="repository.load", payload=b"\x01")]),
        Answer(id=4, outcomes=[WorkerOutcome(worker=1, ok=False, code="not_found", message="x")]),
    ):
        frame = frame_of(message)
        assert decode_message(frame[4:]) == message
