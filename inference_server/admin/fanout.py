"""Admin operations registered by name and applied on every worker of the server.

N worker processes are one server: an admin call reaching any worker is applied on **every**
worker before it answers, and the answer says how many workers applied it
(:class:`FanoutResult`). A worker that fails makes the call fail with its reason.

An :class:`Operation` is registered by name on the process's :class:`Fanout` with:

* ``handler`` -- runs in **each** worker (its own models, buffers, sketches) and returns a
  per-worker result;
* ``aggregate`` -- runs once, in the worker that received the call, over the per-worker
  results in worker order, and returns the call's answer;
* ``prepare`` (optional) -- runs once, in the receiving worker, *inside the server-wide
  serial section* before the fan-out: it validates, persists or resolves (e.g. which
  versions "load" means now) and may return a new payload plus a *state key*. When every
  worker applied a call with a state key, the supervisor keeps ``(op, payload)`` under that
  key as the server's **desired state**; a restarted worker replays the kept entries in
  order before it serves (``repository.load`` / ``repository.unload`` use it).

Payloads and results cross process boundaries as msgpack (msgspec), so they must be msgspec
Structs or builtins; :class:`LocalFanout` round-trips them too, so a single-process test
catches what would not travel. Calls are serialised server-wide: every worker sees admin
operations in one order. The inference hot path never touches any of this.

Two implementations, one API: :class:`LocalFanout` (one process: ``workers=1`` and servers
built in-process by tests -- a fan-out of one) and
:class:`inference_server.admin.channel.ChannelFanout` (a worker of ``modelyard serve
--workers N``, connected to :mod:`inference_server.admin.supervisor`).

Registering an operation (e.g. in the composition root, once the component exists)::

    class FlushRequest(msgspec.Struct, kw_only=True, frozen=True):
        timeout_s: float = 5.0

    class Flushed(msgspec.Struct, kw_only=True, frozen=True):
        records: int

    server.fanout.register(
        Operation(
            name="predlog.flush",
            payload_type=FlushRequest,
            result_type=Flushed,
            handler=writer.flush,  # async (FlushRequest) -> Flushed, in every worker
            aggregate=lambda results: Flushed(records=sum(r.records for r in results)),
        )
    )
    # an HTTP/gRPC handler goes through the admin service (token check, then fan-out):
    done = await admin.call("predlog.flush", FlushRequest(), authorization_header)
    done.value.records, done.workers_applied  # -> {"records": ..., "workers_applied": 2}

Handlers must not call the fan-out themselves (calls are serialised: it would wait for
itself); they run on the worker's event loop between requests, so long work goes to a
thread (``asyncio.to_thread``).

>>> import asyncio
>>> fanout = LocalFanout()
>>> async def double(x: int) -> int:
...     return 2 * x
>>> fanout.register(Operation(name="double", payload_type=int, result_type=int,
...                           handler=double, aggregate=sum))
>>> asyncio.run(fanout.call("double", 21))
FanoutResult(value=42, workers_applied=1)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import msgspec

from modelyard.errors import ErrorCode, FailedPrecondition, ModelyardError

log = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")
A = TypeVar("A")


class Prepared(NamedTuple, Generic[P]):
    """What ``prepare`` returns: the payload every worker applies, and an optional state key."""

    payload: P
    state_key: str | None = None


@dataclass(frozen=True)
class Operation(Generic[P, R, A]):
    """An admin operation (see the module docstring).

    Attributes:
        name: unique name, ``<feature>.<verb>`` (``repository.load``, ``predlog.flush``).
        payload_type: type of the payload (decoded in every worker).
        result_type: type of one worker's result (decoded in the receiving worker).
        handler: applies the operation in one worker.
        aggregate: combines the per-worker results (worker order) into the answer.
        prepare: runs once before the fan-out, in the serial section (optional).
    """

    name: str
    payload_type: Any
    result_type: Any
    handler: Callable[[P], Awaitable[R]]
    aggregate: Callable[[list[R]], A]
    prepare: Callable[[P], Awaitable[Prepared[P]]] | None = None


class FanoutResult(NamedTuple, Generic[A]):
    """The answer of a fanned-out call and how many workers applied it."""

    value: A
    workers_applied: int


class WorkerOutcome(msgspec.Struct, kw_only=True, frozen=True):
    """One worker's answer to an applied operation (msgpack-encoded ``result`` or an error)."""

    worker: int
    ok: bool
    result: bytes = b""
    code: str = ""
    message: str = ""


class WorkerFailed(ModelyardError):
    """An operation failed in a worker; ``code`` is the worker's own error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


_encoder = msgspec.msgpack.Encoder()


def encode(value: object) -> bytes:
    """The msgpack form payloads and results travel in."""
    return _encoder.encode(value)


def decode(data: bytes, kind: Any) -> Any:
    """Decode a payload or result of type ``kind``."""
    return msgspec.msgpack.decode(data, type=kind)


class OperationRegistry:
    """Operations by name, and applying one in this process."""

    def __init__(self) -> None:
        self._ops: dict[str, Operation[Any, Any, Any]] = {}

    def register(self, op: Operation[Any, Any, Any]) -> None:
        """Add an operation.

        Raises:
            FailedPrecondition: an operation of that name is registered already.
        """
        if op.name in self._ops:
            raise FailedPrecondition(f"admin operation {op.name!r} is registered already")
        self._ops[op.name] = op

    def get(self, name: str) -> Operation[Any, Any, Any]:
        """The operation registered as ``name``.

        Raises:
            FailedPrecondition: no such operation in this process.
        """
        op = self._ops.get(name)
        if op is None:
            raise FailedPrecondition(f"no admin operation {name!r} in this server")
        return op

    async def prepare(self, name: str, payload: bytes) -> tuple[bytes, str | None]:
        """Run ``prepare`` of an operation on an encoded payload (identity without one)."""
        op = self.get(name)
        if op.prepare is None:
            return payload, None
        prepared = await op.prepare(decode(payload, op.payload_type))
        return encode(prepared.payload), prepared.state_key

    async def apply(self, name: str, payload: bytes, worker: int) -> WorkerOutcome:
        """Apply an operation here; every error becomes a failed outcome naming the worker."""
        try:
            op = self.get(name)
            result = await op.handler(decode(payload, op.payload_type))
            return WorkerOutcome(worker=worker, ok=True, result=encode(result))
        except ModelyardError as exc:
            return WorkerOutcome(worker=worker, ok=False, code=exc.code.value, message=exc.message)
        except Exception as exc:  # a handler bug must fail the call, not the channel
            log.exception("admin operation %s failed in worker %d", name, worker)
            message = f"{type(exc).__name__}: {exc}"
            return WorkerOutcome(worker=worker, ok=False, code="internal", message=message)

    def aggregate(self, name: str, outcomes: Sequence[WorkerOutcome]) -> FanoutResult[Any]:
        """The call's answer from every worker's outcome.

        Raises:
            WorkerFailed: a worker failed (the first failure's code and reason).
        """
        failed = [o for o in outcomes if not o.ok]
        if failed:
            first = failed[0]
            applied = len(outcomes) - len(failed)
            raise WorkerFailed(
                ErrorCode(first.code),
                f"{first.message} (worker {first.worker}; "
                f"{applied} of {len(outcomes)} workers applied {name})",
            )
        op = self.get(name)
        results = [decode(o.result, op.result_type) for o in outcomes]
        return FanoutResult(op.aggregate(results), len(outcomes))


class Fanout(Protocol):
    """Registering and calling admin operations (one per server process)."""

    worker: int

    def register(self, op: Operation[Any, Any, Any]) -> None:
        """Register an operation in this process (every worker registers the same ones)."""

    async def start(self) -> None:
        """Join the server: replay its desired state, then apply operations as they come."""

    async def ready(self) -> None:
        """Report that this worker listens."""

    async def close(self) -> None:
        """Leave the server (this worker is stopping)."""

    async def call(self, name: str, payload: object) -> FanoutResult[Any]:
        """Apply an operation on every worker and aggregate.

        Raises:
            WorkerFailed: a worker (or ``prepare``) failed; the code is the worker's.
            FailedPrecondition: no such operation.
            DeadlineExceeded: a worker did not answer in time.
            Unavailable: the supervisor is gone (the server is shutting down).
        """


class LocalFanout:
    """The fan-out of a single-process server: the one worker is this process."""

    def __init__(self) -> None:
        self.worker = 0
        self.registry = OperationRegistry()
        self._serial = asyncio.Lock()

    def register(self, op: Operation[Any, Any, Any]) -> None:
        """Register an operation."""
        self.registry.register(op)

    async def start(self) -> None:
        """Nothing to join: this process is the whole server."""

    async def ready(self) -> None:
        """Nobody to tell."""

    async def close(self) -> None:
        """Nothing to leave."""

    async def call(self, name: str, payload: object) -> FanoutResult[Any]:
        """Prepare, apply here, aggregate (see :meth:`Fanout.call`)."""
        self.registry.get(name)
        async with self._serial:
            try:
                data, _ = await self.registry.prepare(name, encode(payload))
            except ModelyardError as exc:
                raise WorkerFailed(exc.code, exc.message) from None
            outcome = await self.registry.apply(name, data, self.worker)
        return self.registry.aggregate(name, [outcome])
