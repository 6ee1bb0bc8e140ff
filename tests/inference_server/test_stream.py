"""ModelStreamInfer: the ordered stream engine, the service's start/finish split, and the
stream end to end (errors mid-stream, ids, order, batching seen in the statistics)."""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import pytest

from inference_server.core.types import InferRequest, RequestInput
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc.stream import EOF, OrderedStream
from inference_server.service import InferenceService
from modelyard.errors import InvalidArgument
from tests.inference_server.held import HeldRun
from tests.waiting import until

from .conftest import classifier_reference, running_service

if TYPE_CHECKING:
    from inference_server.app import InferenceServer
    from modelyard.models import Scalar

STREAM_METHOD = "/inference.GRPCInferenceService/ModelStreamInfer"


class MemoryContext:
    """The two calls OrderedStream makes on a grpc servicer context, over in-memory queues."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[object] = asyncio.Queue()
        self.written: list[bytes] = []
        self.reads = 0

    async def read(self) -> object:
        self.reads += 1
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        self.written.append(data)


class Jobs:
    """Jobs that finish when the test says so; records what the stream did with them."""

    def __init__(self) -> None:
        self.futures: dict[bytes, asyncio.Future[bytes]] = {}
        self.busy: list[bool] = []
        self.abandoned: list[bytes] = []

    def start(self, data: bytes, busy: bool) -> bytes | asyncio.Future[bytes]:
        self.busy.append(busy)
        if data.startswith(b"bad"):
            return b"error:" + data  # answered at once, like a request refused before the queue
        future = self.futures[data] = asyncio.get_running_loop().create_future()
        return future

    async def settle(self, job: asyncio.Future[bytes]) -> bytes:
        return await job

    def abandon(self, job: asyncio.Future[bytes]) -> None:
        self.abandoned.append(next(k for k, f in self.futures.items() if f is job))


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds (bounded: the test fails, never hangs)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_answers_leave_in_request_order_whatever_order_jobs_finish_in() -> None:
    context, jobs = MemoryContext(), Jobs()
    stream = OrderedStream[asyncio.Future[bytes]](context, jobs.start, jobs.settle, jobs.abandon)
    running = asyncio.ensure_future(stream.run())
    for item in (b"a", b"b", b"bad1", b"c"):
        context.incoming.put_nowait(item)
    await _until(lambda: len(jobs.futures) == 3)
    jobs.futures[b"c"].set_result(b"C")
    jobs.futures[b"b"].set_result(b"B")
    for _ in range(10):
        await asyncio.sleep(0)
    assert context.written == []  # "a" is still running: nothing may overtake it
    jobs.futures[b"a"].set_result(b"A")
    context.incoming.put_nowait(EOF)
    await asyncio.wait_for(running, timeout=5)
    assert context.written == [b"A", b"B", b"error:bad1", b"C"]
    assert jobs.busy[0] is False  # nothing of the stream was unanswered yet
    assert all(jobs.busy[1:])  # the client pipelines: the batcher counts it as load
    assert jobs.abandoned == []


async def test_reading_stops_at_the_window_and_resumes_as_answers_leave() -> None:
    context, jobs = MemoryContext(), Jobs()
    stream = OrderedStream[asyncio.Future[bytes]](
        context, jobs.start, jobs.settle, jobs.abandon, window=3
    )
    running = asyncio.ensure_future(stream.run())
    for i in range(6):
        context.incoming.put_nowait(b"r%d" % i)
    await _until(lambda: len(jobs.futures) == 4)
    for _ in range(10):
        await asyncio.sleep(0)
    # the writer is settling r0 and three more are pending: no fifth read until r0 leaves
    assert len(jobs.futures) == 4
    assert context.reads == 4
    for i in range(6):
        await _until(functools.partial(jobs.futures.__contains__, b"r%d" % i))
        jobs.futures[b"r%d" % i].set_result(b"R%d" % i)
    context.incoming.put_nowait(EOF)
    await asyncio.wait_for(running, timeout=5)
    assert context.written == [b"R%d" % i for i in range(6)]


async def test_a_call_ending_early_abandons_every_pending_job() -> None:
    context, jobs = MemoryContext(), Jobs()
    stream = OrderedStream[asyncio.Future[bytes]](context, jobs.start, jobs.settle, jobs.abandon)
    running = asyncio.ensure_future(stream.run())
    for item in (b"a", b"b", b"c"):
        context.incoming.put_nowait(item)
    await _until(lambda: len(jobs.futures) == 3)
    for _ in range(10):  # the writer takes "a" and waits for it
        await asyncio.sleep(0)
    running.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await running
    # "a" was being settled by the writer (its cancellation is accounted there); the rest
    # were never settled and are given up
    assert jobs.abandoned == [b"b", b"c"]


def _request(x: np.ndarray, request_id: str) -> InferRequest:
    return InferRequest(
        model_name="clf",
        id=request_id,
        inputs=[RequestInput(name="input", datatype="FP32", shape=x.shape, data=x)],
    )


@pytest.fixture
async def service(repo: Path, publish: Callable[..., Path]) -> AsyncIterator[InferenceService]:
    publish("clf", 1)
    async with running_service(repo) as svc:
        yield svc


async def test_started_jobs_queue_together_and_finish_with_their_own_rows(
    service: InferenceService,
) -> None:
    rng = np.random.default_rng(5)
    xs = [rng.normal(size=(1 + i % 3, 4)).astype(np.float32) for i in range(30)]
    jobs = [service.start_infer(_request(x, f"j{i}"), busy=i > 0) for i, x in enumerate(xs)]
    answers = [await service.finish(job) for job in jobs]
    for i, (x, answer) in enumerate(zip(xs, answers, strict=True)):
        assert answer.id == f"j{i}"
        probabilities = {o.name: o.data for o in answer.outputs}["probabilities"]
        np.testing.assert_allclose(probabilities, classifier_reference(1, x), rtol=1e-5)
    stats = service.model_statistics("clf")[0]
    assert stats.inference_count == sum(len(x) for x in xs)
    assert stats.execution_count < len(xs)  # queued in one pass: they ran as batches
    assert service.manager.route("clf", None, None).handle.inflight == 0


async def test_an_abandoned_job_releases_its_version_and_counts_as_failed(
    service: InferenceService,
) -> None:
    handle = service.manager.route("clf", None, None).handle
    job = service.start_infer(_request(np.ones((1, 4), np.float32), "gone"))
    assert handle.inflight == 1
    service.abandon(job)
    assert handle.inflight == 0
    assert handle.stats.fail_count == 1
    answer = await service.finish(service.start_infer(_request(np.ones((1, 4), np.float32), "x")))
    assert answer.id == "x"  # the batcher skipped the cancelled one and goes on


async def test_a_request_refused_before_the_queue_holds_nothing(
    service: InferenceService,
) -> None:
    handle = service.manager.route("clf", None, None).handle
    with pytest.raises(InvalidArgument, match="4 features"):
        service.start_infer(_request(np.ones((1, 3), np.float32), "bad"))
    assert handle.inflight == 0
    assert handle.stats.fail_count == 1


def _raw(x: np.ndarray, request_id: str, model: str = "clf") -> bytes:
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    return pb.ModelInferRequest(
        model_name=model,
        id=request_id,
        inputs=[tensor],
        raw_input_contents=[x.astype("<f4").tobytes()],
    ).SerializeToString()


async def _stream(server: InferenceServer, messages: list[bytes]) -> list[Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.stream_stream(
            STREAM_METHOD,
            request_serializer=None,
            response_deserializer=pb.ModelStreamInferResponse.FromString,
        )

        async def requests() -> AsyncIterator[bytes]:
            for message in messages:
                yield message

        return [answer async for answer in call(requests())]


async def test_bad_messages_mid_stream_are_answered_in_place_and_the_stream_goes_on(
    server: InferenceServer,
) -> None:
    good = np.ones((1, 4), np.float32)
    nan = np.array([[np.nan, 1, 2, 3]], np.float32)
    messages = [
        _raw(good, "g0"),
        b"\xff\xff\xff\xff",  # not a protobuf
        _raw(np.ones((1, 3), np.float32), "narrow"),
        _raw(nan, "nan"),
        _raw(good, "other", model="nope"),
        _raw(good, "g1"),
    ]
    answers = await _stream(server, messages)
    assert [a.infer_response.id for a in answers] == ["g0", "", "narrow", "nan", "other", "g1"]
    errors = [a.error_message for a in answers]
    assert errors[0] == errors[5] == ""
    assert "malformed protobuf" in errors[1]
    assert "4 features" in errors[2]
    assert "NaN" in errors[3]
    assert "'nope'" in errors[4]
    for answer in (answers[0], answers[5]):
        names = [o.name for o in answer.infer_response.outputs]
        raw = answer.infer_response.raw_output_contents[names.index("probabilities")]
        got = np.frombuffer(raw, dtype="<f4").reshape(1, 2)
        np.testing.assert_allclose(got, classifier_reference(1, good), rtol=1e-5)


@pytest.mark.parametrize(
    "server", [{"batch_inline_max_us": 0, "batch_adaptive": False}], indirect=True
)
async def test_a_pipelined_stream_runs_its_requests_as_batches(server: InferenceServer) -> None:
    """Seen in the statistics, not in timing: the stream's requests queue behind a run (held
    here until all have: on a slow machine each could otherwise be answered before the next
    is read) and leave in runs of up to ``max_batch_size`` (64)."""
    batcher = server.manager.resolve("clf", None).batcher
    assert batcher is not None
    held = HeldRun(batcher)
    rng = np.random.default_rng(7)
    xs = [rng.normal(size=(1, 4)).astype(np.float32) for _ in range(256)]
    streamed = asyncio.ensure_future(_stream(server, [_raw(x, f"s{i}") for i, x in enumerate(xs)]))
    await until(lambda: held.rows > 0, "a run to be held")
    await held.release_when_queued(256 - held.rows)  # one row per request
    answers = await streamed
    assert [a.infer_response.id for a in answers] == [f"s{i}" for i in range(256)]
    assert not any(a.error_message for a in answers)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stats = await channel.unary_unary(
            "/inference.GRPCInferenceService/ModelStatistics",
            request_serializer=pb.ModelStatisticsRequest.SerializeToString,
            response_deserializer=pb.ModelStatisticsResponse.FromString,
        )(pb.ModelStatisticsRequest(name="clf"))
    [model] = stats.model_stats
    assert model.inference_count == 256
    assert model.execution_count == 1 + math.ceil((256 - held.rows) / 64)


@pytest.mark.parametrize(
    ("rows", "request_id", "model_version"),
    [(1, "r1", "1"), (3, "", "12"), (5000, "ü-ид-🙂", ""), (40_000, "x" * 300, "7")],
)
def test_stream_answers_are_written_exactly_as_protobuf_writes_them(
    rows: int, request_id: str, model_version: str
) -> None:
    from inference_server.core.types import InferResponse, ResponseOutput
    from inference_server.grpc.convert import response_to_proto, stream_answer

    rng = np.random.default_rng(rows)
    outputs = [
        ResponseOutput(
            name="label", datatype="INT64", shape=(rows,), data=rng.integers(0, 9, size=rows)
        ),
        ResponseOutput(
            name="probabilities",
            datatype="FP32",
            shape=(rows, 2),
            data=rng.random((rows, 2)).astype(np.float32),
        ),
        ResponseOutput(
            name="names", datatype="BYTES", shape=(2,), data=np.array([b"a", b"bc"], dtype=object)
        ),
    ]
    choices: list[dict[str, Scalar]] = [{}, {"trace": "abc", "n": 3}]
    for parameters in choices:
        answer = InferResponse(
            model_name="clf",
            model_version=model_version,
            id=request_id,
            outputs=outputs,
            parameters=parameters,
        )
        for raw in (True, False):
            if not raw and rows > 1000:
                continue  # typed contents: slow to build and not what a raw client gets
            message = pb.ModelStreamInferResponse(infer_response=response_to_proto(answer, raw=raw))
            got = stream_answer(answer, raw=raw)
            if parameters:
                # A map's serialized order is unspecified in protobuf (upb iterates its hash
                # table): with parameters the answer must parse to the same message.
                assert pb.ModelStreamInferResponse.FromString(got) == message
                continue
            expected = message.SerializeToString()
            pairs = enumerate(zip(got, expected, strict=False))
            first = next((i for i, (a, b) in pairs if a != b), None)
            assert got == expected, (
                f"{len(got)} vs {len(expected)} bytes, first difference at byte {first}"
            )
