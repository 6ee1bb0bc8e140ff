"""Run the control plane on uvicorn (uvloop), in the foreground or as an owned task.

:meth:`ControlPlaneServer.start` binds the socket itself (port 0 picks a free port), starts
uvicorn on it and returns once uvicorn reports it is serving, so callers and tests never sleep
or poll for readiness.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

import uvicorn

from control_plane.app import ControlPlaneServices, create_app

if TYPE_CHECKING:
    from modelyard.settings import Settings


class ControlPlaneServer:
    """The control plane's HTTP server.

    Args:
        settings: the effective settings (host/port from ``control_plane``).
        port: overrides ``settings.control_plane.port`` (0 = any free port).
        schema: PostgreSQL schema to confine the database to (tests).
    """

    def __init__(self, settings: Settings, *, port: int | None = None, schema: str | None = None):
        self.settings = settings
        self.host = settings.control_plane.host
        self._requested_port = settings.control_plane.port if port is None else port
        self._schema = schema
        self.port = 0
        self.services: ControlPlaneServices | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Migrate, bind, serve; return once the server accepts connections.

        Raises:
            RuntimeError: uvicorn stopped before it was serving; everything acquired so far
                (socket, database connections) is released first.
        """
        self.services = await ControlPlaneServices.open(self.settings, schema=self._schema)
        try:
            await self._serve_in_background()
        except BaseException:
            await self._release()
            raise

    async def _serve_in_background(self) -> None:
        assert self.services is not None
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.host, self._requested_port))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.services), log_level="warning", access_log=False, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        # uvicorn offers no start-up event; its ``started`` flag flips once it is serving.
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("control plane stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Finish in-flight requests, stop serving, release the database."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        await self._release()

    async def _release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self.services is not None:
            await self.services.close()
            self.services = None

    async def serve_forever_started(self) -> None:
        """Run a started server until it exits (SIGINT/SIGTERM), then release the database."""
        assert self._task is not None
        try:
            await self._task
        finally:
            await self._release()
