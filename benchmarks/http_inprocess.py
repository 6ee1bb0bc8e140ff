"""CPU per REST V2 request of the server's own path, in process, without sockets.

The real :class:`~inference_server.http.protocol.HttpConnection`, :class:`HttpApi` and
:class:`InferenceService` (model manager, batcher, session thread; no metrics, no drift
sketches, no prediction log) over a transport that only counts what is written. ``c``
connections run in lock-step: each gets one request's bytes, the loop runs until all ``c``
answers are written, repeat. The figure is the process's CPU time (every thread: the session
thread's runs count) per request, the median of ``--rounds`` windows. On a shared machine
this is the stable part of the per-request cost: no kernel networking, no scheduler noise
between processes.

Run (pinned, as the server is): ``taskset -c 0 python -m benchmarks.http_inprocess
--repository DIR --concurrency 8``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import uvloop

from inference_server.http.messages import DateHeader
from inference_server.http.protocol import ConnectionLimits, ConnectionRegistry, HttpConnection
from inference_server.http.routes import HttpApi
from inference_server.loaded_version import NullHooks
from inference_server.model_manager import ModelManager
from inference_server.repository import RepositoryWatcher
from inference_server.service import InferenceService


class _Transport:
    """Counts answers; never closes."""

    def __init__(self, done: list[int]) -> None:
        self._done = done

    def write(self, data: bytes) -> None:
        self._done[0] += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _request(model: str, body: bytes) -> bytes:
    head = (
        f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _measure(args: argparse.Namespace) -> list[float]:
    manager = ModelManager(args.repository, NullHooks())
    watcher = RepositoryWatcher(manager, mode="poll")
    await watcher.start()
    service = InferenceService(manager, watcher, NullHooks())
    service.ready = True
    api = HttpApi(service, 1 << 20)
    limits = ConnectionLimits(1 << 20)
    registry = ConnectionRegistry()
    date = DateHeader()
    done = [0]
    connections = []
    for _ in range(args.concurrency):
        connection = HttpConnection(api, limits, registry, date)
        connection.connection_made(_Transport(done))  # type: ignore[arg-type]
        connections.append(connection)
    payload = _request(args.model, args.body.read_bytes())
    loop = asyncio.get_running_loop()

    async def wave() -> None:
        target = done[0] + len(connections)
        for connection in connections:
            connection.data_received(payload)
        while done[0] < target:
            waiter = loop.create_future()
            loop.call_soon(waiter.set_result, None)
            await waiter

    for _ in range(args.warmup):
        await wave()
    per_request = []
    for _ in range(args.rounds):
        start = time.process_time()
        for _ in range(args.waves):
            await wave()
        per_request.append((time.process_time() - start) / (args.waves * args.concurrency))
    await watcher.stop()
    await manager.close()
    return per_request


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--model", default="reference")
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--waves", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> list[float]:
    """CPU seconds per request of each of ``args.rounds`` windows (on a fresh uvloop)."""
    return uvloop.run(_measure(args))


def main() -> None:
    """Parse arguments, measure, print the median and every window (us per request)."""
    args = parse_args()
    per_request = measure(args)
    windows = ", ".join(f"{p * 1e6:.1f}" for p in per_request)
    median = statistics.median(per_request) * 1e6
    print(f"c={args.concurrency}: {median:.1f} us/request ({windows})")


if __name__ == "__main__":
    main()
