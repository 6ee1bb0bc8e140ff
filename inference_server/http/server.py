"""Listening socket and lifecycle of the HTTP adapter: the seam the composition root calls.

``start_http_server(service, host, port, settings)`` binds (port 0 allowed; SO_REUSEPORT
when asked, so ``--workers N`` processes share one port), returns once listening, and hands
back an :class:`HttpServer` with the bound ``port`` and a graceful ``close()``: stop
accepting, let in-flight requests finish (up to ``drain_timeout_s``), then drop the rest.
``settings`` is the server's settings section (:class:`modelyard.settings.ServerSettings`
fits :class:`HttpOptions`); SO_REUSEPORT is process wiring, an argument of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING, Protocol

from inference_server.http.messages import DateHeader, Handler
from inference_server.http.protocol import ConnectionLimits, ConnectionRegistry, HttpConnection
from inference_server.http.routes import HttpApi

if TYPE_CHECKING:
    from inference_server.admin.service import AdminService
    from inference_server.auth import BearerAuth
    from inference_server.service import InferenceService


class HttpOptions(Protocol):
    """What the adapter reads from the server's settings (``modelyard.settings.ServerSettings``)."""

    @property
    def max_request_bytes(self) -> int:
        """Larger request bodies are refused with 413 before being read."""

    @property
    def max_header_bytes(self) -> int:
        """A request head (request line + headers) beyond this is refused with 431."""

    @property
    def request_timeout_s(self) -> float:
        """A request not fully received this long after its first byte gets 408."""

    @property
    def drain_timeout_s(self) -> float:
        """How long ``close()`` waits for in-flight requests."""


_BACKLOG = 2048
_MAX_PIPELINED = 32
_KEEP_ALIVE_TIMEOUT_S = 30.0


class HttpServer:
    """A listening HTTP server; build it with :func:`serve` or :func:`start_http_server`."""

    def __init__(
        self,
        server: asyncio.Server,
        connections: ConnectionRegistry,
        sweeper: asyncio.Task[None],
        drain_timeout_s: float,
    ) -> None:
        self._server = server
        self._connections = connections
        self._sweeper = sweeper
        self._drain_timeout_s = drain_timeout_s
        sockets = server.sockets
        self.port: int = sockets[0].getsockname()[1] if sockets else 0

    async def close(self) -> None:
        """Stop accepting, finish in-flight requests, then close every connection."""
        self._server.close()
        self._connections.closing = True
        self._sweeper.cancel()
        for connection in self._connections.snapshot():
            connection.shutdown()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._drain_timeout_s):
                await self._connections.wait_empty()
        for connection in self._connections.snapshot():
            connection.abort()
        await self._server.wait_closed()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sweeper


async def start_http_server(
    service: InferenceService,
    host: str,
    port: int,
    settings: HttpOptions,
    *,
    reuse_port: bool = False,
    auth: BearerAuth | None = None,
    admin: AdminService | None = None,
) -> HttpServer:
    """Serve the OIP REST API, the admin API and the simple JSON endpoints of ``service``.

    ``admin`` applies admin calls on every worker and holds the tokens; without it a
    single-process admin is built over ``service`` with ``auth`` (None: every call open).
    ``reuse_port`` binds with SO_REUSEPORT (the worker processes of one server share the port).
    Returns once listening; ``HttpServer.port`` is the bound port (``port=0`` picks one).
    """
    api = HttpApi(service, settings.max_request_bytes, auth, admin)
    return await serve(api, host, port, settings, reuse_port=reuse_port)


async def serve(
    handler: Handler,
    host: str,
    port: int,
    settings: HttpOptions,
    *,
    reuse_port: bool = False,
    idle_timeout_s: float = _KEEP_ALIVE_TIMEOUT_S,
) -> HttpServer:
    """Listen on ``host:port`` and answer every request with ``handler``.

    Args:
        handler: answers one request; it must translate its own errors into responses.
        host: the address to bind.
        port: the port to bind; 0 picks a free one (read it from ``HttpServer.port``).
        settings: the limits and the drain timeout.
        reuse_port: bind with SO_REUSEPORT so several worker processes share the port.
        idle_timeout_s: a connection with no request in flight is closed after this long.

    Returns:
        The listening server.
    """
    loop = asyncio.get_running_loop()
    limits = ConnectionLimits(
        settings.max_request_bytes,
        _MAX_PIPELINED,
        max_header_bytes=settings.max_header_bytes,
        request_timeout_s=settings.request_timeout_s,
    )
    connections = ConnectionRegistry()
    date = DateHeader()

    def factory() -> HttpConnection:
        return HttpConnection(handler, limits, connections, date)

    server = await loop.create_server(
        factory,
        host,
        port,
        family=socket.AF_INET6 if ":" in host else socket.AF_INET,
        reuse_port=reuse_port or None,
        backlog=_BACKLOG,
    )
    sweeper = loop.create_task(connections.sweep_idle(idle_timeout_s, settings.request_timeout_s))
    return HttpServer(server, connections, sweeper, settings.drain_timeout_s)
