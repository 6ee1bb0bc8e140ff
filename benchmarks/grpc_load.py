"""The gRPC load generator: an asyncio grpc.aio client on uvloop, closed or open loop.

Closed loop (``--concurrency c``): c coroutines each send a request, await the answer, repeat.
Open loop (``--rate r``): requests are scheduled at fixed intervals 1/r whatever the server
does, and latency is measured from the *scheduled* time, so a slow server cannot hide its
queueing (no coordinated omission). Requests still in flight beyond ``--max-in-flight`` are
not sent and count as errors ("shed"): a server that cannot keep up fails the point.

The request is serialized once and sent as bytes on a generic ModelInfer method, so the
client spends its CPU on gRPC alone. Warm-up requests are not recorded; the measured window
is bounded by ``--duration``. The result is one JSON object on stdout (see ``stats.summarize``).
With ``--server-group G`` each window also carries the CPU the server's process group used in
it (:mod:`benchmarks.server_cpu`).

Run: ``python -m benchmarks.grpc_load --target 127.0.0.1:P --rows-file rows.npy
--concurrency 8 --duration 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from pathlib import Path

import grpc
import numpy as np
import uvloop

from benchmarks.messages import INFER_METHOD, STREAM_METHOD, grpc_infer_request, is_stream_error
from benchmarks.recorder import Recorder, add_window_arguments
from benchmarks.server_cpu import WindowSampler
from benchmarks.stats import Summary

CALL_TIMEOUT_S = 10.0
Infer = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]


async def _call(infer: Infer, payload: bytes) -> str | None:
    """Send one request; return None on success or the error code name."""
    try:
        await infer(payload, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return None


async def pause_until(deadline: float) -> None:
    """Yield to the loop until ``deadline``: timers only resolve to ~1 ms, so the last
    millisecond is spent yielding (the load generator has its own core)."""
    remaining = deadline - time.perf_counter()
    await asyncio.sleep(remaining - 1e-3 if remaining > 2e-3 else 0)


async def closed_loop(infer: Infer, payload: bytes, concurrency: int, recorder: Recorder) -> None:
    """Run ``concurrency`` request loops until the end of the measured window."""

    async def worker() -> None:
        while (started := time.perf_counter()) < recorder.measure_to:
            error = await _call(infer, payload)
            recorder.record(started, time.perf_counter(), error)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())


async def open_loop(
    infer: Infer,
    payload: bytes,
    rate: float,
    max_in_flight: int,
    recorder: Recorder,
) -> None:
    """Issue requests at ``rate`` per second from warm-up start to the end of the window."""
    in_flight: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        error = await _call(infer, payload)
        recorder.record(scheduled, time.perf_counter(), error)

    start = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) < recorder.measure_to:
        due = int((now - start) * rate) + 1
        for i in range(sent, due):
            scheduled = start + i / rate
            if len(in_flight) >= max_in_flight:
                recorder.record(scheduled, now, "SHED")
                continue
            task = asyncio.create_task(one(scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        sent = due
        await pause_until(start + sent / rate)
    if in_flight:
        await asyncio.wait(in_flight)


async def stream_loop(
    channel: grpc.aio.Channel, payload: bytes, window: int, recorder: Recorder
) -> None:
    """One ModelStreamInfer stream with up to ``window`` requests in flight.

    Responses are matched to requests in order (the server answers a stream in order), so
    latency is measured without decoding; an ``error_message`` counts as an error.
    """
    # Requests are written with call.write(), not from an iterator.
    call = channel.stream_stream(STREAM_METHOD, None, None)()  # type: ignore[call-arg]
    slots = asyncio.Semaphore(window)
    sent: deque[float] = deque()

    async def writer() -> None:
        while time.perf_counter() < recorder.measure_to:
            await slots.acquire()
            sent.append(time.perf_counter())
            await call.write(payload)
        await call.done_writing()

    async def reader() -> None:
        async for message in call:
            started = sent.popleft()
            slots.release()
            error = "STREAM_ERROR" if is_stream_error(message) else None
            recorder.record(started, time.perf_counter(), error)

    async with asyncio.TaskGroup() as group:
        group.create_task(writer())
        group.create_task(reader())


async def run(args: argparse.Namespace) -> list[Summary]:
    """Run one point (warm-up, then ``--repeats`` windows); one summary per window."""
    rows = np.load(args.rows_file)[: args.rows]
    payload = grpc_infer_request(rows, args.model)
    options = [("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(args.target, options=options) as channel:
        # No serializers: the request is already bytes and the answer is not decoded.
        infer: Infer = channel.unary_unary(INFER_METHOD, None, None)
        await channel.channel_ready()
        sampler = WindowSampler(args.server_group) if args.server_group else None
        now = time.perf_counter()
        recorder = Recorder(now + args.warmup, args.duration, args.repeats)
        if sampler is not None:
            sampler.start(recorder)
        if args.stream:
            await stream_loop(channel, payload, args.concurrency, recorder)
        elif args.rate:
            await open_loop(infer, payload, args.rate, args.max_in_flight, recorder)
        else:
            await closed_loop(infer, payload, args.concurrency, recorder)
    extra = {
        "concurrency": args.concurrency,
        "rate": args.rate,
        "rows": args.rows,
        "stream": args.stream,
    }
    summaries = recorder.summaries(args.rows)
    if sampler is not None:
        summaries = await sampler.add_usage(summaries)
    return [summary | extra for summary in summaries]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--model", default="reference")
    parser.add_argument("--rows-file", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests/s")
    parser.add_argument("--max-in-flight", type=int, default=1024)
    parser.add_argument(
        "--stream",
        action="store_true",
        help="one ModelStreamInfer stream, --concurrency requests in flight",
    )
    add_window_arguments(parser)
    return parser.parse_args(argv)


def main() -> None:
    """Run one point and print its JSON summary."""
    print(json.dumps(uvloop.run(run(parse_args()))))


if __name__ == "__main__":
    main()
