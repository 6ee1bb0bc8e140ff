"""The supervising process of ``modelyard serve --workers N``: workers, restarts, fan-out.

It holds what makes N processes one server:

* **the workers**: spawned (``spawn``: no gRPC state crosses a fork), each given the
  process's settings unchanged and its :class:`~inference_server.wiring.WorkerSeat`: its
  index and the path of the supervisor's Unix socket (in a private 0700 directory). A
  worker that dies after it was ready is restarted (backoff 0.5 s doubling to 10 s while it
  keeps dying young); a worker that fails before it ever listened stops the
  server (a configuration error would only crash-loop). SIGTERM/SIGINT drain every worker.
* **the desired state**: an ordered map state key -> (operation, payload), filled from
  operations that at least one worker applied and whose ``prepare`` named a key
  (``model/<name>`` for load and unload): such a call changed the server even when it failed
  on another worker (answered as failed, naming it), and a worker restarted after a failed
  apply comes up in the state the others are in. In ``explicit`` / ``none`` control mode it
  starts as one pinned ``repository.load`` per model on disk, so every worker -- and every
  worker restarted later -- loads exactly the versions the server loaded, not whatever the
  disk holds by then. A (re)started worker receives it first and replays it before it serves.
* **the serial section**: one call at a time. For a call from worker W: ``Prepare`` on W
  (validate, persist, resolve), then ``Apply`` on every connected worker, each bounded by
  ``admin_timeout_s``; the answer lists every worker's outcome. A worker that connects while
  a call runs waits for it, so it gets either the state before or after the call, and all
  later calls.

The supervisor never loads models and is off the inference path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from typing import TYPE_CHECKING

from inference_server.admin import wire
from inference_server.admin.fanout import WorkerOutcome
from inference_server.wiring import WorkerSeat

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.process import BaseProcess

    from modelyard.settings import Settings

log = logging.getLogger(__name__)

_YOUNG_S = 10.0
"""A worker that dies within this long after starting counts as crash-looping."""


class _Link:
    """The connection of one live worker."""

    def __init__(self, worker: int, writer: asyncio.StreamWriter) -> None:
        self.worker = worker
        self.writer = writer
        self.pending: dict[int, asyncio.Future[wire.Done]] = {}

    def fail_pending(self) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"worker {self.worker} exited"))


class Supervisor:
    """Runs N workers as one server (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        workers: int,
        worker_main: Callable[[Settings, WorkerSeat | None], None],
        initial: dict[str, wire.Entry],
    ) -> None:
        self._settings = settings
        self._workers = workers
        self._worker_main = worker_main
        self._socket = ""
        self._desired: dict[str, wire.Entry] = dict(initial)
        self._links: dict[int, _Link] = {}
        self._procs: dict[int, BaseProcess] = {}
        self._started_at: dict[int, float] = {}
        self._was_ready: set[int] = set()
        self._backoff: dict[int, float] = {}
        self._serial = asyncio.Lock()
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._failed = False
        self._all_exited = asyncio.Event()

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 when every worker drained cleanly."""
        folder = tempfile.mkdtemp(prefix="modelyard-admin-")
        os.chmod(folder, 0o700)
        path = os.path.join(folder, "control.sock")
        server = await asyncio.start_unix_server(self._connected, path)
        self._socket = path
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        try:
            for index in range(self._workers):
                self._spawn(index)
            await self._all_exited.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            shutil.rmtree(folder, ignore_errors=True)
        return 1 if self._failed else 0

    def stop(self) -> None:
        """Drain every worker (SIGTERM) and return from :meth:`run` once all exited."""
        self._stopping = True
        for proc in self._procs.values():
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        if not self._procs:
            self._all_exited.set()

    # -- processes ----------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        if self._stopping:
            return
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(
            target=self._worker_main,
            args=(self._settings, WorkerSeat(index=index, control_socket=self._socket)),
            name=f"modelyard-worker-{index}",
        )
        proc.start()
        self._procs[index] = proc
        self._started_at[index] = time.monotonic()
        asyncio.get_running_loop().add_reader(proc.sentinel, self._exited, index, proc)

    def _exited(self, index: int, proc: BaseProcess) -> None:
        asyncio.get_running_loop().remove_reader(proc.sentinel)
        proc.join()
        if self._procs.get(index) is proc:
            del self._procs[index]
        if self._stopping:
            self._failed = self._failed or proc.exitcode != 0
        elif index not in self._was_ready:
            log.error("worker %d exited with %s before it listened; stopping", index, proc.exitcode)
            self._failed = True
            self.stop()
        else:
            self._restart_later(index, proc.exitcode)
        if self._stopping and not self._procs:
            self._all_exited.set()

    def _restart_later(self, index: int, exitcode: int | None) -> None:
        lived = time.monotonic() - self._started_at.get(index, 0.0)
        delay = min(self._backoff.get(index, 0.25) * 2, 10.0) if lived < _YOUNG_S else 0.5
        self._backoff[index] = delay
        log.warning("worker %d exited with %s; restarting in %.1f s", index, exitcode, delay)
        asyncio.get_running_loop().call_later(delay, self._spawn, index)

    # -- the channel --------------------------------------------------------------------
    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await wire.read_message(reader)
        if not isinstance(hello, wire.Hello):
            writer.close()
            return
        async with self._serial:  # joins between calls: no call is half-applied for it
            link = _Link(hello.worker, writer)
            self._links[hello.worker] = link
            await wire.send(writer, wire.Snapshot(entries=list(self._desired.values())))
        try:
            while (message := await wire.read_message(reader)) is not None:
                self._dispatch(link, message)
        finally:
            if self._links.get(link.worker) is link:
                del self._links[link.worker]
            link.fail_pending()
            writer.close()

    def _dispatch(self, link: _Link, message: wire.Message) -> None:
        if isinstance(message, wire.Done):
            future = link.pending.get(message.id)
            if future is not None and not future.done():
                future.set_result(message)
        elif isinstance(message, wire.Ready):
            self._was_ready.add(message.worker)
        elif isinstance(message, wire.Call):
            task = asyncio.get_running_loop().create_task(self._call(link, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _request(self, link: _Link, message: wire.Prepare | wire.Apply) -> wire.Done:
        future: asyncio.Future[wire.Done] = asyncio.get_running_loop().create_future()
        link.pending[message.id] = future
        try:
            await wire.send(link.writer, message)
            async with asyncio.timeout(self._settings.server.admin_timeout_s):
                return await future
        except TimeoutError:
            seconds = self._settings.server.admin_timeout_s
            return _failed(link.worker, "deadline_exceeded", f"no answer within {seconds} s")
        except ConnectionError:
            return _failed(link.worker, "unavailable", f"worker {link.worker} exited")
        finally:
            link.pending.pop(message.id, None)

    async def _call(self, origin: _Link, call: wire.Call) -> None:
        async with self._serial:
            prepared = await self._request(
                origin, wire.Prepare(id=next(self._ids), op=call.op, payload=call.payload)
            )
            if not prepared.outcome.ok:
                answer = wire.Answer(id=call.id, outcomes=[prepared.outcome], prepared=False)
            else:
                links = [self._links[i] for i in sorted(self._links)]
                dones = await asyncio.gather(
                    *(
                        self._request(
                            link,
                            wire.Apply(id=next(self._ids), op=call.op, payload=prepared.payload),
                        )
                        for link in links
                    )
                )
                outcomes = [done.outcome for done in dones]
                # NOTE: recorded once any worker applied it: the call changed the server. A
                # worker whose apply failed (it died, or timed out) is then restarted into it;
                # recorded only when all applied, a worker killed mid-call came back in the
                # state before the call while the others were in the one after, for good.
                if prepared.state_key is not None and any(o.ok for o in outcomes):
                    self._desired.pop(prepared.state_key, None)
                    self._desired[prepared.state_key] = wire.Entry(
                        op=call.op, payload=prepared.payload
                    )
                answer = wire.Answer(id=call.id, outcomes=outcomes)
        with contextlib.suppress(ConnectionError):
            await wire.send(origin.writer, answer)


def _failed(worker: int, code: str, message: str) -> wire.Done:
    return wire.Done(
        id=0, outcome=WorkerOutcome(worker=worker, ok=False, code=code, message=message)
    )
