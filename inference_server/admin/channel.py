"""The worker's end of the admin channel: one Unix socket to the supervising process.

Startup (:meth:`ChannelFanout.start`): connect, say :class:`~.wire.Hello`, receive the
desired state (:class:`~.wire.Snapshot`), replay it through the registered handlers, then
apply every later :class:`~.wire.Prepare` / :class:`~.wire.Apply` in arrival order, one at a
time (the supervisor serialises operations, so at most one is outstanding). An admin call
received by this worker becomes a :class:`~.wire.Call`; the supervisor answers it once every
worker applied it. If the supervisor goes away the worker stops (``on_lost``): a worker
without its supervisor could no longer keep the server consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from typing import TYPE_CHECKING, Any

from inference_server.admin import wire
from inference_server.admin.fanout import (
    FanoutResult,
    OperationRegistry,
    WorkerFailed,
    WorkerOutcome,
    encode,
)
from modelyard.errors import DeadlineExceeded, ErrorCode, ModelyardError, Unavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from inference_server.admin.fanout import Operation

log = logging.getLogger(__name__)


class ChannelFanout:
    """:class:`~inference_server.admin.fanout.Fanout` of worker ``worker`` of N."""

    def __init__(
        self,
        socket_path: str,
        worker: int,
        *,
        timeout_s: float = 120.0,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.worker = worker
        self.registry = OperationRegistry()
        self._path = socket_path
        self._timeout_s = timeout_s
        self._on_lost = on_lost
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[wire.Answer]] = {}
        # NOTE: unbounded on purpose yet bounded in fact: the supervisor sends the next
        # operation only once every worker answered the previous one (at most one waits).
        self._work: asyncio.Queue[wire.Prepare | wire.Apply] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def register(self, op: Operation[Any, Any, Any]) -> None:
        """Register an operation in this worker."""
        self.registry.register(op)

    async def start(self) -> None:
        """Connect, replay the desired state, then apply operations as they come.

        Raises:
            Unavailable: the supervisor's socket cannot be reached or closed at once.
        """
        try:
            reader, self._writer = await asyncio.open_unix_connection(self._path)
        except OSError as exc:
            raise Unavailable(f"admin channel {self._path}: {exc}") from exc
        await wire.send(self._writer, wire.Hello(worker=self.worker, pid=os.getpid()))
        snapshot = await wire.read_message(reader)
        if not isinstance(snapshot, wire.Snapshot):
            raise Unavailable(f"admin channel: expected the desired state, got {snapshot!r}")
        for entry in snapshot.entries:
            outcome = await self.registry.apply(entry.op, entry.payload, self.worker)
            if not outcome.ok:
                log.error("replaying %s failed: %s", entry.op, outcome.message)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read(reader)), loop.create_task(self._process())]

    async def ready(self) -> None:
        """Tell the supervisor this worker listens (it restarts only workers that did)."""
        if self._writer is not None:
            await wire.send(self._writer, wire.Ready(worker=self.worker))

    async def call(self, name: str, payload: object) -> FanoutResult[Any]:
        """Fan an operation out through the supervisor (see ``Fanout.call``)."""
        self.registry.get(name)
        if self._writer is None or self._closing:
            raise Unavailable("admin channel is closed; the server is shutting down")
        call_id = next(self._ids)
        answer: asyncio.Future[wire.Answer] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = answer
        try:
            await wire.send(self._writer, wire.Call(id=call_id, op=name, payload=encode(payload)))
            # the supervisor bounds each worker's share; this only guards against its loss
            async with asyncio.timeout(self._timeout_s * 2 + 5):
                done = await answer
        except TimeoutError:
            raise DeadlineExceeded(f"admin operation {name} got no answer in time") from None
        finally:
            self._calls.pop(call_id, None)
        if not done.prepared:
            failed = done.outcomes[0]
            raise WorkerFailed(ErrorCode(failed.code), failed.message)
        return self.registry.aggregate(name, done.outcomes)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while (message := await wire.read_message(reader)) is not None:
                if isinstance(message, wire.Answer):
                    future = self._calls.get(message.id)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif isinstance(message, wire.Prepare | wire.Apply):
                    self._work.put_nowait(message)
        finally:
            self._lost()

    def _lost(self) -> None:
        for future in self._calls.values():
            if not future.done():
                future.set_exception(Unavailable("the server's supervisor went away; retry"))
        if not self._closing:
            log.error("admin channel to the supervisor closed; stopping this worker")
            self._closing = True
            if self._on_lost is not None:
                self._on_lost()

    async def _process(self) -> None:
        while True:
            message = await self._work.get()
            if isinstance(message, wire.Prepare):
                done = await self._prepare(message)
            else:
                outcome = await self.registry.apply(message.op, message.payload, self.worker)
                done = wire.Done(id=message.id, outcome=outcome)
            if self._writer is not None:
                with contextlib.suppress(ConnectionError):
                    await wire.send(self._writer, done)

    async def _prepare(self, message: wire.Prepare) -> wire.Done:
        try:
            payload, key = await self.registry.prepare(message.op, message.payload)
        except ModelyardError as exc:
            outcome = WorkerOutcome(
                worker=self.worker, ok=False, code=exc.code.value, message=exc.message
            )
            return wire.Done(id=message.id, outcome=outcome)
        except Exception as exc:  # a prepare bug fails the call, not the channel
            log.exception("preparing admin operation %s failed", message.op)
            outcome = WorkerOutcome(
                worker=self.worker, ok=False, code="internal", message=f"{type(exc).__name__}"
            )
            return wire.Done(id=message.id, outcome=outcome)
        ok = WorkerOutcome(worker=self.worker, ok=True)
        return wire.Done(id=message.id, outcome=ok, payload=payload, state_key=key)

    async def close(self) -> None:
        """Leave the channel (the worker is stopping)."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
            self._writer = None
