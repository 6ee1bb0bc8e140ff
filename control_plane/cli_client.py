"""How control-plane commands reach the control plane: over HTTP, or in-process on the local store.

With ``--url`` a command talks to a running control plane. Without it, the same REST request
goes to the control-plane application built in this process over the configured (local) store,
through an in-memory ASGI transport — so both ways run the same guards, rules and audit log.
A token (``--token`` or ``control_plane.token`` / ``MODELYARD_CONTROL_PLANE_TOKEN``) is needed
for every change, locally too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import click
import httpx

from modelyard.errors import ErrorCode, ModelyardError
from modelyard.settings import Settings


class RemoteError(ModelyardError):
    """An error answer of the control plane, with the code it carried."""

    def __init__(self, message: str, code: ErrorCode) -> None:
        super().__init__(message)
        self.code = code


@asynccontextmanager
async def control_plane_client(
    settings: Settings, url: str | None, token: str | None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``url``, or for the in-process application over the local store."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if url:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
            yield client
        return
    from control_plane.app import ControlPlaneServices, create_app

    services = await ControlPlaneServices.open(settings)
    if services.admin_token_path is not None:
        click.echo(f"first start: admin token written to {services.admin_token_path}", err=True)
    try:
        transport = httpx.ASGITransport(app=create_app(services))  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            transport=transport, base_url="http://local", headers=headers, timeout=120
        ) as client:
            yield client
    finally:
        await services.close()


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """Send one request and return the decoded JSON answer.

    Raises:
        RemoteError: the control plane answered with an error (its message and code).
    """
    query = {k: v for k, v in (params or {}).items() if v is not None}
    answer = await client.request(method, path, json=body, params=query)
    if answer.is_success:
        return answer.json() if answer.content else None
    try:
        error = answer.json()
        message, code = str(error["error"]), str(error.get("code", "internal"))
    except (ValueError, KeyError, TypeError):
        message, code = answer.text or answer.reason_phrase, "internal"
    known = {c.value: c for c in ErrorCode}
    return _raise(message, known.get(code, _code_of_status(answer.status_code)))


def _raise(message: str, code: ErrorCode) -> Any:
    raise RemoteError(message, code)


def _code_of_status(status: int) -> ErrorCode:
    return {401: ErrorCode.UNAUTHENTICATED, 403: ErrorCode.PERMISSION_DENIED}.get(
        status, ErrorCode.INTERNAL
    )


def echo_json(value: Any) -> None:
    """Print an answer as indented JSON."""
    click.echo(json.dumps(value, indent=2, sort_keys=False))
