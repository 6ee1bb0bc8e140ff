"""The gRPC drain (the shutdown rule of :mod:`inference_server.grpc.server`): close refuses new
calls itself (grpc keeps accepting until our handlers are done, so no call can be caught in
grpc's shutdown while a stream runs), waits for the handlers running, and cancels at once a
call no handler runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from inference_server.app import InferenceServer
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg
from inference_server.grpc.inflight import InFlightCalls
from inference_server.grpc.server import HANDOFF_GRACE_S, GrpcServerHandle, add_handlers
from modelyard.errors import DRAINING
from modelyard.settings import ServerSettings, Settings

RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
"""A call racing the shutdown: refused by us or by grpc, or cancelled by grpc's C core (a call
it holds unmatched when shutdown begins), never left to its deadline."""
HANG_GUARD_S = 10.0
"""Far below each test's drain grace (30 s) and client deadline: only a hang exceeds it."""


class Gate:
    """A handler that answers once the test opens the gate; ``entered`` once it runs."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    async def handler(self, request: bytes, context: Any) -> bytes:
        self.entered.set()
        await self.open.wait()
        return request


async def _echo(request: bytes, context: Any) -> bytes:
    return request


def _call(channel: grpc.aio.Channel, method: str, payload: bytes) -> Awaitable[bytes]:
    """A raw-bytes unary call of ``test.Drain/<method>`` (the client's deadline: 60 s)."""
    multicallable = channel.unary_unary(
        f"/test.Drain/{method}", request_serializer=None, response_deserializer=None
    )
    call: Awaitable[bytes] = multicallable(payload, timeout=60)
    return call


async def _serve(
    tracked: dict[str, Callable[[bytes, Any], Awaitable[bytes]]],
    untracked: dict[str, Callable[[bytes, Any], Awaitable[bytes]]],
) -> GrpcServerHandle:
    """A grpc.aio server on 127.0.0.1:0 whose ``tracked`` handlers are counted, as ours are."""
    calls = InFlightCalls()
    table = {
        name: calls.track(grpc.unary_unary_rpc_method_handler(fn)) for name, fn in tracked.items()
    }
    table |= {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in untracked.items()}
    server = grpc.aio.server()
    add_handlers(server, "test.Drain", table)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return GrpcServerHandle(server, port, calls)


async def test_close_waits_for_a_running_handler_and_refuses_new_calls() -> None:
    gate = Gate()
    handle = await _serve({"Slow": gate.handler, "Echo": _echo}, {})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
        slow = asyncio.ensure_future(_call(channel, "Slow", b"slow"))
        await gate.entered.wait()
        assert handle.calls.running == 1
        closing = asyncio.ensure_future(handle.close(30))
        # still draining well past the hand-off grace: the running handler holds it
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(closing), 2 * HANDOFF_GRACE_S)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as late_channel:
            with pytest.raises(grpc.aio.AioRpcError) as late:
                await asyncio.wait_for(_call(late_channel, "Echo", b"late"), HANG_GUARD_S)
        # refused by our wrapper, not by grpc's shutdown (which has not begun)
        assert late.value.code() == grpc.StatusCode.UNAVAILABLE
        assert late.value.details() == DRAINING
        assert handle.calls.running == 1
        gate.open.set()
        assert await slow == b"slow"
        await asyncio.wait_for(closing, HANG_GUARD_S)
    assert handle.calls.running == 0


async def test_close_cancels_a_call_no_handler_of_ours_runs() -> None:
    # A call grpc holds that none of our handlers will finish (an uncounted handler stands in
    # for a call the C core accepted and never handed over): cancelled at once, not waited for
    # until the drain's grace or the client's deadline.
    held = Gate()
    handle = await _serve({"Echo": _echo}, {"Held": held.handler})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
        call = asyncio.ensure_future(_call(channel, "Held", b"x"))
        await held.entered.wait()
        assert handle.calls.running == 0
        await asyncio.wait_for(handle.close(30), HANG_GUARD_S)
        with pytest.raises(grpc.aio.AioRpcError) as cancelled:
            await asyncio.wait_for(call, HANG_GUARD_S)
    assert cancelled.value.code() in RETRYABLE


def _infer_request() -> pb.ModelInferRequest:
    x = np.ones((1, 4), np.float32)
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    return pb.ModelInferRequest(model_name="clf", inputs=[tensor], raw_input_contents=[x.tobytes()])


@pytest.fixture
async def lone_server(repo: Path, publish: Callable[..., Path]) -> AsyncIterator[InferenceServer]:
    """A started server (gRPC only) the test stops itself."""
    publish("clf", 1)
    settings = ServerSettings(
        model_repository=str(repo), grpc_port=0, http_port=None, metrics_port=None
    )
    server = InferenceServer(Settings(server=settings))
    await server.start()
    yield server
    if not server.service.draining:  # the test failed before stopping it
        await server.stop()


async def test_stop_drains_an_open_stream_and_refuses_new_calls(
    lone_server: InferenceServer,
) -> None:
    address = f"127.0.0.1:{lone_server.grpc_port}"
    async with grpc.aio.insecure_channel(address) as channel:
        stream = pbg.GRPCInferenceServiceStub(channel).ModelStreamInfer(timeout=60)
        await stream.write(_infer_request())
        assert not (await stream.read()).error_message  # the stream's handler is running
        stopping = asyncio.ensure_future(lone_server.stop())
        async with grpc.aio.insecure_channel(address) as late_channel:
            with pytest.raises(grpc.aio.AioRpcError) as late:
                await pbg.GRPCInferenceServiceStub(late_channel).ModelInfer(
                    _infer_request(), timeout=HANG_GUARD_S
                )
        assert late.value.code() == grpc.StatusCode.UNAVAILABLE, late.value
        assert late.value.details() == DRAINING
        await stream.write(_infer_request())  # the open stream is still answered: refused
        assert "shutting down" in (await stream.read()).error_message
        assert not stopping.done()
        await stream.done_writing()
        assert await stream.read() is grpc.aio.EOF  # type: ignore[attr-defined]
        assert await stream.code() == grpc.StatusCode.OK
        await asyncio.wait_for(stopping, HANG_GUARD_S)
