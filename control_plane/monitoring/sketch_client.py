"""Pulls a window's merged sketches from every inference server (contract 5's admin read).

Each server answers ``GET /v2/models/{model}/versions/{version}/sketches?since&until`` with
the :class:`~modelyard.sketches.WindowSketches` merged across its workers; the control plane
merges the servers' answers (:func:`~modelyard.sketches.merge_all`). A server that cannot be
read makes the whole pull fail: a drift verdict on part of the traffic would be silently
wrong.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from urllib.parse import quote

import httpx

from modelyard.errors import InvalidArgument, Unavailable
from modelyard.sketches import WindowSketches, decode_windows, merge_all


class SketchClient:
    """Reads window sketches from the configured inference servers.

    Args:
        servers: the servers' HTTP base URLs (``control_plane.inference_servers``).
        admin_token: the servers' admin bearer token (``server.admin_token``), if any.
        timeout_s: per request.
    """

    def __init__(self, servers: Sequence[str], admin_token: str = "", timeout_s: float = 30.0):
        self.servers = tuple(s.rstrip("/") for s in servers)
        self._headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._timeout = timeout_s

    async def window(
        self, model: str, version: int, since: dt.datetime, until: dt.datetime
    ) -> WindowSketches | None:
        """The sketches of ``model`` ``version`` over [since, until), merged over every server
        (``None`` when no server saw the version).

        Raises:
            Unavailable: no server is configured, or one failed to answer (named).
        """
        if not self.servers:
            raise Unavailable("no inference server is configured (control_plane.inference_servers)")
        path = f"/v2/models/{quote(model, safe='')}/versions/{version}/sketches"
        params = {"since": since.isoformat(), "until": until.isoformat()}
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
            answers = await asyncio.gather(
                *(self._read(client, server + path, params) for server in self.servers)
            )
        return merge_all([a for a in answers if a is not None])

    @staticmethod
    async def _read(
        client: httpx.AsyncClient, url: str, params: dict[str, str]
    ) -> WindowSketches | None:
        try:
            answer = await client.get(url, params=params)
        except httpx.HTTPError as error:
            raise Unavailable(f"sketches from {url}: {type(error).__name__}: {error}") from None
        if answer.status_code == 404:
            return None  # this server does not serve the version
        if not answer.is_success:
            raise Unavailable(f"sketches from {url}: HTTP {answer.status_code} {answer.text[:200]}")
        try:
            return decode_windows(answer.content)
        except InvalidArgument as error:
            raise Unavailable(f"sketches from {url}: {error}") from None


__all__ = ["SketchClient"]
