"""ModelStreamInfer's engine: one reader, one writer, one future per request, answers in order.

Design (issue 21: a stream should cost less per request than unary calls, not more):

* The reader task reads raw messages with ``context.read()`` in a tight loop (no async
  generator between grpc and us) and *starts* each one at once, synchronously: ``start``
  parses it and puts it in its version's batch queue (``InferenceService.start_infer``),
  returning a job that holds the queue's future, or the finished answer bytes when the
  request failed before the queue (an error answer). No task, semaphore or queue entry is
  created per request: the requests a stream has in flight are futures in the batcher, so
  they batch together like concurrent unary calls.
* The writer (the RPC's own coroutine) pops the oldest pending entry, awaits its future
  only if it is not done yet, turns it into answer bytes (``settle``) and writes them with
  ``context.write``. One batch resolves many futures at once, so the writer wakes once per
  batch and then writes the batch's answers back to back, in request order.
* Answers are bytes: the handler is registered without a response serializer, and the
  ModelStreamInferResponse wrapper is written around the serialized answer
  (:func:`~inference_server.grpc.convert.stream_answer`).
* Load: a request read while earlier answers of the stream are still unwritten tells the
  batcher it is under load (``busy``), so a pipelining client's requests batch; a ping-pong
  client's (one in flight) run at once, inline when small, as unary calls do.
* Flow control: at most ``window`` requests are read and not yet answered; beyond that the
  reader stops reading (so grpc's own flow control pushes back on the client).
* The writer and reader wake each other through one-shot futures, created only when one of
  them actually has to wait.
* When the call ends early (client gone, cancelled), jobs still pending are abandoned (their
  futures cancelled, the version's in-flight count released) and the reader is stopped.

grpc.aio offers no way to send several messages in one operation (one ``write`` per message,
each awaited until grpc's completion queue reports it; ``grpc.aio`` has no buffer-hint write
flag), so the per-message transport cost stays what the bare echo pays.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import grpc

Job = TypeVar("Job")

STREAM_WINDOW = 256
"""Most requests of one stream read and not yet answered."""

EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # grpc-stubs predates grpc.aio.EOF
"""What ``context.read()`` returns once the client has finished writing."""


class _Signal:
    """A wake-up for one waiter; costs a future only when someone waits."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def set(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class OrderedStream(Generic[Job]):
    """Serve one bidirectional stream: answers in request order (see the module docstring).

    Args:
        context: the call's servicer context (``read`` gives raw bytes, ``write`` takes them).
        start: starts one raw request (and whether earlier answers of the stream are still
            unwritten: the client pipelines); a job to settle later, or its answer bytes now.
        settle: awaits a job's outputs and returns its answer bytes (never raises).
        abandon: gives up a job whose answer will not be written.
        window: most requests read and not yet answered.
    """

    def __init__(
        self,
        context: Any,
        start: Callable[[bytes, bool], Job | bytes],
        settle: Callable[[Job], Awaitable[bytes]],
        abandon: Callable[[Job], None],
        window: int = STREAM_WINDOW,
    ) -> None:
        self._context = context
        self._start = start
        self._settle = settle
        self._abandon = abandon
        self._window = window
        self._pending: deque[Job | bytes] = deque()
        self._arrived = _Signal()
        self._room = _Signal()
        self._reading = True
        self._unwritten = 0

    async def run(self) -> None:
        """Read, start and answer until the client finishes writing and every answer is out."""
        reader = asyncio.get_running_loop().create_task(self._read())
        try:
            await self._write()
        finally:
            reader.cancel()
            while self._pending:
                if not isinstance(left := self._pending.popleft(), bytes):
                    self._abandon(left)
            # a broken request stream ends the reader with grpc's error: the call is over anyway
            with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
                await reader

    async def _read(self) -> None:
        pending, read, start = self._pending, self._context.read, self._start
        try:
            while True:
                while len(pending) >= self._window:
                    await self._room.wait()
                data = await read()
                if data is EOF:
                    return
                pending.append(start(data, self._unwritten > 0))
                self._unwritten += 1
                self._arrived.set()
        finally:
            self._reading = False
            self._arrived.set()  # the writer ends after the last request's answer

    async def _write(self) -> None:
        pending, write, settle = self._pending, self._context.write, self._settle
        while True:
            if not pending:
                if not self._reading:
                    return
                await self._arrived.wait()
                continue
            # popped before settling: a job cancelled inside ``settle`` is accounted there
            entry = pending.popleft()
            self._room.set()
            await write(entry if isinstance(entry, bytes) else await settle(entry))
            self._unwritten -= 1
