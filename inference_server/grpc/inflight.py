"""The gRPC calls our handlers are running now, so a drain can wait for exactly those.

grpc's own count of live calls is not that: it also holds calls the C core accepted that no
handler of ours has started (or ever will: see :mod:`inference_server.grpc.server` for the
shutdown rule built on this count). :class:`InFlightCalls` wraps each method handler of the
server's tables (no interceptor: one counter step on entry and one on exit) and tells when
none is running. Once :meth:`InFlightCalls.refuse_new` was called, a call that reaches a
wrapped handler is refused with UNAVAILABLE before the handler runs (the first phase of the
drain: grpc still accepts, we refuse).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc

from modelyard.errors import DRAINING

Behaviour: TypeAlias = Callable[[Any, Any], Awaitable[Any]]
"""A handler's coroutine function: (request or request stream, context) -> response."""


class InFlightCalls:
    """How many of our gRPC handlers are running; :meth:`idle` waits until none is.

    Wrap every handler with :meth:`track` before the server starts. A handler counts from the
    moment grpc calls it until it returns, raises (an abort included) or is cancelled; after
    :meth:`refuse_new`, a new call is refused (UNAVAILABLE) instead and never counts.
    """

    def __init__(self) -> None:
        self._running = 0
        self._refusing = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def running(self) -> int:
        """Handlers running now."""
        return self._running

    async def idle(self) -> None:
        """Return once no handler is running (at once if none is)."""
        await self._idle.wait()

    def refuse_new(self) -> None:
        """From now on refuse every new call (UNAVAILABLE); running handlers go on."""
        self._refusing = True

    def _enter(self) -> bool:
        """Count a handler in; False (not counted) once new calls are refused."""
        if self._refusing:
            return False
        self._running += 1
        self._idle.clear()
        return True

    def _exit(self) -> None:
        self._running -= 1
        if not self._running:
            self._idle.set()

    def _counted(self, behaviour: Behaviour) -> Behaviour:
        """``behaviour``, counted from its call until it returns, raises or is cancelled."""
        enter, leave = self._enter, self._exit

        async def counted(request: Any, context: Any) -> Any:
            if not enter():
                await context.abort(grpc.StatusCode.UNAVAILABLE, DRAINING)
            try:
                return await behaviour(request, context)
            finally:
                leave()

        return counted

    def track(self, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        """The same handler, counted while it runs.

        Only the shapes this server registers: unary-unary and stream-stream handlers whose
        behaviour is a coroutine function.

        Raises:
            TypeError: a handler of another shape.
        """
        if not handler.request_streaming and not handler.response_streaming:
            return grpc.unary_unary_rpc_method_handler(
                self._counted(cast("Behaviour", handler.unary_unary)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                self._counted(cast("Behaviour", handler.stream_stream)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        raise TypeError("only unary-unary and stream-stream handlers are tracked")
