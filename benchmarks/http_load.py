"""A Python HTTP/1.1 load generator on uvloop: open loop (and closed loop when wrk is missing).

wrk has no open-loop mode and wrk2 is not packaged here, so the open-loop HTTP points use this
client: ``--connections`` keep-alive connections, requests scheduled at fixed intervals 1/r,
latency measured from the scheduled time (waiting for a free connection included, as wrk2
does). It is callback-driven (no task or future per request) to keep its own cost low; its
ceiling is still below wrk's (one Python core; the harness's echo-asgi open-loop figure shows
it). A rate it cannot issue shows up as shed requests, never as a fake pass. With
``--server-group G`` each window also carries the CPU the server's process group used in it
(:mod:`benchmarks.server_cpu`).

Run: ``python -m benchmarks.http_load --url http://127.0.0.1:P/path --body-file b.json
--rate 2000 --duration 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import uvloop

from benchmarks.grpc_load import pause_until
from benchmarks.recorder import Recorder, add_window_arguments
from benchmarks.server_cpu import WindowSampler
from benchmarks.stats import Summary

DRAIN_TIMEOUT_S = 10.0


class Pool:
    """Connections, the requests waiting for one, and where results go."""

    def __init__(self, payload: bytes, recorder: Recorder, max_backlog: int, closed: bool):
        self.payload = payload
        self.recorder = recorder
        self.max_backlog = max_backlog
        self.closed = closed
        self.connections: list[HttpConnection] = []
        self.idle: deque[HttpConnection] = deque()
        self.backlog: deque[float] = deque()
        self.busy = 0
        self.drained = asyncio.Event()

    def submit(self, scheduled: float) -> None:
        """Send a request scheduled at ``scheduled`` now, or queue it for a connection."""
        while self.idle and not self.idle[-1].alive:
            self.idle.pop()  # closed by the server while idle
        if self.idle:
            self.busy += 1
            self.idle.pop().send(scheduled)
        elif len(self.backlog) < self.max_backlog:
            self.backlog.append(scheduled)
        else:
            self.recorder.record(scheduled, time.perf_counter(), "SHED")

    def done(self, connection: HttpConnection, scheduled: float, error: str | None) -> None:
        """Record a finished request and give the connection its next one."""
        now = time.perf_counter()
        self.recorder.record(scheduled, now, error)
        if connection.alive and self.closed and now < self.recorder.measure_to:
            connection.send(now)
        elif connection.alive and self.backlog:
            connection.send(self.backlog.popleft())
        else:
            self.busy -= 1
            if connection.alive:
                self.idle.append(connection)
            if not self.busy and not self.backlog:
                self.drained.set()


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection that carries one request at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.alive = False
        self._buffer = bytearray()
        self._needed: int | None = None
        self._status = 0
        self._scheduled: float | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)
        self.alive = True

    @property
    def scheduled(self) -> float | None:
        """When the request in flight on this connection was scheduled (None: idle)."""
        return self._scheduled

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        if self._scheduled is not None:
            scheduled, self._scheduled = self._scheduled, None
            self.pool.done(self, scheduled, "ConnectionError")

    def send(self, scheduled: float) -> None:
        """Write the request (its latency counts from ``scheduled``)."""
        self._scheduled = scheduled
        assert self._transport is not None
        self._transport.write(self.pool.payload)

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
            scheduled, self._scheduled = self._scheduled, None
            if scheduled is not None:
                error = None if 200 <= self._status < 300 else f"HTTP_{self._status}"
                self.pool.done(self, scheduled, error)

    def _parse_head(self, head_end: int) -> None:
        lines = bytes(self._buffer[:head_end]).split(b"\r\n")
        self._status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self._needed = head_end + 4 + length


def build_request(url: str, body: bytes) -> bytes:
    """The raw bytes of a keep-alive JSON POST to ``url``.

    >>> build_request("http://h:1/p?model=m", b"[1]").split(b"\\r\\n")[0]
    b'POST /p?model=m HTTP/1.1'
    """
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def open_connections(url: str, pool: Pool, count: int) -> None:
    """Open ``count`` keep-alive connections into ``pool``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    for _ in range(count):
        _, connection = await loop.create_connection(lambda: HttpConnection(pool), host, port)
        pool.connections.append(connection)
        pool.idle.append(connection)


async def drive(pool: Pool, rate: float) -> None:
    """Issue requests at ``rate`` per second (open loop) or keep every connection busy."""
    recorder = pool.recorder
    if not rate:
        for _ in range(len(pool.idle)):
            pool.submit(time.perf_counter())
    else:
        start, sent = time.perf_counter(), 0
        while (now := time.perf_counter()) < recorder.measure_to:
            due = int((now - start) * rate) + 1
            for i in range(sent, due):
                pool.submit(start + i / rate)
            sent = due
            await pause_until(start + sent / rate)
    if pool.busy or pool.backlog:
        pool.drained.clear()
        try:
            await asyncio.wait_for(
                pool.drained.wait(), recorder.measure_to - time.perf_counter() + DRAIN_TIMEOUT_S
            )
        except TimeoutError:
            stuck = [c.scheduled for c in pool.connections if c.scheduled is not None]
            for scheduled in [*pool.backlog, *stuck]:
                recorder.record(scheduled, time.perf_counter(), "TIMEOUT")


async def run(args: argparse.Namespace) -> list[Summary]:
    """Open the connections, run one point (warm-up, ``--repeats`` windows), summarize it."""
    payload = build_request(args.url, args.body_file.read_bytes())
    recorder = Recorder(0.0, args.duration, args.repeats)
    pool = Pool(payload, recorder, args.max_in_flight, closed=not args.rate)
    await open_connections(args.url, pool, args.connections)
    sampler = WindowSampler(args.server_group) if args.server_group else None
    recorder.measure_from = time.perf_counter() + args.warmup
    if sampler is not None:
        sampler.start(recorder)
    await drive(pool, args.rate)
    summaries = recorder.summaries(1)
    if sampler is not None:
        summaries = await sampler.add_usage(summaries)
    extra = {"rate": args.rate, "concurrency": args.connections}
    return [summary | extra for summary in summaries]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests/s")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=4096,
        help="open loop: requests waiting for a connection before shedding",
    )
    add_window_arguments(parser)
    return parser.parse_args(argv)


def main() -> None:
    """Run one point and print its JSON summary."""
    print(json.dumps(uvloop.run(run(parse_args()))))


if __name__ == "__main__":
    main()
