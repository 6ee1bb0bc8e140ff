"""Pushing a model's A/B routes to every inference server the control plane knows.

``PUT {server}/v2/models/{model}/routes`` with ``{"routes": [...]}`` (the ``routes`` shape of
``config.json``) and the servers' admin bearer token (contract 3: the server applies the
routes on every worker before it answers, and says how many did). A server that cannot be
reached, or refuses, is reported in the answer and is not fatal: the routes are already in
the model repository, which it reads when it next scans.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
import msgspec

from control_plane.abtesting.models import RouteApplied

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelyard.model_repository import Route

_encoder = msgspec.json.Encoder()


class _Answer(msgspec.Struct):
    workers_applied: int | None = None


class RoutePusher:
    """Applies routes through the admin API of each server in ``servers``.

    Args:
        servers: base URLs (``http://host:8000``), ``control_plane.inference_servers``.
        admin_token: the servers' admin token (``server.admin_token``); empty sends none.
        timeout: seconds per server (a server answers once every worker applied the routes).
    """

    def __init__(self, servers: Sequence[str], admin_token: str = "", timeout: float = 30.0):
        self.servers = tuple(s.rstrip("/") for s in servers)
        self._headers = {"authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._timeout = timeout

    async def push(self, model: str, routes: tuple[Route, ...]) -> tuple[RouteApplied, ...]:
        """Send ``routes`` to every server at once; one :class:`RouteApplied` per server."""
        if not self.servers:
            return ()
        body = _encoder.encode({"routes": routes})
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
            return tuple(
                await asyncio.gather(*(self._one(client, s, model, body) for s in self.servers))
            )

    @staticmethod
    async def _one(client: httpx.AsyncClient, server: str, model: str, body: bytes) -> RouteApplied:
        url = f"{server}/v2/models/{model}/routes"
        try:
            response = await client.put(
                url, content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as error:
            return RouteApplied(server=server, applied=False, error=f"unreachable: {error!r}")
        if response.status_code != 200:
            text = response.text[:500]
            return RouteApplied(
                server=server, applied=False, error=f"HTTP {response.status_code}: {text}"
            )
        try:
            answer = msgspec.json.decode(response.content, type=_Answer)
        except msgspec.DecodeError:
            answer = _Answer()
        return RouteApplied(server=server, applied=True, workers_applied=answer.workers_applied)
