"""A Python HTTP/1.1 load generator on uvloop: open loop (and closed loop when wrk is missing).

wrk has no open-loop mode and wrk2 is not packaged here, so the open-loop HTTP points use this
client: ``--connections`` keep-alive connections, requests scheduled at fixed intervals 1/r,
latency measured from the scheduled time (queueing for a free connection included, as wrk2
does). Its own ceiling is lower than wrk's (one Python core: roughly 10-15k req/s against the
echo server, measured by the harness as the echo's open-loop figure); a rate it cannot issue
shows up as shed requests, never as a fake pass.

Run: ``python -m benchmarks.http_load --url http://127.0.0.1:P/path --body-file b.json
--rate 2000 --duration 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import uvloop

from benchmarks.grpc_load import pause_until
from benchmarks.recorder import Recorder
from benchmarks.stats import Summary


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection that carries one request at a time."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._needed: int | None = None
        self._status = 0
        self._waiter: asyncio.Future[int] | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed"))
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._needed is None:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            self._parse_head(head_end)
        if self._needed is not None and len(self._buffer) >= self._needed:
            del self._buffer[: self._needed]
            self._needed = None
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(self._status)

    def _parse_head(self, head_end: int) -> None:
        lines = bytes(self._buffer[:head_end]).split(b"\r\n")
        self._status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self._needed = head_end + 4 + length

    async def request(self, payload: bytes) -> int:
        """Send ``payload`` (a whole HTTP request) and return the response status."""
        if self._transport is None:
            raise ConnectionError("connection closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(payload)
        return await self._waiter


def build_request(url: str, body: bytes) -> bytes:
    """The raw bytes of a keep-alive JSON POST to ``url``."""
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def connect(url: str) -> HttpConnection:
    """Open one keep-alive connection to the host of ``url``."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    _, connection = await loop.create_connection(HttpConnection, host, port)
    return connection


async def _send(pool: asyncio.Queue[HttpConnection], url: str, payload: bytes) -> str | None:
    """Send one request on a free connection; None on a 2xx answer, else the error.

    A connection that failed is replaced by a new one (or put back dead, if the server does
    not accept connections any more, so later requests fail fast and are counted).
    """
    connection = await pool.get()
    try:
        status = await asyncio.wait_for(connection.request(payload), 10.0)
    except (ConnectionError, TimeoutError) as exc:
        with contextlib.suppress(OSError):
            connection = await connect(url)
        return type(exc).__name__
    finally:
        pool.put_nowait(connection)
    return None if 200 <= status < 300 else f"HTTP_{status}"


async def drive(
    pool: asyncio.Queue[HttpConnection],
    payload: bytes,
    args: argparse.Namespace,
    recorder: Recorder,
) -> None:
    """Issue requests at ``args.rate`` (open loop) or from one loop per connection."""
    if not args.rate:

        async def worker() -> None:
            while (started := time.perf_counter()) < recorder.measure_to:
                error = await _send(pool, args.url, payload)
                recorder.record(started, time.perf_counter(), error)

        async with asyncio.TaskGroup() as group:
            for _ in range(args.connections):
                group.create_task(worker())
        return
    in_flight: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        recorder.record(scheduled, time.perf_counter(), await _send(pool, args.url, payload))

    start = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) < recorder.measure_to:
        due = int((now - start) * args.rate) + 1
        for i in range(sent, due):
            if len(in_flight) >= args.max_in_flight:
                recorder.record(start + i / args.rate, now, "SHED")
                continue
            task = asyncio.create_task(one(start + i / args.rate))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        sent = due
        await pause_until(start + sent / args.rate)
    if in_flight:
        await asyncio.wait(in_flight)


async def run(args: argparse.Namespace) -> list[Summary]:
    """Open the connections, run one point (warm-up, ``--repeats`` windows), summarize it."""
    payload = build_request(args.url, args.body_file.read_bytes())
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(args.connections):
        pool.put_nowait(await connect(args.url))
    now = time.perf_counter()
    recorder = Recorder(now + args.warmup, args.duration, args.repeats)
    await drive(pool, payload, args, recorder)
    extra = {"rate": args.rate, "concurrency": args.connections}
    return [summary | extra for summary in recorder.summaries(1)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests/s")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--max-in-flight", type=int, default=4096)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=1, help="measured windows")
    return parser.parse_args(argv)


def main() -> None:
    """Run one point and print its JSON summary."""
    print(json.dumps(uvloop.run(run(parse_args()))))


if __name__ == "__main__":
    main()
