"""CPU per REST V2 request of the server's own path, in process, without sockets.

The real :class:`~inference_server.http.protocol.HttpConnection`, :class:`HttpApi` and
:class:`InferenceService` (model manager, batcher, session thread; no metrics) over a transport
that only counts what is written, with the garbage collector tuned as in a serving worker
(:func:`~inference_server.cli.settle_heap`; put back afterwards). ``--log`` adds the prediction
log's request-path half (:class:`~inference_server.prediction_log.capture.Capture`: admit, the
run's entry; the buffer is emptied every 50 waves, standing in for the spooler thread, which
does not run), ``--sketches`` the drift sketches
(:class:`~inference_server.drift.book.SketchBook` with its fold thread): what each costs the
event loop, read off its thread (``loop``). ``--cut`` takes one piece of theirs out
(:data:`CUTS`), so that the loop's cost can be counted piece by piece. ``c`` connections run in
lock-step: each gets one request's bytes, the loop runs until all ``c`` answers are written
(the wave's last answer wakes it), repeat. The figure is the process's CPU time (every thread:
the session thread's runs count) per request, the median of ``--rounds`` windows; beside it the
event loop thread's alone. On a shared machine this is the stable part of the per-request cost:
no kernel networking, no scheduler noise between processes. Under ``valgrind --tool=callgrind
--separate-threads=yes`` it counts the loop's instructions per request (two runs of the same
variant agree to a few dozen; benchmarks/profiles/README.md).

Run (pinned, as the server is): ``taskset -c 0 python -m benchmarks.http_inprocess
--repository DIR --concurrency 8``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from pathlib import Path
from typing import Any

import uvloop

from inference_server.answers import answer_tap
from inference_server.cli import settle_heap
from inference_server.core.types import InferRequest
from inference_server.drift.book import SketchBook
from inference_server.http.messages import DateHeader
from inference_server.http.protocol import ConnectionLimits, ConnectionRegistry, HttpConnection
from inference_server.http.routes import HttpApi
from inference_server.loaded_version import AnswerTap, LoadedVersion, NullHooks
from inference_server.model_manager import ModelManager
from inference_server.prediction_log.capture import Capture
from inference_server.repository import RepositoryWatcher
from inference_server.service import InferenceService
from modelyard.settings import PredictionLogSettings, ServerSettings


class _Written:
    """Counts the answers written, and wakes a wave's waiter when its last answer is."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.waiter: asyncio.Future[None] | None = None

    def written(self) -> None:
        self.count += 1
        if self.count == self.target and self.waiter is not None:
            self.waiter.set_result(None)


class _Transport:
    """Counts answers; never closes."""

    def __init__(self, done: _Written) -> None:
        self._done = done

    def write(self, data: bytes) -> None:
        self._done.written()

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


CUTS = ("admit", "record", "observe", "tap")
"""What ``--cut`` can take out of the observed path, one piece at a time, to count what it
costs the loop (a diagnostic: the cut server no longer logs or sketches what it answers)."""


def _nothing(*_: object, **__: object) -> None:
    """``--cut observe`` / ``tap`` / ``record``: the piece does nothing."""


class _AdmitAll(Capture):
    """``--cut admit``: every request logged as it is (no id, no checks)."""

    def admit(self, request: InferRequest, handle: LoadedVersion) -> bool:
        return True


class _RecordNothing(Capture):
    """``--cut record``: the runs' answers are not buffered."""

    record = staticmethod(_nothing)


def _observers(args: argparse.Namespace) -> tuple[Capture | None, SketchBook | None]:
    """The prediction log's capture and the sketch book, as ``--log`` / ``--sketches`` ask
    (``--cut admit`` / ``record``: a capture without that step)."""
    kind = _AdmitAll if "admit" in args.cut else _RecordNothing if "record" in args.cut else Capture
    capture = kind(PredictionLogSettings()) if args.log else None
    book = SketchBook(ServerSettings(sketches=True)) if args.sketches else None
    return capture, book


def _tap(
    args: argparse.Namespace, capture: Capture | None, book: SketchBook | None
) -> AnswerTap | None:
    """The server's answer tap for what is on, less what ``--cut`` takes out."""
    if "tap" in args.cut and (capture or book):
        return _nothing
    if book is None:
        return answer_tap(None, capture)
    return answer_tap(_nothing if "observe" in args.cut else book.observe, capture)


def _connections(service: InferenceService, count: int, done: _Written) -> list[HttpConnection]:
    """``count`` connections to ``service``'s HTTP API whose answers count into ``done``."""
    api = HttpApi(service, 1 << 20)
    limits = ConnectionLimits(1 << 20)
    registry = ConnectionRegistry()
    date = DateHeader()
    connections = []
    for _ in range(count):
        connection = HttpConnection(api, limits, registry, date)
        connection.connection_made(_Transport(done))  # type: ignore[arg-type]
        connections.append(connection)
    return connections


async def _measure(args: argparse.Namespace) -> list[tuple[float, float]]:
    capture, book = _observers(args)
    manager = ModelManager(args.repository, NullHooks(), answers=_tap(args, capture, book))
    watcher = RepositoryWatcher(manager, mode="poll")
    await watcher.start()
    if book is not None:
        book.start()
    service = InferenceService(manager, watcher, NullHooks(), sketches=book, log=capture)
    service.ready = True
    threshold = gc.get_threshold()
    settle_heap(ServerSettings().gc_threshold)  # NOTE: as a serving worker does after start
    try:
        return await _run(args, service, capture)
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        if book is not None:
            await book.stop()
        await watcher.stop()
        await manager.close()


async def _run(
    args: argparse.Namespace, service: InferenceService, capture: Capture | None
) -> list[tuple[float, float]]:
    """The warm-up and the measured windows (see :func:`measure`)."""
    done = _Written()
    connections = _connections(service, args.concurrency, done)
    payload = _request(args.model, args.body.read_bytes())
    loop = asyncio.get_running_loop()

    async def wave() -> None:
        # NOTE: woken by the wave's last answer, not polled: a polling wait spun the loop a
        # varying number of times while a run was on the session thread, which moved the
        # loop's instruction count per request by thousands from run to run (callgrind)
        done.target = done.count + len(connections)
        done.waiter = loop.create_future()
        for connection in connections:
            connection.data_received(payload)
        if done.count < done.target:
            await done.waiter
        done.waiter = None

    async def waves(count: int) -> None:
        for number in range(count):
            await wave()
            if capture is not None and number % 50 == 49:
                capture.take(1 << 62)

    await waves(args.warmup)
    per_request = []
    for _ in range(args.rounds):
        start, loop_start = time.process_time(), time.thread_time()
        await waves(args.waves)
        requests = args.waves * args.concurrency
        per_request.append(
            (
                (time.process_time() - start) / requests,
                (time.thread_time() - loop_start) / requests,
            )
        )
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
    parser.add_argument("--log", action="store_true", help="the prediction log's capture")
    parser.add_argument("--sketches", action="store_true", help="the drift sketches")
    parser.add_argument(
        "--cut",
        action="append",
        choices=CUTS,
        default=[],
        help="take one piece out of the observed path (a diagnostic: what it costs the loop); "
        "admit and record apply to --log, observe to --sketches, tap to either",
    )
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> list[tuple[float, float]]:
    """CPU seconds per request of each of ``args.rounds`` windows (on a fresh uvloop): the
    process's and the event loop thread's."""
    return uvloop.run(_measure(args))


def main() -> None:
    """Parse arguments, measure, print the medians and every window (us per request)."""
    args = parse_args()
    per_request = measure(args)
    process = [p for p, _ in per_request]
    loop = [t for _, t in per_request]
    windows = ", ".join(f"{p * 1e6:.1f}" for p in process)
    print(
        f"c={args.concurrency}: {statistics.median(process) * 1e6:.1f} us/request ({windows}); "
        f"loop {statistics.median(loop) * 1e6:.2f} ({min(loop) * 1e6:.2f}-{max(loop) * 1e6:.2f})"
    )


if __name__ == "__main__":
    main()
